"""The health of a dataset's store: ``ds.check()`` and ``jlabel.fsck(root)``.

Reads every store file (meta, snapshots, journal files or objects, versions) and says what is
damaged, what was kept aside under ``.jlabel/damaged/`` and what to do. It changes nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from jlabel import ops
from jlabel.codec import read_parquet
from jlabel.errors import NotFound, StorageError
from jlabel.store import Store
from jlabel.store.journal import decode_lines_reporting, decode_object


@dataclass
class StoreReport:
    """What a store check found. ``ok`` is True when nothing is damaged."""

    url: str
    snapshots: int = 0
    journal_records: int = 0
    versions: int = 0
    kept_aside: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def __str__(self) -> str:
        head = (
            f"store of {self.url}: {self.snapshots} snapshot(s), {self.journal_records} journal "
            f"record(s), {self.versions} version(s)"
        )
        lines = [head + (", healthy" if self.ok else f", {len(self.problems)} problem(s):")]
        lines += [f"  - {p}" for p in self.problems]
        if self.kept_aside:
            lines.append(f"  damaged data kept in .jlabel/damaged/: {', '.join(self.kept_aside)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able values."""
        return {
            "ok": self.ok,
            "snapshots": self.snapshots,
            "journal_records": self.journal_records,
            "versions": self.versions,
            "kept_aside": list(self.kept_aside),
            "problems": list(self.problems),
        }


def fsck(
    source: str | os.PathLike[str], *, storage_options: dict[str, Any] | None = None
) -> StoreReport:
    """Check the store of the dataset at `source` without opening it (nothing is written)."""
    from jlabel.store.connect import connect

    url = os.fspath(source)
    fs, root = connect(url, storage_options)
    store = Store(fs, root.rstrip("/") if root != "/" else root, url)
    if not fs.exists(store.dir):
        raise NotFound(f"{url!r} holds no jlabel dataset (no .jlabel/ folder)")
    return check_store(store)


def check_store(store: Store, *, seen: list[str] | None = None) -> StoreReport:
    """Read every file of `store` and report what is damaged; `seen` adds what the open
    dataset already reported (damage found while loading)."""
    report = StoreReport(store.url)
    problems = report.problems
    _check_meta(store, problems)
    _check_snapshots(store, report)
    _check_journal(store, report)
    _check_versions(store, report)
    report.kept_aside = store.list("damaged")
    for message in seen or []:
        if message not in problems:
            problems.append(message)
    if problems:
        problems.append(
            "what to do: damaged journal records are lost (their labels must be made again); a "
            "damaged snapshot was replaced by the previous one plus the journal when that was "
            "complete; otherwise make a version current (ds.use_version) or restore .jlabel/ "
            "from a backup. Files under .jlabel/damaged/ can be deleted once inspected."
        )
    return report


def _check_meta(store: Store, problems: list[str]) -> None:
    data = store.read_bytes("meta.json")
    if data is None:
        problems.append("meta.json is missing (opening the dataset makes a new one)")
        return
    try:
        meta = json.loads(data)
        if not isinstance(meta, dict) or not meta.get("key"):
            raise ValueError("no key")
    except ValueError as exc:
        problems.append(f"meta.json is damaged ({exc}); opening the dataset replaces it")


def _check_snapshots(store: Store, report: StoreReport) -> None:
    for gen in store.snapshot_gens():
        report.snapshots += 1
        try:
            read_parquet(store.read_snapshot(gen))
        except FileNotFoundError:
            continue  # deleted by a compaction meanwhile
        except Exception as exc:
            report.problems.append(
                f"snapshot {gen:08d}.parquet is damaged ({type(exc).__name__}: {exc}); opening "
                "the dataset sets it aside and falls back to the previous one"
            )


def _check_journal(store: Store, report: StoreReport) -> None:
    fs = store.fs
    if store.local:
        for folder in ("journal", "journal-kept"):
            directory = store.path(folder)
            names = sorted(n for n in _listdir(directory) if n.endswith(".log"))
            for name in names:
                path = os.path.join(directory, name)
                with open(path, "rb") as f:
                    data = f.read()
                records, damaged, end = decode_lines_reporting(data)
                report.journal_records += len(records)
                _check_ops(records, f"{folder}/{name}", report.problems)
                for offset, chunk, lost in damaged:
                    report.problems.append(
                        f"{folder}/{name}: {lost} record(s) damaged ({len(chunk)} bytes at "
                        f"offset {offset})"
                    )
                if end < len(data):
                    pass  # a torn last line: a write that was never acknowledged
        return
    with store.errors("list the journal"):
        try:
            paths = sorted(fs.find(store.path("journal")))
        except FileNotFoundError:
            paths = []
        contents = fs.cat(paths, on_error="return") if paths else {}
    for path, data in contents.items():
        if isinstance(data, BaseException):
            if not isinstance(data, FileNotFoundError):
                report.problems.append(f"journal object {path} cannot be read: {data}")
            continue
        record = decode_object(data)
        if record is None:
            report.problems.append(f"journal object {path} is damaged (checksum or format)")
            continue
        report.journal_records += 1
        _check_ops([record], path, report.problems)


def _check_ops(records: list[Any], where: str, problems: list[str]) -> None:
    for record in records:
        try:
            ops.check(record.op, f"{where} (record {record.seq})")
        except StorageError as exc:
            problems.append(str(exc))


def _check_versions(store: Store, report: StoreReport) -> None:
    for name in store.list("versions"):
        report.versions += 1
        try:
            meta = store.read_json(f"versions/{name}/meta.json")
        except StorageError:
            report.problems.append(f"version {name!r}: meta.json is damaged")
            continue
        data = store.read_bytes(f"versions/{name}/samples.parquet")
        if meta is None or data is None:
            continue  # an interrupted creation: not listed as a version
        try:
            read_parquet(data)
        except Exception as exc:
            report.problems.append(
                f"version {name!r}: samples.parquet is damaged ({type(exc).__name__}); it "
                "cannot be used"
            )


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []
