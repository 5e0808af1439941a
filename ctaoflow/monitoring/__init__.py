"""Monitoring: ctaoflow's changes as documents in OpenSearch, and its metrics.

The engine and the operator actions leave a small outbox row in the ledger with each
change, in the change's own transaction, when monitoring is on
(``ctaoflow.engine.outbox``). This package does the rest, away from the change:

- ``documents``: the outbox rows and a production's ledger history as documents, with
  their index and deterministic ``_id`` (the schema is ``config/monitoring/``'s index
  template; ``documents.SCHEMA`` reads it);
- ``client``: an opensearch-py client from a connection (URL or the fields of an
  Airflow ``opensearch`` connection), never showing its password;
- ``sender``: sends the outbox in order with ``helpers.streaming_bulk`` (op_type
  ``create``: a re-send is a no-op), deletes only what OpenSearch acknowledged, keeps
  the backlog within its bound with one warning line past it;
- ``install`` (index templates and ISM policy), ``metrics`` (StatsD gauges in
  Airflow's naming), ``cli`` (``ctaoflow monitoring ...``).

May import: ``ctaoflow.engine``, ``ctaoflow.spec``, ``ctaoflow.settings``; never Airflow,
never ``ctaoflow.ops``. No wing imports it: the Airflow layer and the CLI start it.
"""
