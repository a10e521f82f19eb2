"""Benchmarks behind `obs-etl bench`: they print figures and assert nothing."""
