"""Widget protocol without a browser: traits, commands, and the dataset state they produce."""

from __future__ import annotations

import contextlib
import io
import os
import time
from pathlib import Path

import pytest
from PIL import Image

import jlabel
from jlabel.errors import JobError
from jlabel.widget import Labeler, _thumbs


def req(w: Labeler, op: str, buffers: list | None = None, **msg):
    """Call the widget's request command the way the browser does."""
    return w._request({"op": op, **msg}, buffers or [])


@pytest.fixture
def ds(image_dir: Path):
    return jlabel.open(image_dir)


@pytest.fixture
def w(ds):
    widget = Labeler(ds, page_size=24)
    yield widget
    widget.close()


def settle(w: Labeler) -> None:
    """Wait until what the last page of thumbnails learned (sizes, corrupt) is recorded."""
    if w._recorder is not None:
        w._recorder.join(30)


def ids_of(ds, **kw) -> list[str]:
    return list(ds.query(**kw)["id"])


def test_initial_view_state(ds, w):
    assert w.counts == {"all": 10, "unlabeled": 10, "labeled": 0, "to_confirm": 0}
    assert w.total == 10
    assert [r["id"] for r in w.rows] == [f"img{i}.png" for i in range(10)]
    first = w.rows[0]
    assert first["labels"] == [] and first["hard"] is False and first["missing"] is False
    assert w.limits == {"file": 5 * 1024 * 1024, "batch": 8 * 1024 * 1024}
    assert w.user == "tester"
    assert ds.labeler().counts == w.counts


def test_constructor_rejects_bad_arguments(ds):
    with pytest.raises(ValueError, match="unknown tab"):
        Labeler(ds, tab="done")
    with pytest.raises(ValueError, match="page_size"):
        Labeler(ds, page_size=7)
    with pytest.raises(TypeError):
        Labeler(ds, pagesize=48)


def test_label_command_labels_and_updates_counts(ds, w):
    w.tab = "unlabeled"
    w.selection = ["img1.png", "img2.png", "img5.png"]
    reply, buffers = req(w, "label", ids=w.selection, names=["cat"])
    assert reply == {"ok": True} and buffers == []
    frame = ds.to_pandas().set_index("id")
    assert [list(frame.loc[i, "labels"]) for i in ("img1.png", "img2.png", "img5.png")] == [
        ["cat"]
    ] * 3
    assert frame.loc["img1.png", "labeled_by"] == "tester"
    assert w.counts == {"all": 10, "unlabeled": 7, "labeled": 3, "to_confirm": 0}
    assert w.labels == [{"name": "cat", "count": 3}]
    assert "img1.png" not in [r["id"] for r in w.rows]  # left the Unlabeled tab
    assert w.selection == []  # labeled images left the tab, so the selection follows


def test_notebook_changes_reach_the_widget_until_it_is_closed(ds, w):
    ds.label(["img0.png"], "dog")
    assert w.counts["labeled"] == 1
    assert w.rows[0]["labels"] == ["dog"]
    revision = w.revision
    w.close()
    ds.label(["img1.png"], "dog")
    assert w.revision == revision
    assert w.counts["labeled"] == 1


@pytest.mark.parametrize(
    ("msg", "needle"),
    [
        ({"op": "label", "ids": ["img0.png"], "names": ["bad name"]}, "invalid label name"),
        ({"op": "label", "ids": ["nope.png"], "names": ["cat"]}, "nope.png"),
        ({"op": "label", "ids": [], "names": ["cat"]}, "select images first"),
        ({"op": "rename_label", "old": "ghost", "new": "x"}, "no label 'ghost'"),
        ({"op": "frobnicate"}, "unknown widget action"),
        ({"op": "preview", "id": "nope.png"}, "no sample"),
        ({}, "unknown widget action"),
    ],
)
def test_errors_come_back_as_data(w, msg, needle):
    reply, buffers = w._request(msg, [])
    assert needle in reply["error"]
    assert reply["type"]
    assert buffers == []


def test_a_widget_no_view_asks_for_stops_following_changes_until_asked(ds, w, monkeypatch):
    req(w, "refresh")  # a view pinged
    ds.label(["img0.png"], "cat")
    assert w.counts["labeled"] == 1  # followed at once
    monkeypatch.setattr("jlabel.widget._labeler.IDLE_AFTER_S", 0.0)  # the view went away
    ds.label(["img1.png"], "cat")
    assert w.counts["labeled"] == 1  # not recomputed for nobody
    req(w, "refresh")  # a view is back: it catches up before its request runs
    assert w.counts["labeled"] == 2
    assert {r["id"]: r["labels"] for r in w.rows}["img1.png"] == ["cat"]


def test_thumbnails_are_jpeg_buffers_in_order(ds, w):
    ids = ["img3.png", "img0.png", "img7.png"]
    reply, buffers = req(w, "thumbnails", ids=ids, size=64)
    assert [item["id"] for item in reply["items"]] == ids
    assert len(buffers) == 3
    for item, data in zip(reply["items"], buffers, strict=True):
        assert isinstance(data, bytes) and data[:2] == b"\xff\xd8"
        image = Image.open(io.BytesIO(data))
        assert image.format == "JPEG" and image.size == (item["width"], item["height"])
        assert (item["orig_width"], item["orig_height"]) == (24, 24)
        assert item["corrupt"] is False
    settle(w)
    assert ds.query(name="img3.png")["width"].iloc[0] == 24  # learned from decoding
    _, warm_buffers = req(w, "thumbnails", ids=ids, size=64)
    assert warm_buffers == buffers


def test_an_image_edited_in_place_gets_a_fresh_thumbnail_without_a_sync(ds, w, image_dir):
    (before,) = req(w, "thumbnails", ids=["img2.png"], size=64)[0]["items"]
    Image.new("RGB", (40, 20), "red").save(image_dir / "img2.png")
    os.utime(image_dir / "img2.png", (2e9, 2e9))
    reply, (data,) = req(w, "thumbnails", ids=["img2.png"], size=64)
    (item,) = reply["items"]
    assert (before["orig_width"], item["orig_width"], item["orig_height"]) == (24, 40, 20)
    assert Image.open(io.BytesIO(data)).convert("RGB").getpixel((5, 5))[0] > 200  # red now
    settle(w)
    assert ds.query(name="img2.png")["width"].iloc[0] == 40


def test_corrupt_and_missing_files_are_flagged(ds, w, image_dir: Path):
    (image_dir / "img4.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (image_dir / "img6.png").unlink()
    req(w, "sync")
    assert {r["id"]: r["missing"] for r in w.rows}["img6.png"] is True
    reply, buffers = req(w, "thumbnails", ids=["img4.png", "img6.png"])
    corrupt, missing = reply["items"]
    assert corrupt["corrupt"] is True and buffers[0][:2] == b"\xff\xd8"
    assert missing["missing"] is True
    settle(w)
    assert bool(ds.query(name="img4.png")["corrupt"].iloc[0]) is True
    w.refresh_view()
    assert {r["id"]: r["corrupt"] for r in w.rows}["img4.png"] is True


def test_preview_is_a_large_jpeg_with_the_row(ds, w):
    ds.label(["img2.png"], "cat")
    reply, buffers = req(w, "preview", id="img2.png")
    assert reply["row"]["labels"] == ["cat"]
    assert Image.open(io.BytesIO(buffers[0])).format == "JPEG"


def test_tabs_filters_and_pages(ds, w):
    ds.label(["img0.png", "img1.png"], "cat")
    ds.label(["img2.png"], "dog")
    ds.internal.set_hard(["img1.png"], True)
    w.selection = ["img5.png"]
    w.tab = "labeled"
    assert w.total == 3 and w.page == 0
    assert w.selection == []  # a new tab starts with nothing selected
    w.filters = {**w.filters, "labels": ["cat"]}
    assert [r["id"] for r in w.rows] == ["img0.png", "img1.png"]
    assert w.counts == {"all": 2, "unlabeled": 0, "labeled": 2, "to_confirm": 0}
    w.filters = {**w.filters, "hard": True}
    assert [r["id"] for r in w.rows] == ["img1.png"] and w.rows[0]["hard"] is True
    w.filters = {"name": "img9"}
    w.tab = "all"
    assert [r["id"] for r in w.rows] == ["img9.png"]
    w.filters = {}
    w.page_size = 24
    w.page = 5  # past the end: clamped to the last page
    assert w.page == 0 and len(w.rows) == 10


def test_paging_through_a_tab(ds):
    widget = Labeler(ds, page_size=24)
    names = [f"extra{i:02d}.png" for i in range(30)]
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buf, format="PNG")
    ds.add_images([(n, buf.getvalue()) for n in names])
    assert widget.total == 40 and len(widget.rows) == 24
    widget.page = 1
    assert len(widget.rows) == 16 and widget.rows[-1]["id"] == "img9.png"
    widget.tab = "unlabeled"
    assert widget.page == 0  # a new tab starts on its first page
    widget.close()


def test_serving_a_page_prefetches_the_next_one(ds):
    widget = Labeler(ds, page_size=24)
    buf = io.BytesIO()
    Image.new("RGB", (6, 6), "green").save(buf, format="PNG")
    ds.add_images([(f"more{i:02d}.png", buf.getvalue()) for i in range(20)])
    first = [r["id"] for r in widget.rows]
    req(widget, "thumbnails", ids=first, size=64)
    widget._prefetcher.join(timeout=60)
    nxt = ds.internal.query_ids()[24:]
    assert len(nxt) == 6
    cache = widget._thumbs
    assert all(
        os.path.exists(cache.path_for(ds.internal.key, i, ds.internal.file_version(i), 64))
        for i in nxt
    )
    widget.page = 1
    assert _thumbs.prefetch_next(widget, 64) is None  # no page after the last
    widget.close()


def test_bad_filter_shows_a_notice(w):
    w.filters = {"colour": "red"}
    assert w.notice["kind"] == "error" and "unknown filter" in w.notice["text"]


def test_rename_merge_and_label_impact(ds, w):
    ds.label(["img0.png", "img1.png"], "cat")
    ds.label(["img1.png", "img2.png"], "kitty")
    assert req(w, "label_impact", name="cat")[0] == {"images": 2, "only": 1}
    reply, _ = req(w, "rename_label", old="kitty", new="cat")
    assert reply == {"ok": True, "merged": True}
    assert ds.labels == ["cat"]
    assert w.labels == [{"name": "cat", "count": 3}]
    assert "merged" in w.notice["text"]


@pytest.mark.parametrize(
    ("mode", "left", "file_kept"),
    [("label", 10, True), ("samples", 9, True), ("sources", 9, False)],
)
def test_delete_label_modes(ds, w, image_dir: Path, mode, left, file_kept):
    ds.label(["img0.png"], "cat")
    ds.label(["img1.png"], "cat", "dog")
    assert req(w, "delete_label", name="cat", mode=mode)[0] == {"ok": True}
    assert "cat" not in ds.labels
    assert w.counts["all"] == left
    assert (image_dir / "img0.png").exists() == file_kept
    assert (image_dir / "img1.png").exists()


def test_replace_and_remove_labels_of_a_selection(ds, w):
    ds.label(["img0.png", "img1.png"], "cat")
    ds.label(["img2.png"], "cat")
    reply, _ = req(
        w, "replace_label", ids=["img0.png", "img1.png", "img3.png"], old="cat", new="lynx"
    )
    assert reply["changed"] == 2
    labels = ds.to_pandas().set_index("id")["labels"]
    assert list(labels["img0.png"]) == ["lynx"] and list(labels["img2.png"]) == ["cat"]
    req(w, "unlabel", ids=["img0.png"], names=["lynx"])
    assert list(ds.to_pandas().set_index("id")["labels"]["img0.png"]) == []


def test_delete_images_with_and_without_sources(ds, w, image_dir: Path):
    w.selection = ["img0.png", "img1.png", "img2.png"]
    req(w, "delete_images", ids=["img0.png"], delete_sources=False)
    req(w, "delete_images", ids=["img1.png"], delete_sources=True)
    assert w.counts["all"] == 8
    assert (image_dir / "img0.png").exists() and not (image_dir / "img1.png").exists()
    assert w.selection == ["img2.png"]


def test_add_images_from_browser_buffers(ds, w, image_dir: Path):
    data = io.BytesIO()
    Image.new("RGB", (10, 8), "blue").save(data, format="JPEG")
    reply, _ = req(w, "add_images", [memoryview(data.getvalue())], names=["new one.jpg"])
    assert len(reply["ids"]) == 1
    new_id = reply["ids"][0]
    assert (image_dir / new_id).read_bytes() == data.getvalue()
    assert new_id in ids_of(ds, tab="unlabeled")
    assert w.counts["unlabeled"] == 11
    too_big = b"\xff\xd8" + b"0" * (6 * 1024 * 1024)
    reply, _ = req(w, "add_images", [too_big], names=["huge.jpg"])
    assert "MB" in reply["error"]
    reply, _ = req(w, "add_images", [b"GIF89a"], names=["a.gif"])
    assert "error" in reply
    assert req(w, "add_images", [], names=["a.png"])[0]["error"].startswith("got 1 file names")


def test_to_be_confirmed_actions(ds, w):
    ids = ["img0.png", "img1.png", "img2.png", "img3.png"]
    ds.internal.set_proposals(
        ids, [["cat"], ["dog"], ["cat"], ["dog"]], [[0.99], [0.9], [0.6], [0.97]]
    )
    assert w.counts["to_confirm"] == 4
    w.tab = "to_confirm"
    assert w.rows[0]["proposed_labels"] and w.rows[0]["proposed_scores"][0] == pytest.approx(0.99)
    req(w, "set_proposal", ids=["img2.png"], names=["bird"])
    assert "bird" in ds.labels
    w.selection = ["img2.png", "img1.png"]
    req(w, "confirm", ids=["img2.png"])
    frame = ds.to_pandas().set_index("id")
    assert list(frame.loc["img2.png", "labels"]) == ["bird"]
    assert frame.loc["img2.png", "source"] == "auto"
    assert w.selection == ["img1.png"]
    req(w, "reject", ids=["img1.png"])
    assert "img1.png" in ids_of(ds, tab="unlabeled")
    req(w, "confirm", ids=None)
    assert w.counts == {"all": 10, "unlabeled": 7, "labeled": 3, "to_confirm": 0}
    assert w.selection == []


def test_versions_undo_and_sync(ds, w, image_dir: Path):
    ds.label(["img0.png"], "cat")
    assert req(w, "create_version", name="v1", description="first")[0] == {"ok": True}
    assert [v["name"] for v in w.versions] == ["v1"]
    ds.label(["img1.png"], "cat")
    assert req(w, "undo")[0]["ok"] is True
    assert w.counts["labeled"] == 1
    ds.label(["img2.png"], "dog")
    req(w, "use_version", name="v1")
    assert w.counts["labeled"] == 1 and "dog" not in [x["name"] for x in w.labels]
    Image.new("RGB", (5, 5)).save(image_dir / "later.png")
    reply, _ = req(w, "sync")
    assert reply["report"]["added"] in (1, ["later.png"])
    assert w.counts["all"] == 11


class FakeJob:
    """Just the Job API the widget relies on (status, progress, subscribe, to_dict)."""

    def __init__(self) -> None:
        self.status, self.progress, self.message, self.error = "running", 0.0, "", None
        self.id, self.result = "j1", None
        self.callbacks: list = []

    def subscribe(self, cb):
        self.callbacks.append(cb)
        return lambda: self.callbacks.remove(cb)

    def to_dict(self) -> dict:
        out = {"id": self.id, "kind": "auto_label", "status": self.status}
        out["progress"] = self.progress
        return out if self.result is None else {**out, "result": self.result}

    def step(self, status: str, progress: float) -> None:
        self.status, self.progress = status, progress
        for cb in list(self.callbacks):
            cb(self)


def test_job_progress_is_mirrored_into_the_job_trait(w):
    job = FakeJob()
    w.watch_job(job)
    assert w.job["status"] == "running"
    job.step("done", 1.0)
    assert w.job == {"id": "j1", "kind": "auto_label", "status": "done", "progress": 1.0}
    w.close()
    assert job.callbacks == []


def test_a_finished_jobs_notes_are_told_to_the_user(w):
    job = FakeJob()
    w.watch_job(job)
    job.result = {"proposed": 0, "notes": ["Too few labels to certify 95% precision."]}
    job.step("done", 1.0)
    assert w.notice["text"] == "Too few labels to certify 95% precision."
    assert w.job["result"]["notes"] == job.result["notes"]


def test_checking_a_random_sample_of_proposals(ds, w):
    assert "no proposals to check" in req(w, "sample_proposals", n=3)[0]["error"]
    ids = [f"img{i}.png" for i in range(6)]
    ds.internal.set_proposals(ids, [["cat"]] * 6, [[0.9]] * 6)
    reply, _ = req(w, "sample_proposals", n=3)
    sample = reply["ids"]
    assert w.tab == "to_confirm" and w.filters["ids"] == sample
    assert sorted(r["id"] for r in w.rows) == sorted(sample) and w.counts["to_confirm"] == 3
    assert (w.sample_check["size"], w.sample_check["pending"]) == (3, 3)
    req(w, "confirm", ids=sample[:2])
    req(w, "reject", ids=sample[2:])
    assert w.sample_check["reviewed"] == 3 and w.sample_check["right"] == 2
    assert w.sample_check["estimated_precision"] == pytest.approx(3 / 5)
    assert w.counts["to_confirm"] == 0  # the sample is done; clearing the filter shows the rest
    w.filters = {**w.filters, "ids": None}
    assert w.counts["to_confirm"] == 3
    req(w, "sample_proposals", n=2)
    req(w, "confirm", ids=None)  # "Confirm all" under a filter confirms what the tab shows
    assert ds.count(tab="to_confirm") == 1


def test_auto_label_preconditions_come_back_as_errors(w):
    reply, _ = req(w, "auto_label", mode="fast", target_precision=0.95)
    assert reply["type"] == "PreconditionError"
    assert "label" in reply["error"]
    assert req(w, "auto_label", mode="slow")[0]["error"].startswith("mode must be")
    boxes = req(w, "auto_label", mode="fast", target_precision=0.95, task="detection")[0]
    assert boxes["type"] == "PreconditionError" and "box labels" in boxes["error"]
    assert "no auto-labeling job is running" in req(w, "cancel_job")[0]["error"]


def test_auto_label_starts_a_job_the_widget_follows_and_cancels(ds, w):
    for k, name in enumerate(("cat", "dog")):
        ds.label([f"img{i}.png" for i in range(k * 4, k * 4 + 4)], name)
    ds.label(["img8.png"], "cat")
    ds.label(["img9.png"], "dog")
    ds.add_images([("extra.png", (Path(ds.root) / "img0.png").read_bytes())])
    reply, _ = req(w, "auto_label", mode="fast", target_precision=0.9, backbone="cnn")
    assert reply["ok"] is True and reply["job"]["kind"] == "auto_label"
    job = w.current_job
    assert job is not None and w.job["id"] == job.id
    assert req(w, "cancel_job")[0] == {"ok": True}
    with contextlib.suppress(JobError):
        job.wait(timeout=120)
    assert job.status in ("cancelled", "done")  # it may have finished before the cancel

    def mirrored() -> bool:  # the last update comes from the job thread
        in_history = any(item["id"] == job.id for item in w.job_history)
        return w.job.get("status") == job.status and in_history

    deadline = time.monotonic() + 30
    while not mirrored():
        assert time.monotonic() < deadline, (w.job, w.job_history)
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("filters", "total"),
    [
        ({"created": ["2020-01-01", None]}, 10),
        ({"created": [None, "2020-01-01T23:59:59.999"]}, 0),
        ({"created": "day"}, 10),
        ({"created": [None, None]}, 10),
        ({"labeled_by": "somebody"}, 0),
        ({"hard": False}, 10),
        ({"labels": ["nope"]}, 0),
        ({"name": "img1"}, 1),
    ],
)
def test_filters_as_the_browser_sends_them(w, filters, total):
    w.filters = {"hard": None, "labels": None, "created": None, **filters}
    assert w.total == total
    assert w.notice == {}
