"""The append-only operation journal: each writer (one open Dataset) appends its own records.

Local disk: one file per writer, a record per line (``crc32 json``), appended and fsynced; a torn
last line (killed mid-write) fails its checksum and is ignored, so it was never acknowledged.
The writer holds an ``flock`` on its file; a compactor deletes only files nobody holds.
Object stores (S3): no append, so one small object per record; PUT returns once it is durable.
"""

from __future__ import annotations

import contextlib
import json
import os
import zlib
from dataclasses import dataclass
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


@dataclass(frozen=True, order=True)
class Record:
    """One journaled operation. Ordered by (time, writer, seq) across writers."""

    t: float
    writer: str
    seq: int
    op: dict[str, Any]

    def encode(self) -> bytes:
        return json.dumps(
            {"t": self.t, "w": self.writer, "s": self.seq, "op": self.op}, separators=(",", ":")
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> Record:
        obj = json.loads(data)
        return cls(obj["t"], obj["w"], obj["s"], obj["op"])


def encode_line(record: Record) -> bytes:
    body = record.encode()
    return b"%08x " % zlib.crc32(body) + body + b"\n"


def decode_lines(data: bytes) -> tuple[list[Record], int]:
    """Records from complete, intact lines, and the byte length they span."""
    records: list[Record] = []
    end = 0
    pos = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            break
        line = data[pos:nl]
        pos = nl + 1
        if len(line) > 9 and line[8:9] == b" ":
            body = line[9:]
            try:
                if int(line[:8], 16) == zlib.crc32(body):
                    records.append(Record.decode(body))
            except ValueError:
                pass
        end = pos
    return records, end


class LocalJournal:
    """Journal files under a local directory."""

    def __init__(self, directory: str) -> None:
        self.dir = directory
        self._fd: int | None = None
        self._writer: str | None = None
        self.offsets: dict[str, int] = {}

    def _path(self, writer: str) -> str:
        return os.path.join(self.dir, f"{writer}.log")

    def append(self, record: Record) -> None:
        if self._writer != record.writer:
            self.close()
            makedirs_durable(self.dir)
            fd = os.open(self._path(record.writer), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _fsync_dir(self.dir)
            self._fd, self._writer = fd, record.writer
        assert self._fd is not None
        line = encode_line(record)
        written = os.write(self._fd, line)
        if written != len(line):  # pragma: no cover - a full disk
            raise OSError(f"short write to the journal ({written} of {len(line)} bytes)")
        os.fsync(self._fd)
        self.offsets[record.writer] = self.offsets.get(record.writer, 0) + len(line)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = self._writer = None

    def writers(self) -> list[str]:
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return sorted(n[:-4] for n in names if n.endswith(".log"))

    def read_new(self) -> list[Record]:
        """Records appended since the last call (all records on the first call)."""
        out: list[Record] = []
        live = set(self.writers())
        for writer in live:
            start = self.offsets.get(writer, 0)
            try:
                with open(self._path(writer), "rb") as f:
                    f.seek(start)
                    data = f.read()
            except FileNotFoundError:
                continue
            records, used = decode_lines(data)
            out.extend(records)
            self.offsets[writer] = start + used
        for gone in set(self.offsets) - live:
            del self.offsets[gone]
        return out

    def reset(self) -> None:
        self.offsets = {w: o for w, o in self.offsets.items() if w == self._writer}
        self.offsets.pop(self._writer or "", None)

    def delete_included(self, watermarks: dict[str, int], own_old: set[str]) -> None:
        """Delete files fully included in a snapshot whose writer is gone (no lock held)."""
        for writer in self.writers():
            if writer == self._writer or writer not in watermarks:
                continue
            path = self._path(writer)
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                if writer not in own_old and fcntl is not None:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except OSError:
                        continue  # a live writer holds it
                with open(path, "rb") as f:
                    records, _ = decode_lines(f.read())
                if all(r.seq <= watermarks[writer] for r in records):
                    os.unlink(path)
                    self.offsets.pop(writer, None)
            finally:
                os.close(fd)


class ObjectJournal:
    """Journal as one object per record: ``<dir>/<writer>/<seq>.json`` (S3 has no append)."""

    def __init__(self, fs: Any, directory: str) -> None:
        self.fs = fs
        self.dir = directory
        self.seen: dict[str, int] = {}

    def append(self, record: Record) -> None:
        self.fs.pipe_file(f"{self.dir}/{record.writer}/{record.seq:010d}.json", record.encode())
        self.seen[record.writer] = max(self.seen.get(record.writer, -1), record.seq)

    def close(self) -> None:
        pass

    def _listing(self) -> list[tuple[str, int, str]]:
        try:
            paths = self.fs.find(self.dir)
        except FileNotFoundError:
            return []
        out = []
        for path in paths:
            parts = path.rsplit("/", 2)
            if len(parts) == 3 and parts[2].endswith(".json"):
                with contextlib.suppress(ValueError):
                    out.append((parts[1], int(parts[2][:-5]), path))
        return out

    def _forget_listings(self) -> None:
        """Drop cached listings of the journal and its sub-folders: fsspec's ``cat`` checks
        that paths exist against them, and a stale one silently hides new records."""
        self.fs.invalidate_cache(self.dir)
        cache = getattr(self.fs, "dircache", None)
        if cache is not None:
            for key in [k for k in list(cache) if k.startswith(self.dir + "/")]:
                cache.pop(key, None)

    def read_new(self) -> list[Record]:
        self._forget_listings()
        todo = [p for w, s, p in self._listing() if s > self.seen.get(w, -1)]
        out: list[Record] = []
        if todo:
            # a compactor may delete records between our listing and reading: they are in its
            # snapshot, which the caller loads when it sees the newer generation
            self._forget_listings()  # find() just cached per-writer listings
            for data in self.fs.cat(todo, on_error="return").values():
                if isinstance(data, FileNotFoundError):
                    continue
                if isinstance(data, BaseException):  # never skip a record we could not read
                    raise data
                out.append(Record.decode(data))
        for rec in out:
            self.seen[rec.writer] = max(self.seen.get(rec.writer, -1), rec.seq)
        return out

    def reset(self) -> None:
        self.seen = {}

    def delete_included(self, watermarks: dict[str, int], own_old: set[str]) -> None:
        self._forget_listings()
        doomed = [p for w, s, p in self._listing() if s <= watermarks.get(w, -1)]
        if doomed:
            self.fs.rm(doomed)


def makedirs_durable(path: str) -> None:
    """`os.makedirs`, then fsync the parent of each folder it created (so that a power cut
    cannot drop the new folder's entry, and with it the fsynced files inside)."""
    missing = []
    while path and not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder)
        _fsync_dir(os.path.dirname(folder) or ".")


def _fsync_dir(path: str) -> None:
    if os.name != "posix":  # pragma: no cover
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
