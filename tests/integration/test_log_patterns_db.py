"""log_pattern / log_pattern_5m / aliases / miner state through the real window transaction."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import psycopg2
import pyarrow as pa
import pytest

from airflow_obs_provider.devkit.corpora import generate_style
from airflow_obs_provider.engine.aggregate.urn import UrnMapping
from airflow_obs_provider.engine.ledger import run_window
from airflow_obs_provider.engine.log_mining.window import write_window_patterns
from airflow_obs_provider.engine.window import Window, to_us
from airflow_obs_provider.patterns import PatternMiner

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
MAPPING = UrnMapping.from_config(None)


def _stream(lines: list[str], services: list[str], severities: list[object], start: datetime,
            step_us: int = 1_000_000) -> pa.Table:
    base = to_us(start)
    return pa.table({
        "_timestamp": pa.array([base + i * step_us for i in range(len(lines))], pa.int64()),
        "service_name": pa.array(services, pa.string()),
        "body": pa.array(lines, pa.string()),
        "severity": pa.array([None if s is None else str(s) for s in severities], pa.string()),
    })


def _run(pg_url: str, window: Window, streams: list[tuple[str, pa.Table]], config: dict | None = None,
         tenant: str = "default", job: str = "log-patterns-test"):
    def body(tx):
        tx.rows_out = write_window_patterns(tx, streams, window.start_us, window.end_us, mapping=MAPPING,
                                            config=config)
    return run_window(job, tenant, window, body, pg_url=pg_url, configured_tenants=(tenant,))


def _query(pg_url: str, sql: str, params: tuple = ()) -> list[tuple]:
    conn = psycopg2.connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


def _window(minutes_from: int, minutes_to: int) -> Window:
    return Window(T0 + timedelta(minutes=minutes_from), T0 + timedelta(minutes=minutes_to))


def test_counts_sum_to_records_per_bucket_and_resource(pg_url: str) -> None:
    rows = generate_style("openssh", 700, seed=3) + generate_style("hdfs", 500, seed=3)
    lines = [r.line for r in rows]
    services = ["Auth" if i % 3 else "storage" for i in range(len(lines))]
    severities: list[object] = [[None, "INFO", "17", "error", 9, "WARN"][i % 6] for i in range(len(lines))]
    # 1200 records one second apart starting at T0: they span buckets 10:00..10:20, window holds 10:00-10:15
    table = _stream(lines, services, severities, T0)
    window = _window(0, 15)
    result = _run(pg_url, window, [("ssh", table.slice(0, 600)), ("hdfs", table.slice(600))])
    assert result.status == "success"

    expected: Counter = Counter()
    expected_err: Counter = Counter()
    for i, (svc, sev) in enumerate(zip(services, severities, strict=True)):
        ts = T0 + timedelta(seconds=i)
        if ts >= window.end:
            continue
        key = (T0 + timedelta(minutes=5 * ((ts - T0).seconds // 300)), f"urn:svc:{svc.lower()}")
        expected[key] += 1
        # without a severity the message decides: here only the Java exception lines are errors
        error = str(sev).lower() in ("17", "error") if sev is not None else "Exception" in lines[i]
        expected_err[key] += 1 if error else 0
    got = _query(pg_url, """SELECT p.bucket, r.urn, sum(p.count), sum(p.count_error) FROM log_pattern_5m p
                            JOIN dim_resource r ON r.id = p.resource_id GROUP BY 1, 2""")
    assert {(b, u): c for b, u, c, _ in got} == dict(expected)
    assert {(b, u): e for b, u, _, e in got} == {k: expected_err[k] for k in expected}
    # every row points at a locator-less stream here (no oo_locator rows were written by this test)
    fps = _query(pg_url, "SELECT DISTINCT fingerprint FROM log_pattern_5m")
    templates = dict(_query(pg_url, "SELECT fingerprint, template FROM log_pattern"))
    assert {fp for (fp,) in fps} <= set(templates)
    assert any(t.startswith("Invalid user <*> from <IP>") for t in templates.values()), templates.values()


def test_rerun_of_a_window_gives_identical_rows(pg_url: str) -> None:
    lines = [r.line for r in generate_style("linux", 300, seed=5)]
    table = _stream(lines, ["kernel"] * len(lines), [None] * len(lines), T0 + timedelta(hours=1))
    window = Window(T0 + timedelta(hours=1), T0 + timedelta(hours=1, minutes=5))
    snapshot = "SELECT bucket, resource_id, fingerprint, count, count_error FROM log_pattern_5m " \
               "WHERE bucket >= %s AND bucket < %s ORDER BY 1, 2, 3"
    others = ["SELECT * FROM log_pattern ORDER BY tenant_id, fingerprint",
              "SELECT * FROM log_pattern_alias ORDER BY tenant_id, old_fingerprint",
              "SELECT * FROM log_miner_state ORDER BY tenant_id"]
    assert _run(pg_url, window, [("syslog", table)]).status == "success"
    first = _query(pg_url, snapshot, (window.start, window.end))
    first_others = [_query(pg_url, q) for q in others]
    assert _run(pg_url, window, [("syslog", table)]).status == "success"
    assert _query(pg_url, snapshot, (window.start, window.end)) == first
    # the dictionary, the aliases and the miner state (bytes and updated_at) are untouched too
    assert [_query(pg_url, q) for q in others] == first_others
    assert sum(r[3] for r in first) == 300


def test_generalised_template_aliases_old_fingerprints(pg_url: str) -> None:
    tenant = "alias_tenant"
    w1 = Window(T0 + timedelta(hours=2), T0 + timedelta(hours=2, minutes=5))
    w2 = Window(T0 + timedelta(hours=2, minutes=5), T0 + timedelta(hours=2, minutes=10))
    first = ["session closed for user root", "session closed for user news"] * 5
    second = ["session closed for user cyrus", "session closed for user test"] * 5
    _run(pg_url, w1, [("s", _stream(first, ["sshd"] * 10, [None] * 10, w1.start))], tenant=tenant)
    old = {fp for (fp,) in _query(pg_url, "SELECT DISTINCT fingerprint FROM log_pattern_5m p JOIN dim_tenant t "
                                          "ON t.id = p.tenant_id WHERE t.code = %s", (tenant,))}
    assert len(old) == 2, "two user names are still constants"
    _run(pg_url, w2, [("s", _stream(second, ["sshd"] * 10, [None] * 10, w2.start))], tenant=tenant)
    new = {fp for (fp,) in _query(pg_url, "SELECT DISTINCT fingerprint FROM log_pattern_5m WHERE bucket = %s",
                                  (w2.start,))}
    assert len(new) == 1
    aliases = dict(_query(pg_url, "SELECT old_fingerprint, new_fingerprint FROM log_pattern_alias a "
                                  "JOIN dim_tenant t ON t.id = a.tenant_id WHERE t.code = %s", (tenant,)))
    assert aliases == {fp: next(iter(new)) for fp in old}
    joined = _query(pg_url, """SELECT coalesce(a.new_fingerprint, p.fingerprint), sum(p.count)
                               FROM log_pattern_5m p JOIN dim_tenant t ON t.id = p.tenant_id AND t.code = %s
                               LEFT JOIN log_pattern_alias a ON a.tenant_id = p.tenant_id
                                    AND a.old_fingerprint = p.fingerprint GROUP BY 1""", (tenant,))
    assert joined == [(next(iter(new)), 20)]
    template = _query(pg_url, "SELECT template FROM log_pattern l JOIN dim_tenant t ON t.id = l.tenant_id "
                              "WHERE t.code = %s AND fingerprint = %s", (tenant, next(iter(new))))
    assert template == [("session closed for user <*>",)]


def test_a_new_miner_configuration_aliases_the_stored_patterns(pg_url: str) -> None:
    """A configuration change (here a tenant override; an ALGORITHM_VERSION bump alike) starts a new
    miner whose fingerprints differ: every stored pattern is aliased to the one its sample gets now,
    that pattern's row keeps the old first seen, and the same lines land on it in the next window."""
    tenant = "lineage_tenant"
    w1 = Window(T0 + timedelta(hours=2, minutes=30), T0 + timedelta(hours=2, minutes=35))
    w2 = Window(T0 + timedelta(hours=2, minutes=35), T0 + timedelta(hours=2, minutes=40))
    lines = [r.line for r in generate_style("openssh", 200, seed=21)]
    by_tenant = " JOIN dim_tenant t ON t.id = {0}.tenant_id WHERE t.code = %s"
    _run(pg_url, w1, [("ssh", _stream(lines, ["sshd"] * 200, [None] * 200, w1.start))], tenant=tenant)
    old = dict(_query(pg_url, "SELECT fingerprint, first_seen FROM log_pattern p" + by_tenant.format("p"), (tenant,)))
    assert old and not _query(pg_url, "SELECT 1 FROM log_pattern_alias a" + by_tenant.format("a"), (tenant,))

    override = {"sim_th": 0.45}
    assert _run(pg_url, w2, [("ssh", _stream(lines, ["sshd"] * 200, [None] * 200, w2.start))],
                config=override, tenant=tenant).status == "success"
    aliases = dict(_query(pg_url, "SELECT old_fingerprint, new_fingerprint FROM log_pattern_alias a"
                          + by_tenant.format("a"), (tenant,)))
    # (the new miner's own generalisations while it mined the samples and the window alias too)
    assert set(old) <= set(aliases), "every stored pattern has a successor"
    patterns = dict(_query(pg_url, "SELECT fingerprint, first_seen FROM log_pattern p" + by_tenant.format("p"),
                           (tenant,)))
    for fp in old:  # the new pattern exists, and its lineage (rows aliased to it) keeps the old first seen
        lineage = [row for row in patterns if aliases.get(row) == aliases[fp] and row not in old]
        assert aliases[fp] in patterns and min(patterns[row] for row in [aliases[fp], *lineage]) <= old[fp]
    w2_fps = {fp for (fp,) in _query(pg_url, "SELECT DISTINCT fingerprint FROM log_pattern_5m p"
                                     + by_tenant.format("p") + " AND bucket = %s", (tenant, w2.start))}
    assert {aliases[fp] for fp in old} == w2_fps and not w2_fps & set(old)
    (version,), = _query(pg_url, "SELECT config_version FROM log_miner_state s" + by_tenant.format("s"), (tenant,))
    assert version == PatternMiner(override).version


def test_miner_state_is_saved_and_reloads(pg_url: str) -> None:
    tenant = "state_tenant"
    w = Window(T0 + timedelta(hours=3), T0 + timedelta(hours=3, minutes=5))
    lines = [r.line for r in generate_style("spark", 200, seed=9)]
    _run(pg_url, w, [("spark", _stream(lines, ["exec"] * 200, ["INFO"] * 200, w.start))], tenant=tenant)
    (version, blob), = _query(pg_url, "SELECT config_version, state FROM log_miner_state s JOIN dim_tenant t "
                                      "ON t.id = s.tenant_id WHERE t.code = %s", (tenant,))
    miner = PatternMiner.from_bytes(bytes(blob))
    assert miner.version == version
    stored = {fp for (fp,) in _query(pg_url, "SELECT DISTINCT fingerprint FROM log_pattern_5m WHERE bucket = %s",
                                     (w.start,))}
    assert set(miner.fingerprint_batch(lines)) == stored


def test_pattern_cap_folds_overflow_into_other(pg_url: str) -> None:
    tenant = "cap_tenant"
    w = Window(T0 + timedelta(hours=4), T0 + timedelta(hours=4, minutes=5))
    lines = [r.line for r in generate_style("linux", 280, seed=2)]
    result = _run(pg_url, w, [("s", _stream(lines, ["box"] * 280, [None] * 280, w.start))],
                  config={"max_patterns_per_resource": 4}, tenant=tenant)
    assert result.status == "success"
    rows = _query(pg_url, """SELECT l.template, p.count FROM log_pattern_5m p
                             JOIN log_pattern l USING (tenant_id, fingerprint)
                             JOIN dim_tenant t ON t.id = p.tenant_id WHERE t.code = %s""", (tenant,))
    assert len(rows) == 4
    assert "<other>" in {t for t, _ in rows}
    assert sum(c for _, c in rows) == 280


def test_bad_tenant_override_fails_and_leaves_tables_unchanged(pg_url: str) -> None:
    before = _query(pg_url, "SELECT count(*) FROM log_pattern_5m")[0][0], \
        _query(pg_url, "SELECT count(*) FROM log_pattern")[0][0]
    w = Window(T0 + timedelta(hours=5), T0 + timedelta(hours=5, minutes=5))
    table = _stream(["hello 1"], ["svc"], [None], w.start)
    with pytest.raises(ValueError, match="sim_th"):
        _run(pg_url, w, [("s", table)], config={"sim_th": "high"})
    after = _query(pg_url, "SELECT count(*) FROM log_pattern_5m")[0][0], \
        _query(pg_url, "SELECT count(*) FROM log_pattern")[0][0]
    assert after == before


def test_two_windows_of_one_tenant_at_once_both_land_in_the_state(pg_url: str) -> None:
    tenant = "concurrent_tenant"
    windows = [Window(T0 + timedelta(hours=6, minutes=5 * i), T0 + timedelta(hours=6, minutes=5 * (i + 1)))
               for i in range(2)]
    styles = ["zookeeper", "proxifier"]
    inputs = [[r.line for r in generate_style(s, 300, seed=4)] for s in styles]
    results: list = [None, None]

    def go(i: int) -> None:
        table = _stream(inputs[i], ["zk"] * 300, [None] * 300, windows[i].start)
        results[i] = _run(pg_url, windows[i], [("s", table)], tenant=tenant)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [r.status for r in results] == ["success", "success"]
    (blob,), = _query(pg_url, "SELECT state FROM log_miner_state s JOIN dim_tenant t ON t.id = s.tenant_id "
                              "WHERE t.code = %s", (tenant,))
    miner = PatternMiner.from_bytes(bytes(blob))
    stored = {fp for (fp,) in _query(pg_url, "SELECT DISTINCT p.fingerprint FROM log_pattern_5m p JOIN dim_tenant t "
                                             "ON t.id = p.tenant_id WHERE t.code = %s", (tenant,))}
    # neither window's save overwrote the other's: the saved miner knows every stored pattern
    assert stored <= set(miner.templates())


def test_secrets_never_reach_templates_or_samples(pg_url: str) -> None:
    w = Window(T0 + timedelta(hours=7), T0 + timedelta(hours=7, minutes=5))
    lines = [f"login attempt user=bob password=Hunter{i}x token=abc{i}def from 10.0.0.{i}" for i in range(20)]
    _run(pg_url, w, [("s", _stream(lines, ["auth"] * 20, ["WARN"] * 20, w.start))])
    rows = _query(pg_url, "SELECT template, sample, severity FROM log_pattern WHERE sample LIKE 'login attempt%%'")
    assert rows
    for template, sample, severity in rows:
        assert "Hunter" not in template + sample and "abc" not in template + sample
        assert "<SECRET>" in sample and severity == "WARN"


def test_an_aws_secret_beside_its_key_id_never_reaches_templates_or_samples(pg_url: str) -> None:
    w = Window(T0 + timedelta(hours=8), T0 + timedelta(hours=8, minutes=5))
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    lines = [f"uploader creds AKIAIOSFODNN7EXAMPL{i % 10} {secret} bucket b{i}" for i in range(20)]
    _run(pg_url, w, [("s", _stream(lines, ["uploader"] * 20, ["INFO"] * 20, w.start))])
    rows = _query(pg_url, "SELECT template, sample FROM log_pattern WHERE sample LIKE 'uploader creds%%'")
    assert rows
    for template, sample in rows:
        assert "wJalrXUtnFEMI" not in template + sample and "AKIAIOSFODNN7" not in template + sample
        assert "<AWS_KEY> <SECRET>" in sample


def test_the_sample_is_the_earliest_line_and_masked_whichever_window_runs_first(pg_url: str) -> None:
    tenant = "sample-order"
    early, late = _window(60, 65), _window(65, 70)
    early_lines = ["job 17 took 3 ms password=EarlyPw1", "job 18 took 4 ms password=EarlyPw2"]
    late_lines = ["job 99 took 8 ms password=LatePw1", "job 98 took 9 ms password=LatePw2"]
    _run(pg_url, late, [("s", _stream(late_lines, ["batch"] * 2, ["INFO"] * 2, late.start))], tenant=tenant)
    _run(pg_url, early, [("s", _stream(early_lines, ["batch"] * 2, ["INFO"] * 2, early.start))], tenant=tenant)
    (row,) = _query(pg_url, "SELECT sample, first_seen, last_seen, template FROM log_pattern l JOIN dim_tenant t "
                            "ON t.id = l.tenant_id WHERE t.code = %s", (tenant,))
    assert row[:3] == ("job 17 took 3 ms password=<SECRET>", early.start, late.start + timedelta(seconds=1))
    assert "Pw" not in row[3]
