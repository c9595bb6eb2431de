"""The box editor's widget actions (no browser): each is one dataset call, its reply is the
image's boxes after it, rows carry boxes for the thumbnails, and the `boxes` filter."""

from __future__ import annotations

from pathlib import Path

import pytest

import jlabel
from jlabel.widget import Labeler

CAT = {"label": "cat", "xmin": 1, "ymin": 2, "xmax": 10, "ymax": 12}


def req(w: Labeler, op: str, **msg):
    reply, _ = w._request({"op": op, **msg}, [])
    return reply


@pytest.fixture
def ds(image_dir: Path):
    ds = jlabel.open(image_dir, user="ann")
    yield ds
    ds.close()


@pytest.fixture
def w(ds):
    widget = Labeler(ds, page_size=24)
    yield widget
    widget.close()


def test_draw_move_relabel_delete_undo_each_reply_is_what_the_dataset_holds(ds, w):
    ops_before = len(ds._replica.table.undo_stack)
    reply = req(w, "add_box", id="img1.png", box=CAT)
    assert "error" not in reply, reply
    (box,) = reply["boxes"]
    assert box == {
        "box_id": reply["box_id"],
        **{k: float(v) if k != "label" else v for k, v in CAT.items()},
    }
    assert ds.boxes("img1.png")[0]["box_id"] == reply["box_id"]
    assert "cat" in ds.labels  # a new box label joins the label set
    box_id = reply["box_id"]

    reply = req(w, "update_box", id="img1.png", box_id=box_id, changes={"xmin": 3, "xmax": 12})
    assert (reply["boxes"][0]["xmin"], reply["boxes"][0]["xmax"]) == (3, 12)
    reply = req(w, "update_box", id="img1.png", box_id=box_id, changes={"label": "dog"})
    assert reply["boxes"][0]["label"] == "dog" == ds.boxes("img1.png")[0]["label"]
    reply = req(w, "delete_boxes", id="img1.png", box_ids=[box_id])
    assert reply["boxes"] == [] == ds.boxes("img1.png")
    assert len(ds._replica.table.undo_stack) == ops_before + 4  # one operation per edit

    reply = req(w, "box_undo", id="img1.png")
    assert reply["text"] == "undid delete_boxes" and reply["boxes"][0]["label"] == "dog"
    reply = req(w, "box_undo", id="img1.png")
    assert reply["boxes"][0]["label"] == "cat"
    assert req(w, "boxes", id="img1.png")["boxes"] == reply["boxes"]


def test_bad_edits_come_back_as_errors_and_change_nothing(ds, w):
    reply = req(w, "add_box", id="img1.png", box={**CAT, "xmax": 99})
    assert "outside the image (24x24 pixels)" in reply["error"]
    assert req(w, "add_box", id="img1.png", box={**CAT, "label": ""})["error"].endswith(
        "has no label: give each box a label name"
    )
    assert "no sample with id" in req(w, "add_box", id="nope.png", box=CAT)["error"]
    assert "'box' must be a dict" in req(w, "add_box", id="img1.png", box=[1, 2])["error"]
    box_id = req(w, "add_box", id="img1.png", box=CAT)["box_id"]
    reply = req(w, "update_box", id="img1.png", box_id=box_id, changes={"xmax": 0})
    assert "xmax must be greater than xmin" in reply["error"]
    assert "has no box" in req(w, "delete_boxes", id="img1.png", box_ids=["b-x"])["error"]
    assert "'box_ids' must be a list" in req(w, "delete_boxes", id="img1.png")["error"]
    assert [b["xmax"] for b in ds.boxes("img1.png")] == [10]


def test_proposed_boxes_accept_edit_drop_and_confirm_from_the_editor(ds, w):
    ds.internal.set_proposals(
        ["img1.png"],
        [[]],
        [[]],
        boxes=[
            [
                {**CAT, "score": 0.9},
                {**CAT, "xmin": 5, "score": 0.6},
                {**CAT, "ymin": 4, "score": 0.4},
            ]
        ],
    )
    w.tab = "to_confirm"
    (row,) = w.rows
    assert [b["score"] for b in row["proposed_boxes"]] == [0.9, 0.6, 0.4]
    first, second, third = (b["box_id"] for b in row["proposed_boxes"])
    reply = req(w, "accept_boxes", id="img1.png", box_ids=[first])
    assert [b["box_id"] for b in reply["boxes"]] == [first]
    reply = req(w, "update_box", id="img1.png", box_id=second, changes={"label": "dog"})
    assert [b["box_id"] for b in reply["boxes"]] == [first, second]  # edited: now confirmed
    assert [b["box_id"] for b in reply["proposed_boxes"]] == [third]
    reply = req(w, "delete_boxes", id="img1.png", box_ids=[third])
    assert reply["proposed_boxes"] == []
    req(w, "add_box", id="img1.png", box={**CAT, "xmin": 12, "xmax": 20})  # a missed one
    assert {b["source"] for b in ds.boxes("img1.png")} == {"auto", "manual"}
    ds.internal.set_proposals(["img2.png"], [[]], [[]], boxes=[[{**CAT, "score": 0.8}]])
    assert "error" not in req(w, "confirm", ids=["img2.png"])
    assert [b["label"] for b in ds.boxes("img2.png")] == ["cat"]


def test_rows_carry_compact_boxes_and_the_boxes_filter(ds, w):
    req(w, "add_box", id="img3.png", box={**CAT, "difficult": True})
    row = next(r for r in w.rows if r["id"] == "img3.png")
    (box,) = row["boxes"]
    assert set(box) == {"box_id", "label", "xmin", "ymin", "xmax", "ymax", "difficult"}
    assert row["proposed_boxes"] == [] and (row["width"], row["height"]) == (24, 24)
    w.filters = {**w.filters, "boxes": True}
    assert [r["id"] for r in w.rows] == ["img3.png"] and w.total == 1
    w.filters = {**w.filters, "boxes": False}
    assert w.total == 9


def test_the_preview_reply_has_the_original_size_the_boxes_are_in(ds, w):
    reply, buffers = w._request({"op": "preview", "id": "img1.png", "size": 16}, [])
    assert (reply["row"]["width"], reply["row"]["height"]) == (16, 16)  # the display copy
    assert (reply["row"]["orig_width"], reply["row"]["orig_height"]) == (24, 24)
    assert buffers[0][:2] == b"\xff\xd8"
