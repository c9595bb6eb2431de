"""The export formats: CSV and COCO as one file; ImageFolder, Pascal VOC and YOLO as files per
image."""

from __future__ import annotations

import csv
import io
import json
import posixpath
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from jlabel.export.reading import image_size, image_sizes, warn_skipped
from jlabel.export.values import boxes_of, iso, labels_of, text
from jlabel.yolo import format_boxes, format_data_yaml, label_paths

if TYPE_CHECKING:
    import pandas as pd

    from jlabel.dataset import Dataset

CSV_COLUMNS = ("id", "labels", "source", "labeled_by", "labeled_at", "width", "height", "hard")


def csv_bytes(ds: Dataset, rows: pd.DataFrame) -> bytes:
    """The CSV file: one line per row, columns `CSV_COLUMNS`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    sizes = image_sizes(ds, rows)
    skipped = []
    for (_, row), names, (width, height) in zip(
        rows.iterrows(), labels_of(rows), sizes, strict=True
    ):
        if width is None:  # the image cannot be read or decoded
            skipped.append(row["id"])
            continue
        writer.writerow(
            [
                row["id"],
                ";".join(names),
                text(row["source"]),
                text(row["labeled_by"]),
                iso(row["labeled_at"]),
                width,
                height,
                "true" if bool(row["hard"]) else "false",
            ]
        )
    warn_skipped(skipped, len(rows))
    return out.getvalue().encode("utf-8")


def coco_bytes(ds: Dataset, rows: pd.DataFrame) -> bytes:
    """The COCO JSON file: images, categories, image-level and box annotations."""
    labels, boxes = labels_of(rows), boxes_of(rows)
    names = list(ds.labels)
    for sample_labels, sample_boxes in zip(labels, boxes, strict=True):
        names.extend(n for n in sample_labels if n not in names)
        names.extend(b["label"] for b in sample_boxes if b["label"] not in names)
    category = {name: k + 1 for k, name in enumerate(names)}
    images, annotations, skipped = [], [], []
    for image_id, (sample_id, (width, height), sample_labels, sample_boxes) in enumerate(
        zip(rows["id"], image_sizes(ds, rows), labels, boxes, strict=True), start=1
    ):
        if width is None:
            skipped.append(sample_id)
            continue
        images.append({"id": image_id, "file_name": sample_id, "width": width, "height": height})
        for name in sample_labels:
            annotations.append({"image_id": image_id, "category_id": category[name]})
        for box in sample_boxes:
            w, h = box["xmax"] - box["xmin"], box["ymax"] - box["ymin"]
            annotations.append(
                {
                    "image_id": image_id,
                    "category_id": category[box["label"]],
                    "bbox": [box["xmin"], box["ymin"], w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
    warn_skipped(skipped, len(rows))
    for k, annotation in enumerate(annotations, start=1):
        annotation["id"] = k
    doc = {
        "info": {
            "description": "exported by jlabel",
            "image_root": ds.root,
            "date_created": datetime.now(timezone.utc).isoformat(),
        },
        "licenses": [],
        "images": images,
        "categories": [{"id": k, "name": n, "supercategory": ""} for n, k in category.items()],
        "annotations": annotations,
    }
    return json.dumps(doc, indent=1).encode("utf-8")


Files = list[tuple[str, bytes]]
"""(path relative to the export folder, bytes) pairs."""


def imagefolder_files(sample_id: str, names: list[str]) -> Callable[[bytes], Files]:
    """The files of one image in ImageFolder: a copy under each label's folder."""
    return lambda data: [(posixpath.join(name, sample_id), data) for name in names]


def voc_files(sample_id: str, names: list[str], boxes: list[dict]) -> Callable[[bytes], Files]:
    """The files of one image in VOC: the copy, a `.txt` of its labels, a `.xml` of its boxes."""
    stem = posixpath.splitext(sample_id)[0]

    def files(data: bytes) -> Files:
        out = [(sample_id, data)]
        if names:
            out.append((stem + ".txt", ("\n".join(names) + "\n").encode("utf-8")))
        if boxes:
            out.append((stem + ".xml", voc_xml(sample_id, image_size(data), boxes)))
        return out

    return files


YOLO_IMAGES = "images"
"""The YOLO export's image folder; labels go to the mirroring ``labels/`` folder."""


def yolo_classes(ds: Dataset, boxes: list[list[dict]]) -> list[str]:
    """The YOLO class list: the labels of the exported boxes, in label-set order."""
    used = {b["label"] for sample_boxes in boxes for b in sample_boxes}
    names = [n for n in ds.labels if n in used]
    for sample_boxes in boxes:
        names.extend(b["label"] for b in sample_boxes if b["label"] not in names)
    return names


def yolo_image_path(sample_id: str) -> str:
    """Where a YOLO export puts the copy of an image."""
    return posixpath.join(YOLO_IMAGES, sample_id)


def yolo_label_path(sample_id: str) -> str:
    """Where a YOLO export puts an image's `.txt`: ``images/<dir>/<stem>`` mirrored under
    ``labels/``, as Ultralytics (and jlabel's sync) look for it."""
    return label_paths(yolo_image_path(sample_id))[-1]


def yolo_files(sample_id: str, boxes: list[dict], classes: list[str]) -> Callable[[bytes], Files]:
    """The files of one image in YOLO: the copy and, when it has boxes, its `.txt` of
    normalised ``class cx cy w h`` lines (sizes from the image itself, EXIF rotation applied)."""

    def files(data: bytes) -> Files:
        out = [(yolo_image_path(sample_id), data)]
        if boxes:
            text = format_boxes(boxes, classes, image_size(data))
            out.append((yolo_label_path(sample_id), text.encode("utf-8")))
        return out

    return files


def yolo_root_files(classes: list[str]) -> Files:
    """``data.yaml`` (Ultralytics) and ``classes.txt`` naming the classes in index order."""
    return [
        ("data.yaml", format_data_yaml(classes).encode("utf-8")),
        ("classes.txt", "".join(f"{name}\n" for name in classes).encode("utf-8")),
    ]


def warn_image_labels_left_out(labels: list[list[str]], boxes: list[list[dict]]) -> None:
    """YOLO holds boxes only: warn about image-level labels that none of the image's boxes
    carry (they are not exported)."""
    lost = sum(
        1
        for names, sample_boxes in zip(labels, boxes, strict=True)
        if set(names) - {b["label"] for b in sample_boxes}
    )
    if lost:
        warnings.warn(
            f"{lost} image(s) have image-level labels that YOLO cannot hold (it stores boxes "
            "only); they are left out of the YOLO export. Use format='voc' or 'coco' to keep "
            "them",
            stacklevel=3,
        )


def warn_shared_label_files(ids: list[str], labels: list[list], boxes: list[list]) -> None:
    """`a.png` and `a.jpg` share `a.txt`/`a.xml`: warn when their labels differ."""
    seen: dict[str, tuple[str, list, list]] = {}
    for sample_id, names, sample_boxes in zip(ids, labels, boxes, strict=True):
        stem = posixpath.splitext(sample_id)[0]
        if stem in seen and seen[stem][1:] != (names, sample_boxes):
            warnings.warn(
                f"{seen[stem][0]!r} and {sample_id!r} share the label files {stem}.txt/.xml "
                "but have different labels; the export keeps one of them. Rename one image "
                "to keep both",
                stacklevel=3,
            )
        seen.setdefault(stem, (sample_id, names, sample_boxes))


def voc_xml(sample_id: str, size: tuple[int, int], boxes: list[dict]) -> bytes:
    """A Pascal VOC annotation file."""
    root = ET.Element("annotation")
    folder, filename = posixpath.split(sample_id)
    ET.SubElement(root, "folder").text = folder
    ET.SubElement(root, "filename").text = filename
    size_el = ET.SubElement(root, "size")
    for key, value in zip(("width", "height", "depth"), (*size, 3), strict=True):
        ET.SubElement(size_el, key).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    for box in boxes:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = box["label"]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "1" if box.get("difficult") else "0"
        bndbox = ET.SubElement(obj, "bndbox")
        for key in ("xmin", "ymin", "xmax", "ymax"):
            value = float(box[key])
            ET.SubElement(bndbox, key).text = str(int(value)) if value.is_integer() else str(value)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
