"""Postgres persistence of the miner: per-tenant state under a lock, pattern dictionary, aliases.

Everything here runs inside the caller's window transaction, so a failed window leaves the
state, the dictionary and the aliases exactly as they were.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from psycopg2.extras import execute_values

from airflow_obs_provider.engine.log_mining.config import MinerConfig
from airflow_obs_provider.engine.log_mining.fingerprint import OTHER_TEMPLATE
from airflow_obs_provider.engine.log_mining.miner import PatternMiner
from airflow_obs_provider.engine.log_mining.severity import LEVELS, most_severe
from airflow_obs_provider.engine.log_mining.state import StateError

log = logging.getLogger(__name__)

# First key of the two-key advisory lock; the second is the tenant id. Distinct from the
# ledger's (job, tenant, window) locks, so two windows of one tenant serialise only here.
_MINER_LOCK_CLASS = 0x6C6F6770  # "logp"


def lock_miner(cur: Any, tenant_id: int) -> None:
    """Serialise miner load -> mine -> save for one tenant until the transaction ends.

    Callers take it after their ``dim_resource`` writes and before any ``log_pattern*`` write,
    so two windows never wait on each other in opposite orders."""
    cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_MINER_LOCK_CLASS, int(tenant_id) & 0x7FFFFFFF))


def load_miner(cur: Any, tenant_id: int, config: MinerConfig) -> PatternMiner:
    """The tenant's miner as last saved, or a fresh one (first run, other config, unreadable state)."""
    cur.execute("SELECT config_version, state FROM log_miner_state WHERE tenant_id = %s", (tenant_id,))
    row = cur.fetchone()
    if row is None or row[1] is None:
        return PatternMiner(config)
    version, blob = row
    if version != config.version:
        miner = PatternMiner(config)
        carried = carry_patterns(cur, tenant_id, miner)
        log.info("tenant %s: miner configuration changed (%s -> %s), starting a new miner; "
                 "%d stored pattern(s) aliased to the new version's", tenant_id, version, config.version, carried)
        return miner
    try:
        return PatternMiner.from_bytes(bytes(blob), config)
    except StateError as exc:
        log.warning("tenant %s: stored miner state ignored: %s", tenant_id, exc)
        return PatternMiner(config)


def carry_patterns(cur: Any, tenant_id: int, miner: PatternMiner) -> int:
    """Give the tenant's stored patterns their place in a new configuration (an ALGORITHM_VERSION
    bump, a changed override): each current ``log_pattern`` row's sample is mined by ``miner``,
    the row's fingerprint becomes an alias of the fingerprint its sample gets now (the miner hands
    the aliases to the window, which records them), and that pattern's row is written with the
    new template and the old rows' levels, first/last seen and earliest sample. Dashboards and
    alerts keyed on an old fingerprint so follow it to the new one instead of losing its history.

    Samples are masked and at most ``window.SAMPLE_MAX_CHARS`` long: a pattern whose sample was cut
    or masked may land on another template than its full lines would; later windows generalise
    and alias as usual. Rows already aliased are left out (their target is carried and
    :func:`record_aliases` re-points them). Returns the number of fingerprints aliased."""
    cur.execute("""SELECT p.fingerprint, p.template, p.severity, p.sample,
                          (extract(epoch FROM p.first_seen) * 1000000)::bigint,
                          (extract(epoch FROM p.last_seen) * 1000000)::bigint
                   FROM log_pattern p
                   WHERE p.tenant_id = %s AND p.sample IS NOT NULL
                     AND NOT EXISTS (SELECT 1 FROM log_pattern_alias a
                                     WHERE a.tenant_id = p.tenant_id AND a.old_fingerprint = p.fingerprint)
                   ORDER BY p.fingerprint""", (tenant_id,))
    rows = cur.fetchall()
    if not rows:
        return 0
    mined = miner.fingerprint_batch([sample for _, template, _, sample, _, _ in rows if template != OTHER_TEMPLATE])
    new_fps = iter(mined)
    aliases: dict[str, str] = {}
    merged: dict[str, PatternEntry] = {}
    for old, template, severity, sample, first_us, last_us in rows:
        new = miner.other if template == OTHER_TEMPLATE else next(new_fps)
        if new == old:
            continue
        aliases[old] = new
        entry = PatternEntry(new, OTHER_TEMPLATE if new == miner.other else miner.template(new),
                             severity, first_us, last_us, sample)
        seen = merged.get(new)
        if seen is not None:  # several old patterns behind one new: one row (upsert_patterns' rules)
            earliest = min(seen, entry, key=lambda e: (e.first_seen_us, e.sample))
            entry = PatternEntry(new, entry.template, most_severe(seen.severity, severity),
                                 min(seen.first_seen_us, first_us), max(seen.last_seen_us, last_us), earliest.sample)
        merged[new] = entry
    upsert_patterns(cur, tenant_id, list(merged.values()))
    miner.add_aliases(aliases)
    return len(aliases)


def save_miner(cur: Any, tenant_id: int, miner: PatternMiner) -> None:
    """Store the state; an unchanged state (a rerun of a known window) is not rewritten."""
    cur.execute(
        """INSERT INTO log_miner_state (tenant_id, config_version, state, updated_at)
           VALUES (%s, %s, %s, now())
           ON CONFLICT (tenant_id) DO UPDATE SET config_version = EXCLUDED.config_version,
             state = EXCLUDED.state, updated_at = EXCLUDED.updated_at
           WHERE (log_miner_state.config_version, log_miner_state.state)
                 IS DISTINCT FROM (EXCLUDED.config_version, EXCLUDED.state)""",
        (tenant_id, miner.version, miner.to_bytes()),
    )


@dataclass(frozen=True)
class PatternEntry:
    fingerprint: str
    template: str
    severity: str | None
    first_seen_us: int
    last_seen_us: int
    sample: str


_LEVEL_ARRAY = "ARRAY[" + ", ".join(f"'{name}'" for name in LEVELS) + "]::text[]"


def upsert_patterns(cur: Any, tenant_id: int, entries: list[PatternEntry]) -> None:
    """Insert or widen ``log_pattern`` rows: template refreshed, most severe level kept, first/last
    seen widened, and the sample of the earliest line kept.

    The sample is a function of the data alone, whatever order windows run in: each window offers its
    earliest line of the pattern (:func:`window._samples`: at its first timestamp, the smallest
    text), and the row keeps the offer with the earliest ``first_seen``, ties going to the smaller
    text (byte order). Keeping the first stored sample instead made the sample depend on which
    window happened to run first (a backfill, a clear, catch-up in any order)."""
    if not entries:
        return
    rows = [(tenant_id, e.fingerprint, e.template, e.severity, e.first_seen_us, e.last_seen_us, e.sample)
            for e in sorted(entries, key=lambda e: e.fingerprint)]  # fixed order: no deadlocks between windows
    execute_values(cur, f"""
        INSERT INTO log_pattern AS p (tenant_id, fingerprint, template, severity, first_seen, last_seen, sample)
        SELECT v.tenant_id, v.fp, v.template, v.severity,
               timestamptz 'epoch' + v.first_us * interval '1 microsecond',
               timestamptz 'epoch' + v.last_us * interval '1 microsecond', v.sample
        FROM (VALUES %s) AS v(tenant_id, fp, template, severity, first_us, last_us, sample)
        ON CONFLICT (tenant_id, fingerprint) DO UPDATE SET
          template = EXCLUDED.template,
          severity = CASE WHEN coalesce(array_position({_LEVEL_ARRAY}, EXCLUDED.severity), 0)
                               > coalesce(array_position({_LEVEL_ARRAY}, p.severity), 0)
                          THEN EXCLUDED.severity ELSE p.severity END,
          first_seen = least(p.first_seen, EXCLUDED.first_seen),
          last_seen = greatest(p.last_seen, EXCLUDED.last_seen),
          sample = CASE WHEN p.sample IS NULL OR p.first_seen IS NULL THEN coalesce(EXCLUDED.sample, p.sample)
                        WHEN EXCLUDED.sample IS NULL THEN p.sample
                        WHEN EXCLUDED.first_seen < p.first_seen THEN EXCLUDED.sample
                        WHEN EXCLUDED.first_seen = p.first_seen
                             AND EXCLUDED.sample COLLATE "C" < p.sample COLLATE "C" THEN EXCLUDED.sample
                        ELSE p.sample END
    """, rows, template="(%s::bigint, %s, %s, %s, %s::bigint, %s::bigint, %s)")  # noqa: S608 - constant levels


def record_aliases(cur: Any, tenant_id: int, aliases: Mapping[str, str]) -> int:
    """Store old -> new fingerprints and re-point older aliases, so one lookup reaches the current one."""
    for old, new in sorted(aliases.items()):
        cur.execute(
            """INSERT INTO log_pattern_alias (tenant_id, old_fingerprint, new_fingerprint)
               VALUES (%s, %s, %s)
               ON CONFLICT (tenant_id, old_fingerprint) DO UPDATE SET new_fingerprint = EXCLUDED.new_fingerprint,
                 created_at = now()""",
            (tenant_id, old, new),
        )
        cur.execute(
            """UPDATE log_pattern_alias SET new_fingerprint = %s
               WHERE tenant_id = %s AND new_fingerprint = %s""",
            (new, tenant_id, old),
        )
        # a fingerprint that became current again is no longer an alias of anything
        cur.execute("DELETE FROM log_pattern_alias WHERE tenant_id = %s AND old_fingerprint = %s",
                    (tenant_id, new))
    return len(aliases)
