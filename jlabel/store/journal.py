"""The append-only operation journal: each writer (one open Dataset) appends its own records.

Local disk: one file per writer, a record per line (``crc32 json``), appended and fsynced. A torn
last line (a writer killed mid-write: no newline yet) was never acknowledged and is ignored. A
complete line that fails its checksum is damage: it is reported (:class:`Damage`), never
silently dropped. The writer holds an ``flock`` on its file; a compactor retires only files
nobody holds, moving them to ``kept_dir`` (so that the previous snapshot plus the journal stays
complete if the newest snapshot is ever damaged) and deleting what the previous compaction kept.
Object stores (S3): no append, so one small object per record, checksummed the same way; PUT
returns once it is durable. Objects included in the *previous* snapshot are deleted, those only
in the newest one kept, for the same reason.
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
        """The record as compact JSON bytes."""
        return json.dumps(
            {"t": self.t, "w": self.writer, "s": self.seq, "op": self.op}, separators=(",", ":")
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> Record:
        """A record from its JSON bytes."""
        obj = json.loads(data)
        return cls(float(obj["t"]), str(obj["w"]), int(obj["s"]), obj["op"])


@dataclass(frozen=True)
class Damage:
    """Bytes of the journal that hold no readable record although they are complete.

    ``where`` names the file or object, ``offset`` the byte where the damage starts (0 for an
    object), ``data`` the damaged bytes (kept aside by the store), ``writer`` the writer whose
    file it is (seq gaps around it tell how many records were lost).
    """

    where: str
    writer: str
    offset: int
    data: bytes
    lost: int
    """Records lost: the gap in the writer's sequence numbers around the damage (when a record
    follows it), else at least one per damaged line."""


def encode_line(record: Record) -> bytes:
    """One journal line: the checksummed record and a newline."""
    return checksummed(record.encode()) + b"\n"


def checksummed(body: bytes) -> bytes:
    """``b"<crc32 hex> " + body``: the form of a journal line (without its newline) and object."""
    return b"%08x " % zlib.crc32(body) + body


def decode_checksummed(data: bytes) -> Record | None:
    """The record of one checksummed line or object; None when damaged."""
    if len(data) <= 9 or data[8:9] != b" ":
        return None
    body = data[9:]
    try:
        if int(data[:8], 16) != zlib.crc32(body):
            return None
        return Record.decode(body)
    except (ValueError, KeyError, TypeError):
        return None


def decode_lines(data: bytes) -> tuple[list[Record], int]:
    """Records from complete, intact lines, and the byte length they span."""
    records, _, end = decode_lines_reporting(data)
    return records, end


def decode_lines_reporting(
    data: bytes, *, seq_before: int = -1
) -> tuple[list[Record], list[tuple[int, bytes, int]], int]:
    """Records of the complete lines, the damaged spans ``(offset, bytes, records lost)`` among
    them (runs of complete lines that fail their checksum, merged), and the byte length the
    lines span. A trailing part without a newline is a torn write in progress: neither a record
    nor damage. `seq_before` is the writer's last sequence number before `data` (-1: none)."""
    records: list[Record] = []
    spans: list[list[int]] = []  # [start, end, seq before, lines]
    last_seq = seq_before
    pos = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            break
        record = decode_checksummed(data[pos:nl])
        if record is not None:
            records.append(record)
            if spans and spans[-1][2] == last_seq and len(spans[-1]) == 4:
                spans[-1].append(record.seq)  # the first record after the span
            last_seq = record.seq
        elif spans and spans[-1][1] == pos:
            spans[-1][1] = nl + 1
            spans[-1][3] += 1
        else:
            spans.append([pos, nl + 1, last_seq, 1])
        pos = nl + 1
    damaged = []
    for span in spans:
        start, end, before, lines = span[:4]
        lost = span[4] - before - 1 if len(span) == 5 else lines
        damaged.append((start, data[start:end], max(1, lost)))
    return records, damaged, pos


class LocalJournal:
    """Journal files under a local directory."""

    def __init__(self, directory: str, kept_dir: str | None = None) -> None:
        self.dir = directory
        self.kept_dir = kept_dir
        """Where retired files go until the next compaction (None: they are deleted)."""
        self._fd: int | None = None
        self._writer: str | None = None
        self.offsets: dict[str, int] = {}
        self.last_seq: dict[str, int] = {}
        self.damage: list[Damage] = []
        """Damage found by the reads since the last `reset` (the store reports it)."""

    def _path(self, writer: str) -> str:
        return os.path.join(self.dir, f"{writer}.log")

    def append(self, record: Record) -> None:
        """Write `record` durably (fsynced line locally, one object on S3) before returning."""
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
        """Release this writer's open journal file, if any."""
        if self._fd is not None:
            os.close(self._fd)
        self._fd = self._writer = None

    def writers(self) -> list[str]:
        """Ids of the writers that have journal files here."""
        return _log_writers(self.dir)

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
            before = self.last_seq.get(writer, -1)
            records, damaged, used = decode_lines_reporting(data, seq_before=before)
            out.extend(records)
            path = self._path(writer)
            self.damage += [Damage(path, writer, start + o, b, n) for o, b, n in damaged]
            self.offsets[writer] = start + used
            if records:
                self.last_seq[writer] = records[-1].seq
        for gone in set(self.offsets) - live:
            del self.offsets[gone]
        return out

    def read_kept(self) -> list[Record]:
        """Every record of the files the last compaction retired (for a fallback load)."""
        out: list[Record] = []
        if self.kept_dir is None:
            return out
        for writer in _log_writers(self.kept_dir):
            path = os.path.join(self.kept_dir, f"{writer}.log")
            with contextlib.suppress(FileNotFoundError), open(path, "rb") as f:
                records, damaged, _ = decode_lines_reporting(f.read())
                out.extend(records)
                self.damage += [Damage(path, writer, o, b, n) for o, b, n in damaged]
        return out

    def reset(self, watermarks: dict[str, int] | None = None) -> None:
        """Read everything again from the start at the next `read_new`."""
        self.offsets = {}
        self.last_seq = {}
        self.damage = []

    def delete_included(self, watermarks: dict[str, int], own_old: set[str]) -> None:
        """Retire the files fully included in a snapshot whose writer is gone (no lock held):
        delete what the previous compaction kept, then move these to `kept_dir` (or delete
        them when there is none)."""
        if self.kept_dir is not None:
            for writer in _log_writers(self.kept_dir):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.kept_dir, f"{writer}.log"))
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
                    self._retire(path, writer)
                    self.offsets.pop(writer, None)
            finally:
                os.close(fd)

    def _retire(self, path: str, writer: str) -> None:
        if self.kept_dir is None:
            os.unlink(path)
            return
        makedirs_durable(self.kept_dir)
        os.replace(path, os.path.join(self.kept_dir, f"{writer}.log"))
        _fsync_dir(self.kept_dir)


class ObjectJournal:
    """Journal as one object per record: ``<dir>/<writer>/<seq>.json`` (S3 has no append)."""

    def __init__(self, fs: Any, directory: str, *, deadline: Any = None) -> None:
        self.fs = fs
        self.dir = directory
        self.deadline = deadline or (lambda size: {})
        """``size -> {"timeout": seconds}`` for a write (see ``Store.write_deadline``)."""
        self.seen: dict[str, int] = {}
        self.damage: list[Damage] = []

    def append(self, record: Record) -> None:
        """Write `record` as one checksummed object (with the write deadline) before returning."""
        data = checksummed(record.encode())
        path = f"{self.dir}/{record.writer}/{record.seq:010d}.json"
        self.fs.pipe_file(path, data, **self.deadline(len(data)))
        self.seen[record.writer] = max(self.seen.get(record.writer, -1), record.seq)

    def close(self) -> None:
        """Nothing to release on S3."""
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
        """Records written since the last call (all of them on the first call)."""
        self._forget_listings()
        todo = {p: w for w, s, p in self._listing() if s > self.seen.get(w, -1)}
        out: list[Record] = []
        if todo:
            # a compactor may delete records between our listing and reading: they are in its
            # snapshot, which the caller loads when it sees the newer generation
            self._forget_listings()  # find() just cached per-writer listings
            for path, data in self.fs.cat(list(todo), on_error="return").items():
                if isinstance(data, FileNotFoundError):
                    continue
                if isinstance(data, BaseException):  # never skip a record we could not read
                    raise data
                record = decode_object(data)
                if record is None:
                    self.damage.append(Damage(path, todo[path], 0, data, 1))
                else:
                    out.append(record)
        for rec in out:
            self.seen[rec.writer] = max(self.seen.get(rec.writer, -1), rec.seq)
        return out

    def read_kept(self) -> list[Record]:
        """Objects are retired one compaction late: all of them are still under the journal."""
        return []

    def reset(self, watermarks: dict[str, int] | None = None) -> None:
        """Read again from `watermarks` (records included in the snapshot are not fetched)."""
        self.seen = dict(watermarks or {})
        self.damage = []

    def delete_included(self, watermarks: dict[str, int], own_old: set[str]) -> None:
        """Delete the objects included in `watermarks` (the previous snapshot's)."""
        self._forget_listings()
        doomed = [p for w, s, p in self._listing() if s <= watermarks.get(w, -1)]
        if doomed:
            self.fs.rm(doomed)


def decode_object(data: bytes) -> Record | None:
    """A journal object: checksummed (current) or plain JSON (written before checksums)."""
    record = decode_checksummed(data)
    if record is not None:
        return record
    if data[:1] == b"{":  # jlabel 0.1 objects carry no checksum: trust what parses
        with contextlib.suppress(ValueError, KeyError, TypeError):
            return Record.decode(data)
    return None


def _log_writers(directory: str) -> list[str]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(n[:-4] for n in names if n.endswith(".log"))


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
