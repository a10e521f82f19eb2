from __future__ import annotations

from datetime import UTC, datetime

import pytest

from airflow_obs_provider.engine.oo.layout import (
    LayoutError,
    file_list_stream,
    hour_prefix,
    hours_covering,
    parse_key,
    sanitize_stream_name,
)
from airflow_obs_provider.engine.window import to_us

H10 = datetime(2026, 1, 1, 10, tzinfo=UTC)


def test_parse_key_splits_every_part():
    k = parse_key("files/acme/traces/default/2026/01/01/10/7204516812512346112a1b2c3.parquet")
    assert (k.org, k.stream_type, k.stream, k.hour, k.partitions) == ("acme", "traces", "default", H10, ())
    assert k.date == "2026/01/01/10" and k.is_parquet
    assert k.key == "files/acme/traces/default/2026/01/01/10/7204516812512346112a1b2c3.parquet"


def test_parse_key_keeps_partition_folders_without_using_them_as_data():
    k = parse_key("files/o/logs/k8s_events/2026/01/01/10/k8s_namespace_name=shop/region=3/x.parquet")
    assert k.partitions == (("k8s_namespace_name", "shop"), ("region", "3"))
    assert k.key.endswith("k8s_namespace_name=shop/region=3/x.parquet")


@pytest.mark.parametrize("key", [
    "files_all/o/logs/s/2026/01/01/10/x.parquet",
    "files/o/index/s/2026/01/01/10/x.parquet",
    "files/o/logs/s/2026/01/01/x.parquet",
    "files/o/logs/s/2026/13/01/10/x.parquet",
    "files/o/logs/s/2026/01/01/10/notapartition/x.parquet",
])
def test_parse_key_rejects_what_is_not_a_data_file(key):
    with pytest.raises(LayoutError):
        parse_key(key)


def test_vortex_files_are_recognised_as_not_parquet():
    assert not parse_key("files/o/logs/s/2026/01/01/10/x.vortex").is_parquet


def test_hours_covering_is_half_open():
    start = to_us(H10)
    assert [h.hour for h in hours_covering(start, start + 3_600_000_000)] == [10]
    assert [h.hour for h in hours_covering(start - 1, start + 1)] == [9, 10]
    assert list(hours_covering(start, start)) == []


def test_prefixes_and_file_list_names_follow_the_contract():
    assert hour_prefix("o", "metrics", "cpu", H10) == "files/o/metrics/cpu/2026/01/01/10/"
    assert file_list_stream("o", "logs", "app") == "o/logs/app"
    assert sanitize_stream_name("My-App.Logs:v1") == "my_app_logs:v1"
