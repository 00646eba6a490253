"""Where the lake lives: a local directory, or a prefix of an S3 bucket (any S3-compatible endpoint).

Both are reached through one fsspec filesystem, so the lake's commit protocol (``lake.py``) is
written once: a local directory through fsspec's ``LocalFileSystem``, S3 through pyarrow's own
``S3FileSystem`` (the AWS SDK for C++ that ships in the pyarrow wheel) wrapped as an fsspec
filesystem. DuckDB reads and writes ``s3://`` paths through that same filesystem, registered on
each connection (``register``): no DuckDB extension is installed or loaded (``httpfs`` is not
available for DuckDB 2.0 from the package index), and partition pruning still happens before a
file is opened, because DuckDB globs the object listing and filters the hive paths first.

Credentials and the endpoint come from an Airflow AWS connection (``TAG_COMPLIANCE_LAKE_CONN_ID``,
by default the pipeline's own ``aws_conn_id``): its keys, role or profile, and its
``endpoint_url`` (or ``service_config.s3.endpoint_url``). Without Airflow installed, boto3's own
chain answers (environment, shared files, ``AWS_ENDPOINT_URL_S3``). No key is ever in code or logs.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import fsspec
from fsspec.implementations.arrow import ArrowFSWrapper
from fsspec.implementations.local import LocalFileSystem
from fsspec.spec import AbstractBufferedFile

S3_SCHEME = "s3://"
AUDIT_EVENT = "tag_compliance.lake"
# S3 bucket names: 3-63 lower-case letters, digits, dots and hyphens (AWS's naming rules).
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


# Every DuckDB connection that may see an s3:// path: DuckDB would otherwise try to download httpfs.
DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


class LakeLocationError(ValueError):
    """A lake location that cannot be used; the message names the value and why."""


class S3LakeFileSystem(ArrowFSWrapper):
    """pyarrow's S3 filesystem as an fsspec filesystem that answers to ``s3://`` (DuckDB routes a
    path to a registered filesystem by its protocol)."""

    protocol = "s3"
    root_marker = ""

    def __init__(self, fs: Any, **kwargs: Any) -> None:
        super().__init__(fs, **kwargs)
        self.opened: list[str] = []  # every file opened for reading: what a query really read
        self._opened_lock = threading.Lock()
        self._immutable_info: dict[str, dict[str, Any]] = {}

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        text = str(path)
        return (text[len(S3_SCHEME) :] if text.startswith(S3_SCHEME) else text).rstrip("/")

    def listing(self, prefix: str) -> dict[str, Any]:
        """Every object below ``prefix`` (pyarrow's FileInfo by path): LIST requests only, 1,000
        objects each, where fsspec's generic ``find`` and ``glob`` also ask for every path's HEAD."""
        from pyarrow.fs import FileSelector, FileType

        selector = FileSelector(self._strip_protocol(prefix), recursive=True, allow_not_found=True)
        return {info.path: info for info in self.fs.get_file_info(selector) if info.type == FileType.File}

    def find(
        self,
        path: str,
        maxdepth: int | None = None,
        withdirs: bool = False,
        detail: bool = False,
        **kwargs: Any,
    ) -> Any:
        if maxdepth is not None or withdirs:
            return super().find(path, maxdepth=maxdepth, withdirs=withdirs, detail=detail, **kwargs)
        found = {name: self._make_entry(info) for name, info in self.listing(path).items()}
        return found if detail else sorted(found)

    def glob(self, path: str, maxdepth: int | None = None, **kwargs: Any) -> Any:
        """DuckDB globs every path it reads, a plain one too: a plain path is taken as it is (a
        missing file fails when opened), a pattern is matched against one listing of its prefix."""
        if kwargs.get("detail"):
            return super().glob(path, maxdepth=maxdepth, **kwargs)
        pattern = self._strip_protocol(path)
        wildcard = _GLOB_CHARACTERS.search(pattern)
        if wildcard is None:
            return [pattern]
        prefix = pattern[: wildcard.start()].rpartition("/")[0]
        matches = re.compile(_glob_regex(pattern))
        return sorted(name for name in self.listing(prefix) if matches.fullmatch(name))

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """A file's size and time; kept for data files, which are never changed once written (their
        names carry their writer's run id): DuckDB asks for both at every open, a HEAD request each."""
        name = self._strip_protocol(path)
        if not IMMUTABLE_FILE.search(name):
            return super().info(name, **kwargs)
        with self._opened_lock:
            known = self._immutable_info.get(name)
        if known is None:
            known = super().info(name, **kwargs)
            with self._opened_lock:
                self._immutable_info[name] = known
        return dict(known)

    def modified(self, path: str) -> Any:
        return self.info(path)["mtime"]

    def _open(self, path: str, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        if mode != "rb":
            return super()._open(path, mode, *args, **kwargs)
        with self._opened_lock:
            self.opened.append(self._strip_protocol(path))
        return _RangeReadFile(self, self._strip_protocol(path))


class _RangeReadFile(AbstractBufferedFile):
    """An object read in aligned blocks, each one ranged GET, kept while the file is open: DuckDB
    reads a Parquet file in many small pieces (the footer, then each column chunk), which
    pyarrow's unbuffered S3 file would send as a request each."""

    def __init__(self, fs: S3LakeFileSystem, path: str) -> None:
        size = fs.info(path)["size"]
        super().__init__(fs, path, mode="rb", block_size=READ_BLOCK_BYTES, cache_type="blockcache", size=size)

    def _fetch_range(self, start: int, end: int) -> bytes:
        immutable = IMMUTABLE_FILE.search(self.path) is not None
        if immutable and (cached := _BLOCKS.get((self.path, start, end))) is not None:
            return cached
        if not hasattr(self, "_source"):
            self._source = self.fs.fs.open_input_file(self.path)
        block = self._source.read_at(end - start, start)
        if immutable:
            _BLOCKS.put((self.path, start, end), block)
        return block

    def close(self) -> None:
        if hasattr(self, "_source"):
            self._source.close()
        super().close()


class _BlockCache:
    """Blocks of immutable data files, shared by every open of them in the process (a score
    reads the snapshot's files in several queries), the oldest dropped beyond ``budget`` bytes."""

    def __init__(self, budget: int) -> None:
        self.budget, self.size = budget, 0
        self._blocks: collections.OrderedDict[tuple[str, int, int], bytes] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, int]) -> bytes | None:
        with self._lock:
            return self._blocks.get(key)

    def put(self, key: tuple[str, int, int], block: bytes) -> None:
        with self._lock:
            if key in self._blocks or len(block) > self.budget:
                return
            self._blocks[key] = block
            self.size += len(block)
            while self.size > self.budget:
                self.size -= len(self._blocks.popitem(last=False)[1])


READ_BLOCK_BYTES = 4 * 1024 * 1024
_BLOCKS = _BlockCache(budget=256 * 1024 * 1024)
# A data file of a commit: part-<run id>.parquet, written once under a name no other writer uses.
IMMUTABLE_FILE = re.compile(r"/part-\d{8}T\d{12}Z-[0-9a-f]{8}\.parquet$")


_GLOB_CHARACTERS = re.compile(r"[*?\\[]")


def _glob_regex(pattern: str) -> str:
    """A glob as DuckDB means it: ``**`` any number of path parts, ``*`` and ``?`` within one."""
    parts = re.split(r"(\*\*/|\*\*|\*|\?)", pattern)
    translated = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return "".join(translated.get(part, re.escape(part)) for part in parts)


@dataclass(frozen=True)
class LakeLocation:
    """A lake's root as readers name it (``root``: an absolute directory or ``s3://bucket/prefix``)
    and the filesystem that reaches it."""

    root: str
    fs: fsspec.AbstractFileSystem

    @property
    def remote(self) -> bool:
        return self.root.startswith(S3_SCHEME)

    def url(self, relative: str = "") -> str:
        """The path of ``relative`` (POSIX, below the root) as DuckDB and this filesystem take it."""
        relative = relative.strip("/")
        return f"{self.root}/{relative}" if relative else self.root

    def relative(self, found: str) -> str:
        """``found`` (a path this filesystem listed, with or without the protocol) below the root."""
        base = self.fs._strip_protocol(self.root)
        path = self.fs._strip_protocol(found)
        if path != base and not path.startswith(base + "/"):
            raise ValueError(f"{found} is not below the lake {self.root}")
        return path[len(base) :].lstrip("/")

    def files_below(self, relative: str) -> Iterator[tuple[str, float]]:
        """(path below the root, modification time as a POSIX timestamp) of every file below."""
        directory = self.url(relative)
        if self.remote:
            for path, info in self.fs.listing(directory).items():
                yield self.relative(path), info.mtime.timestamp() if info.mtime else 0.0
            return
        try:
            found = self.fs.find(directory, detail=True)
        except FileNotFoundError:
            return
        for path, info in found.items():
            if info.get("type") == "file":
                yield self.relative(path), float(info["mtime"])

    def arrow(self, relative: str) -> tuple[Any, str]:
        """(pyarrow filesystem or None for a local path, path) for pyarrow's own readers and writers,
        which then stream natively instead of through a Python file object."""
        if self.remote:
            return self.fs.fs, self.fs._strip_protocol(self.url(relative))
        return None, self.url(relative)

    def audit(self, operation: str, relative: str) -> None:
        """An audit event (``sys.audit``) before each change to an object of a remote lake, as the
        ``open``, ``os.rename`` and ``os.remove`` events Python raises for a local one: what the
        crash tests count to kill a writer between two of its changes."""
        if self.remote:
            sys.audit(AUDIT_EVENT, operation, self.url(relative))

    def is_file(self, relative: str) -> bool:
        return self.fs.isfile(self.url(relative))

    def delete(self, relative: str) -> None:
        self.audit("delete", relative)
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.url(relative))

    def make_parent(self, relative: str) -> None:
        """A local directory for a file to come (object storage has no directories)."""
        if not self.remote:
            Path(self.url(relative)).parent.mkdir(parents=True, exist_ok=True)

    def replace(self, source: str, target: str) -> None:
        """Put ``source`` in ``target``'s place, in one step readers of ``target`` can see: a rename
        on disk; on S3 a server-side copy (an object is replaced whole) and the source deleted."""
        if self.remote:
            self.audit("copy", target)
            self.fs.fs.copy_file(*(self.fs._strip_protocol(self.url(path)) for path in (source, target)))
            self.delete(source)
        else:
            os.replace(self.url(source), self.url(target))

    def register(self, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        """Let DuckDB read and write this lake's paths (a local lake needs nothing)."""
        if self.remote and not con.filesystem_is_registered(self.fs.protocol):
            con.register_filesystem(self.fs)
        return con


def is_remote(root: Path | str) -> bool:
    return str(root).startswith(S3_SCHEME)


def parse_s3_root(root: str) -> tuple[str, str]:
    """(bucket, prefix) of ``s3://bucket[/prefix]``, checked before anything connects."""
    parts = urlsplit(root)
    bucket, prefix = parts.netloc, parts.path.strip("/")
    if parts.scheme != "s3" or not BUCKET_NAME.fullmatch(bucket) or parts.query or parts.fragment:
        raise LakeLocationError(
            f"TAG_COMPLIANCE_LAKE={root!r} is not a usable S3 location: expected s3://<bucket>[/<prefix>] "
            "with a bucket name of 3-63 lower-case letters, digits, dots and hyphens"
        )
    if any(part in ("", ".", "..") or part.startswith(".") for part in prefix.split("/") if prefix):
        raise LakeLocationError(f"TAG_COMPLIANCE_LAKE={root!r}: the prefix has an empty, '.' or '..' part")
    return bucket, prefix


def locate(root: Path | str, conn_id: str | None = None) -> LakeLocation:
    """The lake at ``root``; one filesystem per (root, connection) and process."""
    if is_remote(root):
        bucket, prefix = parse_s3_root(str(root))
        return _s3_location(f"{S3_SCHEME}{bucket}" + (f"/{prefix}" if prefix else ""), _conn_id(conn_id))
    return LakeLocation(str(Path(root).expanduser().resolve()), _LOCAL)


_LOCAL = LocalFileSystem()


def _conn_id(conn_id: str | None) -> str:
    if conn_id:
        return conn_id
    return os.environ.get("TAG_COMPLIANCE_LAKE_CONN_ID") or os.environ.get(
        "TAG_COMPLIANCE_AWS_CONN_ID", "aws_default"
    )


@functools.cache
def _s3_location(root: str, conn_id: str) -> LakeLocation:
    from pyarrow.fs import S3FileSystem

    credentials, region, endpoint = _s3_connection(conn_id)
    options: dict[str, Any] = {"region": region or "us-east-1"}
    if credentials is not None:
        options.update(
            access_key=credentials.access_key,
            secret_key=credentials.secret_key,
            session_token=credentials.token,
        )
    if endpoint:
        parts = urlsplit(endpoint)
        options.update(endpoint_override=parts.netloc, scheme=parts.scheme or "https")
    return LakeLocation(root, S3LakeFileSystem(S3FileSystem(**options)))


def _s3_connection(conn_id: str) -> tuple[Any, str | None, str | None]:
    """(frozen credentials, region, endpoint URL) of the Airflow connection, or boto3's own chain."""
    try:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    except ImportError:  # the query CLI without Airflow: boto3 finds credentials and the endpoint
        import boto3

        session = boto3.session.Session()
        credentials = session.get_credentials()
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        return (credentials.get_frozen_credentials() if credentials else None), session.region_name, endpoint
    hook = AwsBaseHook(aws_conn_id=conn_id, client_type="s3")
    session = hook.get_session()
    credentials = session.get_credentials()
    endpoint = hook.conn_config.get_service_endpoint_url("s3")
    region = hook.conn_config.region_name or session.region_name
    return (credentials.get_frozen_credentials() if credentials else None), region, endpoint
