"""The HTTP API reader against a real loopback server implementing OO's search API contract."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.oo_api_server import OODouble

from airflow_obs_provider.devkit.gen import generate
from airflow_obs_provider.engine.oo.source import OOReadError, SourceSecrets, open_source
from airflow_obs_provider.engine.oo.storage import Storage
from airflow_obs_provider.engine.window import parse_time, to_us

pytestmark = pytest.mark.integration

H10 = to_us(parse_time("2026-01-01T10:00:00Z"))
MIN = 60_000_000


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("api")
    generate(Storage.local(root), parse_time("2026-01-01T10:00:00Z"), parse_time("2026-01-01T10:04:00Z"), seed=3)
    return root


@pytest.fixture()
def server(data) -> Iterator[tuple[OODouble, str]]:
    double = OODouble(data, max_size=700)
    url = double.start()
    yield double, url
    double.stop()


def api(url: str, double: OODouble, password: str | None = None, **extra):
    secrets = SourceSecrets(api_base_url=url, api_user=double.user, api_password=password or double.password)
    return open_source({"kind": "api", "org": "default", "page_size": 500, **extra}, secrets=secrets)


def bucket(data: Path):
    return open_source({"kind": "local", "path": str(data), "org": "default"})


def rows(read) -> list[tuple]:
    t = read.table
    return sorted(zip(*(t.column(c).to_pylist() for c in ("_timestamp", "span_id", "service_name")), strict=True))


def test_api_pages_until_a_short_page_and_equals_the_bucket_read(server, data):
    double, url = server
    start, end = H10 + MIN, H10 + 2 * MIN
    got = api(url, double).read("traces", "default", start, end)
    expected = bucket(data).read("traces", "default", start, end)
    assert got.records == expected.records > 500 and rows(got) == rows(expected)
    pages = [r for r in double.requests if r["path"].endswith("/_search")]
    assert [p["body"]["query"]["from"] for p in pages] == [500 * i for i in range(len(pages))]
    assert all(p["body"]["query"]["sql"] == 'SELECT * FROM "default"' for p in pages)
    assert got.table.schema.field("start_time").type == expected.table.schema.field("start_time").type
    assert len(got.object_keys) == len(pages)


def test_search_partitions_are_queried_one_by_one(server, data):
    double, url = server
    start, end = H10, H10 + 3 * MIN
    got = api(url, double, partitions=True).read("logs", "default", start, end)
    assert got.records == bucket(data).read("logs", "default", start, end).records == 15000
    windows = {(r["body"]["query"]["start_time"], r["body"]["query"]["end_time"])
               for r in double.requests if r["path"].endswith("/_search")}
    assert windows == {(H10 + i * MIN, H10 + (i + 1) * MIN) for i in range(3)}


def test_is_partial_is_an_error(server):
    double, url = server
    double.partial = True
    with pytest.raises(OOReadError, match="partial"):
        api(url, double).read("logs", "default", H10, H10 + MIN)


def test_a_range_shortened_by_max_query_range_is_an_error(server):
    double, url = server
    double.max_query_range_hours["default"] = 1
    with pytest.raises(OOReadError, match="shortened"):
        api(url, double).read("logs", "default", H10 - 2 * 3_600_000_000, H10 + MIN)


def test_a_wrong_password_is_a_clear_error_without_the_secret(server):
    double, url = server
    with pytest.raises(OOReadError) as err:
        api(url, double, password="wrong-secret-123").read("logs", "default", H10, H10 + MIN)
    assert "authentication refused" in str(err.value) and "wrong-secret-123" not in str(err.value)


def test_streams_are_listed_per_type(server):
    double, url = server
    assert api(url, double).streams("logs") == ["default", "k8s_events"]
    assert "http_server_requests_total" in api(url, double).streams("metrics")


def test_boundaries_through_the_api(server, data):
    double, url = server
    start, end = H10 + MIN, H10 + 2 * MIN
    got = api(url, double).read("metrics", "http_server_requests_total", start, end)
    ts = got.table.column("_timestamp").to_pylist()
    assert ts and min(ts) >= start and max(ts) < end
    assert got.records == bucket(data).read("metrics", "http_server_requests_total", start, end).records


def test_a_column_projection_reads_the_same_records_as_the_bucket(server, data):
    double, url = server
    start, end = H10 + MIN, H10 + 2 * MIN
    wanted = {"span_id", "service_name", "no_such_column"}
    got = api(url, double).read("traces", "default", start, end, columns=wanted)
    expected = bucket(data).read("traces", "default", start, end, columns=wanted)
    assert sorted(got.table.column_names) == sorted(expected.table.column_names) == [
        "_timestamp", "service_name", "span_id"]
    assert got.records == expected.records > 0 and rows(got) == rows(expected)
