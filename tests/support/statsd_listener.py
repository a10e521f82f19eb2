"""A UDP listener on loopback that collects StatsD datagrams (``name:value|type[|@rate][|#tags]``)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class StatsdMetric:
    name: str
    value: float
    kind: str  # c (counter), g (gauge), ms (timer), h, s


def parse_datagram(data: bytes) -> list[StatsdMetric]:
    """One datagram may carry several newline-separated metrics."""
    out = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        name, sep, rest = line.partition(":")
        if not sep:
            continue
        parts = rest.split("|")
        if len(parts) < 2:
            continue
        try:
            value = float(parts[0].lstrip("+"))
        except ValueError:
            continue
        out.append(StatsdMetric(name=name, value=value, kind=parts[1]))
    return out


class StatsdListener:
    """Binds a free UDP port on 127.0.0.1 and keeps every metric received until ``stop()``."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = int(self.sock.getsockname()[1])
        self.metrics: list[StatsdMetric] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="statsd-listener", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            got = parse_datagram(data)
            with self._lock:
                self.metrics.extend(got)

    def matching(self, fragment: str) -> list[StatsdMetric]:
        with self._lock:
            return [m for m in self.metrics if fragment in m.name]

    def names(self) -> set[str]:
        with self._lock:
            return {m.name for m in self.metrics}

    def wait_for(self, fragment: str, timeout: float) -> list[StatsdMetric]:
        deadline = time.monotonic() + timeout
        while not (found := self.matching(fragment)):
            if time.monotonic() > deadline:
                names = sorted(n for n in self.names() if "obs_etl" in n)
                raise TimeoutError(f"no StatsD metric containing {fragment!r} within {timeout:.0f}s; "
                                   f"obs_etl metrics seen: {names}")
            time.sleep(0.5)
        return found

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
