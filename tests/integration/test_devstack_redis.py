"""``scripts/devstack``'s redis service, run privately (own state dir and port, never the shared stack's)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from support.airflow_stack import free_port

pytestmark = pytest.mark.integration

DEVSTACK = Path(__file__).resolve().parents[2] / "scripts" / "devstack"


def devstack(state_dir: Path, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update({"OBS_STATE_DIR": str(state_dir), "OBS_REDIS_PORT": str(port), "OBS_PYTHON": sys.executable})
    return subprocess.run(["bash", str(DEVSTACK), *args], env=env, capture_output=True, text=True, timeout=600)


def exported_redis_url(state_dir: Path) -> str | None:
    env_file = state_dir / "env"
    found = re.search(r"^export REDIS_URL=(\S+)$", env_file.read_text(), re.M) if env_file.exists() else None
    return found.group(1) if found else None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    state_dir, port = tmp_path / "state", free_port()
    try:
        yield state_dir, port
    finally:
        devstack(state_dir, port, "stop", "redis")


def test_redis_starts_without_persistence_exports_its_url_and_stops(private_redis: tuple[Path, int]) -> None:
    state_dir, port = private_redis
    started = devstack(state_dir, port, "start", "redis")
    assert started.returncode == 0, started.stderr
    url = exported_redis_url(state_dir)
    assert url == f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    assert client.ping()
    assert client.config_get("save") == {"save": ""} and client.config_get("appendonly") == {"appendonly": "no"}
    assert client.config_get("bind") == {"bind": "127.0.0.1"}
    assert f"redis: up on 127.0.0.1:{port}" in devstack(state_dir, port, "status").stdout

    again = devstack(state_dir, port, "start", "redis")  # a second start keeps the running server
    assert again.returncode == 0 and "already running" in again.stderr, again.stderr
    assert client.ping()

    stopped = devstack(state_dir, port, "stop", "redis")
    assert stopped.returncode == 0, stopped.stderr
    assert "redis: down" in devstack(state_dir, port, "status").stdout
    assert exported_redis_url(state_dir) is None
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()


def test_a_second_state_dir_on_a_taken_port_fails_and_leaves_the_other_server_alone(
        private_redis: tuple[Path, int], tmp_path: Path) -> None:
    state_dir, port = private_redis
    assert devstack(state_dir, port, "start", "redis").returncode == 0
    other = tmp_path / "other-state"
    try:
        clash = devstack(other, port, "start", "redis")
        assert clash.returncode != 0, clash.stderr
        assert "another Redis (not this state dir's) answers" in clash.stderr, clash.stderr
        assert exported_redis_url(other) is None
        assert "redis: down" in devstack(other, port, "status").stdout
    finally:
        devstack(other, port, "stop", "redis")
    assert redis.Redis.from_url(f"redis://127.0.0.1:{port}/0").ping()  # the first server is untouched


def test_start_fails_with_the_log_when_the_port_is_taken_by_another_program(private_redis: tuple[Path, int]) -> None:
    state_dir, _ = private_redis
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        clash = devstack(state_dir, port, "start", "redis")
        devstack(state_dir, port, "stop", "redis")
    assert clash.returncode != 0, clash.stderr
    assert "Redis did not start" in clash.stderr and "Address already in use" in clash.stderr, clash.stderr
    assert exported_redis_url(state_dir) is None
