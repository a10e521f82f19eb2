"""oo_locator.ui_url: the link must be what OpenObserve's web UI reads back from a share link.

The expected format comes from OO's web UI source (logs page: generateURLQuery /
restoreUrlQueryParams; traces page: getUrlQueryParams / restoreUrlQueryParams; encoding:
b64EncodeUnicode / b64DecodeUnicode). ``oo_decode`` below mirrors OO's decoder so a link that
OO could not decode fails here.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa

from airflow_obs_provider.engine.aggregate.locators import locator_for, sql_hint
from airflow_obs_provider.engine.oo.source import StreamRead, oo_ui_url, open_source
from airflow_obs_provider.engine.window import to_us

START = to_us(datetime(2026, 1, 1, 10, 0, tzinfo=UTC))
END = to_us(datetime(2026, 1, 1, 10, 5, tzinfo=UTC))
SQL = 'SELECT * FROM "checkout" WHERE _timestamp >= 1 AND _timestamp < 2'


def oo_decode(value: str) -> str:
    """OO's b64DecodeUnicode: undo the URL-safe alphabet and '.' padding, then base64 and UTF-8."""
    return base64.b64decode(value.replace("-", "+").replace("_", "/").replace(".", "=")).decode()


def split_link(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True, strict_parsing=True).items()}
    return f"{parts.scheme}://{parts.netloc}{parts.path}", query


def test_no_ui_address_gives_no_link():
    assert oo_ui_url(None, "acme", "logs", "app", START, END, SQL) is None
    assert oo_ui_url("", "acme", "logs", "app", START, END, SQL) is None


def test_logs_link_carries_every_parameter_the_logs_page_reads():
    page, q = split_link(oo_ui_url("https://oo.example.com", "acme", "logs", "app", START, END, SQL))
    assert page == "https://oo.example.com/web/logs"
    assert set(q) == {"stream_type", "stream", "from", "to", "refresh", "sql_mode", "query",
                      "org_identifier", "quick_mode"}
    assert (q["stream_type"], q["stream"], q["org_identifier"]) == ("logs", "app", "acme")
    assert (int(q["from"]), int(q["to"])) == (START, END)  # microseconds, as OO's pages expect
    assert (q["sql_mode"], q["quick_mode"], q["refresh"]) == ("true", "false", "0")
    assert oo_decode(q["query"]) == SQL


def test_metrics_open_on_the_logs_page_with_their_stream_type():
    page, q = split_link(oo_ui_url("https://oo.example.com", "acme", "metrics", "http_requests_total",
                                   START, END, SQL))
    assert page == "https://oo.example.com/web/logs"
    assert (q["stream_type"], q["stream"], q["sql_mode"]) == ("metrics", "http_requests_total", "true")
    assert oo_decode(q["query"]) == SQL


def test_traces_link_gives_the_traces_page_only_the_where_clause():
    page, q = split_link(oo_ui_url("https://oo.example.com", "acme", "traces", "default", START, END, SQL))
    assert page == "https://oo.example.com/web/traces"
    assert set(q) == {"stream", "from", "to", "query", "org_identifier", "search_mode", "tab"}
    assert (q["stream"], q["org_identifier"]) == ("default", "acme")
    assert q["search_mode"] == q["tab"] == "spans"  # the spans list, in older and newer UIs
    assert (int(q["from"]), int(q["to"])) == (START, END)
    assert oo_decode(q["query"]) == "_timestamp >= 1 AND _timestamp < 2"


def test_traces_sql_without_where_gives_an_empty_filter():
    _, q = split_link(oo_ui_url("https://oo.example.com", "acme", "traces", "default", START, END,
                                'SELECT * FROM "default"'))
    assert oo_decode(q["query"]) == ""


def test_query_uses_oo_url_safe_alphabet_and_dot_padding():
    # Standard base64 of this text contains '+', '/' and '=' padding; OO writes '-', '_' and '.'.
    sql = "SELECT '~~~???' AS x, 'é' AS y"
    assert set("+/=") <= set(base64.b64encode(sql.encode()).decode())
    _, q = split_link(oo_ui_url("https://oo.example.com", "acme", "logs", "app", START, END, sql))
    assert not set("+/=") & set(q["query"])
    assert {"-", "_", "."} <= set(q["query"])
    assert oo_decode(q["query"]) == sql


def test_ui_base_url_with_a_sub_path_and_trailing_slash_keeps_the_sub_path():
    url = oo_ui_url("https://example.com/observe/", "acme", "logs", "app", START, END, SQL)
    assert url is not None and url.startswith("https://example.com/observe/web/logs?")


def test_locator_links_rerun_the_locator_sql_hint(tmp_path):
    (tmp_path / "files" / "acme").mkdir(parents=True)  # a source root must hold the org's folder
    source = open_source({"kind": "local", "path": str(tmp_path), "org": "acme",
                          "ui_base_url": "https://oo.example.com"})
    empty = pa.table({"_timestamp": pa.array([], pa.int64())})
    logs = locator_for(source, StreamRead("logs", "app", empty, (), 0), START, END)
    traces = locator_for(source, StreamRead("traces", "default", empty, (), 0), START, END)

    assert logs.sql_hint == sql_hint("app", START, END)
    _, q = split_link(logs.ui_url)
    assert oo_decode(q["query"]) == logs.sql_hint
    _, q = split_link(traces.ui_url)
    assert oo_decode(q["query"]) == f"_timestamp >= {START} AND _timestamp < {END}"
    assert traces.sql_hint.endswith(" WHERE " + oo_decode(q["query"]))
