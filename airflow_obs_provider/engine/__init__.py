"""The engine: window maths, readers, aggregation, mining, diff and writers.

Nothing in this package imports Airflow, so it runs from the CLI, from tests in
milliseconds, and from the thin operators alike.
"""
