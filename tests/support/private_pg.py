"""A private Postgres cluster (``scripts/devstack`` with its own port and state folder) that a test may stop.

Never the shared dev cluster: tests that stop and start Postgres use one of these.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from support.airflow_stack import free_port, progress

REPO = Path(__file__).resolve().parents[2]
DEVSTACK = REPO / "scripts" / "devstack"


class PrivatePostgres:
    def __init__(self, state_dir: Path, port: int | None = None):
        self.state_dir = state_dir
        self.port = port or free_port()
        self.url: str | None = None

    def _devstack(self, action: str, timeout: float = 600) -> str:
        env = {k: v for k, v in os.environ.items() if k != "PG_URL"}
        env.update({"OBS_PG_PORT": str(self.port), "OBS_STATE_DIR": str(self.state_dir),
                    "OBS_DEVSTACK_OWN_PG": "1", "OBS_PYTHON": sys.executable})
        out = subprocess.run(["bash", str(DEVSTACK), action, "pg"], env=env, capture_output=True, text=True,
                             timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"devstack {action} pg (port {self.port}) failed rc={out.returncode}:\n"
                               f"{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
        return out.stdout

    def start(self) -> str:
        progress(f"private Postgres: starting on 127.0.0.1:{self.port}")
        self._devstack("start")
        env_file = self.state_dir / "pg.env"
        match = re.search(r"export PG_URL=(\S+)", env_file.read_text()) if env_file.exists() else None
        if not match:
            raise RuntimeError(f"devstack did not write PG_URL to {env_file}")
        self.url = match.group(1)
        if f":{self.port}/" not in self.url:
            raise RuntimeError(f"devstack started {self.url}, not a private cluster on port {self.port}")
        return self.url

    def stop(self) -> None:
        progress(f"private Postgres: stopping 127.0.0.1:{self.port}")
        self._devstack("stop")

    def is_up(self) -> bool:
        import psycopg2

        try:
            psycopg2.connect(self.url or "", connect_timeout=3).close()
            return True
        except psycopg2.OperationalError:
            return False
