"""Orchestration logic behind the DAGs, free of Airflow so it is testable without a scheduler.

- ``schedule``: the parse-time settings (start/end dates, intervals, delays, max_active_runs)
- ``selection``: which tenants a window runs for (initial lookback, circuit breaker)
- ``backfill``: validating a backfill request and splitting it into aligned windows
"""
