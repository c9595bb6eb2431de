"""Durable storage of a dataset under ``<root>/.jlabel/`` (local disk or any fsspec store).

- ``snapshots/<gen>.parquet``: the samples table; generations are created exclusively, so two
  kernels compacting at once cannot overwrite each other (the loser simply keeps its journal).
- ``journal/``: operations since the snapshot (see :mod:`jlabel.store.journal`);
  ``journal-kept/``: local journal files the last compaction retired (the previous snapshot
  plus these and the journal rebuild the state if the newest snapshot is ever damaged).
- ``damaged/``: copies of damaged store files and journal bytes, kept for inspection; jlabel
  never deletes them.
- ``versions/``, ``jobs/``, ``meta.json``: small immutable or atomically replaced objects.

The store moves bytes; it knows nothing of the samples table (:mod:`jlabel.codec` does).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from fsspec.implementations.local import LocalFileSystem

from jlabel.errors import DataLossWarning, StorageError
from jlabel.store.journal import (
    Damage,
    LocalJournal,
    ObjectJournal,
    Record,
    _fsync_dir,
    makedirs_durable,
)

STORE_DIR = ".jlabel"
WRITE_DEADLINE = 35.0
"""Seconds a remote write may take before it fails (plus a second per MB written)."""


class Store:
    """All reads and writes of one dataset's ``.jlabel/`` folder."""

    def __init__(self, fs: Any, root: str, url: str) -> None:
        self.fs = fs
        self.root = root
        self.url = url  # for messages: the path or s3:// URL the user gave
        self.dir = f"{root.rstrip('/')}/{STORE_DIR}"
        self.local = isinstance(fs, LocalFileSystem)
        self.journal: LocalJournal | ObjectJournal = (
            LocalJournal(self.path("journal"), self.path("journal-kept"))
            if self.local
            else ObjectJournal(fs, self.path("journal"), deadline=self.write_deadline)
        )
        self.writer = new_writer_id()
        self.seq = 0
        self._last_t = 0.0
        self.problems: list[str] = []
        """Damage this store found and reported (each once), for ``ds.check()``."""
        self._reported: set[tuple[str, int]] = set()

    def write_deadline(self, size: int) -> dict[str, float]:
        """``timeout=`` for a remote write of `size` bytes (nothing for local files).

        botocore's timeouts do not cover a PUT whose server never answers its
        ``Expect: 100-continue`` (aiohttp waits forever): this deadline does, at 35 s plus a
        second per MB (a slow link may upload at 1 MB/s).
        """
        return {} if self.local else {"timeout": WRITE_DEADLINE + size / 2**20}

    def path(self, *parts: str) -> str:
        """The fsspec path of `parts` inside the store folder (`<root>/.jlabel/`)."""
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
            written = (
                " The request may have reached the storage, so this change may or may not have "
                "been saved: ds.refresh() shows which, and retrying it is harmless."
                if doing.startswith(("write", "save"))
                else ""
            )
            raise StorageError(
                f"could not {doing} at {self.url}: {type(exc).__name__}: {exc}.{written} "
                "Nothing acknowledged earlier is lost; check that the storage is reachable "
                "(endpoint, credentials, disk space) and retry."
            ) from exc

    # ------------------------------------------------------------------ journal
    def append(self, op: dict[str, Any]) -> Record:
        """Durably journal one operation; returns once it is on disk / in the bucket."""
        t = max(time.time(), self._last_t + 1e-6)
        record = Record(t, self.writer, self.seq, op)
        try:
            with self.errors("write the journal"):
                try:
                    self.journal.append(record)
                except FileNotFoundError as exc:  # the bucket (or local folder) went away
                    raise self.gone(exc) from exc
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

    def gone(self, exc: BaseException) -> StorageError:
        """The error for a dataset whose bucket, prefix or folder disappeared."""
        return StorageError(
            f"the storage of {self.url} is gone ({type(exc).__name__}: {exc}): the bucket or "
            "folder was deleted or these credentials no longer see it. Nothing was written; "
            "restore it (or check storage_options) and retry."
        )

    def check_exists(self) -> None:
        """Raise `gone` when the dataset's bucket (S3) or folder no longer exists."""
        with self.errors("reach the dataset"):
            try:
                if self.local:
                    if not os.path.isdir(self.root):
                        raise FileNotFoundError(self.root)
                else:
                    self.fs.info(self.root.split("/", 1)[0])
            except FileNotFoundError as exc:
                raise self.gone(exc) from exc

    def read_journal(self, watermarks: dict[str, int], *, kept: bool = False) -> list[Record]:
        """New records from every writer, not included in the snapshot, in global order.

        ``kept=True`` also reads the files the last compaction retired (a fallback load from
        the previous snapshot needs them). Damaged records are reported and kept aside.
        """
        with self.errors("read the journal"):
            records = self.journal.read_kept() if kept else []
            records += self.journal.read_new()
            damage, self.journal.damage = self.journal.damage, []
        for item in damage:
            self._report_damage(item)
        return sorted(r for r in records if r.seq > watermarks.get(r.writer, -1))

    def restart_journal(self, watermarks: dict[str, int]) -> None:
        """Read the journal from the start again (skipping what `watermarks` include)."""
        self.journal.reset(watermarks)

    def _report_damage(self, item: Damage) -> None:
        key = (item.where, item.offset)
        if key in self._reported:
            return
        self._reported.add(key)
        digest = hashlib.sha1(item.data).hexdigest()[:12]
        base = item.where.rstrip("/").rsplit("/", 1)[-1].replace(item.writer, "").strip(".-")
        aside = f"damaged/journal-{item.writer}-{base}-{item.offset}-{digest}.bin"
        with suppress(StorageError):  # keeping a copy must not stop the load
            self.create_exclusive(aside, item.data)
        self.report(
            f"{item.lost} journal record(s) of {item.where} are damaged "
            f"({len(item.data)} bytes at offset {item.offset}) and were skipped: the changes "
            f"they held are lost. The damaged bytes are kept in {self.path(aside)}."
        )

    def report(self, message: str) -> None:
        """Warn about damage (a DataLossWarning) and remember it for ``ds.check()``."""
        self.problems.append(message)
        warnings.warn(f"jlabel: {message}", DataLossWarning, stacklevel=4)

    def retire_journal(
        self, *, included: dict[str, int], previous: dict[str, int], own: set[str]
    ) -> None:
        """After a snapshot with watermarks `included` (built on one with `previous`): retire
        the journal so that the previous snapshot plus what stays still rebuilds the state.

        Local files fully included move to ``journal-kept/`` (what the last compaction kept there
        is deleted); objects are deleted one compaction late (those `previous` includes).
        """
        if self.local:
            self.journal.delete_included(included, own)
        else:
            self.journal.delete_included(previous, own)

    def rotate_writer(self) -> str:
        """Start a new journal file/prefix for this writer; returns the old writer id."""
        old = self.writer
        self.journal.close()
        self.writer = new_writer_id()
        self.seq = 0
        return old

    # ------------------------------------------------------------------ snapshots
    def snapshot_gens(self) -> list[int]:
        """Generation numbers of the snapshots there are, oldest first."""
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
        """The bytes of snapshot `gen`."""
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

    def set_aside_snapshot(self, gen: int, reason: str) -> None:
        """Move a damaged snapshot to ``damaged/`` (kept, never deleted) and report it."""
        rel = f"snapshots/{gen:08d}.parquet"
        aside = f"damaged/snapshot-{gen:08d}-{int(time.time())}.parquet"
        with self.errors(f"set the damaged {rel} aside"):
            src, dst = self.path(*rel.split("/")), self.path(*aside.split("/"))
            if self.local:
                makedirs_durable(os.path.dirname(dst))
                with suppress(FileNotFoundError):
                    os.replace(src, dst)
            else:
                with suppress(FileNotFoundError):
                    self.fs.mv(src, dst)
        self.report(f"snapshot {rel} is damaged ({reason}); it was moved to {self.path(aside)}")

    def write_snapshot(self, gen: int, data: bytes) -> bool:
        """Create snapshot `gen`; False if another writer created it first."""
        return self.create_exclusive(f"snapshots/{gen:08d}.parquet", data)

    def delete_snapshots_before(self, gen: int, keep: int = 1) -> None:
        """Delete all but `keep` snapshots older than `gen` (a reader may still be reading
        the previous one), and temp files that killed writers left behind."""
        old = [g for g in self.snapshot_gens() if g < gen][:-keep] if keep else []
        for g in old:
            self.delete(f"snapshots/{g:08d}.parquet")
            self.delete(f"snapshots/{g:08d}.marks.json")
        self.delete_stale_temps("snapshots")

    def write_marks(self, gen: int, watermarks: dict[str, int]) -> None:
        """Remember what snapshot `gen` includes, beside it: if it is ever damaged, these say
        which journal records a fallback to the previous snapshot must find."""
        self.write_json(f"snapshots/{gen:08d}.marks.json", watermarks)

    def read_marks(self, gen: int) -> dict[str, int] | None:
        """The watermarks snapshot `gen` included (None when unknown or unreadable)."""
        try:
            marks = self.read_json(f"snapshots/{gen:08d}.marks.json")
        except StorageError:
            return None
        return {str(k): int(v) for k, v in marks.items()} if isinstance(marks, dict) else None

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

    # ------------------------------------------------------------------ meta.json
    def ensure_meta(self) -> dict[str, Any]:
        """The dataset's ``meta.json`` (its stable key), created on first open.

        A damaged one is kept aside under ``damaged/`` and replaced by a new one with a new
        key: the key only names caches (thumbnails, features), which are then rebuilt; no label
        depends on it.
        """
        data = self.read_bytes("meta.json")
        if data is not None:
            meta = _parse_meta(data)
            if meta is not None:
                return meta
            digest = hashlib.sha1(data).hexdigest()[:12]
            aside = f"damaged/meta-{digest}.json"
            with suppress(StorageError):
                self.create_exclusive(aside, data)
            self.report(
                f"meta.json is damaged; it was kept in {self.path(aside)} and replaced by a new "
                "one (a new dataset key: thumbnail and feature caches are rebuilt, labels are "
                "not affected)"
            )
            self.write_bytes("meta.json", _new_meta())
        elif not self.create_exclusive("meta.json", _new_meta()):
            pass  # another kernel created it first: read theirs
        meta = _parse_meta(self.read_bytes("meta.json") or b"")
        if meta is None:  # pragma: no cover - replaced by a damaged one between two reads
            raise StorageError(f"meta.json of {self.url} keeps changing; open the dataset again")
        return meta

    # ------------------------------------------------------------------ small files
    def create_exclusive(self, rel: str, data: bytes) -> bool:
        """Write `rel` only if it does not exist yet; False when another writer was first."""
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
                self.fs.pipe_file(path, data, mode="create", **self.write_deadline(len(data)))
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
                self.fs.pipe_file(path, data, **self.write_deadline(len(data)))

    def read_bytes(self, rel: str) -> bytes | None:
        """The bytes of `rel` under the store, None when it does not exist."""
        path = self.path(*rel.split("/"))
        with self.errors(f"read {rel}"):
            try:
                return self.fs.cat_file(path)
            except FileNotFoundError:
                return None

    def write_json(self, rel: str, obj: Any) -> None:
        """Write `obj` as JSON to `rel` (atomically replacing it)."""
        self.write_bytes(rel, json.dumps(obj, indent=1, default=str).encode())

    def read_json(self, rel: str) -> Any:
        """JSON under the store, None when missing; a StorageError when it is damaged."""
        data = self.read_bytes(rel)
        if data is None:
            return None
        try:
            return json.loads(data)
        except ValueError as exc:
            raise StorageError(
                f"{self.path(rel)} is damaged ({exc}): move it away (or restore it) and retry"
            ) from exc

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
        """Delete `rel` under the store (nothing when it is already gone)."""
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


def _new_meta() -> bytes:
    return json.dumps({"format": 1, "key": uuid.uuid4().hex, "created_at": time.time()}).encode()


def _parse_meta(data: bytes) -> dict[str, Any] | None:
    try:
        meta = json.loads(data)
    except ValueError:
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get("key"), str) or not meta["key"]:
        return None
    return meta


def new_writer_id() -> str:
    """A writer id that sorts by creation time (ms since the epoch, then random hex)."""
    return f"{int(time.time() * 1000):013d}-{uuid.uuid4().hex[:10]}"
