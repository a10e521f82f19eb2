"""Every failure path of oo-agg: a clear error, all tables exactly as before, the ledger marked
failed, and a rerun heals (corrupt Parquet, missing object, wrong S3 credential, Postgres
connection lost in the middle of the window transaction)."""

from __future__ import annotations

import shutil
import threading
from dataclasses import replace
from pathlib import Path

import psycopg2
import pytest
from support.oo_agg_db import dump_tables, ledger, write_config

from airflow_obs_provider.devkit.gen import generate
from airflow_obs_provider.engine.config import load_config
from airflow_obs_provider.engine.ledger import run_window
from airflow_obs_provider.engine.oo.source import OOReadError, SourceSecrets
from airflow_obs_provider.engine.oo.storage import Storage, s3_filesystem
from airflow_obs_provider.engine.window import Window, parse_time
from airflow_obs_provider.jobs.oo_agg import JOB, run, window_body

pytestmark = pytest.mark.integration

T0 = parse_time("2024-05-01T10:00:00Z")
FAIL_WINDOW = Window("2024-05-01T10:04:00Z", "2024-05-01T10:05:00Z")  # closes a 5-minute bucket


def _windows() -> list[Window]:
    return [Window(f"2024-05-01T10:0{i}:00Z", f"2024-05-01T10:0{i + 1}:00Z") for i in range(1, 6)]


def _prime(cfg_path: Path, pg_url: str, tenant: str, secrets: SourceSecrets | None = None) -> dict[str, list[str]]:
    cfg = load_config(cfg_path)
    for w in _windows():
        assert run(cfg, tenant, w, pg_url=pg_url, secrets=secrets).status == "success"
    return dump_tables(pg_url)


def _status(pg_url: str, window: Window, tenant: str) -> tuple[str, str | None]:
    for wfrom, wto, status, _attempts, error in ledger(pg_url, tenant=tenant):
        if wfrom == window.start and wto == window.end:
            return status, error
    raise AssertionError("no ledger row")


@pytest.fixture(scope="module")
def local_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("oo_fail")
    generate(Storage.local(root / "oo"), T0, parse_time("2024-05-01T10:08:00Z"), seed=11,
             file_list_url=f"sqlite:///{root / 'file_list.db'}")
    return root


def test_corrupt_parquet_fails_cleanly_and_rerun_heals(local_data: Path, pg_url: str, tmp_path: Path) -> None:
    shutil.copytree(local_data / "oo", tmp_path / "oo")
    cfg_path = write_config(tmp_path, "{kind: local, path: oo, org: default}", tenant="corrupt")
    before = _prime(cfg_path, pg_url, "corrupt")
    victim = sorted((tmp_path / "oo" / "files" / "default" / "metrics").rglob("*.parquet"))[0]
    good = victim.read_bytes()
    victim.write_bytes(b"PAR1 this is not parquet" + good[100:200])
    with pytest.raises(OOReadError) as err:
        run(load_config(cfg_path), "corrupt", FAIL_WINDOW, pg_url=pg_url)
    assert victim.name in str(err.value)
    assert dump_tables(pg_url) == before
    status, error = _status(pg_url, FAIL_WINDOW, "corrupt")
    assert status == "failed" and victim.name in (error or "")
    victim.write_bytes(good)
    assert run(load_config(cfg_path), "corrupt", FAIL_WINDOW, pg_url=pg_url).status == "success"
    assert dump_tables(pg_url) == before


def test_missing_object_named_by_file_list_fails_cleanly(local_data: Path, pg_url: str, tmp_path: Path) -> None:
    shutil.copytree(local_data / "oo", tmp_path / "oo")
    shutil.copy(local_data / "file_list.db", tmp_path / "file_list.db")
    secrets = SourceSecrets(file_list_url=f"sqlite:///{tmp_path / 'file_list.db'}")
    cfg_path = write_config(tmp_path, "{kind: local, path: oo, org: default, file_list: true}", tenant="missing")
    before = _prime(cfg_path, pg_url, "missing", secrets)
    victim = sorted((tmp_path / "oo" / "files" / "default" / "traces").rglob("*.parquet"))[0]
    saved = tmp_path / "saved.parquet"
    victim.rename(saved)
    with pytest.raises(OOReadError) as err:
        run(load_config(cfg_path), "missing", FAIL_WINDOW, pg_url=pg_url, secrets=secrets)
    assert victim.name in str(err.value)
    assert dump_tables(pg_url) == before
    assert _status(pg_url, FAIL_WINDOW, "missing")[0] == "failed"
    saved.rename(victim)
    assert run(load_config(cfg_path), "missing", FAIL_WINDOW, pg_url=pg_url, secrets=secrets).status == "success"
    assert dump_tables(pg_url) == before


def test_wrong_s3_secret_fails_cleanly_and_never_leaks(s3_env: dict[str, str], s3_bucket: str, pg_url: str,
                                                        tmp_path: Path) -> None:
    good = SourceSecrets(s3_access_key_id=s3_env["S3_ACCESS_KEY_ID"],
                         s3_secret_access_key=s3_env["S3_SECRET_ACCESS_KEY"],
                         s3_endpoint_url=s3_env["S3_ENDPOINT_URL"], s3_region=s3_env["S3_REGION"])
    generate(Storage.s3(s3_bucket, "oo", s3_filesystem(good)), T0, parse_time("2024-05-01T10:08:00Z"), seed=11)
    cfg_path = write_config(tmp_path, f"{{kind: s3, bucket: {s3_bucket}, prefix: oo, org: default}}", tenant="s3t")
    before = _prime(cfg_path, pg_url, "s3t", good)
    bad_secret = "definitely-the-wrong-secret-0123456789"
    bad = replace(good, s3_secret_access_key=bad_secret)
    with pytest.raises(OOReadError) as err:
        run(load_config(cfg_path), "s3t", FAIL_WINDOW, pg_url=pg_url, secrets=bad)
    assert bad_secret not in str(err.value)
    assert dump_tables(pg_url) == before
    status, error = _status(pg_url, FAIL_WINDOW, "s3t")
    assert status == "failed" and bad_secret not in (error or "")
    assert run(load_config(cfg_path), "s3t", FAIL_WINDOW, pg_url=pg_url, secrets=good).status == "success"
    assert dump_tables(pg_url) == before


def test_postgres_connection_killed_mid_transaction(local_data: Path, pg_url: str, tmp_path: Path) -> None:
    shutil.copytree(local_data / "oo", tmp_path / "oo")
    cfg_path = write_config(tmp_path, "{kind: local, path: oo, org: default}", tenant="killed")
    before = _prime(cfg_path, pg_url, "killed")
    body = window_body(load_config(cfg_path), "killed", FAIL_WINDOW)
    written, resume = threading.Event(), threading.Event()
    outcome: dict[str, BaseException] = {}

    def paused_body(tx) -> None:  # type: ignore[no-untyped-def]
        body(tx)  # every row of the window is written, not yet committed
        tx.details["backend_pid"] = tx.conn.get_backend_pid()
        written.set()
        resume.wait(60)

    def job() -> None:
        try:
            run_window(JOB, "killed", FAIL_WINDOW, paused_body, pg_url=pg_url, configured_tenants=("killed",))
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome["error"] = exc

    thread = threading.Thread(target=job)
    thread.start()
    assert written.wait(60)
    admin = psycopg2.connect(pg_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = %s", (f"obs-etl {JOB}",))
        assert cur.fetchall() == [(True,)]
    admin.close()
    resume.set()
    thread.join(60)
    assert isinstance(outcome.get("error"), psycopg2.Error)
    assert dump_tables(pg_url) == before
    assert _status(pg_url, FAIL_WINDOW, "killed")[0] == "failed"
    assert run(load_config(cfg_path), "killed", FAIL_WINDOW, pg_url=pg_url).status == "success"
    assert dump_tables(pg_url) == before
