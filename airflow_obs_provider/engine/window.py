"""Half-open time windows ``[start, end)`` and their alignment maths."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# How far ahead of this machine's clock a window end or observation time may lie (clocks of the
# scheduler, the workers and Postgres differ a little). Anything later is refused, and ledger or
# state rows later than now + this (written by older versions that accepted any time) never
# block normal runs.
MAX_CLOCK_SKEW = timedelta(minutes=5)


class WindowError(ValueError):
    """A window is missing, empty, reversed or misaligned."""


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse ``"90s"``, ``"2m"``, ``"1h30m"``, ``"7d"`` (or seconds as a number)."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, int | float):
        return timedelta(seconds=text)
    s = text.strip().lower()
    if s in ("0", ""):
        return timedelta(0)
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if pos != len(s):
        raise ValueError(f"invalid duration {text!r}: use e.g. 30s, 5m, 1h, 7d")
    return timedelta(seconds=total)


def parse_time(text: str | datetime) -> datetime:
    """Parse an ISO-8601 timestamp; naive values are taken as UTC."""
    if isinstance(text, datetime):
        dt = text
    else:
        s = text.strip()
        if s.endswith("Z"):
            s = s[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(s)
        except ValueError as exc:
            raise ValueError(f"invalid ISO timestamp {text!r}") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def future_horizon(now: datetime | None = None) -> datetime:
    """The latest time a run may name: now plus :data:`MAX_CLOCK_SKEW`."""
    return (parse_time(now) if now is not None else datetime.now(UTC)) + MAX_CLOCK_SKEW


def require_not_future(at: datetime, what: str, now: datetime | None = None) -> None:
    """Refuse a time beyond now + clock skew: recorded, it would make every later run look older."""
    horizon = future_horizon(now)
    if parse_time(at) > horizon:
        raise WindowError(f"{what} {parse_time(at).isoformat()} is in the future (later than now + "
                          f"{MAX_CLOCK_SKEW} clock skew, {horizon.isoformat(timespec='seconds')}): "
                          "observations and refreshes name a time that has passed")


def floor_time(ts: datetime, align: timedelta) -> datetime:
    """Floor ``ts`` to a multiple of ``align`` since the Unix epoch."""
    if align <= timedelta(0):
        raise WindowError("align must be positive")
    step = int(align.total_seconds() * 1_000_000)
    us = to_us(ts)
    return from_us(us - us % step)


def to_us(ts: datetime) -> int:
    """Microseconds since the epoch (OpenObserve's ``_timestamp`` unit)."""
    delta = parse_time(ts) - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True, order=True)
class Window:
    """A half-open window: a record at ``ts`` belongs to it iff ``start <= ts < end``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", parse_time(self.start))
        object.__setattr__(self, "end", parse_time(self.end))
        if self.end <= self.start:
            raise WindowError(
                f"window end {self.end.isoformat()} must be after its start {self.start.isoformat()}"
                " (a zero-width window usually means a trigger timetable: use a data-interval timetable)"
            )

    @classmethod
    def from_interval(cls, start: datetime | str | None, end: datetime | str | None) -> Window:
        """Build a window from Airflow's ``data_interval_start/end``, failing loudly when absent."""
        if start is None or end is None:
            raise WindowError("data_interval_start/end are missing: this task needs a data-interval run")
        return cls(parse_time(start), parse_time(end))

    @property
    def start_us(self) -> int:
        return to_us(self.start)

    @property
    def end_us(self) -> int:
        return to_us(self.end)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def is_aligned(self, align: timedelta) -> bool:
        return floor_time(self.start, align) == self.start and floor_time(self.end, align) == self.end

    def require_aligned(self, align: timedelta) -> None:
        if not self.is_aligned(align):
            raise WindowError(f"window {self} is not aligned to {align}")

    def is_eligible(self, now: datetime, delay: timedelta, align: timedelta) -> bool:
        """Design §2: eligible once ``end <= floor(now - delay, align)``."""
        return self.end <= floor_time(parse_time(now) - delay, align)

    def eligible_at(self, delay: timedelta) -> datetime:
        """The earliest wall-clock time at which this (aligned) window becomes eligible: then
        ``floor(now - delay, align)`` reaches ``end`` exactly at ``end + delay``, whatever ``align``."""
        return self.end + delay

    def split(self, step: timedelta) -> Iterator[Window]:
        """Aligned sub-windows of width ``step`` covering this window."""
        yield from split_range(self.start, self.end, step)

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


def split_range(start: datetime, end: datetime, step: timedelta) -> Iterator[Window]:
    """Every ``step``-aligned window inside ``[floor(start), floor(end))``."""
    cur = floor_time(parse_time(start), step)
    stop = floor_time(parse_time(end), step)
    while cur < stop:
        yield Window(cur, cur + step)
        cur += step
