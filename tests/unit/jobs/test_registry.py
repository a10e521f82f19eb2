"""The job registry: one entry per job name, and source credentials resolved only where a job reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_obs_provider.engine.config import JOB_GRAIN, parse_config
from airflow_obs_provider.engine.job_names import JOB_NAMES, OO_AGG, TOPO_ANSIBLE, TOPO_IAC
from airflow_obs_provider.jobs.registry import JOBS, job


def test_every_job_name_has_one_entry_with_its_grain() -> None:
    assert tuple(JOBS) == JOB_NAMES
    assert all(job(name).name == name and job(name).grain == JOB_GRAIN[name] for name in JOB_NAMES)
    with pytest.raises(ValueError, match="unknown job 'nope'"):
        job("nope")


@pytest.mark.parametrize(("state", "aws", "expected"), [
    ("s3://states/prod.tfstate", "aws_default", True),
    ("s3://states/prod.tfstate", None, False),  # no Amazon connection: nothing to resolve
    ("states/prod.tfstate", "aws_default", False),  # a local state needs no credentials
])
def test_topology_resolves_aws_only_for_states_on_s3(tmp_path: Path, state: str, aws: str | None,
                                                     expected: bool) -> None:
    cfg = parse_config({"tenants": [{"code": "a", "terraform": {"states": [state]}}]}, base_dir=tmp_path)
    ids = {"aws_conn_id": aws}
    assert job(TOPO_IAC).needs_secrets(cfg, "a", ids) is expected
    assert job(TOPO_ANSIBLE).needs_secrets(cfg, "a", ids) is False
    assert job(OO_AGG).needs_secrets(cfg, "a", {}) is True  # empty secrets rather than the worker's environment
