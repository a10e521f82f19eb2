"""Airflow operators: thin wrappers that turn the context into a window and call the jobs."""
