"""The names of the windowed jobs: the one place they are spelled.

They name the ledger rows (``etl_run.job``), the ``jobs:`` keys of the configuration, the CLI's
``run`` subcommands, the metric names and the ``obs_backfill`` DAG's ``conf.job``.
"""

from __future__ import annotations

OO_AGG = "oo-agg"
AGE_REFRESH = "age-refresh"
TOPO_IAC = "topo-iac"
TOPO_ANSIBLE = "topo-ansible"

JOB_NAMES = (OO_AGG, AGE_REFRESH, TOPO_IAC, TOPO_ANSIBLE)
# The topology jobs and the tenant block (source) each one reads; here, in a light module, because
# the operators and the DAG factory need them while the scheduler parses DAG files.
TOPOLOGY_JOB_BY_SOURCE = {"terraform": TOPO_IAC, "ansible": TOPO_ANSIBLE}
TOPOLOGY_SOURCE_BY_JOB = {job: source for source, job in TOPOLOGY_JOB_BY_SOURCE.items()}

# Jobs whose run covers several data windows of ``interval``, each run in turn: a run of ``run_every``
# holds that many minutes of records. The others observe a moment (T = the run's end): a topology
# source or the graph has one state now, so a run is one observation whatever its span.
SPLIT_RUN_JOBS = frozenset({OO_AGG})
