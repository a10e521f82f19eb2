"""Observability ETL Suite: an Apache Airflow provider for OpenObserve -> PostgreSQL ETL."""

from __future__ import annotations

__version__ = "0.1.0"
