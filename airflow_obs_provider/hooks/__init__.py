"""Airflow hooks: they hold connections only."""
