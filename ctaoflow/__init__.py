"""ctaoflow: CTAO productions on Apache Airflow; this package is the Airflow-free core.

Three wings, each a package:

- ``spec``: the production language (models, YAML with positions, validation, the
  spec cache, queries, chaining, the transformation graph, the DAG layout);
- ``engine``: runs a production (intake, submission, collection, completion) on the
  ledger, with the grouping plugins, job templates and failure rules;
- ``ops``: what operators run (actions, audit, report, plan, render).

Beside them: ``catalog`` (embedded, Rucio) and ``backends`` (local, Slurm, HTCondor,
Kubernetes, simulated), ``monitoring`` (the engine's outbox to OpenSearch, metrics),
``settings`` and ``sites`` (configuration), ``runner`` (runs one job of an array) and
the entry points ``cli`` and ``demo``.

Imports run one way: ops -> engine -> spec, and monitoring -> engine (no wing imports
monitoring: the engine only writes outbox rows); catalog and backends import no wing. No
module of the core imports Airflow; the CLI and the demo reach the Airflow layer
(``operators/``) only to run a DAG.
"""
