"""Late arrival and compaction on generated OpenObserve data, in the bucket and in OO's ``file_list``.

- :func:`withhold` takes the records of a stream inside a time range out of their files (the files
  are rewritten without them, their ``file_list`` rows updated): the bucket as it was when a window
  was first read. :func:`deliver` writes them back as NEW files: late records arriving. Withholding
  then delivering leaves the bucket holding exactly the generated records, in more files.
- :func:`compact_hour` merges every live file of one stream's hour into one file and deletes the
  originals (objects removed; ``file_list`` rows marked ``deleted``), as OpenObserve's compactor
  does: the same records, other files. With ``leftovers`` the originals stay in the bucket until
  deleted later, as they do for ~2 h in OpenObserve.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import psycopg2
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from airflow_obs_provider.devkit.gen import ROW_GROUP
from airflow_obs_provider.engine.oo.layout import file_list_stream, hour_prefix, parse_key
from airflow_obs_provider.engine.oo.storage import Storage


@dataclass
class Bucket:
    """Generated OO data: the storage, and OO's file_list database when the test uses one."""

    storage: Storage
    org: str = "default"
    file_list_url: str | None = None

    def live_keys(self, stream_type: str, stream: str, hour: datetime) -> list[str]:
        if self.file_list_url is None:
            return [f.key for f in self.storage.list_files(hour_prefix(self.org, stream_type, stream, hour))]
        with psycopg2.connect(self.file_list_url) as conn, conn.cursor() as cur:
            cur.execute("SELECT stream || '/' || date || '/' || file FROM file_list WHERE stream = %s AND date = %s "
                        "AND NOT deleted ORDER BY 1",
                        (file_list_stream(self.org, stream_type, stream), hour.strftime("%Y/%m/%d/%H")))
            return ["files/" + r[0] for r in cur.fetchall()]

    def read(self, key: str) -> pa.Table:
        with self.storage.open(key) as fh:
            return pq.read_table(fh)

    def write(self, key: str, table: pa.Table) -> None:
        """Write ``table`` under ``key`` with OO's footer metadata and its file_list row (upserted, live)."""
        ts = table.column("_timestamp")
        lo, hi = int(pc.min(ts).as_py()), int(pc.max(ts).as_py())
        table = table.replace_schema_metadata({"min_ts": str(lo), "max_ts": str(hi), "records": str(table.num_rows),
                                               "original_size": str(table.nbytes)})
        size = self.storage.write_parquet(key, table, ROW_GROUP)
        if self.file_list_url is not None:
            k = parse_key(key)
            file = key.split("/", 8)[8]
            with psycopg2.connect(self.file_list_url) as conn, conn.cursor() as cur:
                cur.execute("""INSERT INTO file_list (org, stream, date, file, deleted, flattened, min_ts, max_ts, records,
                                                      original_size, compressed_size, index_size, updated_at)
                               VALUES (%s, %s, %s, %s, false, false, %s, %s, %s, %s, %s, 0, 0)
                               ON CONFLICT (stream, date, file) DO UPDATE SET deleted = false, min_ts = excluded.min_ts,
                                 max_ts = excluded.max_ts, records = excluded.records""",
                            (self.org, file_list_stream(k.org, k.stream_type, k.stream), k.date, file, lo, hi,
                             table.num_rows, table.nbytes, size))

    def delete(self, key: str) -> None:
        """Remove the object (and mark it deleted in file_list)."""
        self.storage.fs.delete_file(self.storage.path(key))
        self.retire(key)

    def retire(self, key: str) -> None:
        """Mark the file deleted in file_list; the object stays (a compaction leftover)."""
        if self.file_list_url is not None:
            k = parse_key(key)
            with psycopg2.connect(self.file_list_url) as conn, conn.cursor() as cur:
                cur.execute("UPDATE file_list SET deleted = true WHERE stream = %s AND date = %s AND file = %s",
                            (file_list_stream(k.org, k.stream_type, k.stream), k.date, key.split("/", 8)[8]))


@dataclass
class Withheld:
    stream_type: str
    stream: str
    hour: datetime
    tables: list[pa.Table]  # one per file they were taken from (each ingester ships its own late file)


def withhold(bucket: Bucket, stream_type: str, stream: str, hour: datetime, from_us: int, to_us: int) -> Withheld:
    """Take the stream's records with ``from_us <= _timestamp < to_us`` (inside ``hour``) out of its files."""
    taken = []
    for key in bucket.live_keys(stream_type, stream, hour):
        table = bucket.read(key)
        ts = table.column("_timestamp")
        inside = pc.and_(pc.greater_equal(ts, from_us), pc.less(ts, to_us))
        late = table.filter(inside)
        if not late.num_rows:
            continue
        taken.append(late)
        rest = table.filter(pc.invert(inside))
        if rest.num_rows:
            bucket.write(key, rest)
        else:
            bucket.delete(key)
    assert taken, f"no {stream_type}/{stream} records in [{from_us}, {to_us})"
    return Withheld(stream_type, stream, hour, taken)


def _new_key(bucket: Bucket, stream_type: str, stream: str, hour: datetime, tag: str) -> str:
    return f"{hour_prefix(bucket.org, stream_type, stream, hour)}{tag}{uuid.uuid4().hex[:12]}.parquet"


def deliver(bucket: Bucket, withheld: Withheld) -> list[str]:
    """Write withheld records back as new files: records arriving late."""
    keys = []
    for table in withheld.tables:
        keys.append(_new_key(bucket, withheld.stream_type, withheld.stream, withheld.hour, "late"))
        bucket.write(keys[-1], table)
    return keys


def _widened(tables: list[pa.Table]) -> list[pa.Table]:
    """Columns whose type differs between files become text, as OpenObserve widens them."""
    types: dict[str, set[pa.DataType]] = {}
    for t in tables:
        for f in t.schema:
            types.setdefault(f.name, set()).add(f.type)
    clash = {name for name, ts in types.items() if len(ts) > 1}
    out = []
    for t in tables:
        for name in clash & set(t.column_names):
            t = t.set_column(t.column_names.index(name), name, pc.cast(t.column(name), pa.string()))
        out.append(t.replace_schema_metadata(None))
    return out


def compact_hour(bucket: Bucket, stream_type: str, stream: str, hour: datetime, *,
                 leftovers: bool = False) -> tuple[list[str], str]:
    """Merge the live files of one stream's hour into one; returns (replaced keys, merged key).

    The replaced files are deleted, or with ``leftovers`` kept in the bucket (as OpenObserve keeps
    them for ~2 h) while ``file_list`` already marks them deleted: :meth:`Bucket.delete` them later.
    """
    keys = bucket.live_keys(stream_type, stream, hour)
    assert len(keys) > 1, f"nothing to compact in {stream_type}/{stream} {hour}"
    merged = pa.concat_tables(_widened([bucket.read(k) for k in keys]), promote_options="permissive")
    key = _new_key(bucket, stream_type, stream, hour, "merged")
    bucket.write(key, merged.sort_by("_timestamp"))
    for k in keys:
        if leftovers:
            bucket.retire(k)
        else:
            bucket.delete(k)
    return keys, key
