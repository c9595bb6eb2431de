"""Two kernels on one local dataset: both label, compact, refresh; nothing is ever lost."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

import jlabel
import jlabel.replica


def _labels(ds: jlabel.Dataset) -> dict[str, set[str]]:
    frame = ds.to_pandas()
    return {sid: set(labels) for sid, labels in zip(frame["id"], frame["labels"], strict=True)}


def _fresh(root: Path) -> dict[str, set[str]]:
    ds = jlabel.open(root, sync=False)
    try:
        return _labels(ds)
    finally:
        ds.close()


@pytest.fixture
def two(image_dir: Path):
    a = jlabel.open(image_dir, user="ann")
    b = jlabel.open(image_dir, user="bob")
    yield a, b
    a.close()
    b.close()


def test_both_label_then_refresh_and_both_see_everything(two, image_dir: Path) -> None:
    a, b = two
    a.label(["img0.png", "img1.png"], "cat")
    b.label("img1.png", "dog")
    b.label("img2.png", "bird")
    a.unlabel("img0.png", "cat")
    a.label("img3.png", "fish")
    assert _labels(b)["img0.png"] == set()  # b has not refreshed yet
    assert b.refresh() and a.refresh()
    for ds in (a, b):
        labels = _labels(ds)
        assert labels["img1.png"] == {"cat", "dog"}
        assert labels["img2.png"] == {"bird"} and labels["img0.png"] == set()
        assert set(ds.users()) == {"ann", "bob"}
    assert a.to_pandas().equals(b.to_pandas())
    assert not a.refresh()  # nothing new
    assert _fresh(image_dir) == _labels(a)


def test_compaction_in_one_kernel_while_the_other_labels(two, image_dir: Path) -> None:
    a, b = two
    a.label("img0.png", "cat")
    b.label("img1.png", "dog")
    assert a.compact()
    b.label("img2.png", "bird")  # b's journal is live: the compaction kept it
    a.label("img3.png", "fish")
    assert b.compact()  # b first loads a's snapshot, then writes the next one
    a.label("img4.png", "car")
    a.refresh()
    b.refresh()
    expected = {
        "img0.png": {"cat"},
        "img1.png": {"dog"},
        "img2.png": {"bird"},
        "img3.png": {"fish"},
        "img4.png": {"car"},
    }
    for labels in (_labels(a), _labels(b), _fresh(image_dir)):
        assert {k: v for k, v in labels.items() if v} == expected


def test_a_label_made_during_the_others_compaction_is_kept(two, image_dir: Path) -> None:
    a, b = two
    a.label("img0.png", "cat")
    write = a._store.write_snapshot

    def write_after_b_labels(gen: int, data: bytes) -> bool:
        b.label("img5.png", "late")  # after a read the journal, before its snapshot exists
        return write(gen, data)

    a._store.write_snapshot = write_after_b_labels
    assert a.compact()
    a._store.write_snapshot = write
    assert _fresh(image_dir)["img5.png"] == {"late"}
    a.refresh()
    assert _labels(a)["img5.png"] == {"late"}


def test_both_compact_at_once_the_loser_returns_false_and_nothing_is_lost(
    two, image_dir: Path
) -> None:
    a, b = two
    a.label("img0.png", "cat")
    b.label("img1.png", "dog")
    write = b._store.write_snapshot
    results = {}

    def a_wins_the_race(gen: int, data: bytes) -> bool:
        results["a"] = a.compact()  # a writes generation `gen` while b is writing it too
        return write(gen, data)

    b._store.write_snapshot = a_wins_the_race
    results["b"] = b.compact()
    b._store.write_snapshot = write
    assert results == {"a": True, "b": False}
    b.label("img2.png", "bird")  # the loser keeps working on its (rotated) journal
    a.label("img3.png", "fish")
    assert a.compact()
    expected = {
        "img0.png": {"cat"},
        "img1.png": {"dog"},
        "img2.png": {"bird"},
        "img3.png": {"fish"},
    }
    for ds in (a, b):
        ds.refresh()
        assert {k: v for k, v in _labels(ds).items() if v} == expected
    assert {k: v for k, v in _fresh(image_dir).items() if v} == expected


@pytest.mark.slow
def test_two_kernels_in_threads_with_frequent_compaction(
    image_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jlabel.replica, "COMPACT_EVERY", 7)
    kernels = [jlabel.open(image_dir, user=u) for u in ("ann", "bob")]
    ids = kernels[0].internal.query_ids()
    errors: list[BaseException] = []

    def work(k: int) -> None:
        ds = kernels[k]
        try:
            for i in range(60):
                ds.label(ids[(i + k) % len(ids)], f"k{k}-{i}")
                if i % 20 == 19:
                    ds.compact()
                if i % 9 == 0:
                    ds.refresh()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for ds in kernels:
        ds.refresh()
    fresh = _fresh(image_dir)
    for labels in (*map(_labels, kernels), fresh):
        for k in (0, 1):
            for i in range(60):
                assert f"k{k}-{i}" in labels[ids[(i + k) % len(ids)]], (k, i)
    for ds in kernels:
        ds.close()


_WORKER = """
import sys
import jlabel, jlabel.replica
jlabel.replica.COMPACT_EVERY = 5
root, k = sys.argv[1], int(sys.argv[2])
ds = jlabel.open(root, sync=False, user=f"p{k}")
ids = ds.internal.query_ids()
for i in range(40):
    ds.label(ids[(i * 3 + k) % len(ids)], f"p{k}-{i}")
    if i % 10 == 9:
        ds.refresh()
ds.close()
"""


@pytest.mark.slow
def test_two_processes_label_and_compact_concurrently(image_dir: Path) -> None:
    jlabel.open(image_dir).close()
    procs = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(image_dir), str(k)]) for k in (0, 1)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    labels = _fresh(image_dir)
    ids = sorted(labels)
    for k in (0, 1):
        for i in range(40):
            assert f"p{k}-{i}" in labels[ids[(i * 3 + k) % len(ids)]], (k, i)


_EXIT_AFTER_COMPACTION_STARTS = """
import sys
import jlabel, jlabel.replica
jlabel.replica.COMPACT_EVERY = 5
ds = jlabel.open(sys.argv[1], sync=False)
for i in range(5):
    ds.label(ds.internal.query_ids()[i], "cat")  # the fifth starts a background compaction
"""  # and the script ends at once, without close()


def test_a_kernel_that_exits_mid_compaction_finishes_it_and_exits_cleanly(image_dir: Path) -> None:
    jlabel.open(image_dir).close()
    run = subprocess.run(
        [sys.executable, "-c", _EXIT_AFTER_COMPACTION_STARTS, str(image_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert list((image_dir / ".jlabel" / "snapshots").glob("*.parquet"))
    assert not list((image_dir / ".jlabel" / "journal").glob("*.log"))
    assert sum("cat" in labels for labels in _fresh(image_dir).values()) == 5


def test_refresh_applies_older_work_on_other_samples_without_a_full_reload(
    two, image_dir: Path, monkeypatch
) -> None:
    a, b = two
    b.label("img1.png", "dog")  # older than a's next change, on another sample
    a.label("img0.png", "cat")
    reloads = []
    original = a._replica.load
    monkeypatch.setattr(a._replica, "load", lambda: reloads.append(1) or original())
    assert a.refresh()
    assert reloads == []
    assert _labels(a) == _fresh(image_dir)
    b.label("img0.png", "owl")  # older than a's unlabel of the same sample: replay in order
    a.unlabel("img0.png", "cat")
    assert a.refresh()
    assert reloads == [1]
    assert _labels(a) == _fresh(image_dir)
    assert _labels(a)["img0.png"] == {"owl"}


# ---------------------------------------------------------------- one deletes, the other labels
def test_a_label_naming_a_sample_the_other_kernel_deleted_applies_to_the_rest(
    two, image_dir: Path
) -> None:
    a, b = two
    a.delete_images(["img5.png"])
    b.label(["img5.png", "img6.png"], "x")  # returns: b had not refreshed
    a.label(["img7.png"], "y")
    assert a.compact()
    assert a.refresh() is False  # the compaction already read b's label
    b.refresh()
    fresh = _fresh(image_dir)
    for labels in (_labels(a), _labels(b), fresh):
        assert "img5.png" not in labels
        assert labels["img6.png"] == {"x"} and labels["img7.png"] == {"y"}
    assert _labels(a) == _labels(b) == fresh


@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.unlabel(["img5.png", "img6.png"]),
        lambda b: b.replace_label(["img5.png", "img6.png"], "old", "new"),
        lambda b: b.set_proposal(["img5.png", "img6.png"], "old"),
        lambda b: b.confirm(["img5.png", "img6.png"]),
        lambda b: b.reject(["img5.png", "img6.png"]),
        lambda b: b.delete_images(["img5.png", "img6.png"]),
        lambda b: b.internal.set_proposals(
            ["img5.png", "img6.png"], [["p"], ["p"]], [[0.9], [0.8]]
        ),
        lambda b: b.internal.set_hard(["img5.png", "img6.png"], [True, False], [0.3, 0.1]),
        lambda b: b.internal.set_groups(["img5.png", "img6.png"], ["g1", "g2"]),
        lambda b: b.internal.record_image_info(["img5.png", "img6.png"], [3, 4], [5, 6], [0, 0]),
    ],
    ids=[
        "unlabel",
        "replace_label",
        "set_proposal",
        "confirm",
        "reject",
        "delete_images",
        "set_proposals",
        "set_hard",
        "set_groups",
        "image_info",
    ],
)
def test_every_operation_on_a_deleted_sample_replays(two, image_dir: Path, call) -> None:
    a, b = two
    a.label(["img5.png", "img6.png"], "old")
    a.internal.set_proposals(["img8.png"], [["old"]], [[0.5]])
    b.refresh()
    a.delete_images(["img5.png"])
    call(b)  # b had not refreshed
    a.label(["img7.png"], "y")
    b_view = _labels(b)
    assert a.compact()
    a.refresh()
    b.refresh()
    fresh = jlabel.open(image_dir, sync=False)
    try:
        assert a.to_pandas().equals(b.to_pandas())
        assert a.to_pandas().equals(fresh.to_pandas())
    finally:
        fresh.close()
    assert "img5.png" not in _labels(a) and _labels(a)["img7.png"] == {"y"}
    assert b_view.get("img6.png") == _labels(a).get("img6.png")  # b's own change survived


def test_a_refresh_that_fails_leaves_the_state_as_it_was(two, image_dir: Path) -> None:
    from jlabel.store.journal import Record, encode_line

    a, b = two
    a.label("img1.png", "cat")
    b.refresh()
    before = b.to_pandas()
    # a newer jlabel (another kernel) journals an operation this one does not know
    future = Record(1e10, "9999999999999-future", 0, {"op": "draw_polygon", "ids": ["img1.png"]})
    (image_dir / ".jlabel" / "journal" / "9999999999999-future.log").write_bytes(
        encode_line(future)
    )
    a.label("img2.png", "dog")
    with pytest.raises(jlabel.StorageError, match="newer jlabel"):
        b.refresh()
    assert b.to_pandas().equals(before)  # nothing half-applied
    b.label("img3.png", "bird")  # and b keeps working on what it has
    with pytest.raises(jlabel.StorageError, match="newer jlabel"):
        b.refresh()  # the next refresh still refuses (it did not skip the record)
    with pytest.raises(jlabel.StorageError, match=r"newer jlabel.*pip install -U jlabel"):
        jlabel.open(image_dir, sync=False)


@pytest.mark.slow
def test_two_processes_deleting_labeling_and_compacting_lose_nothing(tmp_path: Path) -> None:
    from conftest import write_png
    from soak_worker import lost_labels, run_soak

    root = tmp_path / "images"
    for i in range(40):
        write_png(root / f"img{i:02d}.png", seed=i, size=8)
    jlabel.open(root).close()
    result = run_soak(root, tmp_path, seconds=6)
    fresh = _fresh(root)
    assert len([a for a in result["acks"] if a["op"] == "label"]) > 20
    assert lost_labels(result["acks"], fresh) == []
    deleted = {a["id"] for a in result["acks"] if a["op"] == "delete"}
    assert deleted and not deleted & set(fresh)
    as_sets = [{k: set(v) for k, v in final.items()} for final in result["finals"]]
    assert as_sets[0] == as_sets[1] == fresh  # both kernels and a fresh open agree
