"""Damaged store files: what the user sees for each kind of damage (the README's table).

Nothing is lost silently: lost records are reported (a DataLossWarning naming the file and how
many), the damaged bytes are kept under .jlabel/damaged/, a damaged newest snapshot falls back
to the previous one plus the journal, and what cannot be rebuilt says what to do.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import jlabel
from jlabel.errors import DataLossWarning, StorageError


def _labels(ds: jlabel.Dataset) -> dict[str, set[str]]:
    frame = ds.to_pandas()
    return {s: set(v) for s, v in zip(frame["id"], frame["labels"], strict=True) if len(v)}


def _store(root: Path) -> Path:
    return root / ".jlabel"


def _journal(root: Path) -> list[Path]:
    return sorted((_store(root) / "journal").glob("*.log"), key=lambda p: p.stat().st_mtime)


def _snapshots(root: Path) -> list[Path]:
    return sorted((_store(root) / "snapshots").glob("*.parquet"))


def test_bytes_zeroed_in_the_journal_are_reported_with_the_records_lost(image_dir: Path):
    ds = jlabel.open(image_dir)
    for i in range(30):
        ds.label(f"img{i % 10}.png", f"n{i}")
    ds.close()
    log = _journal(image_dir)[-1]
    data = bytearray(log.read_bytes())
    start = len(data) // 3
    data[start : start + 2048] = bytes(2048)  # 2 KiB zeroed in the middle
    log.write_bytes(bytes(data))

    with pytest.warns(DataLossWarning) as caught:
        again = jlabel.open(image_dir, sync=False)
    (message,) = [str(w.message) for w in caught]
    kept = sorted((_store(image_dir) / "damaged").iterdir())
    lost = 30 - sum(len(v) for v in _labels(again).values())
    assert lost > 5
    assert f"{lost} journal record(s)" in message and log.name in message
    assert len(kept) == 1 and str(kept[0]) in message
    assert bytes(2048) in kept[0].read_bytes()  # the damaged part, kept aside
    assert log.read_bytes() == bytes(data)  # never rewritten or deleted
    report = again.check()
    assert not report.ok and any(f"{lost} record(s) damaged" in p for p in report.problems)
    again.label("img1.png", "after")  # the dataset keeps working
    again.close()
    with pytest.warns(DataLossWarning):  # every open says so, until the journal is compacted
        assert "after" in _labels(jlabel.open(image_dir, sync=False))["img1.png"]


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage"])
def test_a_damaged_newest_snapshot_falls_back_to_the_previous_one(image_dir: Path, damage):
    ds = jlabel.open(image_dir)
    ds.label("img0.png", "cat")
    assert ds.compact()  # snapshot 1
    ds.label("img1.png", "dog")
    ds.label("img2.png", "owl")
    assert ds.compact()  # snapshot 2 includes dog and owl; their journal file is retired
    ds.label("img3.png", "fish")
    expected = _labels(ds)
    ds.close()
    newest = _snapshots(image_dir)[-1]
    data = newest.read_bytes()
    newest.write_bytes(
        {"truncated": data[: len(data) // 2], "empty": b"", "garbage": b"x" * 99}[damage]
    )

    with pytest.warns(DataLossWarning, match="snapshot snapshots/00000002.parquet is damaged"):
        again = jlabel.open(image_dir, sync=False)
    assert _labels(again) == expected  # nothing acknowledged is lost
    assert [p.name for p in _snapshots(image_dir)] == ["00000001.parquet"]
    kept = list((_store(image_dir) / "damaged").glob("snapshot-00000002-*.parquet"))
    assert len(kept) == 1 and kept[0].stat().st_size == len(
        newest.read_bytes() if newest.exists() else kept[0].read_bytes()
    )
    again.label("img4.png", "car")
    assert again.compact()
    again.close()
    assert _labels(jlabel.open(image_dir, sync=False)) == {**expected, "img4.png": {"car"}}


def test_the_only_snapshot_damaged_rebuilds_from_the_kept_journal(image_dir: Path):
    ds = jlabel.open(image_dir)
    ds.label(["img0.png", "img1.png"], "cat")
    assert ds.compact()
    expected = _labels(ds)
    ds.close()
    assert not _journal(image_dir)  # retired into journal-kept/
    _snapshots(image_dir)[0].write_bytes(b"")
    with pytest.warns(DataLossWarning):
        assert _labels(jlabel.open(image_dir, sync=False)) == expected


def test_a_damaged_snapshot_without_a_complete_journal_says_what_to_do(image_dir: Path):
    ds = jlabel.open(image_dir)
    ds.label("img0.png", "cat")
    assert ds.compact()
    ds.label("img1.png", "dog")
    assert ds.compact()
    ds.close()
    for path in (_store(image_dir) / "journal-kept").glob("*.log"):
        path.unlink()  # as if a backup tool or a person removed them
    _snapshots(image_dir)[-1].write_bytes(b"PAR1 broken")
    with (
        pytest.warns(DataLossWarning),
        pytest.raises(StorageError, match=r"incomplete.*Restore \.jlabel/ from a backup"),
    ):
        jlabel.open(image_dir, sync=False)


def test_a_damaged_meta_json_is_kept_aside_and_replaced(image_dir: Path):
    ds = jlabel.open(image_dir)
    ds.label("img0.png", "cat")
    old_key = ds.internal.key
    ds.close()
    (_store(image_dir) / "meta.json").write_bytes(b'{"format": 1, "key": "abc')
    with pytest.warns(DataLossWarning, match="meta.json is damaged"):
        again = jlabel.open(image_dir, sync=False)
    assert _labels(again) == {"img0.png": {"cat"}}
    assert again.internal.key not in (old_key, "abc")
    (kept,) = (_store(image_dir) / "damaged").glob("meta-*.json")
    assert kept.read_bytes() == b'{"format": 1, "key": "abc'


def test_a_record_missing_a_field_is_refused_as_written_by_another_version(image_dir: Path):
    from jlabel.store.journal import Record, encode_line

    ds = jlabel.open(image_dir)
    ds.label("img0.png", "cat")
    ds.close()
    odd = Record(1e10, "9999999999999-odd", 0, {"op": "label", "ids": ["img1.png"]})  # no names
    (_store(image_dir) / "journal" / "9999999999999-odd.log").write_bytes(encode_line(odd))
    with pytest.raises(StorageError, match=r"without names.*different jlabel version"):
        jlabel.open(image_dir, sync=False)
    report = jlabel.fsck(image_dir)
    assert not report.ok and any("without names" in p for p in report.problems)


def test_check_and_fsck_report_a_healthy_store(image_dir: Path):
    ds = jlabel.open(image_dir)
    ds.label("img0.png", "cat")
    ds.create_version("v1")
    ds.compact()
    ds.label("img1.png", "dog")
    report = ds.check()
    assert report.ok, str(report)
    assert report.snapshots == 1 and report.versions == 1 and report.journal_records >= 1
    assert "healthy" in str(report)
    ds.close()
    assert jlabel.fsck(image_dir).to_dict()["ok"] is True
    with pytest.raises(jlabel.NotFound, match="no jlabel dataset"):
        jlabel.fsck(image_dir.parent)


def test_a_damaged_version_is_reported_and_refused(image_dir: Path):
    ds = jlabel.open(image_dir)
    ds.label("img0.png", "cat")
    ds.create_version("v1")
    (_store(image_dir) / "versions" / "v1" / "samples.parquet").write_bytes(b"broken")
    assert any("version 'v1'" in p for p in ds.check().problems)
    with pytest.raises(StorageError, match=r"version 'v1' .* is damaged"):
        ds.use_version("v1")
    assert _labels(ds) == {"img0.png": {"cat"}}  # nothing changed
    meta = json.loads((_store(image_dir) / "versions" / "v1" / "meta.json").read_text())
    assert meta["name"] == "v1"
