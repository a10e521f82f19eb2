"""Where the bucket layout lives: a local folder or an S3 bucket/prefix, through pyarrow.fs.

pyarrow's own S3 client is used (no DuckDB httpfs): air-gapped workers cannot download
DuckDB extensions, and one client keeps listing, footers and row-group reads together.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from airflow_obs_provider.engine.secrets import SourceSecrets


@dataclass(frozen=True)
class ListedFile:
    key: str  # relative to the storage root
    size: int


def s3_filesystem(secrets: SourceSecrets, endpoint_url: str | None = None,
                  region: str | None = None) -> pafs.S3FileSystem:
    """An S3 client; ``endpoint_url`` (e.g. ``http://host:8333``) points it at S3-compatible stores."""
    endpoint = endpoint_url or secrets.s3_endpoint_url
    kwargs: dict[str, object] = {
        "region": region or secrets.s3_region or "us-east-1",
        "connect_timeout": 10,
        "request_timeout": 60,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=3),
    }
    if secrets.s3_access_key_id and secrets.s3_secret_access_key:
        kwargs.update(access_key=secrets.s3_access_key_id, secret_key=secrets.s3_secret_access_key,
                      session_token=secrets.s3_session_token)
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        kwargs.update(endpoint_override=parts.netloc + parts.path.rstrip("/"), scheme=parts.scheme or "https")
    return pafs.S3FileSystem(**kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Storage:
    """A root (local folder, or ``bucket/prefix`` on S3) holding the ``files/...`` layout."""

    fs: pafs.FileSystem
    root: str  # filesystem path of the root, without a trailing slash
    display: str  # what messages call the root (``s3://bucket/prefix`` or the folder)

    @classmethod
    def local(cls, path: Path) -> Storage:
        resolved = path.resolve()
        return cls(pafs.LocalFileSystem(), resolved.as_posix().rstrip("/"), str(resolved))

    @classmethod
    def s3(cls, bucket: str, prefix: str, fs: pafs.FileSystem) -> Storage:
        root = "/".join(p for p in (bucket, prefix.strip("/")) if p)
        return cls(fs, root, f"s3://{root}")

    @classmethod
    def from_uri(cls, out: str, secrets: SourceSecrets) -> Storage:
        """``s3://bucket/prefix`` or a local folder (the generator's ``--out``)."""
        if out.startswith("s3://"):
            bucket, _, prefix = out[5:].partition("/")
            return cls.s3(bucket, prefix, s3_filesystem(secrets))
        return cls.local(Path(out))

    def path(self, key: str) -> str:
        return f"{self.root}/{key.lstrip('/')}"

    def list_files(self, prefix: str) -> list[ListedFile]:
        """Every file below ``prefix`` (recursive), as keys relative to the root; [] if absent."""
        selector = pafs.FileSelector(self.path(prefix).rstrip("/"), recursive=True, allow_not_found=True)
        base = len(self.root) + 1
        return sorted(
            (ListedFile(info.path[base:], info.size or 0) for info in self.fs.get_file_info(selector)
             if info.type == pafs.FileType.File),
            key=lambda f: f.key,
        )

    def list_dirs(self, prefix: str) -> list[str]:
        """Names of the folders directly below ``prefix``."""
        selector = pafs.FileSelector(self.path(prefix).rstrip("/"), recursive=False, allow_not_found=True)
        return sorted(info.base_name for info in self.fs.get_file_info(selector)
                      if info.type == pafs.FileType.Directory)

    def open(self, key: str) -> pa.NativeFile:
        return self.fs.open_input_file(self.path(key))

    def write_bytes(self, key: str, data: bytes) -> None:
        if isinstance(self.fs, pafs.LocalFileSystem):
            self.fs.create_dir(self.path(key).rsplit("/", 1)[0], recursive=True)
        with self.fs.open_output_stream(self.path(key)) as out:
            out.write(data)

    def write_parquet(self, key: str, table: pa.Table, row_group_size: int) -> int:
        """Write a zstd Parquet file (as OpenObserve does) and return its size in bytes."""
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd", row_group_size=row_group_size,
                       write_statistics=True)
        data = sink.getvalue().to_pybytes()
        self.write_bytes(key, data)
        return len(data)
