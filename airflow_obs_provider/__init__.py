"""Observability ETL Suite: an Apache Airflow provider for OpenObserve -> PostgreSQL ETL."""

from __future__ import annotations

import os

__version__ = "0.1.0"

# Arrow buffers from the system allocator (see jobs.oo_agg._prefer_system_memory_pool). Only the
# environment variable, read when pyarrow first allocates, keeps mimalloc from ever setting up
# its heaps: about 20 MiB less peak RSS per window than switching the pool afterwards. Set
# before any pyarrow import of the provider; a deployment's own choice wins.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
