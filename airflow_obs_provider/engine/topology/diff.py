"""Record one observation of a topology source into ``topo_edge_time`` (design §6).

An observation at time ``at`` (the window end) is applied set-based inside the
caller's transaction:

- nodes are upserted into ``dim_resource`` (``first_seen``/``last_seen`` widened,
  labels merged; rows that would not change are not rewritten);
- the observed edges are staged with COPY into a temporary table;
- an open edge (``upper_inf(valid)``) that is no longer observed gets its upper
  bound set to ``at``; an observed edge with no open interval opens ``[at, ∞)``,
  so a reappearing edge starts a new interval; unchanged edges are not touched,
  and two identical observations write nothing to ``topo_edge_time``.
- an edge identity is (src, dst, edge_type, source); a change of ``props`` closes
  the old interval and opens a new one, so "as of" answers carry the props of the time.

Guards (the observation fails and nothing changes):

- an observation that would close more than :data:`MAX_CLOSE_FRACTION` of the source's open
  edges (a wrong workspace, an emptied state file, an inventory that lost its hosts) is refused
  unless the caller allows it (``allow_mass_close: true`` in the tenant's terraform/ansible block);
- times beyond now + clock skew are refused by the job; interval bounds that older versions wrote
  in the future (a run ``--at 2099-...``) are undone at the next observation, since no
  observation can have happened there, and never block it.

Re-applying the *latest* observation time (a retried or cleared run) replaces that
observation: intervals it opened and no longer sees are deleted, intervals it closed
and sees again are reopened. Observations older than the latest one of the source
are not applied at all (:func:`newer_observation` lets the job skip them): inserting
history before later observations would need every later observation again.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from airflow_obs_provider.engine.topology.model import SOURCES, Edge, Node, Topology

# More than this fraction of a source's open edges vanishing in one observation is refused.
MAX_CLOSE_FRACTION = 0.5


class MassCloseRefused(RuntimeError):
    """An observation would close most of a source's open edges; the message says how to allow it."""


@dataclass(frozen=True)
class DiffResult:
    nodes: int
    nodes_written: int  # inserted or changed in dim_resource
    edges: int
    opened: int
    closed: int
    reopened: int  # closed by an earlier attempt of the same observation, seen again
    replaced: int  # opened by an earlier attempt of the same observation, no longer seen

    @property
    def edges_written(self) -> int:
        return self.opened + self.closed + self.reopened + self.replaced

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "edges_written": self.edges_written}


def lock_source(cur: Any, tenant_id: int, source: str) -> None:
    """Serialise observations of one source of one tenant (whatever their windows)."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"topology|{tenant_id}|{source}",))


def newer_observation(cur: Any, tenant_id: int, source: str, at: datetime, job: str,
                      horizon: datetime) -> datetime | None:
    """The latest observation of this source later than ``at``, if any (then ``at`` must not be applied).

    Looks at the interval bounds the source has written and at the ledger's successful
    windows of ``job`` (an observation that changed nothing leaves no bound behind). Times
    beyond ``horizon`` (now + clock skew) cannot be real observations and are ignored.
    """
    cur.execute(
        """
        SELECT greatest(
          (SELECT max(b) FROM topo_edge_time,
                  LATERAL (VALUES (lower(valid)), (CASE WHEN upper_inf(valid) THEN NULL ELSE upper(valid) END)) v(b)
             WHERE tenant_id = %(tenant_id)s AND source = %(source)s AND b <= %(horizon)s),
          (SELECT max(window_to) FROM etl_job_run
            WHERE job = %(job)s AND tenant_id = %(tenant_id)s AND status = 'success'
              AND window_to <= %(horizon)s))
        """,
        {"tenant_id": tenant_id, "source": source, "job": job, "horizon": horizon},
    )
    latest = cur.fetchone()[0]
    return latest if latest is not None and latest > at else None


def _copy_rows(cur: Any, table: str, columns: str, rows: Iterable[tuple[Any, ...]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerows(rows)
    buf.seek(0)
    # table/columns are constants of this module, never user data
    cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)", buf)


def _stage(cur: Any, nodes: Iterable[Node], edges: Iterable[Edge]) -> None:
    cur.execute("DROP TABLE IF EXISTS topo_stage_node, topo_stage_edge, topo_obs")
    cur.execute("CREATE TEMP TABLE topo_stage_node (urn text PRIMARY KEY, type text, labels jsonb) ON COMMIT DROP")
    cur.execute("CREATE TEMP TABLE topo_stage_edge (src_urn text, dst_urn text, edge_type text, props jsonb) "
                "ON COMMIT DROP")
    _copy_rows(cur, "topo_stage_node", "urn, type, labels",
               ((n.urn, n.type, json.dumps(dict(n.labels), sort_keys=True, default=str)) for n in nodes))
    _copy_rows(cur, "topo_stage_edge", "src_urn, dst_urn, edge_type, props",
               ((e.src, e.dst, e.edge_type, e.props_json()) for e in edges))


_UPSERT_NODES = """
INSERT INTO dim_resource AS r (tenant_id, urn, type, labels, first_seen, last_seen)
SELECT %(tenant_id)s, urn, type, labels, %(at)s, %(at)s FROM topo_stage_node
ON CONFLICT (tenant_id, urn) DO UPDATE
SET type = coalesce(r.type, EXCLUDED.type),
    labels = r.labels || EXCLUDED.labels,
    first_seen = least(r.first_seen, EXCLUDED.first_seen),
    last_seen = greatest(r.last_seen, EXCLUDED.last_seen)
WHERE r.type IS NULL OR NOT r.labels @> EXCLUDED.labels
   OR r.first_seen IS NULL OR r.first_seen > EXCLUDED.first_seen
   OR r.last_seen IS NULL OR r.last_seen < EXCLUDED.last_seen
"""

_RESOLVE_EDGES = """
CREATE TEMP TABLE topo_obs ON COMMIT DROP AS
SELECT DISTINCT s.id AS src_id, d.id AS dst_id, e.edge_type, e.props
FROM topo_stage_edge e
JOIN dim_resource s ON s.tenant_id = %(tenant_id)s AND s.urn = e.src_urn
JOIN dim_resource d ON d.tenant_id = %(tenant_id)s AND d.urn = e.dst_urn
"""

# An earlier attempt of this same observation opened these; this attempt does not see them.
_DELETE_REPLACED = """
DELETE FROM topo_edge_time t
WHERE t.tenant_id = %(tenant_id)s AND t.source = %(source)s
  AND upper_inf(t.valid) AND lower(t.valid) = %(at)s
  AND NOT EXISTS (SELECT 1 FROM topo_obs o
                  WHERE o.src_id = t.src_id AND o.dst_id = t.dst_id AND o.edge_type = t.edge_type
                    AND o.props = t.props)
"""

_CLOSE_VANISHED = """
UPDATE topo_edge_time t SET valid = tstzrange(lower(t.valid), %(at)s, '[)')
WHERE t.tenant_id = %(tenant_id)s AND t.source = %(source)s
  AND upper_inf(t.valid) AND lower(t.valid) < %(at)s
  AND NOT EXISTS (SELECT 1 FROM topo_obs o
                  WHERE o.src_id = t.src_id AND o.dst_id = t.dst_id AND o.edge_type = t.edge_type
                    AND o.props = t.props)
"""

# An earlier attempt of this same observation closed these; this attempt sees them again.
_REOPEN = """
UPDATE topo_edge_time t SET valid = tstzrange(lower(t.valid), NULL, '[)')
FROM topo_obs o
WHERE t.tenant_id = %(tenant_id)s AND t.source = %(source)s AND upper(t.valid) = %(at)s
  AND o.src_id = t.src_id AND o.dst_id = t.dst_id AND o.edge_type = t.edge_type AND o.props = t.props
  AND NOT EXISTS (SELECT 1 FROM topo_edge_time x
                  WHERE x.tenant_id = t.tenant_id AND x.source = t.source AND x.src_id = t.src_id
                    AND x.dst_id = t.dst_id AND x.edge_type = t.edge_type AND upper_inf(x.valid))
"""

_OPEN_NEW = """
INSERT INTO topo_edge_time (tenant_id, src_id, dst_id, edge_type, source, valid, props)
SELECT %(tenant_id)s, o.src_id, o.dst_id, o.edge_type, %(source)s, tstzrange(%(at)s, NULL, '[)'), o.props
FROM topo_obs o
WHERE NOT EXISTS (SELECT 1 FROM topo_edge_time t
                  WHERE t.tenant_id = %(tenant_id)s AND t.source = %(source)s AND upper_inf(t.valid)
                    AND t.src_id = o.src_id AND t.dst_id = o.dst_id AND t.edge_type = o.edge_type)
ORDER BY o.src_id, o.dst_id, o.edge_type  -- neighbouring keys: the EXCLUDE constraint's GiST index builds faster
"""


# Undo what runs at impossible (future) times wrote: intervals they opened go, intervals they
# closed are open again. Deleting first keeps one edge's intervals from ever overlapping.
_DELETE_FUTURE_OPENED = """
DELETE FROM topo_edge_time WHERE tenant_id = %(tenant_id)s AND source = %(source)s AND lower(valid) > %(horizon)s
"""
_REOPEN_FUTURE_CLOSED = """
UPDATE topo_edge_time SET valid = tstzrange(lower(valid), NULL, '[)')
WHERE tenant_id = %(tenant_id)s AND source = %(source)s AND NOT upper_inf(valid) AND upper(valid) > %(horizon)s
"""

# Open edges (by identity; a props change is a replacement, not a disappearance) this observation
# no longer sees, against all open edges of the source.
_COUNT_VANISHING = """
SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (
         SELECT 1 FROM topo_obs o WHERE o.src_id = t.src_id AND o.dst_id = t.dst_id AND o.edge_type = t.edge_type))
FROM topo_edge_time t
WHERE t.tenant_id = %(tenant_id)s AND t.source = %(source)s AND upper_inf(t.valid) AND lower(t.valid) < %(at)s
"""


def undo_future(cur: Any, tenant_id: int, source: str, horizon: datetime) -> int:
    """Remove interval bounds later than ``horizon`` (see the module doc); returns the rows changed."""
    params = {"tenant_id": tenant_id, "source": source, "horizon": horizon}
    cur.execute(_DELETE_FUTURE_OPENED, params)
    changed = cur.rowcount
    cur.execute(_REOPEN_FUTURE_CLOSED, params)
    return changed + cur.rowcount


def apply_observation(cur: Any, tenant_id: int, topo: Topology, at: datetime, *,
                      allow_mass_close: bool = False) -> DiffResult:
    """Apply ``topo`` as the state of its source at ``at``, in the caller's transaction.

    Refuses (:class:`MassCloseRefused`) to close more than :data:`MAX_CLOSE_FRACTION` of the
    source's open edges unless ``allow_mass_close``."""
    if topo.source not in SOURCES:
        raise ValueError(f"unknown topology source {topo.source!r} (known: {SOURCES})")
    params = {"tenant_id": tenant_id, "source": topo.source, "at": at}
    _stage(cur, topo.nodes.values(), topo.iter_edges())
    cur.execute(_UPSERT_NODES, params)
    nodes_written = cur.rowcount
    cur.execute(_RESOLVE_EDGES, params)
    cur.execute("ANALYZE topo_obs")  # temp tables are invisible to autovacuum; the anti-joins need real counts
    cur.execute(_COUNT_VANISHING, params)
    open_edges, vanishing = (int(v) for v in cur.fetchone())
    if not allow_mass_close and vanishing > open_edges * MAX_CLOSE_FRACTION:
        raise MassCloseRefused(
            f"{topo.source} observation at {at.isoformat()} would close {vanishing} of the {open_edges} open "
            f"{topo.source} edges (more than {MAX_CLOSE_FRACTION:.0%}; it sees {topo.edge_count} edges): refused, "
            "nothing changed. A wrong workspace, an empty state or inventory looks like this; if the "
            f"infrastructure really went away, set allow_mass_close: true in the tenant's {topo.source} block "
            "for one run")
    counts = {}
    for name, statement in (("replaced", _DELETE_REPLACED), ("closed", _CLOSE_VANISHED),
                            ("reopened", _REOPEN), ("opened", _OPEN_NEW)):
        cur.execute(statement, params)
        counts[name] = cur.rowcount
    return DiffResult(nodes=len(topo.nodes), nodes_written=nodes_written, edges=topo.edge_count, **counts)
