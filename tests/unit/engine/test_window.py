"""Window maths: durations, ISO times, alignment, eligibility and splitting (design §2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_obs_provider.engine.window import (
    Window,
    WindowError,
    floor_time,
    from_us,
    parse_duration,
    parse_time,
    split_range,
    to_us,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("2m", 120), ("1h30m", 5400), ("7d", 604800), ("1w", 604800), ("250ms", 0.25), ("0", 0),
    (45, 45), (1.5, 1.5), (timedelta(minutes=3), 180),
])
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["5", "m5", "5 minutes", "1h x", "-5m"])
def test_parse_duration_rejects_garbage(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(bad)


def test_parse_time_normalises_to_utc() -> None:
    assert parse_time("2026-01-01T12:00:00Z") == T0
    assert parse_time("2026-01-01T12:00:00") == T0  # naive means UTC
    assert parse_time("2026-01-01T14:00:00+02:00") == T0
    assert parse_time(datetime(2026, 1, 1, 7, tzinfo=timezone(timedelta(hours=-5)))) == T0
    assert parse_time("2026-01-01T14:00:00+02:00").tzinfo == UTC
    with pytest.raises(ValueError, match="invalid ISO timestamp"):
        parse_time("yesterday")


def test_window_is_half_open_and_rejects_empty_or_reversed() -> None:
    w = Window(T0, T0 + MIN)
    assert w.seconds == 60 and str(w) == "[2026-01-01T12:00:00+00:00, 2026-01-01T12:01:00+00:00)"
    with pytest.raises(WindowError, match="trigger timetable"):
        Window(T0, T0)
    with pytest.raises(WindowError):
        Window(T0 + MIN, T0)


def test_from_interval_fails_loudly_without_a_data_interval() -> None:
    with pytest.raises(WindowError, match="data-interval"):
        Window.from_interval(None, T0)
    assert Window.from_interval("2026-01-01T12:00:00Z", "2026-01-01T12:01:00Z") == Window(T0, T0 + MIN)


def test_alignment() -> None:
    assert Window(T0, T0 + 5 * MIN).is_aligned(5 * MIN)
    odd = Window(T0 + MIN, T0 + 6 * MIN)
    assert not odd.is_aligned(5 * MIN)
    with pytest.raises(WindowError, match="not aligned"):
        odd.require_aligned(5 * MIN)
    with pytest.raises(WindowError, match="positive"):
        floor_time(T0, timedelta(0))


def test_eligibility_follows_end_le_floor_now_minus_delay() -> None:
    w = Window(T0, T0 + MIN)
    delay = timedelta(minutes=12)
    assert not w.is_eligible(T0 + MIN + delay - timedelta(microseconds=1), delay, MIN)
    assert w.is_eligible(T0 + MIN + delay, delay, MIN)
    assert w.eligible_at(delay) == T0 + MIN + delay


def test_split_covers_whole_aligned_steps_only() -> None:
    parts = list(split_range(T0 + timedelta(seconds=30), T0 + 3 * MIN + timedelta(seconds=10), MIN))
    assert parts == [Window(T0 + i * MIN, T0 + (i + 1) * MIN) for i in range(3)]
    assert list(Window(T0, T0 + 5 * MIN).split(MIN))[-1] == Window(T0 + 4 * MIN, T0 + 5 * MIN)


instants = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
aligns = st.sampled_from([timedelta(seconds=1), MIN, 5 * MIN, timedelta(hours=1), timedelta(days=1)])


@given(instants)
def test_microsecond_round_trip(ts: datetime) -> None:
    assert from_us(to_us(ts)) == ts


@given(instants, aligns)
def test_floor_is_aligned_and_at_most_one_step_back(ts: datetime, align: timedelta) -> None:
    f = floor_time(ts, align)
    assert f <= ts < f + align
    assert to_us(f) % int(align.total_seconds() * 1_000_000) == 0
    assert floor_time(f, align) == f


@given(instants, instants, aligns)
def test_split_tiles_the_range_without_gaps(a: datetime, b: datetime, step: timedelta) -> None:
    start, end = min(a, b), max(a, b)
    if (end - start) / step > 500:
        end = start + 500 * step
    parts = list(split_range(start, end, step))
    for left, right in zip(parts, parts[1:], strict=False):
        assert left.end == right.start
    if parts:
        assert parts[0].start == floor_time(start, step) and parts[-1].end == floor_time(end, step)
        assert all(p.end - p.start == step for p in parts)


@given(instants, st.sampled_from([MIN, 5 * MIN]), st.sampled_from([timedelta(0), timedelta(minutes=12)]))
def test_eligible_at_is_the_first_eligible_instant(ts: datetime, align: timedelta, delay: timedelta) -> None:
    start = floor_time(ts, align)
    w = Window(start, start + align)
    at = w.eligible_at(delay)
    assert w.is_eligible(at, delay, align)
    assert not w.is_eligible(at - timedelta(microseconds=1), delay, align)
