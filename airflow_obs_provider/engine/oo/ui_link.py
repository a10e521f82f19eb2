"""Links into OpenObserve's web UI that rerun a query over a window (:meth:`OOSource.ui_url`)."""

from __future__ import annotations


def oo_ui_url(ui_base_url: str | None, org: str, stream_type: str, stream: str, start_us: int, end_us: int,
              sql: str) -> str | None:
    """A link to OO's web UI that reruns ``sql`` over ``[start_us, end_us)``, or None without a UI address.

    The format is the one OO's own "share link" writes and its pages read back (checked against the
    OpenObserve web UI source, not yet against a running OpenObserve):

    - logs and metrics open the logs page, ``{ui_base_url}/web/logs`` (its stream-type switch covers
      metrics; ``/web/metrics`` is a PromQL page): ``stream_type``, ``stream``, ``from``/``to`` in µs,
      ``refresh=0``, ``sql_mode=true``, ``query`` = the SQL, ``org_identifier``, and ``quick_mode=false``
      because quick mode would narrow ``SELECT *`` to a few "interesting" columns;
    - traces open ``{ui_base_url}/web/traces``, whose editor holds only a filter that the page wraps in
      its own SELECT, so ``query`` is the WHERE clause of ``sql`` (empty when it has none);
      ``search_mode=spans`` (older UI) and ``tab=spans`` (newer UI) list the spans themselves
      rather than one row per trace;
    - ``query`` is encoded like OO's ``b64EncodeUnicode``: base64 of the UTF-8 text with the URL-safe
      alphabet and ``.`` for padding (``+/=`` become ``-_.``), which OO's decoder reverses.
    """
    if not ui_base_url:
        return None
    import base64
    import re
    from urllib.parse import urlencode

    def oo_b64(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode().replace("=", ".")

    base = ui_base_url.rstrip("/")
    if stream_type == "traces":
        # The first WHERE is the clause: stream names cannot contain spaces (layout.stream_sql).
        parts = re.split(r"\s+WHERE\s+", sql, maxsplit=1, flags=re.IGNORECASE)
        where = parts[1].strip() if len(parts) == 2 else ""
        traces = {"stream": stream, "from": str(start_us), "to": str(end_us), "query": oo_b64(where),
                  "org_identifier": org, "search_mode": "spans", "tab": "spans"}
        return f"{base}/web/traces?{urlencode(traces)}"
    logs = {
        "stream_type": stream_type, "stream": stream, "from": str(start_us), "to": str(end_us),
        "refresh": "0", "sql_mode": "true", "query": oo_b64(sql), "org_identifier": org,
        "quick_mode": "false",
    }
    return f"{base}/web/logs?{urlencode(logs)}"
