"""``[core] hostname_callable`` for the Airflow harness: each Celery worker reports the name the harness gave it.

Airflow 3's task supervisor calls the callable (``airflow.sdk.api.client.get_hostname``) when a task
instance starts and on every heartbeat, and stores the result as ``task_instance.hostname``. Two
workers on one machine would otherwise report the same host; ``AirflowStack.start_celery_worker``
sets ``WORKER_HOSTNAME_VAR`` per worker.
"""

from __future__ import annotations

import os

WORKER_HOSTNAME_VAR = "OBS_TEST_WORKER_HOSTNAME"


def worker_hostname() -> str:
    return os.environ[WORKER_HOSTNAME_VAR]
