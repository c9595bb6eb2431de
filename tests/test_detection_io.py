"""Detection I/O: boxes through the VOC, COCO and YOLO exports (each read back), the
``to_torch(task="detection")`` view training a torchvision detector, and detection pre-labeling."""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

import jlabel
from jlabel.errors import InvalidArgument
from jlabel.export import MARKER, export

BOXES = {
    "a.png": [
        {"label": "cat", "xmin": 1, "ymin": 2, "xmax": 20, "ymax": 25},
        {"label": "dog", "xmin": 10.5, "ymin": 5, "xmax": 39, "ymax": 29, "difficult": True},
    ],
    "sub/b.png": [{"label": "dog", "xmin": 0, "ymin": 0, "xmax": 32, "ymax": 16}],
    "rot.jpg": [{"label": "cat", "xmin": 1, "ymin": 1, "xmax": 9, "ymax": 19}],
}
SIZES = {"a.png": (40, 30), "sub/b.png": (32, 32), "c.png": (12, 12), "e.png": (8, 8)}


def _make_images(root: Path) -> None:
    for name, size in SIZES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (len(name) * 20, 90, 160)).save(root / name)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 20x10, shown (and boxed) 10x20
    Image.new("RGB", (20, 10), (200, 30, 30)).save(root / "rot.jpg", exif=exif)


@pytest.fixture
def ds(tmp_path: Path):
    """a.png: 2 boxes; sub/b.png: a box and the image label 'outdoor'; rot.jpg (EXIF-rotated):
    a box; c.png: only 'outdoor'; e.png: nothing."""
    root = tmp_path / "data"
    _make_images(root)
    dataset = jlabel.open(root, user="ann")
    for sample_id, boxes in BOXES.items():
        dataset.add_boxes(sample_id, boxes)
    dataset.label(["sub/b.png", "c.png"], "outdoor")
    yield dataset
    dataset.close()


def _geometry(boxes) -> list[tuple]:
    """What a format must keep of boxes: label, coordinates (to 1/1000 px), difficult."""
    return sorted(
        (
            b["label"],
            *(round(float(b[k]), 3) for k in ("xmin", "ymin", "xmax", "ymax")),
            bool(b.get("difficult", False)),
        )
        for b in boxes
    )


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


# ------------------------------------------------------------------------------ VOC
def test_voc_export_round_trips_boxes_and_labels_through_sync(ds, tmp_path):
    out = tmp_path / "voc"
    export(ds, out, format="voc")
    assert {"a.xml", "sub/b.xml", "rot.xml", "sub/b.txt", "c.txt"} <= _files(out)
    assert "c.xml" not in _files(out) and "e.png" not in _files(out)  # tab="labeled"
    copy = jlabel.open(out, user="bob")
    for sample_id in BOXES:
        assert _geometry(copy.boxes(sample_id)) == _geometry(ds.boxes(sample_id)), sample_id
        assert {b["source"] for b in copy.boxes(sample_id)} == {"imported"}
    assert list(copy.to_pandas().set_index("id").at["c.png", "labels"]) == ["outdoor"]
    assert "outdoor" in copy.to_pandas().set_index("id").at["sub/b.png", "labels"]
    # difficult survives as VOC's <difficult>1</difficult>
    assert "<difficult>1</difficult>" in (out / "a.xml").read_text()
    assert "<width>10</width>" in (out / "rot.xml").read_text()  # the size as shown
    copy.close()


# ------------------------------------------------------------------------------ COCO
def _read_coco(path: Path) -> tuple[dict[str, tuple[int, int]], dict[str, list[dict]], dict]:
    """A minimal COCO reader: sizes and boxes (VOC-style dicts) per file name."""
    doc = json.loads(path.read_text())
    names = {c["id"]: c["name"] for c in doc["categories"]}
    files = {im["id"]: im["file_name"] for im in doc["images"]}
    sizes = {im["file_name"]: (im["width"], im["height"]) for im in doc["images"]}
    boxes: dict[str, list[dict]] = {}
    for ann in doc["annotations"]:
        if "bbox" not in ann:
            continue
        x, y, w, h = ann["bbox"]
        assert ann["area"] == pytest.approx(w * h) and ann["iscrowd"] == 0
        boxes.setdefault(files[ann["image_id"]], []).append(
            {"label": names[ann["category_id"]], "xmin": x, "ymin": y, "xmax": x + w, "ymax": y + h}
        )
    return sizes, boxes, doc


def test_coco_export_has_xywh_boxes_categories_and_image_sizes(ds, tmp_path):
    path = Path(export(ds, tmp_path / "coco.json", format="coco"))
    sizes, boxes, doc = _read_coco(path)
    assert sizes == {
        "a.png": (40, 30),
        "sub/b.png": (32, 32),
        "rot.jpg": (10, 20),
        "c.png": (12, 12),
    }
    assert {c["name"] for c in doc["categories"]} == {"cat", "dog", "outdoor"}
    assert len({c["id"] for c in doc["categories"]}) == 3
    for sample_id in BOXES:
        want = [{k: v for k, v in b.items() if k != "difficult"} for b in BOXES[sample_id]]
        assert _geometry(boxes[sample_id]) == _geometry(want), sample_id
    dog = next(a for a in doc["annotations"] if a.get("bbox") and a["bbox"][0] == 10.5)
    assert dog["bbox"] == [10.5, 5, 28.5, 24]  # [x, y, w, h]
    image_level = [a for a in doc["annotations"] if "bbox" not in a]
    outdoor = next(c["id"] for c in doc["categories"] if c["name"] == "outdoor")
    assert sorted(a["category_id"] for a in image_level) == [outdoor, outdoor]


# ------------------------------------------------------------------------------ YOLO
def test_yolo_export_writes_normalised_lines_and_class_files(ds, tmp_path):
    out = tmp_path / "yolo"
    with pytest.warns(UserWarning, match="2 image.*image-level labels that YOLO cannot hold"):
        export(ds, out, format="yolo")  # 'outdoor' of sub/b.png and c.png
    files = _files(out)
    assert {MARKER, "data.yaml", "classes.txt", "images/a.png", "images/c.png"} <= files
    assert {"labels/a.txt", "labels/sub/b.txt", "labels/rot.txt"} <= files
    assert "labels/c.txt" not in files  # no boxes: a background image
    assert (out / "classes.txt").read_text() == "cat\ndog\n"  # box labels only, label-set order
    assert "names:\n  0: cat\n  1: dog\n" in (out / "data.yaml").read_text()
    assert "nc: 2" in (out / "data.yaml").read_text()
    lines = (out / "labels" / "a.txt").read_text().splitlines()
    assert lines == [
        "0 0.262500 0.450000 0.475000 0.766667",  # cat: cx=10.5/40, cy=13.5/30, w=19/40, h=23/30
        "1 0.618750 0.566667 0.712500 0.800000",
    ]
    # rot.jpg is normalised by its size as shown (10x20), not as stored (20x10)
    assert (out / "labels" / "rot.txt").read_text() == "0 0.500000 0.500000 0.800000 0.900000\n"
    assert (out / "images" / "rot.jpg").read_bytes() == (Path(ds.root) / "rot.jpg").read_bytes()


def test_yolo_export_round_trips_boxes_through_jlabels_yolo_import(ds, tmp_path):
    out = tmp_path / "yolo"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        export(ds, out, format="yolo")
    copy = jlabel.open(out, user="bob")
    assert "images/classes.txt" not in set(copy.to_pandas()["id"])
    for sample_id in BOXES:
        got = copy.boxes(f"images/{sample_id}")
        want = [{**b, "difficult": False} for b in ds.boxes(sample_id)]  # YOLO has no difficult
        assert [g[0] for g in _geometry(got)] == [w[0] for w in _geometry(want)]
        for g, w in zip(_geometry(got), _geometry(want), strict=True):
            assert g[1:5] == pytest.approx(w[1:5], abs=1e-3), sample_id
    assert copy.boxes("images/c.png") == []
    copy.close()


def test_yolo_export_warns_about_image_labels_only_when_boxes_do_not_carry_them(tmp_path):
    root = tmp_path / "data"
    _make_images(root)
    dataset = jlabel.open(root)
    dataset.add_boxes("a.png", BOXES["a.png"])
    dataset.label(["a.png"], "cat")  # also a box label: nothing is lost
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        export(dataset, tmp_path / "y", format="yolo")
    dataset.label(["c.png"], "outdoor")
    with pytest.warns(UserWarning, match="1 image"):
        export(dataset, tmp_path / "y", format="yolo", overwrite=True)
    dataset.close()


def test_image_level_exports_keep_working_with_boxes_present(ds, tmp_path):
    out = tmp_path / "if"
    export(ds, out)  # imagefolder: image-level labels only
    assert _files(out) == {MARKER, "outdoor/sub/b.png", "outdoor/c.png"}
    with pytest.raises(jlabel.JLabelError, match="unknown export format 'yolov8'"):
        export(ds, tmp_path / "x", format="yolov8")


def test_yolo_export_is_refused_inside_the_dataset(ds):
    with pytest.raises(jlabel.JLabelError, match="inside"):
        export(ds, Path(ds.root) / "yolo", format="yolo")


# ------------------------------------------------------------------------------ to_torch
def test_to_torch_detection_items_are_images_with_xyxy_boxes_and_int64_labels(ds):
    view = ds.to_torch(task="detection")
    assert sorted(view.ids) == sorted(BOXES)
    assert "c.png" not in view.ids  # no boxes: left out
    assert view.classes == ["__background__", "cat", "dog"] and view.num_classes == 3
    image, target = view[view.ids.index("a.png")]
    assert image.shape == (3, 30, 40) and image.dtype == torch.float32
    assert isinstance(target["boxes"], torch.Tensor) and target["boxes"].dtype == torch.float32
    assert target["boxes"].tolist() == [[1, 2, 20, 25], [10.5, 5, 39, 29]]
    assert target["labels"].dtype == torch.int64 and target["labels"].tolist() == [1, 2]
    image, target = view[view.ids.index("rot.jpg")]
    assert image.shape == (3, 20, 10)  # as shown: EXIF rotation applied, like the boxes
    assert target["boxes"].tolist() == [[1, 1, 9, 19]] and target["labels"].tolist() == [1]

    small = ds.to_torch(task="detection", image_size=(15, 20))  # (height, width)
    image, target = small[small.ids.index("a.png")]
    assert image.shape == (3, 15, 20)
    assert target["boxes"].tolist() == [[0.5, 1, 10, 12.5], [5.25, 2.5, 19.5, 14.5]]

    copy = pickle.loads(pickle.dumps(view))  # DataLoader workers get a pickled copy
    assert copy[0][1]["boxes"].tolist() == view[0][1]["boxes"].tolist()
    loader = torch.utils.data.DataLoader(view, batch_size=2, collate_fn=view.collate_fn)
    images, targets = next(iter(loader))
    assert len(images) == len(targets) == 2 and {"boxes", "labels"} <= set(targets[0])


def test_to_torch_detection_transforms_move_the_boxes_with_the_image(ds):
    from torchvision.transforms import v2

    view = ds.to_torch(task="detection", transform=v2.RandomHorizontalFlip(p=1.0), labels=["cat"])
    assert "sub/b.png" not in view.ids  # the labels filter reaches box labels
    _, target = view[view.ids.index("a.png")]
    assert target["boxes"].tolist() == [[20, 2, 39, 25], [1, 5, 29.5, 29]]  # x -> 40 - x


def test_to_torch_refuses_a_bad_task(ds):
    with pytest.raises(InvalidArgument, match="task must be one of 'classification', 'detection'"):
        ds.to_torch(task="segmentation")
    with pytest.raises(InvalidArgument, match="multi_label applies to task='classification'"):
        ds.to_torch(task="detection", multi_label=True)


@pytest.mark.slow
def test_a_torchvision_detector_trains_one_step_on_the_detection_view(ds):
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn

    torch.manual_seed(0)
    view = ds.to_torch(task="detection")
    model = fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=view.num_classes, min_size=64, max_size=64
    )
    model.train()
    loader = torch.utils.data.DataLoader(view, batch_size=3, collate_fn=view.collate_fn)
    images, targets = next(iter(loader))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    losses = model(images, targets)
    assert {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"} <= set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    optimizer.zero_grad()
    total.backward()
    grads = [p.grad for p in model.roi_heads.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)
    optimizer.step()


def test_new_box_labels_join_the_label_set_in_box_order(tmp_path):
    root = tmp_path / "data"
    _make_images(root)
    dataset = jlabel.open(root)
    names = ["zebra", "ant", "mole", "yak", "bee", "owl", "cow"]
    dataset.add_boxes(
        "a.png",
        [{"label": n, "xmin": i, "ymin": 0, "xmax": i + 2, "ymax": 5} for i, n in enumerate(names)],
    )
    assert dataset.labels == names  # YOLO class indices and to_torch labels follow this order
    assert dataset.to_torch(task="detection").classes == ["__background__", *names]
    dataset.close()


# ------------------------------------------------------------------------------ pre_label
def _fake_detector(calls: list[str] | None = None):
    """A callable detector: per image, a good cat box, a weaker duplicate (NMS drops it), a
    box under the score floor, one running off the image (clipped) and a class the dataset
    does not have."""

    def detect(image: Image.Image) -> list[dict]:
        if calls is not None:
            calls.append(image.size)
        w, h = image.size
        return [
            {"label": "cat", "xmin": 1, "ymin": 1, "xmax": w - 2, "ymax": h - 2, "score": 0.9},
            {"label": "cat", "xmin": 1.5, "ymin": 1, "xmax": w - 2, "ymax": h - 2, "score": 0.8},
            {"label": "dog", "xmin": 0, "ymin": 0, "xmax": 3, "ymax": 3, "score": 0.1},
            {"label": "dog", "xmin": -4, "ymin": 2, "xmax": w + 9, "ymax": 5, "score": 0.6},
            {"label": "truck", "xmin": 0, "ymin": 0, "xmax": 4, "ymax": 4, "score": 0.99},
        ]

    return detect


def test_pre_label_detection_with_a_callable_proposes_filtered_boxes_then_confirm(ds):
    calls: list = []
    job = ds.pre_label(_fake_detector(calls), task="detection", progress=False).wait(60)
    assert job.result["task"] == "detection" and job.result["proposed"] == 2
    assert job.result["unmapped_classes"] == {"truck": 2}  # not a dataset label: dropped
    assert sorted(calls) == [(8, 8), (12, 12)]  # c.png (image label only) and e.png
    assert set(ds.query(tab="to_confirm")["id"]) == {"c.png", "e.png"}
    proposed = ds.proposed_boxes("c.png")
    assert [(b["label"], b["score"]) for b in proposed] == [("cat", 0.9), ("dog", 0.6)]
    assert (proposed[0]["xmin"], proposed[0]["xmax"]) == (1, 10)
    assert (proposed[1]["xmin"], proposed[1]["xmax"]) == (0, 12)  # clipped to the image
    assert ds.boxes("c.png") == [] and ds.boxes("a.png")  # boxed images were left alone
    assert ds.confirm(["c.png"]) == 1
    assert [(b["label"], b["source"], b["labeled_by"]) for b in ds.boxes("c.png")] == [
        ("cat", "auto", "ann"),
        ("dog", "auto", "ann"),
    ]
    assert (
        ds.proposed_boxes("c.png") == []
        and "outdoor" in ds.to_pandas().set_index("id").at["c.png", "labels"]
    )


def test_pre_label_detection_maps_classes_and_applies_the_options(ds):
    ds.pre_label(
        _fake_detector(),
        task="detection",
        mapping={"truck": "vehicle", "cat": "cat"},
        min_score=0.85,
        max_boxes=1,
        progress=False,
    ).wait(60)
    assert [(b["label"], b["score"]) for b in ds.proposed_boxes("e.png")] == [("vehicle", 0.99)]
    assert "vehicle" in ds.labels
    ds.pre_label(
        _fake_detector(), task="detection", nms_iou=0.99, min_score=0.7, progress=False
    ).wait(60)
    assert [b["score"] for b in ds.proposed_boxes("e.png")] == [0.9, 0.8]  # no suppression
    with pytest.raises(jlabel.PreconditionError, match="already has boxes or proposed boxes"):
        ds.pre_label(_fake_detector(), task="detection", include_proposed=False)


def test_a_failed_or_cancelled_detection_job_writes_nothing(ds):
    import threading

    def broken(image):
        if image.size == (8, 8):  # e.png, after c.png was done
            raise RuntimeError("detector crashed")
        return _fake_detector()(image)

    job = ds.pre_label(broken, task="detection", batch=1, progress=False)
    with pytest.raises(jlabel.JLabelError, match="detector crashed"):
        job.wait(60)
    assert ds.count(tab="to_confirm") == 0 and ds.proposed_boxes("e.png") == []

    started, go_on = threading.Event(), threading.Event()

    def slow(image):
        started.set()
        go_on.wait(10)
        return _fake_detector()(image)

    job = ds.pre_label(slow, task="detection", batch=1, progress=False)
    assert started.wait(30)
    job.cancel()
    go_on.set()
    job.wait(60)
    assert job.status == "cancelled"
    assert ds.count(tab="to_confirm") == 0
    assert ds.proposed_boxes("c.png") == [] and ds.proposed_boxes("e.png") == []


def test_pre_label_task_option_is_in_the_signature_docs_form_and_checked(ds):
    import inspect

    from jlabel.options import PRE_LABEL

    params = inspect.signature(ds.pre_label).parameters
    assert params["task"].default == "classification" and params["min_score"].default == 0.3
    assert "task : str, default 'classification'" in ds.pre_label.__doc__
    assert "nms_iou : float, default 0.5" in ds.pre_label.__doc__
    form = {entry["name"]: entry for entry in PRE_LABEL.form()}
    assert [c["value"] for c in form["task"]["choices"]] == ["classification", "detection"]
    with pytest.raises(InvalidArgument, match="task must be 'classification' or 'detection'"):
        ds.pre_label(_fake_detector(), task="segmentation")
    with pytest.raises(InvalidArgument, match="min_score must be a number in"):
        ds.pre_label(_fake_detector(), task="detection", min_score=1.5)
    with pytest.raises(InvalidArgument, match="nms_iou must be a number in"):
        ds.pre_label(_fake_detector(), task="detection", nms_iou=0)
    with pytest.raises(InvalidArgument, match="multi_label applies to task='classification'"):
        ds.pre_label(_fake_detector(), task="detection", multi_label=True)
    with pytest.raises(jlabel.JLabelError, match="'resnet18' is not a torchvision detection"):
        ds.pre_label("resnet18", task="detection", weights="DEFAULT")
    with pytest.raises(jlabel.JLabelError, match="needs classes"):
        ds.pre_label(torch.nn.Identity(), task="detection")
    assert ds.count(tab="to_confirm") == 0


class _TinyDetector(torch.nn.Module):
    """A scriptable detector returning torchvision-style output: one box per image, the image's
    left half, class 2, and a duplicate of it (NMS drops it)."""

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        out: list[dict[str, torch.Tensor]] = []
        for image in images:
            h, w = float(image.shape[1]), float(image.shape[2])
            box = torch.tensor([[0.0, 0.0, w / 2, h], [0.0, 0.0, w / 2, h - 1]])
            out.append(
                {
                    "boxes": box,
                    "labels": torch.tensor([2, 2]),
                    "scores": torch.tensor([0.75, 0.7]) + image.mean() * 0,
                }
            )
        return out


def test_pre_label_detection_with_a_torchscript_file(ds, tmp_path):
    path = tmp_path / "tiny.pt"
    torch.jit.script(_TinyDetector()).save(str(path))
    job = ds.pre_label(
        str(path), task="detection", classes=["__background__", "cat", "dog"], progress=False
    ).wait(60)
    assert job.result["model"] == "torchscript:tiny.pt"
    assert [(b["label"], b["xmax"], b["ymax"]) for b in ds.proposed_boxes("c.png")] == [
        ("dog", 6.0, 12.0)
    ]
    assert job.result["hard"] == 2  # 0.75 < target_precision 0.95


@pytest.mark.slow
def test_pre_label_detection_with_torchvision_detectors_weights_none(ds):
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn

    classes = ["__background__", "cat", "dog"]
    torch.manual_seed(0)
    module = fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=3, min_size=64, max_size=64
    )
    module.roi_heads.score_thresh = 0.0  # random weights score low; keep what it finds
    job = ds.pre_label(
        module, task="detection", classes=classes, min_score=0.0, device="cpu", progress=False
    ).wait(120)
    assert job.result["model"] == "module:FasterRCNN" and job.result["proposed"] == 2
    for sample_id, (w, h) in (("c.png", (12, 12)), ("e.png", (8, 8))):
        boxes = ds.proposed_boxes(sample_id)
        assert 1 <= len(boxes) <= 100
        assert {b["label"] for b in boxes} <= {"cat", "dog"}
        assert all(
            0 <= b["xmin"] < b["xmax"] <= w and 0 <= b["ymin"] < b["ymax"] <= h for b in boxes
        )
    job = ds.pre_label(
        "fasterrcnn_mobilenet_v3_large_320_fpn",
        task="detection",
        weights=None,
        classes=classes,
        device="cpu",
        progress=False,
    ).wait(120)
    assert job.status == "done" and job.result["model"].startswith("torchvision:fasterrcnn")


def test_box_ops_turn_detector_output_into_clean_proposals():
    from jlabel.autolabel import box_ops

    boxes = box_ops.from_tensors(
        torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]]),
        torch.tensor([1, 1, 2]),
        torch.tensor([0.5, 0.9, float("nan")]),
        ["__background__", "traffic light", "cat"],
    )
    assert [b["label"] for b in boxes] == ["traffic light", "traffic light", "cat"]
    with pytest.raises(jlabel.PreconditionError, match="class index 5"):
        box_ops.from_tensors([[0, 0, 1, 1]], [5], [0.9], ["__background__", "cat"])
    with pytest.raises(jlabel.PreconditionError, match="1 boxes, 2 labels"):
        box_ops.from_tensors([[0, 0, 1, 1]], [1, 1], [0.9, 0.9], None)
    mapped = box_ops.map_labels(boxes, None, None)
    assert [b["label"] for b in mapped] == ["traffic_light", "traffic_light", "cat"]
    kept = box_ops.postprocess(mapped, size=(25, 25), score_floor=0.1, nms_iou=0.5)
    # the NaN score goes, NMS keeps the better of the two overlapping boxes
    assert [(b["label"], b["xmin"]) for b in kept] == [("traffic_light", 1.0)]
    assert kept[0]["score"] == pytest.approx(0.9)
    dropped: dict[str, int] = {}
    assert box_ops.map_labels(boxes, {"cat": "kitty"}, None, dropped)[0]["label"] == "kitty"
    assert dropped == {"traffic light": 2}
    assert box_ops.clip({"xmin": 30, "ymin": 0, "xmax": 40, "ymax": 5}, (25, 25)) is None
    with pytest.raises(jlabel.PreconditionError, match="list of box dicts"):
        box_ops.from_dicts({"label": "cat"})
