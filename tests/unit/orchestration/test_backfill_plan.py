"""Backfill conf validation and aligned window planning (no database needed)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from airflow_obs_provider.engine.config import parse_config
from airflow_obs_provider.orchestration.backfill import (
    BackfillRequestError,
    PlannedWindow,
    parse_request,
    plan_windows,
)

CFG = parse_config({
    "tenants": [{"code": "acme", "source": {"kind": "local", "path": "d"}}],
    "jobs": {"oo-agg": {"delay": "2m"}, "topo-iac": {"interval": "15m", "align": "15m"}},
})


def conf(**kw: object) -> dict[str, object]:
    return {"job": "oo-agg", "tenant": "acme", "from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:10:00Z", **kw}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"job": "oo-magic"}, "conf.job 'oo-magic' is unknown"),
        ({"tenant": "globex"}, "conf.tenant"),
        ({"from": "yesterday"}, "conf.from 'yesterday' is not an ISO-8601 time"),
        ({"to": "2026-13-01T00:00:00Z"}, "conf.to"),
        ({"to": "2026-01-01T00:00:00Z"}, "must be before conf.to"),
        ({"to": "2025-12-31T00:00:00Z"}, "must be before conf.to"),
        ({"job": ""}, "conf is missing job"),
        ({"reprocess": "maybe"}, "conf.reprocess must be true or false"),
    ],
)
def test_bad_conf_is_rejected_naming_the_field(bad: dict[str, object], message: str) -> None:
    with pytest.raises(BackfillRequestError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_request(conf(**bad), CFG)


def test_missing_keys_are_all_named() -> None:
    with pytest.raises(BackfillRequestError, match="missing job, tenant, from, to"):
        parse_request({}, CFG)


def test_range_splits_into_aligned_minute_windows_with_eligibility() -> None:
    request = parse_request(conf(to="2026-01-01T00:05:00Z", reprocess="true"), CFG)
    assert request.reprocess is True
    planned = plan_windows(request, CFG)
    assert [p.start for p in planned] == [f"2026-01-01T00:0{i}:00+00:00" for i in range(5)]
    for p in planned:
        w = p.window
        assert w.end - w.start == timedelta(minutes=1)
        assert w.is_aligned(timedelta(minutes=1))
        assert datetime.fromisoformat(p.eligible_at) == w.end + timedelta(minutes=2)
    assert PlannedWindow.from_dict(planned[0].as_dict()) == planned[0]


def test_unaligned_bounds_are_floored_to_the_job_window() -> None:
    request = parse_request(conf(job="topo-iac", **{"from": "2026-01-01T00:07:00Z", "to": "2026-01-01T01:01:00Z"}),
                            CFG)
    planned = plan_windows(request, CFG)
    assert [(p.window.start.minute, p.window.end.minute) for p in planned] == [(0, 15), (15, 30), (30, 45), (45, 0)]


def test_a_range_without_a_whole_window_is_an_error() -> None:
    request = parse_request(conf(job="topo-iac", **{"from": "2026-01-01T00:01:00Z", "to": "2026-01-01T00:14:00Z"}),
                            CFG)
    with pytest.raises(BackfillRequestError, match="holds no whole 0:15:00 window"):
        plan_windows(request, CFG)


def test_too_many_windows_is_an_error() -> None:
    day = parse_request(conf(to="2026-01-02T00:00:00Z"), CFG)
    with pytest.raises(BackfillRequestError, match="1440 windows of 0:01:00 is too many .*at most 1024"):
        plan_windows(day, CFG)
    assert len(plan_windows(day, CFG, max_windows=1440)) == 1440


def test_reprocess_force_reruns_and_allows_a_shrink_through_the_planned_windows() -> None:
    forced = parse_request(conf(reprocess="force"), CFG)
    assert (forced.reprocess, forced.allow_shrink) == (True, True)
    planned = plan_windows(forced, CFG)
    assert all(p.allow_shrink for p in planned)
    assert PlannedWindow.from_dict(planned[0].as_dict()) == planned[0]  # survives XCom
    plain = parse_request(conf(reprocess=True), CFG)
    assert (plain.reprocess, plain.allow_shrink) == (True, False)
    assert not any(p.allow_shrink for p in plan_windows(plain, CFG))


def test_windows_are_batched_in_order_and_a_batch_survives_xcom() -> None:
    from airflow_obs_provider.orchestration.backfill import PlannedBatch, batch_windows

    planned = plan_windows(parse_request(conf(to="2026-01-01T01:10:00Z"), CFG), CFG)
    batches = batch_windows(planned, 30)
    assert [len(b.windows) for b in batches] == [30, 30, 10]
    assert [w for b in batches for w in b.windows] == planned  # every window once, in order
    raw = batches[1].as_dict()
    assert (raw["start"], raw["end"]) == ("2026-01-01T00:30:00+00:00", "2026-01-01T01:00:00+00:00")
    assert PlannedBatch.from_dict(raw) == batches[1]
    assert batch_windows([], 30) == []
