"""The bucket reader on a real S3 server (loopback) with OO's file_list in real Postgres."""

from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest

from airflow_obs_provider.devkit.gen import generate
from airflow_obs_provider.engine.oo.source import OOReadError, SourceSecrets, open_source
from airflow_obs_provider.engine.oo.storage import Storage
from airflow_obs_provider.engine.window import parse_time, to_us

pytestmark = pytest.mark.integration

FROM, TO = parse_time("2026-01-01T10:00:00Z"), parse_time("2026-01-01T10:05:00Z")
H10 = to_us(FROM)
MIN = 60_000_000


def secrets(s3_env: dict[str, str], **extra) -> SourceSecrets:
    return SourceSecrets(s3_access_key_id=s3_env["S3_ACCESS_KEY_ID"],
                         s3_secret_access_key=s3_env["S3_SECRET_ACCESS_KEY"],
                         s3_endpoint_url=s3_env["S3_ENDPOINT_URL"], s3_region=s3_env["S3_REGION"], **extra)


@pytest.fixture(scope="module")
def generated(s3_env, s3_bucket, empty_pg_url, tmp_path_factory) -> tuple[str, Path]:
    """The same data on S3 (with compaction leftovers and a Postgres file_list) and in a local folder."""
    sec = secrets(s3_env)
    generate(Storage.from_uri(f"s3://{s3_bucket}/oo", sec), FROM, TO, seed=5, file_list_url=empty_pg_url,
             compaction=True)
    local = tmp_path_factory.mktemp("local")
    generate(Storage.local(local), FROM, TO, seed=5)
    return s3_bucket, local


def s3_source(s3_env, bucket: str, **sec):
    return open_source({"kind": "s3", "bucket": bucket, "prefix": "oo", "org": "default"},
                       secrets=secrets(s3_env, **sec))


def test_s3_with_file_list_reads_exactly_what_the_local_copy_holds(s3_env, generated, empty_pg_url):
    bucket, local = generated
    start, end = H10 + MIN, H10 + 2 * MIN
    got = s3_source(s3_env, bucket, file_list_url=empty_pg_url).read("traces", "default", start, end)
    expected = open_source({"kind": "local", "path": str(local), "org": "default"}).read("traces", "default",
                                                                                          start, end)
    key = ("_timestamp", "span_id")
    assert got.records == expected.records > 0
    assert sorted(zip(*(got.table.column(c).to_pylist() for c in key), strict=True)) == \
        sorted(zip(*(expected.table.column(c).to_pylist() for c in key), strict=True))
    assert all(k.startswith("files/default/traces/default/2026/01/01/10/") for k in got.object_keys)


def test_listing_s3_counts_compaction_leftovers_twice_file_list_does_not(s3_env, generated, empty_pg_url):
    bucket, _ = generated
    start, end = H10, H10 + MIN
    listed = s3_source(s3_env, bucket).read("logs", "default", start, end)
    exact = s3_source(s3_env, bucket, file_list_url=empty_pg_url).read("logs", "default", start, end)
    assert exact.records == 5000 and listed.records == 10000


def test_a_wrong_secret_is_a_clear_error_naming_stream_and_cause(s3_env, generated):
    bucket, _ = generated
    bad = SourceSecrets(s3_access_key_id=s3_env["S3_ACCESS_KEY_ID"], s3_secret_access_key="not-the-secret-42",
                        s3_endpoint_url=s3_env["S3_ENDPOINT_URL"], s3_region=s3_env["S3_REGION"])
    src = open_source({"kind": "s3", "bucket": bucket, "prefix": "oo", "org": "default"}, secrets=bad)
    with pytest.raises(OOReadError) as err:
        src.read("logs", "default", H10, H10 + MIN)
    text = str(err.value)
    assert "logs/default" in text and "not-the-secret-42" not in text
    assert any(word in text for word in ("SignatureDoesNotMatch", "AccessDenied", "ACCESS_DENIED", "signature"))


def test_a_missing_object_listed_in_file_list_is_a_clear_error(s3_env, generated, empty_pg_url):
    bucket, _ = generated
    conn = psycopg2.connect(empty_pg_url)
    with conn, conn.cursor() as cur:
        cur.execute("INSERT INTO file_list (org, stream, date, file, deleted, flattened, min_ts, max_ts, records,"
                    " original_size, compressed_size, index_size, updated_at) VALUES ('default',"
                    " 'default/metrics/vanished', '2026/01/01/10', 'lost.parquet', false, false, %s, %s, 1, 1, 1,"
                    " 0, 0)", (H10, H10 + MIN))
    conn.close()
    with pytest.raises(OOReadError) as err:
        s3_source(s3_env, bucket, file_list_url=empty_pg_url).read("metrics", "vanished", H10, H10 + MIN)
    assert "files/default/metrics/vanished/2026/01/01/10/lost.parquet" in str(err.value)
    assert "metrics/vanished" in str(err.value)


def test_a_corrupt_object_on_s3_is_a_clear_error(s3_env, generated):
    bucket, _ = generated
    storage = Storage.from_uri(f"s3://{bucket}/oo", secrets(s3_env))
    key = "files/default/logs/broken/2026/01/01/10/123.parquet"
    storage.write_bytes(key, b"garbage, not parquet")
    with pytest.raises(OOReadError) as err:
        s3_source(s3_env, bucket).read("logs", "broken", H10, H10 + MIN)
    assert key in str(err.value) and "Parquet" in str(err.value)


def test_streams_are_listed_from_the_bucket(s3_env, generated):
    bucket, _ = generated
    assert {"default", "k8s_events"} <= set(s3_source(s3_env, bucket).streams("logs"))
