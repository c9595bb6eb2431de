"""Durability: a change acknowledged by a returning call survives SIGKILL at any moment.

A worker process (tests/durability_child.py) labels, compacts, versions or syncs in a loop and
logs each call that returned; the test kills it with SIGKILL after a random delay, reopens the
dataset and checks that every logged change is there and the dataset still works. The same
folder is reused across the trials of a mode, so journals of killed writers, interrupted
compactions and half-written temp files pile up as they would in real use.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import jlabel
from jlabel.store.journal import decode_lines

CHILD = Path(__file__).with_name("durability_child.py")


class Zygote:
    """The worker launcher: one interpreter with jlabel imported, forking one worker per trial."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def trial(self, tmp: Path, root: Path, mode: str, seed: int, delay: float, **extra) -> list:
        """Start a worker, SIGKILL it `delay` s after it is ready, return its acked lines."""
        acks, errors = tmp / f"acks-{mode}-{seed}", tmp / f"errors-{mode}-{seed}"
        cmd = {"root": str(root), "mode": mode, "seed": seed, "acks": str(acks)}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({**cmd, "errors": str(errors), **extra}) + "\n")
        pid = int(self.proc.stdout.readline().split()[1])
        deadline = time.monotonic() + 60
        while delay >= 0 and not _lines(acks) and time.monotonic() < deadline:
            time.sleep(0.005)  # kill `delay` after the dataset is open (negative: while opening)
        time.sleep(max(delay, 0.0))
        os.kill(pid, signal.SIGKILL)
        status = int(self.proc.stdout.readline().split()[1])
        assert os.WIFSIGNALED(status), (status, errors.read_text() if errors.exists() else "")
        return [line for line in _lines(acks) if line != "ready"]  # "try ..." lines are kept

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1].decode().splitlines()  # whole lines only


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    z = Zygote()
    yield z
    z.close()


def _labels_of(ds: jlabel.Dataset) -> dict[str, set[str]]:
    frame = ds.to_pandas()
    return {sid: set(labels) for sid, labels in zip(frame["id"], frame["labels"], strict=True)}


def check_acked(root: Path, acked: list[str]) -> None:
    """Every acknowledged change is in the reopened dataset, and it still reads and writes."""
    ds = jlabel.open(root, sync=False)  # no sync: only what was made durable counts
    try:
        labels = _labels_of(ds)
        versions = set(ds.versions()["name"])
        expected_boxes: dict[tuple[str, str], str | None] = {}  # the last ack of each box wins
        tried: dict[tuple[str, str], set[str | None]] = {}  # and what was tried after it
        for line in acked:
            kind, _, rest = line.partition(" ")
            if kind == "label":
                name, ids = rest.split(" ")
                missing = [sid for sid in ids.split(",") if name not in labels[sid]]
                assert not missing, f"acknowledged {line!r} lost on {missing}"
            elif kind == "version":
                assert rest in versions, f"acknowledged version {rest!r} lost"
            elif kind in ("sync", "add"):
                assert rest in labels, f"acknowledged {kind} of {rest!r} lost"
            elif kind in ("box", "unbox"):
                sid, box_id, *label = rest.split(" ")
                expected_boxes[(sid, box_id)] = label[0] if label else None
                tried[(sid, box_id)] = set()
            elif kind == "try":
                _kind, sid, box_id, *label = rest.split(" ")
                tried.setdefault((sid, box_id), set()).add(label[0] if label else None)
        for (sid, box_id), label in expected_boxes.items():
            now = {b["box_id"]: b["label"] for b in ds.boxes(sid)}.get(box_id)
            allowed = {label} | tried[(sid, box_id)]
            assert now in allowed, f"acknowledged box edit lost: {sid} {box_id} {label} ({now})"
        assert len(ds) >= 10
    finally:
        ds.close()


def run_trials(zygote: Zygote, tmp: Path, root: Path, mode: str, trials: int, **extra) -> list:
    rng = random.Random(f"{mode}-{trials}")
    acked: list[str] = []
    for seed in range(trials):
        delay = rng.choice([-1.0, rng.uniform(0, 0.05)]) if seed % 5 == 0 else rng.uniform(0, 0.4)
        acked += zygote.trial(tmp, root, mode, seed, delay, **extra)
        check_acked(root, acked)
    return acked


@pytest.mark.slow
def test_sigkill_while_labeling_loses_nothing_acknowledged(
    zygote: Zygote, image_dir: Path, tmp_path: Path
) -> None:
    jlabel.open(image_dir).close()
    acked = run_trials(zygote, tmp_path, image_dir, "label", 25)
    assert len(acked) > 25  # the trials really labeled (most were killed mid-stream)
    ds = jlabel.open(image_dir, sync=False)
    ds.label("img0.png", "after")  # still writable after all the kills
    ds.close()
    assert "after" in _labels_of(jlabel.open(image_dir, sync=False))["img0.png"]


@pytest.mark.slow
def test_sigkill_during_compaction_loses_nothing(
    zygote: Zygote, image_dir: Path, tmp_path: Path
) -> None:
    jlabel.open(image_dir).close()
    acked = run_trials(zygote, tmp_path, image_dir, "compact", 10, compact_every=5)
    assert any(line == "compact" for line in acked)
    ds = jlabel.open(image_dir, sync=False)
    assert ds.compact()  # one uninterrupted compaction cleans up what the killed ones left
    ds.close()
    snapshots = os.listdir(image_dir / ".jlabel" / "snapshots")
    assert len([s for s in snapshots if s.endswith(".parquet")]) == 2  # newest + previous
    check_acked(image_dir, acked)


@pytest.mark.slow
def test_sigkill_during_create_version_loses_nothing(
    zygote: Zygote, image_dir: Path, tmp_path: Path
) -> None:
    jlabel.open(image_dir).close()
    acked = run_trials(zygote, tmp_path, image_dir, "version", 6)
    assert any(line.startswith("version ") for line in acked)
    ds = jlabel.open(image_dir, sync=False)
    for name in ds.versions()["name"]:  # every listed version (even if interrupted) loads
        assert len(ds.version_frame(name)) == 10
    ds.close()


@pytest.mark.slow
def test_sigkill_while_adding_images_loses_nothing(
    zygote: Zygote, image_dir: Path, tmp_path: Path
) -> None:
    jlabel.open(image_dir).close()
    acked = run_trials(zygote, tmp_path, image_dir, "add", 6)
    assert any(line.startswith("add ") for line in acked)
    ds = jlabel.open(image_dir)  # a file whose record the kill cut off: sync picks it up
    names = set(ds.internal.query_ids())
    ds.close()
    assert {p.name for p in image_dir.glob("up-*.png")} <= names


@pytest.mark.slow
def test_sigkill_while_editing_boxes_loses_nothing(
    zygote: Zygote, image_dir: Path, tmp_path: Path
) -> None:
    jlabel.open(image_dir).close()
    acked = run_trials(zygote, tmp_path, image_dir, "box", 8)
    assert any(line.startswith("unbox ") for line in acked) and len(acked) > 20


@pytest.mark.slow
def test_sigkill_during_sync_loses_nothing(zygote: Zygote, image_dir: Path, tmp_path: Path) -> None:
    jlabel.open(image_dir).close()
    acked = run_trials(zygote, tmp_path, image_dir, "sync", 6)
    assert any(line.startswith("sync ") for line in acked)


# ---------------------------------------------------------------- torn and damaged journals
def _journal_files(root: Path) -> list[Path]:
    return sorted((root / ".jlabel" / "journal").glob("*.log"), key=lambda p: p.stat().st_mtime)


@pytest.mark.parametrize("cut", [1, 10, "half"])
def test_torn_last_journal_line_is_ignored_and_earlier_records_kept(
    image_dir: Path, cut: int | str
) -> None:
    ds = jlabel.open(image_dir)
    ds.label("img1.png", "cat")
    ds.label(["img2.png", "img3.png"], "dog")
    ds.label("img4.png", "bird")
    ds.close()
    log = _journal_files(image_dir)[-1]
    data = log.read_bytes()
    last = data[:-1].rfind(b"\n") + 1  # start of the last record (the "bird" label)
    assert b"bird" in data[last:]
    keep = len(data) - (len(data) - last) // 2 if cut == "half" else len(data) - int(cut)
    log.write_bytes(data[:keep])  # as if killed in the middle of writing the last record

    ds = jlabel.open(image_dir, sync=False)
    labels = _labels_of(ds)
    assert labels["img1.png"] == {"cat"}
    assert labels["img2.png"] == labels["img3.png"] == {"dog"}
    assert labels["img4.png"] == set()  # the torn record was never acknowledged
    ds.label("img4.png", "fish")  # and the dataset keeps working
    ds.close()
    assert _labels_of(jlabel.open(image_dir, sync=False))["img4.png"] == {"fish"}


def test_corrupt_journal_record_is_skipped_not_fatal(image_dir: Path) -> None:
    ds = jlabel.open(image_dir)
    ds.label("img1.png", "cat")
    ds.label("img2.png", "dog")
    ds.close()
    log = _journal_files(image_dir)[-1]
    data = bytearray(log.read_bytes())
    records, _ = decode_lines(bytes(data))
    pos = data.find(b'"cat"')
    data[pos + 1] = ord("k")  # flip a byte inside the "cat" record: its checksum fails
    log.write_bytes(bytes(data))
    assert len(decode_lines(bytes(data))[0]) == len(records) - 1
    labels = _labels_of(jlabel.open(image_dir, sync=False))
    assert labels["img2.png"] == {"dog"}
    assert labels["img1.png"] == set()


def test_leftover_temp_files_do_not_break_opening(image_dir: Path) -> None:
    ds = jlabel.open(image_dir)
    ds.label("img1.png", "cat")
    ds.compact()
    ds.close()
    snapshots = image_dir / ".jlabel" / "snapshots"
    (snapshots / ".tmp-deadbeef0000").write_bytes(b"PAR1 half a snapshot")
    (image_dir / ".jlabel" / "journal" / "0000000000000-empty.log").write_bytes(b"")
    ds = jlabel.open(image_dir, sync=False)
    assert _labels_of(ds)["img1.png"] == {"cat"}
    ds.label("img1.png", "dog")
    ds.close()
    assert _labels_of(jlabel.open(image_dir, sync=False))["img1.png"] == {"cat", "dog"}
