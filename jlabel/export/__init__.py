"""Exports of a dataset (ImageFolder, CSV, COCO, Pascal VOC, YOLO) and a PyTorch view of it.

`export` writes only inside its target: a new or empty folder (or a previous jlabel export,
replaced with `overwrite=True`) for the formats that copy images, a single file for CSV and
COCO. Images are read through `ds.read_bytes`, so S3 datasets export the same way.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from jlabel.errors import JLabelError
from jlabel.export.formats import (
    coco_bytes,
    csv_bytes,
    imagefolder_files,
    voc_files,
    warn_image_labels_left_out,
    warn_shared_label_files,
    yolo_classes,
    yolo_files,
    yolo_root_files,
)
from jlabel.export.reading import ExportResult, map_images, reporting_skipped, warn_skipped
from jlabel.export.target import MARKER, Target, check_location
from jlabel.export.torch_view import to_torch
from jlabel.export.values import boxes_of, labels_of

if TYPE_CHECKING:
    from jlabel.dataset import Dataset

__all__ = ["FORMATS", "MARKER", "ExportResult", "export", "to_torch"]

FORMATS = ("imagefolder", "csv", "coco", "voc", "yolo")
"""Export formats: folders of image copies (`imagefolder`, `voc`, `yolo`) or one file (`csv`,
`coco`)."""
FOLDER_FORMATS = ("imagefolder", "voc", "yolo")


@reporting_skipped
def export(
    ds: Dataset,
    path: str | os.PathLike[str],
    *,
    format: str = "imagefolder",
    tab: str = "labeled",
    overwrite: bool = False,
    storage_options: dict[str, Any] | None = None,
    **filters: Any,
) -> str:
    """Export the samples of `tab` (narrowed by `filters`, as in `ds.query`) to `path`.

    Formats
    -------
    - ``"imagefolder"`` (default): a folder, `path/<label>/<id>`: a copy of each image under
      each of its labels (a multi-label image is copied into every label's folder; unlabeled
      images are left out). `torchvision.datasets.ImageFolder` reads it.
    - ``"csv"``: one file; columns `id`, `labels` (`;`-joined), `source`, `labeled_by`,
      `labeled_at` (ISO 8601, UTC), `width`, `height`, `hard`.
    - ``"coco"``: one JSON file: `images` (`file_name` is the sample id, relative to
      `info.image_root`, the dataset root), `categories`, `annotations` (one image-level
      annotation without `bbox` per label of an image; one `bbox` annotation per VOC box).
    - ``"voc"``: a folder holding a copy of each image at `path/<id>`, a `.txt` next to each
      labeled one (one label per line) and a Pascal VOC `.xml` next to each one with boxes:
      the layout sync reads, so `jlabel.open(path)` gives the same labels and boxes back.
    - ``"yolo"``: a folder in the Ultralytics layout: a copy of each image at
      `path/images/<id>`, its boxes in `path/labels/<id stem>.txt` (one `class cx cy w h` line
      per box, normalised to [0, 1] of the image's width and height; no file for an image
      without boxes), and `data.yaml` and `classes.txt` naming the classes (the box labels, in
      label-set order). YOLO has no image-level labels: they are left out, with a warning.
      `jlabel.open(path)` reads the boxes back (as `images/<id>`).

    `path` may be an fsspec URL (with `storage_options`). A folder must be new, empty, or an
    earlier export (replaced only with `overwrite=True`); an existing file is replaced only with
    `overwrite=True`. Targets inside the dataset's `.jlabel/` folder are refused, and so are
    folder exports inside the dataset root (its next sync would take the copies for new
    images). Images that cannot be read or decoded (missing, corrupt, above the pixel limit,
    a link out of the root) are skipped with a warning, in every format. Returns the target
    path as an `ExportResult` (a str) whose `skipped` maps each skipped id to the reason.
    """
    if format not in FORMATS:
        raise JLabelError(f"unknown export format {format!r}; use one of: {', '.join(FORMATS)}")
    target = Target(path, storage_options)
    check_location(ds, target, folder=format in FOLDER_FORMATS)
    rows = ds.query(tab=tab, **filters)
    if format in ("csv", "coco"):
        target.check_file(overwrite)
        data = csv_bytes(ds, rows) if format == "csv" else coco_bytes(ds, rows)
        target.write_file(data)
        return target.display
    target.prepare_folder(overwrite, {"format": format, "dataset": ds.root, "tab": tab})
    ids, labels, boxes = list(rows["id"]), labels_of(rows), boxes_of(rows)
    if format == "imagefolder":
        jobs = {
            i: imagefolder_files(i, names) for i, names in zip(ids, labels, strict=True) if names
        }
    elif format == "yolo":
        classes = yolo_classes(ds, boxes)
        warn_image_labels_left_out(labels, boxes)
        warn_shared_label_files(ids, [[] for _ in ids], boxes)
        target.write_all(yolo_root_files(classes))
        jobs = {i: yolo_files(i, b, classes) for i, b in zip(ids, boxes, strict=True)}
    else:
        warn_shared_label_files(ids, labels, boxes)
        jobs = {i: voc_files(i, names, b) for i, names, b in zip(ids, labels, boxes, strict=True)}
    _, failed = map_images(ds, list(jobs), lambda i, data: jobs[i](data), then=target.write_all)
    warn_skipped(failed, len(jobs))
    return target.display
