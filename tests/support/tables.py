"""Table snapshots live in the dev kit (``obs-etl bench airflow`` compares with them too); tests import them from here."""

from __future__ import annotations

from airflow_obs_provider.devkit.tables import SNAPSHOT_QUERIES, diff_snapshots, ledger, row_counts, snapshot

__all__ = ["SNAPSHOT_QUERIES", "diff_snapshots", "ledger", "row_counts", "snapshot"]
