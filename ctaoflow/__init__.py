"""ctaoflow: CTAO productions on Apache Airflow (the Airflow-free core)."""
