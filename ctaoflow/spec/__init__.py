"""The production language: what a production YAML says and whether it is sound.

``model`` (the pydantic models), ``yamlio`` (YAML read bounded, with line and column of
every node), ``validation`` (one-line errors: shapes and types) with ``semantics`` (the
cross-field rules), ``placeholders`` (the ``{name}`` fields), ``characters`` (control
characters no command line carries) and ``messages`` (the wording of errors),
``cache`` (validated specs kept on disk for Airflow's re-parses), ``query`` (metadata
queries), ``chaining`` (what a transformation selects and what its
outputs carry), ``graph`` (the transformation graph), ``layout`` (the Airflow DAG a
production becomes, as plain data) and ``prodsteps`` (CTADIRAC's ProdSteps files read as
native specs, with ``prodsteps_steps``, ``prodsteps_simulation`` and ``prodsteps_kinds``;
``prodsteps_yaml`` writes one out for ``ctaoflow import``).

May import: ``ctaoflow.settings`` and nothing else of ctaoflow: not the engine, not
the operator tools, never Airflow.
"""
