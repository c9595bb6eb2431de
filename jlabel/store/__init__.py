"""Durable storage of a dataset under ``<root>/.jlabel/`` (local disk or any fsspec store).

- ``snapshots/<gen>.parquet``: the samples table; generations are created exclusively, so two
  kernels compacting at once cannot overwrite each other (the loser simply keeps its journal).
- ``journal/``: operations since the snapshot (see :mod:`jlabel.store.journal`).
- ``versions/``, ``jobs/``, ``meta.json``: small immutable or atomically replaced objects.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from fsspec.implementations.local import LocalFileSystem

from jlabel.errors import StorageError
from jlabel.store.journal import (
    LocalJournal,
    ObjectJournal,
    Record,
    _fsync_dir,
    makedirs_durable,
)

STORE_DIR = ".jlabel"


class Store:
    """All reads and writes of one dataset's ``.jlabel/`` folder."""

    def __init__(self, fs: Any, root: str, url: str) -> None:
        self.fs = fs
        self.root = root
        self.url = url  # for messages: the path or s3:// URL the user gave
        self.dir = f"{root.rstrip('/')}/{STORE_DIR}"
        self.local = isinstance(fs, LocalFileSystem)
        self.journal: LocalJournal | ObjectJournal = (
            LocalJournal(self.path("journal"))
            if self.local
            else ObjectJournal(fs, self.path("journal"))
        )
        self.writer = new_writer_id()
        self.seq = 0
        self._last_t = 0.0

    def path(self, *parts: str) -> str:
        return "/".join([self.dir, *parts])

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Turn storage failures into a StorageError that says what to do."""
        try:
            yield
        except StorageError:
            raise
        except Exception as exc:
            io_error = isinstance(exc, (OSError, TimeoutError)) and not isinstance(
                exc, FileNotFoundError
            )
            # botocore / aiohttp errors are not OSErrors
            remote = type(exc).__module__.split(".")[0] in ("botocore", "aiohttp", "aiobotocore")
            if not (io_error or remote):
                raise
            raise StorageError(
                f"could not {doing} at {self.url}: {type(exc).__name__}: {exc}. "
                "Nothing acknowledged is lost; check that the storage is reachable "
                "(endpoint, credentials, disk space) and retry."
            ) from exc

    # ------------------------------------------------------------------ journal
    def append(self, op: dict[str, Any]) -> Record:
        """Durably journal one operation; returns once it is on disk / in the bucket."""
        t = max(time.time(), self._last_t + 1e-6)
        record = Record(t, self.writer, self.seq, op)
        try:
            with self.errors("write the journal"):
                self.journal.append(record)
        except BaseException:
            # The record may be partly written (a torn local line that the next append would
            # glue onto) or fully written without our knowing (a lost S3 reply): never write
            # after it. The next append starts a fresh journal file / prefix.
            with suppress(Exception):
                self.rotate_writer()
            raise
        self.seq += 1
        self._last_t = t
        return record

    def read_journal(self, watermarks: dict[str, int]) -> list[Record]:
        """New records from every writer, not included in the snapshot, in global order."""
        with self.errors("read the journal"):
            records = self.journal.read_new()
        return sorted(r for r in records if r.seq > watermarks.get(r.writer, -1))

    def rotate_writer(self) -> str:
        """Start a new journal file/prefix for this writer; returns the old writer id."""
        old = self.writer
        self.journal.close()
        self.writer = new_writer_id()
        self.seq = 0
        return old

    # ------------------------------------------------------------------ snapshots
    def snapshot_gens(self) -> list[int]:
        with self.errors("list snapshots"):
            self.fs.invalidate_cache(self.path("snapshots"))
            try:
                names = self.fs.ls(self.path("snapshots"), detail=False)
            except FileNotFoundError:
                return []
        gens = []
        for name in names:
            base = name.rstrip("/").rsplit("/", 1)[-1]
            if base.endswith(".parquet") and base[:-8].isdigit():
                gens.append(int(base[:-8]))
        return sorted(gens)

    def read_snapshot(self, gen: int) -> bytes:
        with self.errors("read the snapshot"):
            return self.fs.cat_file(self.path("snapshots", f"{gen:08d}.parquet"))

    def read_latest_snapshot(self) -> tuple[int, bytes] | None:
        """The newest snapshot generation and its bytes (None if there is none yet).

        Retries when a newer compaction deleted the listed one between listing and reading.
        """
        for _ in range(5):
            gens = self.snapshot_gens()
            if not gens:
                return None
            with suppress(FileNotFoundError):
                return gens[-1], self.read_snapshot(gens[-1])
        raise StorageError(
            f"could not read a snapshot of {self.url}: they keep changing while being read; retry"
        )

    def write_snapshot(self, gen: int, data: bytes) -> bool:
        """Create snapshot `gen`; False if another writer created it first."""
        return self.create_exclusive(f"snapshots/{gen:08d}.parquet", data)

    def delete_snapshots_before(self, gen: int, keep: int = 1) -> None:
        """Delete all but `keep` snapshots older than `gen` (a reader may still be reading
        the previous one), and temp files that killed writers left behind."""
        old = [g for g in self.snapshot_gens() if g < gen][:-keep] if keep else []
        for g in old:
            self.delete(f"snapshots/{g:08d}.parquet")
        self.delete_stale_temps("snapshots")

    def delete_stale_temps(self, rel: str, max_age: float = 3600.0) -> None:
        """Remove local ``.tmp-*`` files under `rel` older than `max_age` seconds (their writer
        was killed; a live one finishes within seconds)."""
        if not self.local:
            return  # object stores have no temp files: each object appears whole
        directory = self.path(*rel.split("/"))
        with suppress(OSError), os.scandir(directory) as entries:
            for entry in entries:
                if entry.name.startswith(".tmp-"):
                    with suppress(OSError):
                        if time.time() - entry.stat().st_mtime > max_age:
                            os.unlink(entry.path)

    # ------------------------------------------------------------------ small files
    def create_exclusive(self, rel: str, data: bytes) -> bool:
        path = self.path(*rel.split("/"))
        with self.errors(f"write {rel}"):
            if self.local:
                directory, tmp = self._stage_local(path, data)
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    return False
                finally:
                    os.unlink(tmp)
                _fsync_dir(directory)
                return True
            try:
                self.fs.pipe_file(path, data, mode="create")
            except (FileExistsError, OSError) as exc:
                if isinstance(exc, FileExistsError) or "PreconditionFailed" in str(exc):
                    return False
                raise
            return True

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Atomically replace `rel` (temp + fsync + rename locally; one PUT on S3)."""
        path = self.path(*rel.split("/"))
        with self.errors(f"write {rel}"):
            if self.local:
                directory, tmp = self._stage_local(path, data)
                os.replace(tmp, path)
                _fsync_dir(directory)
            else:
                self.fs.pipe_file(path, data)

    def read_bytes(self, rel: str) -> bytes | None:
        path = self.path(*rel.split("/"))
        with self.errors(f"read {rel}"):
            try:
                return self.fs.cat_file(path)
            except FileNotFoundError:
                return None

    def write_json(self, rel: str, obj: Any) -> None:
        self.write_bytes(rel, json.dumps(obj, indent=1, default=str).encode())

    def read_json(self, rel: str) -> Any:
        data = self.read_bytes(rel)
        return None if data is None else json.loads(data)

    def list(self, rel: str) -> list[str]:
        """Names (not paths) directly under `rel`."""
        with self.errors(f"list {rel}"):
            self.fs.invalidate_cache(self.path(rel))
            try:
                paths = self.fs.ls(self.path(rel), detail=False)
            except FileNotFoundError:
                return []
            return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in paths)

    def delete(self, rel: str) -> None:
        with self.errors(f"delete {rel}"), suppress(FileNotFoundError):
            self.fs.rm_file(self.path(*rel.split("/")))

    def _stage_local(self, path: str, data: bytes) -> tuple[str, str]:
        """Write `data` durably to a temp file beside `path`; returns (folder, temp path)."""
        directory = os.path.dirname(path)
        makedirs_durable(directory)
        return directory, self._write_local_tmp(directory, data)

    def _write_local_tmp(self, directory: str, data: bytes) -> str:
        tmp = os.path.join(directory, f".tmp-{secrets.token_hex(6)}")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return tmp


def new_writer_id() -> str:
    return f"{int(time.time() * 1000):013d}-{uuid.uuid4().hex[:10]}"
