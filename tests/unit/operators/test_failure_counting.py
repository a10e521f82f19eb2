"""A failing window is counted in Stats (``obs_etl.<job>.failures``) and its error still propagates;
a window that succeeds is not counted. Through Airflow's real StatsD client, in a fresh interpreter
(Airflow reads its metrics settings once), to a UDP listener on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.statsd_listener import StatsdListener

SCRIPT = """
from airflow_obs_provider.operators.base import counting_failures
from airflow_obs_provider.version_compat import Stats

try:  # what Airflow 3's task runner does when a task process starts
    from airflow.sdk.observability.metrics import stats_utils
    try:  # 3.3+
        Stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=True)
    except TypeError:  # 3.2
        Stats.initialize(factory=stats_utils.get_stats_factory(Stats))
except ImportError:  # Airflow 2 sets Stats up from its configuration on first use
    pass

try:
    with counting_failures("oo-agg", "acme"):
        raise ValueError("corrupt file")
except ValueError as exc:
    print("propagated:", exc)
with counting_failures("age-refresh", "acme"):
    pass
"""


def test_a_failed_window_is_counted_and_raised_a_successful_one_is_not(tmp_path: Path) -> None:
    listener = StatsdListener()
    try:
        env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__METRICS__STATSD_ON": "True",
               "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1", "AIRFLOW__METRICS__STATSD_PORT": str(listener.port),
               "AIRFLOW__METRICS__STATSD_PREFIX": "airflow"}
        out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        assert "propagated: corrupt file" in out.stdout
        failures = listener.wait_for("obs_etl.oo_agg.failures", timeout=30)
        assert [(m.kind, m.value) for m in failures] == [("c", 1.0)]
        assert listener.matching("obs_etl.age_refresh.failures") == []
    finally:
        listener.stop()
