"""Exports of a dataset (ImageFolder, CSV, COCO, Pascal VOC) and a PyTorch view of it.

`export` writes only inside its target: a new or empty folder (or a previous jlabel export,
replaced with `overwrite=True`) for the formats that copy images, a single file for CSV and
COCO. Images are read through `ds.read_bytes`, so S3 datasets export the same way.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import posixpath
import uuid
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from jlabel.errors import JLabelError, PreconditionError

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from jlabel.dataset import Dataset

FORMATS = ("imagefolder", "csv", "coco", "voc")
"""Export formats: folders of image copies (`imagefolder`, `voc`) or one file (`csv`, `coco`)."""

MARKER = ".jlabel-export.json"
"""Written first into every exported folder; `overwrite=True` replaces only such folders."""

CSV_COLUMNS = ("id", "labels", "source", "labeled_by", "labeled_at", "width", "height", "hard")
_THREADS = 8  # overlaps reads and writes; S3 round trips dominate an export


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

    `path` may be an fsspec URL (with `storage_options`). A folder must be new, empty, or an
    earlier export (replaced only with `overwrite=True`); an existing file is replaced only with
    `overwrite=True`. Targets inside the dataset's `.jlabel/` folder are refused, and so are
    folder exports inside the dataset root (its next sync would take the copies for new
    images). Images that cannot be read are skipped with a warning. Returns the target path.
    """
    if format not in FORMATS:
        raise JLabelError(f"unknown export format {format!r}; use one of: {', '.join(FORMATS)}")
    target = _Target(path, storage_options)
    _check_location(ds, target, folder=format in ("imagefolder", "voc"))
    rows = ds.query(tab=tab, **filters)
    if format in ("csv", "coco"):
        target.check_file(overwrite)
        data = _csv_bytes(ds, rows) if format == "csv" else _coco_bytes(ds, rows)
        target.write_file(data)
        return target.display
    target.prepare_folder(overwrite, {"format": format, "dataset": ds.root, "tab": tab})
    ids, labels, boxes = list(rows["id"]), _labels(rows), _boxes(rows)
    if format == "imagefolder":
        jobs = {
            i: _imagefolder_files(i, names) for i, names in zip(ids, labels, strict=True) if names
        }
    else:
        _warn_shared_label_files(ids, labels, boxes)
        jobs = {i: _voc_files(i, names, b) for i, names, b in zip(ids, labels, boxes, strict=True)}
    _, failed = _map_images(ds, list(jobs), lambda i, data: jobs[i](data), then=target.write_all)
    _warn_skipped(failed, len(jobs))
    return target.display


def to_torch(
    ds: Dataset,
    *,
    tab: str = "labeled",
    transform: Callable[[torch.Tensor], Any] | None = None,
    multi_label: bool | None = None,
    image_size: int | tuple[int, int] | None = None,
    **filters: Any,
) -> torch.utils.data.Dataset:
    """A `torch.utils.data.Dataset` of the samples of `tab` (narrowed by `filters`).

    Item `i` is `(image, target)`: `image` a float tensor of shape (3, H, W) in [0, 1] (RGB;
    resized to `image_size`, an int or (height, width), when given: needed to batch images of
    different sizes), passed through `transform` when given. `target` is the class index
    (int; -1 for a sample without a label) for a single-label dataset, or a float tensor of
    shape (len(classes),) with 1.0 per label (multi-hot) for a multi-label one.
    `multi_label=None` picks multi-label when some sample has more than one label.
    `classes` (= `ds.labels` at creation), `class_to_idx`, `ids` and `targets` are attributes.
    The samples and their labels are fixed when it is created.
    """
    rows = ds.query(tab=tab, **filters)
    ids, labels = list(rows["id"]), _labels(rows)
    classes = list(ds.labels)
    for names in labels:
        classes.extend(n for n in names if n not in classes)
    many = [i for i, names in zip(ids, labels, strict=True) if len(names) > 1]
    if multi_label is None:
        multi_label = bool(many)
    elif not multi_label and many:
        shown = ", ".join(repr(i) for i in many[:3])
        raise PreconditionError(
            f"{len(many)} sample(s) have several labels (e.g. {shown}); pass multi_label=True "
            "for multi-hot targets, or remove the extra labels"
        )
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    paths = [ds.source_path(i) for i in ids]
    cls = globals().get("TorchImages") or __getattr__("TorchImages")
    return cls(ds.fs, paths, ids, labels, classes, multi_label, transform, image_size)


def _make_torch_images() -> type:
    import numpy as np
    import torch

    from jlabel.images import open_rgb

    class TorchImages(torch.utils.data.Dataset):
        """Labeled images as (CHW float tensor in [0, 1], target); see `jlabel.export.to_torch`.

        Holds the filesystem and file paths, not the Dataset, so it pickles into DataLoader
        worker processes.
        """

        def __init__(
            self,
            fs: Any,
            paths: list[str],
            ids: list[str],
            labels: list[list[str]],
            classes: list[str],
            multi_label: bool,
            transform: Callable[[torch.Tensor], Any] | None,
            image_size: tuple[int, int] | None,
        ) -> None:
            self.fs, self.paths, self.ids = fs, paths, ids
            self.classes = classes
            self.class_to_idx = {name: k for k, name in enumerate(classes)}
            self.multi_label = multi_label
            self.transform, self.image_size = transform, image_size
            if multi_label:
                self.targets = torch.zeros(len(ids), len(classes))
                for row, names in enumerate(labels):
                    for name in names:
                        self.targets[row, self.class_to_idx[name]] = 1.0
            else:
                self.targets = [self.class_to_idx[n[0]] if n else -1 for n in labels]

        def __len__(self) -> int:
            return len(self.ids)

        def __getitem__(self, index: int) -> tuple[Any, Any]:
            image = open_rgb(self.fs.cat_file(self.paths[index]))
            if self.image_size is not None:
                height, width = self.image_size
                image = image.resize((width, height), resample=2)  # 2 = bilinear
            array = np.asarray(image, dtype=np.uint8)
            tensor = torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)
            if self.transform is not None:
                tensor = self.transform(tensor)
            target = self.targets[index]
            return tensor, target.clone() if self.multi_label else target

        def __repr__(self) -> str:
            kind = "multi-label" if self.multi_label else "single-label"
            return f"<TorchImages: {len(self)} images, {len(self.classes)} classes, {kind}>"

    TorchImages.__module__, TorchImages.__qualname__ = __name__, "TorchImages"  # picklable
    return TorchImages


def __getattr__(name: str) -> Any:  # TorchImages is built on first use: torch imports slowly
    if name == "TorchImages":
        cls = _make_torch_images()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- rows -> per-sample values -------------------------------------------------------------


def _labels(rows: pd.DataFrame) -> list[list[str]]:
    return [_as_list(v) for v in rows["labels"]]


def _boxes(rows: pd.DataFrame) -> list[list[dict]]:
    if "boxes" not in rows.columns:
        return [[] for _ in range(len(rows))]
    return [[dict(b) for b in _as_list(v)] for v in rows["boxes"]]


def _as_list(value: Any) -> list:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [str(v) if isinstance(v, str) else v for v in value]


def _is_null(value: Any) -> bool:
    import pandas as pd

    result = pd.isna(value)
    return result if isinstance(result, bool) else False


def _iso(value: Any) -> str:
    if _is_null(value):
        return ""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat()
    return str(value)


def _text(value: Any) -> str:
    return "" if _is_null(value) else str(value)


# --- image sizes and parallel reads --------------------------------------------------------


def _image_size(data: bytes) -> tuple[int, int]:
    """(width, height) as displayed (EXIF rotation applied), from the header only."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        orientation = image.getexif().get(0x0112, 1)
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _map_images(
    ds: Dataset,
    ids: Sequence[str],
    fn: Callable[[str, bytes], Any],
    *,
    then: Callable[[Any], Any] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """`fn(id, bytes)` for each id, in threads; returns results by id and the failed ids.

    A read or decode error in `fn` marks the id failed; errors in `then(result)` (writes)
    propagate.
    """

    def one(sample_id: str) -> tuple[str, Any, bool]:
        try:
            value = fn(sample_id, ds.read_bytes(sample_id))
        except (JLabelError, OSError, ValueError, SyntaxError):  # PIL raises all of these
            return sample_id, None, False
        if then is not None:
            then(value)
        return sample_id, value, True

    results: dict[str, Any] = {}
    failed: list[str] = []
    with ThreadPoolExecutor(_THREADS) as pool:
        for sample_id, value, ok in pool.map(one, ids):
            if ok:
                results[sample_id] = value
            else:
                failed.append(sample_id)
    return results, failed


def _sizes(ds: Dataset, rows: pd.DataFrame) -> list[tuple[int | None, int | None]]:
    """Width and height per row: recorded ones, else read from the image header."""
    known = {}
    for sample_id, width, height in zip(rows["id"], rows["width"], rows["height"], strict=True):
        if not _is_null(width) and not _is_null(height):
            known[sample_id] = (int(width), int(height))
    unknown = [i for i in rows["id"] if i not in known]
    read, _ = _map_images(ds, unknown, lambda _i, data: _image_size(data))
    known.update(read)
    return [known.get(i, (None, None)) for i in rows["id"]]


def _warn_skipped(failed: list[str], total: int) -> None:
    if failed:
        shown = ", ".join(repr(i) for i in failed[:5])
        warnings.warn(
            f"export skipped {len(failed)} of {total} images that could not be read "
            f"(missing or corrupt), e.g. {shown}",
            stacklevel=3,
        )


# --- formats -------------------------------------------------------------------------------


def _csv_bytes(ds: Dataset, rows: pd.DataFrame) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    sizes = _sizes(ds, rows)
    for (_, row), names, (width, height) in zip(rows.iterrows(), _labels(rows), sizes, strict=True):
        writer.writerow(
            [
                row["id"],
                ";".join(names),
                _text(row["source"]),
                _text(row["labeled_by"]),
                _iso(row["labeled_at"]),
                "" if width is None else width,
                "" if height is None else height,
                "true" if bool(row["hard"]) else "false",
            ]
        )
    return out.getvalue().encode("utf-8")


def _coco_bytes(ds: Dataset, rows: pd.DataFrame) -> bytes:
    labels, boxes = _labels(rows), _boxes(rows)
    names = list(ds.labels)
    for sample_labels, sample_boxes in zip(labels, boxes, strict=True):
        names.extend(n for n in sample_labels if n not in names)
        names.extend(b["label"] for b in sample_boxes if b["label"] not in names)
    category = {name: k + 1 for k, name in enumerate(names)}
    images, annotations, skipped = [], [], []
    for image_id, (sample_id, (width, height), sample_labels, sample_boxes) in enumerate(
        zip(rows["id"], _sizes(ds, rows), labels, boxes, strict=True), start=1
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
    _warn_skipped(skipped, len(rows))
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


def _imagefolder_files(sample_id: str, names: list[str]) -> Callable[[bytes], Files]:
    return lambda data: [(posixpath.join(name, sample_id), data) for name in names]


def _voc_files(sample_id: str, names: list[str], boxes: list[dict]) -> Callable[[bytes], Files]:
    stem = posixpath.splitext(sample_id)[0]

    def files(data: bytes) -> Files:
        out = [(sample_id, data)]
        if names:
            out.append((stem + ".txt", ("\n".join(names) + "\n").encode("utf-8")))
        if boxes:
            out.append((stem + ".xml", _voc_xml(sample_id, _image_size(data), boxes)))
        return out

    return files


def _warn_shared_label_files(ids: list[str], labels: list[list], boxes: list[list]) -> None:
    """`a.png` and `a.jpg` share `a.txt`/`a.xml`: warn when their labels differ."""
    seen: dict[str, tuple[str, list, list]] = {}
    for sample_id, names, sample_boxes in zip(ids, labels, boxes, strict=True):
        stem = posixpath.splitext(sample_id)[0]
        if stem in seen and seen[stem][1:] != (names, sample_boxes):
            warnings.warn(
                f"{seen[stem][0]!r} and {sample_id!r} share the label files {stem}.txt/.xml "
                "but have different labels; the VOC export keeps one of them. Rename one image "
                "to keep both",
                stacklevel=3,
            )
        seen.setdefault(stem, (sample_id, names, sample_boxes))


def _voc_xml(sample_id: str, size: tuple[int, int], boxes: list[dict]) -> bytes:
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


# --- where an export may write -------------------------------------------------------------


class _Target:
    """The export destination: one folder or one file, on any fsspec filesystem."""

    def __init__(self, path: str | os.PathLike[str], storage_options: dict | None) -> None:
        self.fs, stripped = fsspec.core.url_to_fs(os.fspath(path), **(storage_options or {}))
        self.local = isinstance(self.fs, LocalFileSystem)
        if self.local:
            stripped = os.path.realpath(stripped)
        self.path = stripped.rstrip("/") or stripped
        self.display = self.path if self.local else self.fs.unstrip_protocol(self.path)

    def protocols(self) -> tuple[str, ...]:
        protocol = self.fs.protocol
        return (protocol,) if isinstance(protocol, str) else tuple(protocol)

    def _exists(self, path: str) -> bool:
        self.fs.invalidate_cache(path)
        return self.fs.exists(path)

    def check_file(self, overwrite: bool) -> None:
        if not self._exists(self.path):
            return
        if self.fs.isdir(self.path):
            raise JLabelError(
                f"{self.display} is a folder; give a file path for this format "
                "(e.g. labels.csv or coco.json)"
            )
        if not overwrite:
            raise JLabelError(f"{self.display} exists; pass overwrite=True to replace it")

    def write_file(self, data: bytes) -> None:
        if self.local:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            temp = f"{self.path}.{uuid.uuid4().hex}.tmp"
            with open(temp, "wb") as f:
                f.write(data)
            os.replace(temp, self.path)  # readers never see a half-written file
        else:
            self.fs.pipe_file(self.path, data)

    def prepare_folder(self, overwrite: bool, meta: dict) -> None:
        """Make the folder new and empty (replacing an earlier export), then write MARKER."""
        if self._exists(self.path):
            if not self.fs.isdir(self.path):
                raise JLabelError(f"{self.display} is a file; give a folder path for this format")
            if self.fs.ls(self.path, detail=False):
                if not self._exists(posixpath.join(self.path, MARKER)):
                    raise JLabelError(
                        f"{self.display} is not empty and is not an earlier jlabel export; "
                        "choose a new or empty folder"
                    )
                if not overwrite:
                    raise JLabelError(
                        f"{self.display} holds an earlier export; pass overwrite=True to replace it"
                    )
                self.fs.rm(self.path, recursive=True)
        if self.local:
            os.makedirs(self.path, exist_ok=True)
        meta = {**meta, "exported_at": datetime.now(timezone.utc).isoformat()}
        self.write_all([(MARKER, json.dumps(meta, indent=1).encode("utf-8"))])

    def write_all(self, files: Files) -> None:
        for rel, data in files:
            norm = posixpath.normpath(rel)
            if norm.startswith(("../", "/")) or norm in ("..", "."):
                raise JLabelError(f"refusing to write {rel!r} outside {self.display}")
            full = posixpath.join(self.path, norm)
            if self.local:
                os.makedirs(os.path.dirname(full), exist_ok=True)
                with open(full, "wb") as f:
                    f.write(data)
            else:
                self.fs.pipe_file(full, data)


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _check_location(ds: Dataset, target: _Target, *, folder: bool) -> None:
    """Refuse targets in the dataset's store, and folder exports inside the dataset root."""
    root = str(ds.root)
    protocol, sep, rest = root.partition("://")
    if target.local:
        if sep:
            return
        root_path = os.path.realpath(root)
    else:
        if not sep or protocol not in target.protocols():
            return
        root_path = rest.rstrip("/")
    if _inside(target.path, posixpath.join(root_path, ".jlabel")):
        raise JLabelError(
            f"cannot export into the dataset's .jlabel/ folder ({target.display}); "
            "choose a path outside the dataset"
        )
    if folder and (_inside(target.path, root_path) or _inside(root_path, target.path)):
        raise JLabelError(
            f"cannot export images to {target.display}: it is inside (or contains) the dataset "
            f"root {root}, whose next sync would take the copies for new images; choose a "
            "folder outside the dataset"
        )
