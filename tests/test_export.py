"""Exports (ImageFolder, CSV, COCO, VOC round trip) and `to_torch`, on real image files."""

from __future__ import annotations

import csv
import json
import os
import pickle
from datetime import datetime
from pathlib import Path

import pytest
import torch
from PIL import Image

import jlabel
from jlabel.errors import JLabelError, PreconditionError
from jlabel.export import MARKER, export, to_torch

COLORS = {"a.png": (255, 0, 0), "sub/b.png": (0, 255, 0), "c.png": (0, 0, 255), "d.bmp": (9, 9, 9)}
SIZES = {"a.png": (20, 10), "sub/b.png": (16, 12), "c.png": (8, 8), "d.bmp": (30, 5)}
VOC_B = """<annotation><filename>b.png</filename>
<object><name>dog</name><difficult>1</difficult>
<bndbox><xmin>1</xmin><ymin>2</ymin><xmax>9.5</xmax><ymax>11</ymax></bndbox></object>
<object><name>cat</name>
<bndbox><xmin>0</xmin><ymin>0</ymin><xmax>4</xmax><ymax>4</ymax></bndbox></object>
</annotation>"""


def _write_images(root: Path) -> None:
    for name, color in COLORS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", SIZES[name], color).save(root / name)


@pytest.fixture
def ds(tmp_path: Path) -> jlabel.Dataset:
    """a.png: cat; sub/b.png: cat + dog (imported .txt), two VOC boxes; c.png: none; d.bmp: dog."""
    root = tmp_path / "data"
    _write_images(root)
    (root / "sub" / "b.txt").write_text("cat\ndog\n")
    (root / "sub" / "b.xml").write_text(VOC_B)
    dataset = jlabel.open(root, user="tester")
    dataset.label(["a.png"], "cat")
    dataset.label(["d.bmp"], "dog")
    return dataset


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _labels_by_id(dataset: jlabel.Dataset) -> dict[str, list[str]]:
    df = dataset.to_pandas()
    return {i: sorted(labels) for i, labels in zip(df["id"], df["labels"], strict=True)}


def test_imagefolder_copies_each_image_under_each_label(ds, tmp_path):
    out = tmp_path / "if"
    assert export(ds, out) == str(out)
    assert _files(out) == {
        MARKER,
        "cat/a.png",
        "cat/sub/b.png",
        "dog/sub/b.png",
        "dog/d.bmp",
    }
    for rel in _files(out) - {MARKER}:
        sample_id = rel.split("/", 1)[1]
        assert (out / rel).read_bytes() == (Path(ds.root) / sample_id).read_bytes()
    from torchvision.datasets import ImageFolder

    folder = ImageFolder(str(out))
    assert folder.classes == ["cat", "dog"]
    assert len(folder) == 4


def test_imagefolder_with_a_label_filter(ds, tmp_path):
    export(ds, tmp_path / "dogs", labels=["dog"])
    assert _files(tmp_path / "dogs") == {MARKER, "cat/sub/b.png", "dog/sub/b.png", "dog/d.bmp"}


def test_csv_columns_and_values(ds, tmp_path):
    path = export(ds, tmp_path / "out" / "labels.csv", format="csv", tab="all")
    with open(path, newline="") as f:
        rows = {row["id"]: row for row in csv.DictReader(f)}
    assert list(next(iter(rows.values()))) == [
        "id",
        "labels",
        "source",
        "labeled_by",
        "labeled_at",
        "width",
        "height",
        "hard",
    ]
    assert set(rows) == set(COLORS)
    assert rows["sub/b.png"]["labels"] == "cat;dog"
    assert rows["sub/b.png"]["source"] == "imported"
    assert rows["a.png"]["labels"] == "cat"
    assert rows["a.png"]["source"] == "manual"
    assert rows["a.png"]["labeled_by"] == "tester"
    assert datetime.fromisoformat(rows["a.png"]["labeled_at"]).tzinfo is not None
    assert rows["c.png"]["labels"] == ""
    for sample_id, (width, height) in SIZES.items():
        assert (int(rows[sample_id]["width"]), int(rows[sample_id]["height"])) == (width, height)
    assert {row["hard"] for row in rows.values()} == {"false"}


def test_coco_images_categories_and_annotations(ds, tmp_path):
    path = export(ds, tmp_path / "coco.json", format="coco")
    doc = json.loads(Path(path).read_text())
    assert doc["info"]["image_root"] == ds.root
    categories = {c["name"]: c["id"] for c in doc["categories"]}
    assert set(categories) == {"cat", "dog"}
    images = {im["file_name"]: im for im in doc["images"]}
    assert set(images) == {"a.png", "sub/b.png", "d.bmp"}  # tab="labeled"
    assert (images["d.bmp"]["width"], images["d.bmp"]["height"]) == SIZES["d.bmp"]
    by_image: dict[str, list[dict]] = {}
    names = {im["id"]: im["file_name"] for im in doc["images"]}
    for ann in doc["annotations"]:
        by_image.setdefault(names[ann["image_id"]], []).append(ann)
    assert len({ann["id"] for ann in doc["annotations"]}) == len(doc["annotations"])
    image_level = {
        n: sorted(a["category_id"] for a in v if "bbox" not in a) for n, v in by_image.items()
    }
    assert image_level == {
        "a.png": [categories["cat"]],
        "sub/b.png": sorted([categories["cat"], categories["dog"]]),
        "d.bmp": [categories["dog"]],
    }
    boxes = sorted((a["category_id"], a["bbox"]) for a in by_image["sub/b.png"] if "bbox" in a)
    assert boxes == sorted([(categories["dog"], [1, 2, 8.5, 9]), (categories["cat"], [0, 0, 4, 4])])


def test_voc_round_trip_through_open(ds, tmp_path):
    out = tmp_path / "voc"
    export(ds, out, format="voc", tab="all")
    assert {"a.png", "a.txt", "sub/b.png", "sub/b.txt", "sub/b.xml", "c.png", "d.bmp"} <= _files(
        out
    )
    assert "c.txt" not in _files(out)  # unlabeled: no label file
    copy = jlabel.open(out, user="other")
    assert _labels_by_id(copy) == _labels_by_id(ds)
    original = ds.to_pandas().set_index("id")["boxes"]
    again = copy.to_pandas().set_index("id")["boxes"]
    assert [dict(b) for b in again["sub/b.png"]] == [dict(b) for b in original["sub/b.png"]]
    assert len(again["sub/b.png"]) == 2
    assert again["a.png"] is None or len(again["a.png"]) == 0


def test_refuses_targets_inside_the_dataset(ds, tmp_path):
    root = Path(ds.root)
    with pytest.raises(JLabelError, match=r"\.jlabel"):
        export(ds, root / ".jlabel" / "labels.csv", format="csv")
    with pytest.raises(JLabelError, match="inside"):
        export(ds, root / "export", format="voc")
    with pytest.raises(JLabelError, match="inside"):
        export(ds, tmp_path, format="imagefolder")  # contains the dataset
    assert not (root / "export").exists()
    export(ds, root / "labels.csv", format="csv")  # a file inside the root is fine
    assert (root / "labels.csv").is_file()


def test_refuses_to_overwrite_unless_asked(ds, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(JLabelError, match="not empty"):
            export(ds, mine, overwrite=overwrite)
    assert _files(mine) == {"notes.txt"}

    out = tmp_path / "out"
    export(ds, out)
    (out / "cat" / "stale.png").write_bytes(b"old")
    with pytest.raises(JLabelError, match="overwrite=True"):
        export(ds, out)
    export(ds, out, overwrite=True, labels=["dog"])
    assert "cat/stale.png" not in _files(out)
    assert "dog/d.bmp" in _files(out)

    export(ds, tmp_path / "l.csv", format="csv")
    with pytest.raises(JLabelError, match="overwrite=True"):
        export(ds, tmp_path / "l.csv", format="csv")
    export(ds, tmp_path / "l.csv", format="csv", overwrite=True, tab="all")
    assert len((tmp_path / "l.csv").read_text().splitlines()) == 1 + len(COLORS)
    with pytest.raises(JLabelError, match="format"):
        export(ds, tmp_path / "x", format="pascal")


def test_unreadable_image_is_skipped_with_a_warning(ds, tmp_path):
    os.remove(Path(ds.root) / "d.bmp")
    with pytest.warns(UserWarning, match="skipped 1"):
        export(ds, tmp_path / "coco.json", format="coco")
    doc = json.loads((tmp_path / "coco.json").read_text())
    assert {im["file_name"] for im in doc["images"]} == {"a.png", "sub/b.png"}


def test_to_torch_single_label(tmp_path):
    root = tmp_path / "data"
    _write_images(root)
    dataset = jlabel.open(root)
    dataset.label(["a.png", "c.png"], "red_or_blue")
    dataset.label(["sub/b.png"], "green")
    data = to_torch(dataset)
    assert isinstance(data, torch.utils.data.Dataset)
    assert data.classes == list(dataset.labels)
    assert len(data) == 3
    by_id = {sample_id: data[k] for k, sample_id in enumerate(data.ids)}
    image, target = by_id["sub/b.png"]
    assert image.dtype == torch.float32
    assert tuple(image.shape) == (3, 12, 16)
    assert torch.allclose(image[:, 0, 0], torch.tensor([0.0, 1.0, 0.0]))
    assert target == data.class_to_idx["green"]
    assert by_id["c.png"][1] == data.class_to_idx["red_or_blue"]
    assert torch.allclose(by_id["c.png"][0][:, 3, 3], torch.tensor([0.0, 0.0, 1.0]))

    resized = to_torch(dataset, image_size=(6, 7), transform=lambda t: t * 2)
    batch, targets = next(iter(torch.utils.data.DataLoader(resized, batch_size=3)))
    assert tuple(batch.shape) == (3, 3, 6, 7)
    assert float(batch.max()) == pytest.approx(2.0)
    assert sorted(targets.tolist()) == sorted(resized.targets)
    copy = pickle.loads(pickle.dumps(data))  # DataLoader worker processes get a pickled copy
    assert copy.ids == data.ids
    assert torch.equal(copy[1][0], data[1][0])


def test_to_torch_multi_label(ds):
    data = to_torch(ds)
    assert data.multi_label
    targets = {sample_id: data[k][1] for k, sample_id in enumerate(data.ids)}
    cat, dog = data.class_to_idx["cat"], data.class_to_idx["dog"]
    expected_b = torch.zeros(len(data.classes))
    expected_b[[cat, dog]] = 1.0
    assert torch.equal(targets["sub/b.png"], expected_b)
    assert targets["a.png"].tolist() == [1.0 if k == cat else 0.0 for k in range(len(data.classes))]
    with pytest.raises(PreconditionError, match="multi_label=True"):
        to_torch(ds, multi_label=False)
    assert len(to_torch(ds, tab="all", multi_label=True)) == 4


@pytest.mark.s3
def test_s3_dataset_exports_locally_and_to_s3(s3, tmp_path):
    import fsspec

    local = tmp_path / "data"
    _write_images(local)
    fs = fsspec.filesystem("s3", **s3.storage_options)
    for name in COLORS:
        fs.put_file(str(local / name), f"jlabel-test/ds/{name}")
    dataset = jlabel.open("s3://jlabel-test/ds", storage_options=s3.storage_options)
    dataset.label(["a.png", "sub/b.png"], "cat")
    dataset.label(["sub/b.png"], "dog")

    out = Path(export(dataset, tmp_path / "if"))
    assert _files(out) == {MARKER, "cat/a.png", "cat/sub/b.png", "dog/sub/b.png"}
    assert (out / "dog/sub/b.png").read_bytes() == (local / "sub/b.png").read_bytes()

    with pytest.raises(JLabelError, match=r"\.jlabel"):
        export(dataset, "s3://jlabel-test/ds/.jlabel/x.csv", format="csv", **_so(s3))
    with pytest.raises(JLabelError, match="inside"):
        export(dataset, "s3://jlabel-test/ds/voc", format="voc", **_so(s3))

    target = export(dataset, "s3://jlabel-test/voc", format="voc", tab="all", **_so(s3))
    assert target == "s3://jlabel-test/voc"
    copy = jlabel.open(target, storage_options=s3.storage_options)
    assert _labels_by_id(copy) == _labels_by_id(dataset)
    with pytest.raises(JLabelError, match="overwrite=True"):
        export(dataset, target, format="voc", **_so(s3))

    data = pickle.loads(pickle.dumps(to_torch(dataset, image_size=4)))
    assert data.multi_label
    assert tuple(data[0][0].shape) == (3, 4, 4)


def _so(server) -> dict:
    return {"storage_options": server.storage_options}


def test_voc_warns_when_two_images_share_label_files(tmp_path):
    root = tmp_path / "data"
    _write_images(root)
    Image.new("RGB", (4, 4), (1, 2, 3)).save(root / "a.bmp")
    dataset = jlabel.open(root)
    dataset.label(["a.png"], "cat")
    dataset.label(["a.bmp"], "dog")
    with pytest.warns(UserWarning, match="share the label files a.txt"):
        export(dataset, tmp_path / "voc", format="voc")
    assert (tmp_path / "voc" / "a.txt").read_text() in ("cat\n", "dog\n")
