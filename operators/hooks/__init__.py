"""Hooks: Airflow connections turned into ctaoflow catalog and backend settings."""
