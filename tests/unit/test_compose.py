"""docker-compose.yaml for users: parsed with PyYAML (no compose plugin here), checked for what `up` needs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def interpolate_defaults(text: str) -> str:
    """What compose does with ${VAR:-default} when VAR is unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text)


def test_services_present(compose: dict) -> None:
    assert set(compose["services"]) == {"postgres", "s3", "openobserve", "airflow-init", *AIRFLOW_SERVICES}


def test_airflow_services_share_one_env_anchor_and_image(compose: dict) -> None:
    services = compose["services"]
    envs = [services[name]["environment"] for name in (*AIRFLOW_SERVICES, "airflow-init")]
    assert all(env is envs[0] for env in envs), "YAML anchors make them one object"
    assert envs[0] is compose["x-airflow-env"]
    assert {services[name]["image"] for name in (*AIRFLOW_SERVICES, "airflow-init")} == {"obs-etl/airflow:local"}
    assert [services[n]["command"] for n in AIRFLOW_SERVICES] == ["api-server", "scheduler", "dag-processor",
                                                                   "triggerer"]


def test_airflow_runs_local_executor_on_postgres_metadata(compose: dict) -> None:
    env = compose["x-airflow-env"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert interpolate_defaults(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).startswith(
        "postgresql+psycopg2://airflow:airflow@postgres:5432/airflow")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://airflow-apiserver:8080/")


def test_connection_examples_parse(compose: dict) -> None:
    env = compose["x-airflow-env"]
    oo = json.loads(interpolate_defaults(env["AIRFLOW_CONN_OPENOBSERVE_DEFAULT"]))
    assert oo["conn_type"] == "openobserve" and oo["host"] == "openobserve" and oo["extra"]["org"]
    aws = json.loads(interpolate_defaults(env["AIRFLOW_CONN_AWS_DEFAULT"]))
    assert aws["extra"]["endpoint_url"] == "http://s3:8333"
    assert interpolate_defaults(env["AIRFLOW_CONN_OBS_POSTGRES"]).startswith("postgresql://obs:obs@postgres:5432/obs")


def test_builds_point_at_existing_dockerfiles(compose: dict) -> None:
    for name in ("postgres", "airflow-init"):
        build = compose["services"][name]["build"]
        dockerfile = REPO / build["context"] / build["dockerfile"]
        assert dockerfile.is_file(), dockerfile
    pg = (REPO / "docker/postgres/Dockerfile").read_text()
    assert pg.startswith("#") and "FROM debian:trixie-slim" in pg
    for package in ("postgresql-17", "postgresql-17-timescaledb", "postgresql-17-age", "postgresql-17-pgvector"):
        assert re.search(rf"\b{package}\b", pg), package
    assert "shared_preload_libraries = 'timescaledb,age'" in (REPO / "docker/postgres/entrypoint.sh").read_text()
    airflow = (REPO / "docker/airflow/Dockerfile").read_text()
    assert "apache/airflow:3." in airflow and "pip install" in airflow


def test_public_images_and_ports(compose: dict) -> None:
    services = compose["services"]
    assert interpolate_defaults(services["openobserve"]["image"]).startswith("openobserve/openobserve:")
    assert services["s3"]["image"].startswith("chrislusf/seaweedfs:")
    ports = {name: [p.split(":")[-1] for p in svc.get("ports", [])] for name, svc in services.items()}
    assert ports["postgres"] == ["5432"] and ports["s3"] == ["8333"] and ports["openobserve"] == ["5080"]
    assert ports["airflow-apiserver"] == ["8080"]


def test_startup_order(compose: dict) -> None:
    services = compose["services"]
    for name in AIRFLOW_SERVICES:
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["airflow-init"]["condition"] == "service_completed_successfully"
    assert services["airflow-init"]["depends_on"]["s3"]["condition"] == "service_healthy"
    assert "airflow-init" in services["openobserve"]["depends_on"]
    assert "obs-etl bootstrap" in "\n".join(services["airflow-init"]["command"])


def test_named_volumes_are_declared(compose: dict) -> None:
    declared = set(compose["volumes"])
    used = {v.split(":")[0] for svc in compose["services"].values() for v in svc.get("volumes", [])
            if not v.startswith((".", "/"))}
    assert used == declared


def test_seaweedfs_identities_file_is_valid(compose: dict) -> None:
    identities = json.loads((REPO / "docker/seaweedfs/s3.json").read_text())["identities"]
    aws = json.loads(interpolate_defaults(compose["x-airflow-env"]["AIRFLOW_CONN_AWS_DEFAULT"]))
    assert {"accessKey": aws["login"], "secretKey": aws["password"]} in identities[0]["credentials"]
