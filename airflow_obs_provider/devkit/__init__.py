"""Development kit: demo data, labeled log corpora, benchmarks and the local demo.

Nothing in the engine, the jobs or the Airflow layer imports this package; the CLI loads
its commands (``gen-oo-data``, ``bench ...``, ``demo``) only when they run.
"""
