"""What operators run on a production: actions on its ledger (``operations``),
reconciliation with the catalog and batch systems (``audit``), reports (``report``),
dry-run grouping (``plan``) and the DAG as a standalone module (``render``).

May import: ``ctaoflow.spec``, ``ctaoflow.engine``, ``ctaoflow.catalog``,
``ctaoflow.backends``; never Airflow.
"""
