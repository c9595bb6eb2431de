"""The widget's "Label next" button: it shows exactly what ``ds.to_label_next`` suggests for
the tab, and labeling them works as usual."""

from __future__ import annotations

from pathlib import Path

import pytest

import jlabel
from jlabel.widget import Labeler


def req(w: Labeler, op: str, **msg):
    return w._request({"op": op, **msg}, [])


@pytest.fixture
def ds(image_dir: Path):
    ds = jlabel.open(image_dir)
    ds.label(["img0.png", "img1.png"], "cat")
    return ds


@pytest.fixture
def w(ds):
    widget = Labeler(ds, page_size=24, tab="unlabeled")
    yield widget
    widget.close()


def test_label_next_shows_the_suggested_images_of_the_tab(ds, w):
    reply, _ = req(w, "label_next", n=3)
    ids = reply["ids"]
    assert ids == ds.to_label_next(n=3, tab="unlabeled") == w.label_next
    assert len(ids) == 3 and not {"img0.png", "img1.png"} & set(ids)
    assert w.filters["ids"] == ids and sorted(r["id"] for r in w.rows) == sorted(ids)
    assert w.total == 3
    req(w, "label", ids=ids[:1], names=["dog"])  # labeled as usual: it leaves the tab
    assert sorted(r["id"] for r in w.rows) == sorted(ids[1:])
    assert ds.query(ids=ids[:1])["labels"].tolist() == [["dog"]]


def test_label_next_on_to_be_confirmed_shows_proposals_only(ds, w):
    proposed = [f"img{i}.png" for i in range(2, 6)]
    ds.internal.set_proposals(proposed, [["cat"]] * 4, [[0.6]] * 4)
    w.tab = "to_confirm"
    ids = req(w, "label_next", n=10)[0]["ids"]
    assert sorted(ids) == proposed and w.total == 4
    w.tab = "unlabeled"
    ids = req(w, "label_next", n=10)[0]["ids"]
    assert sorted(ids) == [f"img{i}.png" for i in range(6, 10)]


def test_label_next_with_nothing_left_says_so(ds, w):
    ds.label([f"img{i}.png" for i in range(2, 10)], "cat")
    reply, _ = req(w, "label_next", n=5)
    assert "nothing to label next" in reply["error"]
    assert "at least 1" in req(w, "label_next", n=-1)[0]["error"]
