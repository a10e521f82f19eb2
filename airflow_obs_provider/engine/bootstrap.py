"""Create or upgrade the schema by running ``sql/bootstrap.sql`` (idempotent).

The SQL decides what the server allows (extensions, hypertables, AGE graph,
HNSW) and announces every skip with a ``NOTICE`` prefixed ``obs-bootstrap:``.
This module runs it in one transaction, then reads the catalog to report what
really exists, so the report never claims a feature the database lacks.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_obs_provider.engine.db import connect, has_extension, redact_url, resolve_pg_url, sql_text

log = logging.getLogger(__name__)

OPTIONAL_EXTENSIONS = ("pg_trgm", "btree_gist", "timescaledb", "vector", "age")
HYPERTABLES = ("metric_1m", "service_call_5m", "log_pattern_5m")
GRAPH_NAME = "obs_graph"

_SKIP_NOTICE = re.compile(r"obs-bootstrap: skipped (extension|feature) (\w+): (.*)")


@dataclass
class BootstrapReport:
    """What the bootstrap left in the database, read back from the catalog."""

    database: str
    schema_version: int
    extensions: dict[str, str] = field(default_factory=dict)  # installed name -> version
    skipped_extensions: dict[str, str] = field(default_factory=dict)  # name -> reason
    features: dict[str, bool] = field(default_factory=dict)
    skipped_features: dict[str, str] = field(default_factory=dict)  # name -> reason

    def summary_lines(self) -> list[str]:
        lines = [f"schema version {self.schema_version} in {self.database}"]
        lines.append("extensions: " + (", ".join(f"{k} {v}" for k, v in sorted(self.extensions.items())) or "none"))
        for name, reason in sorted(self.skipped_extensions.items()):
            lines.append(f"skipped extension {name}: {reason}")
        lines.append("features: " + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in sorted(self.features.items())))
        for name, reason in sorted(self.skipped_features.items()):
            lines.append(f"skipped feature {name}: {reason}")
        return lines


def bootstrap(pg_url: str | None = None, *, skip_extensions: Iterable[str] = ()) -> BootstrapReport:
    """Run ``bootstrap.sql`` in one transaction and report what exists afterwards.

    ``skip_extensions`` names optional extensions not to create (for servers where
    an operator does not want them); ones that already exist stay in use.
    """
    url = resolve_pg_url(pg_url)
    skip = sorted(set(skip_extensions))
    unknown = set(skip) - set(OPTIONAL_EXTENSIONS)
    if unknown:
        raise ValueError(f"unknown extensions to skip: {sorted(unknown)} (known: {list(OPTIONAL_EXTENSIONS)})")
    conn = connect(url, application_name="obs-etl bootstrap")
    notices: list[str] = []
    conn.notices = notices  # psycopg2 keeps only the last 50 unless given a list
    try:
        with conn.cursor() as cur:
            cur.execute("SET LOCAL client_min_messages = notice")
            cur.execute("SELECT set_config('obs.skip_extensions', %s, true)", (",".join(skip),))
            cur.execute(sql_text("bootstrap.sql"))
        conn.commit()
        report = _read_report(conn, url)
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()
    _apply_notices(report, notices)
    for line in report.summary_lines():
        (log.warning if line.startswith("skipped") else log.info)("bootstrap: %s", line)
    return report


def _apply_notices(report: BootstrapReport, notices: list[str]) -> None:
    for notice in notices:
        m = _SKIP_NOTICE.search(notice)
        if not m:
            continue
        kind, name, reason = m.group(1), m.group(2), m.group(3).strip()
        target = report.skipped_extensions if kind == "extension" else report.skipped_features
        target[name] = reason


def _read_report(conn: Any, url: str) -> BootstrapReport:
    with conn.cursor() as cur:
        cur.execute("SELECT current_database(), max(version) FROM obs_schema_version")
        database, version = cur.fetchone()
        report = BootstrapReport(database=database, schema_version=int(version))
        cur.execute("SELECT extname, extversion FROM pg_extension WHERE extname = ANY(%s)",
                    (list(OPTIONAL_EXTENSIONS),))
        report.extensions = dict(cur.fetchall())
        report.features = {
            "hypertables": _hypertables(cur) == set(HYPERTABLES),
            "age_graph": age_graph_ready(cur),
            "vector_embedding": _column_type(cur, "kb_chunk", "embedding") == "vector(384)",
            "hnsw_index": _index_exists(cur, "kb_chunk_embedding_hnsw"),
            "trigram_index": _index_exists(cur, "log_pattern_template_trgm"),
            "exclude_constraint": _constraint_exists(cur, "topo_edge_time_no_overlap"),
            "rls_policies": _policy_count(cur) > 0,
        }
    conn.rollback()  # read-only
    log.debug("bootstrap report read from %s", redact_url(url))
    return report


def _hypertables(cur: Any) -> set[str]:
    if not has_extension(cur, "timescaledb"):
        return set()
    cur.execute("SELECT hypertable_name FROM timescaledb_information.hypertables "
                "WHERE hypertable_schema = current_schema()")
    return {row[0] for row in cur.fetchall()}


def age_graph_ready(cur: Any) -> bool:
    """AGE is installed, this role may read its catalog, and graph obs_graph has its two labels."""
    if not has_extension(cur, "age"):
        return False
    # AGE's catalog belongs to whoever created the extension; other roles may not read it.
    # CASE: without USAGE on the schema, naming its tables is itself an error
    cur.execute("SELECT CASE WHEN has_schema_privilege('ag_catalog', 'USAGE') "
                "THEN has_table_privilege('ag_catalog.ag_label', 'SELECT') "
                "AND has_table_privilege('ag_catalog.ag_graph', 'SELECT') ELSE false END")
    if not cur.fetchone()[0]:
        return False
    cur.execute("SELECT count(*) FROM ag_catalog.ag_label l JOIN ag_catalog.ag_graph g ON g.graphid = l.graph "
                "WHERE g.name = %s AND l.name IN ('Resource', 'CALLS')", (GRAPH_NAME,))
    return int(cur.fetchone()[0]) == 2


def _column_type(cur: Any, table: str, column: str) -> str | None:
    cur.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = to_regclass(%s) AND attname = %s AND NOT attisdropped", (table, column))
    row = cur.fetchone()
    return None if row is None else str(row[0])


def _index_exists(cur: Any, name: str) -> bool:
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (name,))
    return bool(cur.fetchone()[0])


def _constraint_exists(cur: Any, name: str) -> bool:
    cur.execute("SELECT 1 FROM pg_constraint WHERE conname = %s AND connamespace = current_schema()::regnamespace",
                (name,))
    return cur.fetchone() is not None


def _policy_count(cur: Any) -> int:
    cur.execute("SELECT count(*) FROM pg_policy WHERE polname = 'obs_tenant_isolation'")
    return int(cur.fetchone()[0])


def cli_bootstrap(args: argparse.Namespace) -> int:
    """``obs-etl bootstrap [--pg-url URL] [--skip-extension NAME ...] [--json]``."""
    report = bootstrap(args.pg_url, skip_extensions=getattr(args, "skip_extension", None) or ())
    if getattr(args, "json", False):
        print(json.dumps(asdict(report), indent=2, sort_keys=True))
    else:
        print("\n".join(report.summary_lines()))
    return 0
