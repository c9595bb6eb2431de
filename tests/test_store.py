"""The storage layer on its own: journal lines, journal files, small files, snapshots."""

from __future__ import annotations

import math
import os
from pathlib import Path

import fsspec
import numpy as np
import pytest

from jlabel.codec import read_parquet, write_parquet
from jlabel.errors import StorageError
from jlabel.ops import apply as apply_op
from jlabel.query import to_frame
from jlabel.store import Store
from jlabel.store.journal import LocalJournal, Record, decode_lines, encode_line
from jlabel.table import SampleTable


def _rec(seq: int, writer: str = "w1", **op) -> Record:
    return Record(1000.0 + seq, writer, seq, {"op": "label", "ids": ["a"], **op})


# ---------------------------------------------------------------- journal lines
def test_lines_round_trip_and_torn_or_damaged_lines_are_dropped() -> None:
    lines = [encode_line(_rec(i, names=[f"n{i}"])) for i in range(3)]
    records, end = decode_lines(b"".join(lines))
    assert [r.seq for r in records] == [0, 1, 2] and end == sum(map(len, lines))
    assert records[1].op == {"op": "label", "ids": ["a"], "names": ["n1"]}

    torn = b"".join(lines[:2]) + lines[2][:-5]
    records, end = decode_lines(torn)
    assert [r.seq for r in records] == [0, 1]
    assert end == len(lines[0]) + len(lines[1])  # the torn tail is not consumed

    damaged = lines[0] + lines[1].replace(b"n1", b"m1") + lines[2] + b"zz not a record\n"
    assert [r.seq for r in decode_lines(damaged)[0]] == [0, 2]


def test_records_order_by_time_then_writer_then_seq() -> None:
    a, b = Record(1.0, "b", 5, {}), Record(1.0, "a", 9, {})
    c = Record(0.5, "z", 0, {})
    assert sorted([a, b, c]) == [c, b, a]


# ---------------------------------------------------------------- local journal files
def test_local_journal_reads_incrementally_and_waits_for_whole_lines(tmp_path: Path) -> None:
    writer, reader = LocalJournal(str(tmp_path)), LocalJournal(str(tmp_path))
    writer.append(_rec(0))
    writer.append(_rec(1))
    assert [r.seq for r in reader.read_new()] == [0, 1]
    assert reader.read_new() == []
    # another writer's record is half written when we read: it is picked up once complete
    line = encode_line(_rec(0, writer="w2"))
    path = tmp_path / "w2.log"
    path.write_bytes(line[:10])
    assert reader.read_new() == []
    with open(path, "ab") as f:
        f.write(line[10:])
    assert [(r.writer, r.seq) for r in reader.read_new()] == [("w2", 0)]
    writer.close()


def test_delete_included_spares_live_writers_and_unincluded_records(tmp_path: Path) -> None:
    live, other = LocalJournal(str(tmp_path)), LocalJournal(str(tmp_path))
    live.append(_rec(0, writer="live"))  # holds a lock on live.log
    for seq in range(3):
        other.append(_rec(seq, writer="done"))
        other.append(_rec(seq, writer="partial"))
    other.close()  # writers "done" and "partial" are gone (their locks released)
    compactor = LocalJournal(str(tmp_path))
    compactor.delete_included({"live": 0, "done": 2, "partial": 1}, set())
    assert sorted(os.listdir(tmp_path)) == ["live.log", "partial.log"]
    live.close()
    compactor.delete_included({"live": 0}, set())
    assert sorted(os.listdir(tmp_path)) == ["partial.log"]


# ---------------------------------------------------------------- small files
@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(fsspec.filesystem("file"), str(tmp_path), str(tmp_path))


def test_create_exclusive_never_overwrites_and_leaves_no_temp_files(store: Store) -> None:
    assert store.create_exclusive("snapshots/00000001.parquet", b"first")
    assert not store.create_exclusive("snapshots/00000001.parquet", b"second")
    assert store.read_bytes("snapshots/00000001.parquet") == b"first"
    assert os.listdir(store.path("snapshots")) == ["00000001.parquet"]
    assert store.snapshot_gens() == [1]


def test_write_bytes_replaces_atomically_and_read_of_missing_is_none(store: Store) -> None:
    assert store.read_bytes("meta.json") is None and store.read_json("x/y.json") is None
    store.write_json("jobs/a.json", {"n": 1})
    store.write_json("jobs/a.json", {"n": 2})
    assert store.read_json("jobs/a.json") == {"n": 2}
    assert store.list("jobs") == ["a.json"]  # no temp file left behind


def test_snapshot_generations_and_cleanup(store: Store) -> None:
    for gen in (1, 2, 3, 4):
        assert store.write_snapshot(gen, b"x")
    store.fs.pipe_file(store.path("snapshots", ".tmp-abc"), b"half")
    assert store.snapshot_gens() == [1, 2, 3, 4]
    store.delete_snapshots_before(4, keep=1)
    assert store.snapshot_gens() == [3, 4]


def test_storage_failures_become_storage_errors(store: Store) -> None:
    with (
        pytest.raises(StorageError, match=r"could not write the journal at .*retry"),
        store.errors("write the journal"),
    ):
        raise OSError(28, "No space left on device")
    with pytest.raises(FileNotFoundError), store.errors("read"):
        raise FileNotFoundError("x")
    with pytest.raises(ValueError), store.errors("read"):
        raise ValueError("a bug, not a storage failure")


def test_journal_append_reaches_the_file_before_returning(store: Store) -> None:
    store.append({"op": "add_labels", "names": ["cat"]})
    files = os.listdir(store.path("journal"))
    data = Path(store.path("journal", files[0])).read_bytes()
    assert [r.op for r in decode_lines(data)[0]] == [{"op": "add_labels", "names": ["cat"]}]


# ---------------------------------------------------------------- snapshots
def _table() -> SampleTable:
    t = SampleTable()
    rows = [
        {"id": f"d/{c}.png", "size": i, "mtime": 10.0 + i, "created_at": 1e9 + i}
        for i, c in enumerate("qwertyuiop")
    ]
    apply_op(t, {"op": "add_samples", "rows": rows})
    apply_op(
        t,
        {"op": "label", "ids": ["d/q.png", "d/w.png"], "names": ["cat"], "user": "ann", "t": 1.7e9},
    )
    apply_op(t, {"op": "label", "ids": ["d/w.png"], "names": ["dög-2"], "user": "bob", "t": 1.7e9})
    apply_op(
        t,
        {
            "op": "set_proposals",
            "ids": ["d/e.png"],
            "labels": [["cat", "dog"]],
            "scores": [[0.9, 0.25]],
            "hardness": [0.5],
            "hard": [True],
        },
    )
    apply_op(t, {"op": "set_groups", "ids": ["d/r.png"], "groups": ["g1"]})
    apply_op(
        t,
        {
            "op": "image_info",
            "ids": ["d/t.png"],
            "widths": [640],
            "heights": [480],
            "corrupt": [True],
        },
    )
    apply_op(
        t,
        {
            "op": "import_labels",
            "ids": ["d/y.png"],
            "labels": [["car"]],
            "boxes": [[{"label": "car", "xmin": 1, "ymin": 2, "xmax": 3, "ymax": 4}]],
            "label_mtimes": [5.0],
            "t": 1.6e9,
        },
    )
    apply_op(t, {"op": "remove_samples", "ids": ["d/u.png"]})  # a tombstone is not written
    apply_op(t, {"op": "set_missing", "ids": ["d/i.png"], "missing": True})
    return t


def test_snapshot_round_trip_keeps_every_column() -> None:
    table = _table()
    again, meta = read_parquet(write_parquet(table, {"watermarks": {"w": 3}}))
    assert meta["watermarks"] == {"w": 3} and meta["labels"] == table.labels
    assert again.labels == table.labels == ["cat", "dög-2", "car"]
    rows = table.order()[table.alive[table.order()]]
    before = to_frame(table, rows)
    after = to_frame(again, again.order())
    assert len(after) == 9 and "d/u.png" not in set(after["id"])
    for col in before.columns:
        a, b = before[col].tolist(), after[col].tolist()
        if col == "hardness":
            assert [x if not math.isnan(x) else None for x in a] == [
                x if not math.isnan(x) else None for x in b
            ]
        else:
            assert [_plain(x) for x in a] == [_plain(x) for x in b], col


def _plain(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def test_snapshot_rows_are_sorted_so_no_sort_is_needed_after_reading() -> None:
    again, _ = read_parquet(write_parquet(_table(), {}))
    assert again.ids.tolist() == sorted(again.ids.tolist())
    assert np.array_equal(again.order(), np.argsort(again.ids, kind="stable"))
    assert again.row_of == {sid: i for i, sid in enumerate(again.ids)}
    apply_op(again, {"op": "label", "ids": ["d/o.png"], "names": ["cat"], "user": "x", "t": 1.0})
    assert again.masks["cat"][again.row_of["d/o.png"]]


def test_a_failed_append_never_glues_the_next_record_onto_a_torn_line(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jlabel.store.journal as journal

    store.append({"op": "add_labels", "names": ["a"]})
    real_write = os.write

    def torn_write(fd: int, data: bytes) -> int:
        real_write(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal.os, "write", torn_write)
    with pytest.raises(StorageError, match="No space left"):
        store.append({"op": "add_labels", "names": ["lost"]})
    monkeypatch.setattr(journal.os, "write", real_write)
    store.append({"op": "add_labels", "names": ["c"]})
    ops = [r.op["names"] for r in Store(store.fs, store.root, store.url).read_journal({})]
    assert ops == [["a"], ["c"]]  # "c" went to a fresh journal file, intact


def test_compaction_cleanup_removes_stale_temp_files_only(store: Store) -> None:
    store.write_snapshot(1, b"x")
    stale = Path(store.path("snapshots", ".tmp-old"))
    fresh = Path(store.path("snapshots", ".tmp-new"))
    stale.write_bytes(b"killed mid-write")
    fresh.write_bytes(b"being written now")
    os.utime(stale, (1e9, 1e9))
    store.delete_snapshots_before(1)
    assert not stale.exists() and fresh.exists()
    assert store.snapshot_gens() == [1]


def test_read_latest_snapshot(store: Store) -> None:
    assert store.read_latest_snapshot() is None
    store.write_snapshot(1, b"one")
    store.write_snapshot(2, b"two")
    assert store.read_latest_snapshot() == (2, b"two")
