"""Object-detection boxes as first-class labels: edits, checks, label operations, proposals,
label files (VOC, YOLO), durability and two kernels."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

import jlabel
from jlabel.errors import InvalidArgument, InvalidLabelName, NotFound

CAT = {"label": "cat", "xmin": 1, "ymin": 2, "xmax": 10, "ymax": 12}
DOG = {"label": "dog", "xmin": 5, "ymin": 5, "xmax": 20, "ymax": 24}


@pytest.fixture
def ds(image_dir: Path):
    ds = jlabel.open(image_dir, user="ann")
    yield ds
    ds.close()


def _fresh(root: Path) -> jlabel.Dataset:
    return jlabel.open(root, sync=False)


def test_add_update_delete_boxes_each_one_durable_operation_and_one_undo(ds, image_dir: Path):
    (cat_id,) = ds.add_boxes("img1.png", [CAT])
    (box,) = ds.boxes("img1.png")
    assert box["box_id"] == cat_id and box["label"] == "cat" and box["xmax"] == 10.0
    assert box["source"] == "manual" and box["labeled_by"] == "ann" and box["labeled_at"] > 0
    assert box["difficult"] is False
    assert "cat" in ds.labels and ds.count(tab="labeled") == 1
    assert _fresh(image_dir).boxes("img1.png") == ds.boxes("img1.png")

    dog_id = ds.add_boxes("img1.png", [DOG])[0]
    ds.update_box("img1.png", cat_id, label="owl", xmin=0, ymax=20)
    after = {b["box_id"]: b for b in ds.boxes("img1.png")}
    assert after[cat_id]["label"] == "owl" and (after[cat_id]["xmin"], after[cat_id]["ymax"]) == (
        0,
        20,
    )
    assert after[dog_id] == {b["box_id"]: b for b in _fresh(image_dir).boxes("img1.png")}[dog_id]

    assert ds.delete_boxes("img1.png", [dog_id]) == 1
    assert [b["box_id"] for b in ds.boxes("img1.png")] == [cat_id]
    assert ds.undo() == "delete_boxes"
    assert {b["box_id"] for b in ds.boxes("img1.png")} == {cat_id, dog_id}
    assert ds.undo() == "update_box"
    assert {b["box_id"]: b["label"] for b in ds.boxes("img1.png")} == {cat_id: "cat", dog_id: "dog"}
    assert ds.undo() == "add_boxes"
    assert [b["box_id"] for b in ds.boxes("img1.png")] == [cat_id]
    assert ds.delete_boxes("img1.png") == 1  # None: all of them
    assert ds.boxes("img1.png") == [] and ds.count(tab="labeled") == 0
    assert _fresh(image_dir).boxes("img1.png") == []


@pytest.mark.parametrize(
    ("box", "error", "message"),
    [
        ({**CAT, "xmax": 1}, InvalidArgument, "xmax must be greater than xmin"),
        ({**CAT, "ymin": 12}, InvalidArgument, "ymax than ymin"),
        ({**CAT, "xmax": 30}, InvalidArgument, "outside the image (24x24 pixels)"),
        ({**CAT, "ymin": -3}, InvalidArgument, "outside the image"),
        ({k: v for k, v in CAT.items() if k != "label"}, InvalidArgument, "has no label"),
        ({**CAT, "label": "two words"}, InvalidLabelName, "invalid label name"),
        ({**CAT, "xmin": "left"}, InvalidArgument, "xmin must be numbers"),
        ({**CAT, "colour": "red"}, InvalidArgument, "unknown keys ['colour']"),
        ("cat", InvalidArgument, "must be a dict"),
    ],
)
def test_bad_boxes_are_refused_and_change_nothing(ds, box, error, message):
    with pytest.raises(error) as caught:
        ds.add_boxes("img1.png", [box])
    assert message in str(caught.value)
    assert ds.boxes("img1.png") == [] and "cat" not in ds.labels


def test_unknown_images_and_box_ids_and_bad_updates(ds):
    (cat_id,) = ds.add_boxes("img1.png", [CAT])
    with pytest.raises(NotFound, match=r"no sample with id 'nope\.png'"):
        ds.add_boxes("nope.png", [CAT])
    with pytest.raises(NotFound, match="has no box 'b-nope'"):
        ds.update_box("img1.png", "b-nope", label="dog")
    with pytest.raises(NotFound, match="has no box"):
        ds.delete_boxes("img1.png", ["b-nope"])
    with pytest.raises(InvalidArgument, match="update_box changes label"):
        ds.update_box("img1.png", cat_id, colour="red")
    with pytest.raises(InvalidArgument, match="xmax must be greater"):
        ds.update_box("img1.png", cat_id, xmax=0.5)
    with pytest.raises(InvalidArgument, match="outside the image"):
        ds.update_box("img1.png", cat_id, xmax=99)
    with pytest.raises(InvalidArgument, match="boxes is empty"):
        ds.add_boxes("img1.png", [])
    assert ds.boxes("img1.png")[0]["xmax"] == 10


def test_the_image_size_is_read_when_unknown_and_remembered(ds):
    frame = ds.to_pandas().set_index("id")
    assert frame["width"].isna()["img2.png"]  # sync lists files, it does not open them
    ds.add_boxes("img2.png", [CAT])
    frame = ds.to_pandas().set_index("id")
    assert (frame.at["img2.png", "width"], frame.at["img2.png", "height"]) == (24, 24)


def test_label_operations_reach_box_labels(ds, image_dir: Path):
    ds.add_boxes("img1.png", [CAT, DOG])
    ds.add_boxes("img2.png", [CAT])
    ds.label("img3.png", "cat")
    ds.label("img4.png", "dog")
    ds.add_boxes("img4.png", [CAT])
    assert ds.label_counts() == {"cat": 4, "dog": 2}  # images carrying the label
    assert ds.box_counts() == {"cat": 3, "dog": 1}
    assert sorted(ds.query(labels="dog")["id"]) == ["img1.png", "img4.png"]
    assert sorted(ds.query(boxes=True)["id"]) == ["img1.png", "img2.png", "img4.png"]
    assert ds.label_impact("cat") == {"images": 4, "only": 2}  # img2 (one box), img3 (a label)

    ds.rename_label("cat", "feline")
    assert [b["label"] for b in ds.boxes("img1.png")] == ["feline", "dog"]
    ds.rename_label("dog", "feline")  # merge
    assert {b["label"] for b in ds.boxes("img1.png")} == {"feline"}
    assert ds.undo() == "rename_label"
    assert [b["label"] for b in ds.boxes("img1.png")] == ["feline", "dog"]

    ds.delete_label("feline", mode="label")
    assert [b["label"] for b in ds.boxes("img1.png")] == ["dog"] and ds.boxes("img2.png") == []
    assert ds.undo() == "delete_label"
    assert removed_ids(ds, "feline", "samples") == ["img2.png", "img3.png"]
    assert [b["label"] for b in _fresh(image_dir).boxes("img1.png")] == ["dog"]


def removed_ids(ds: jlabel.Dataset, name: str, mode: str) -> list[str]:
    before = set(ds.internal.query_ids())
    assert ds.delete_label(name, mode=mode) == 2
    return sorted(before - set(ds.internal.query_ids()))


def test_delete_label_sources_removes_the_files_of_images_boxed_only_with_it(ds, image_dir):
    ds.add_boxes("img1.png", [CAT])
    ds.add_boxes("img2.png", [CAT, DOG])
    assert ds.delete_label("cat", mode="sources") == 1
    assert not (image_dir / "img1.png").exists() and (image_dir / "img2.png").exists()
    assert [b["label"] for b in ds.boxes("img2.png")] == ["dog"]


def test_to_pandas_has_boxes_and_proposed_boxes(ds):
    ds.add_boxes("img1.png", [CAT])
    ds.internal.set_proposals(["img2.png"], [[]], [[]], boxes=[[{**DOG, "score": 0.8}]])
    frame = ds.to_pandas().set_index("id")
    assert frame.at["img1.png", "boxes"][0]["label"] == "cat"
    assert frame.at["img2.png", "proposed_boxes"][0]["score"] == pytest.approx(0.8)
    assert frame.at["img3.png", "boxes"] is None and frame.at["img3.png", "proposed_boxes"] is None


def test_box_proposals_are_confirmed_rejected_or_edited_one_by_one(ds, image_dir: Path):
    proposals = [
        [{**CAT, "score": 0.9}, {**DOG, "score": 0.6}],
        [{**DOG, "score": 0.95}],
        [{**CAT, "score": 0.7}],
    ]
    ids = ["img1.png", "img2.png", "img3.png"]
    ds.internal.set_proposals(ids, [[], [], []], [[], [], []], boxes=proposals)
    assert sorted(ds.query(tab="to_confirm")["id"]) == ids
    assert ds.query(tab="to_confirm")["id"].tolist()[0] == "img2.png"  # surest first

    # img1: accept one, edit the other (it becomes a confirmed box), then nothing is left
    first, second = (b["box_id"] for b in ds.proposed_boxes("img1.png"))
    assert ds.accept_boxes("img1.png", [first]) == 1
    ds.update_box("img1.png", second, label="wolf", xmax=22)
    confirmed = {b["box_id"]: b for b in ds.boxes("img1.png")}
    assert confirmed[first]["source"] == "auto" and "score" not in confirmed[first]
    assert confirmed[second]["source"] == "manual" and confirmed[second]["label"] == "wolf"
    assert ds.proposed_boxes("img1.png") == [] and "img1.png" in set(ds.query(tab="labeled")["id"])

    # img2: confirmed whole; img3: a dropped proposed box, then rejected
    assert ds.confirm(["img2.png"]) == 1
    (box,) = ds.boxes("img2.png")
    assert (box["source"], box["labeled_by"], box["label"]) == ("auto", "ann", "dog")
    ds.internal.set_proposals(
        ["img3.png"], [[]], [[]], boxes=[[{**CAT, "score": 0.7}, {**DOG, "score": 0.5}]]
    )
    drop = ds.proposed_boxes("img3.png")[1]["box_id"]
    ds.delete_boxes("img3.png", [drop])
    assert [b["label"] for b in ds.proposed_boxes("img3.png")] == ["cat"]
    ds.reject(["img3.png"])
    assert ds.proposed_boxes("img3.png") == [] and ds.count(tab="to_confirm") == 0
    assert ds.undo() == "reject"
    assert len(ds.proposed_boxes("img3.png")) == 1
    again = _fresh(image_dir)
    assert again.boxes("img1.png") == ds.boxes("img1.png")
    assert again.proposed_boxes("img3.png") == ds.proposed_boxes("img3.png")


def test_box_proposals_never_touch_an_image_a_person_boxed_meanwhile(ds):
    ds.add_boxes("img1.png", [CAT])
    ds.internal.set_proposals(["img1.png"], [[]], [[]], boxes=[[{**DOG, "score": 0.9}]])
    assert ds.proposed_boxes("img1.png") == []


def test_boxes_survive_a_compaction_and_a_reopen(ds, image_dir: Path):
    ds.add_boxes("img1.png", [CAT, DOG])
    ds.internal.set_proposals(["img2.png"], [["cat"]], [[0.5]], boxes=[[{**CAT, "score": 0.4}]])
    before = ds.to_pandas()
    assert ds.compact()
    ds.close()
    again = _fresh(image_dir)
    after = again.to_pandas()
    assert after["boxes"].tolist() == before["boxes"].tolist()
    assert after["proposed_boxes"].tolist() == before["proposed_boxes"].tolist()
    assert again.label_counts() == {"cat": 1, "dog": 1}  # proposals do not count
    assert sorted(again.query(labels="dog")["id"]) == ["img1.png"]


def test_a_box_edit_is_seen_by_another_kernel_and_survives_its_delete(image_dir: Path):
    a = jlabel.open(image_dir, user="ann")
    b = jlabel.open(image_dir, user="bob")
    (box_id,) = a.add_boxes("img1.png", [CAT])
    a.add_boxes("img5.png", [DOG])
    assert b.refresh() and b.boxes("img1.png")[0]["box_id"] == box_id
    a.delete_images(["img5.png"])
    b.update_box("img5.png", b.boxes("img5.png")[0]["box_id"], label="cat")  # b had not refreshed
    b.update_box("img1.png", box_id, label="owl")
    assert a.compact()
    a.refresh()
    b.refresh()
    for ds in (a, b, _fresh(image_dir)):
        assert ds.boxes("img1.png")[0]["label"] == "owl"
        assert "img5.png" not in set(ds.internal.query_ids())
    a.close()
    b.close()


VOC = b"""<annotation><object><name>car</name><difficult>1</difficult>
<bndbox><xmin>1</xmin><ymin>2</ymin><xmax>10</xmax><ymax>12</ymax></bndbox></object>
<object><name>bus</name><bndbox><xmin>3</xmin><ymin>3</ymin><xmax>9</xmax><ymax>9</ymax></bndbox>
</object></annotation>"""


def test_voc_boxes_import_and_never_overwrite_boxes_made_in_jlabel(image_dir: Path):
    (image_dir / "img1.xml").write_bytes(VOC)
    (image_dir / "img2.xml").write_bytes(VOC)
    ds = jlabel.open(image_dir)
    boxes = ds.boxes("img1.png")
    assert [(b["box_id"], b["label"], b["difficult"]) for b in boxes] == [
        ("voc-1", "car", True),
        ("voc-2", "bus", False),
    ]
    assert boxes[0]["source"] == "imported" and boxes[0]["labeled_by"] is None
    ds.update_box("img2.png", "voc-1", label="van")  # made in jlabel now
    for name in ("img1.xml", "img2.xml"):
        (image_dir / name).write_bytes(VOC.replace(b"<name>car</name>", b"<name>tram</name>"))
        os.utime(image_dir / name, (2e9, 2e9))
    ds.sync()
    assert ds.boxes("img1.png")[0]["label"] == "tram"  # the file changed: re-imported
    assert ds.boxes("img2.png")[0]["label"] == "van"  # the jlabel edit is kept
    ds.close()


def _write_image(path: Path, size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (40, 80, 120)).save(path)


def test_yolo_folders_are_recognised_by_their_class_files(tmp_path: Path):
    root = tmp_path / "data"
    _write_image(root / "yolo" / "a.png", (100, 50))
    (root / "yolo" / "classes.txt").write_text("cat\ndog\n")
    (root / "yolo" / "a.txt").write_text("1 0.5 0.5 0.2 0.4\n0 0.1 0.1 0.2 0.2\n")
    _write_image(root / "set" / "images" / "train" / "b.png", (40, 40))
    (root / "set" / "data.yaml").write_text("path: .\nnames:\n  0: car\n  1: bus\n")
    (root / "set" / "labels" / "train").mkdir(parents=True)
    (root / "set" / "labels" / "train" / "b.txt").write_text("1 0.25 0.25 0.5 0.5\n")
    _write_image(root / "plain" / "c.png", (10, 10))
    (root / "plain" / "c.txt").write_text("cat\n")  # no class file: classification labels
    ds = jlabel.open(root)
    a = ds.boxes("yolo/a.png")
    assert [(b["label"], b["xmin"], b["ymin"], b["xmax"], b["ymax"]) for b in a] == [
        ("dog", 40.0, 15.0, 60.0, 35.0),
        ("cat", 0.0, 0.0, 20.0, 10.0),
    ]
    (b,) = ds.boxes("set/images/train/b.png")
    assert (b["label"], b["xmin"], b["xmax"], b["box_id"]) == ("bus", 0.0, 20.0, "yolo-1")
    frame = ds.to_pandas().set_index("id")
    assert list(frame.at["plain/c.png", "labels"]) == ["cat"] and ds.boxes("plain/c.png") == []
    assert "classes.txt" not in set(frame.index)
    (root / "yolo" / "a.txt").write_text("7 0.5 0.5 0.1 0.1\n")
    os.utime(root / "yolo" / "a.txt", (2e9, 2e9))
    report = ds.sync()
    assert any("yolo/a.png" in p and "class 7" in str(p) for p in report.problems)
    ds.close()
