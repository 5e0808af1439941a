"""ctaoflow's Airflow layer: hooks, operators, triggers and the DAG builder."""
