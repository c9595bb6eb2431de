"""Export and import of 10k images with 5 boxes each, per format (VOC, COCO, YOLO).

`python -m bench.boxes_io [N]` (N images, default 10,000). The source is N small generated
PNGs (32x32, in 10 folders) with a Pascal VOC `.xml` of 5 boxes next to each, opened once with
`jlabel.open` (its sync imports the boxes: that is the first "import voc" figure). Then, per
format: `ds.export(..., format=...)`, and reading the export back: `jlabel.open(export)` (a
sync importing the `.xml` / YOLO `.txt` files) for VOC and YOLO; for COCO, which sync does not
read, `json.load` plus grouping the annotations into per-image boxes. Each figure is one run
(seconds and images/s); the box count read back is checked.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

import jlabel
from bench._util import report
from jlabel.export.formats import voc_xml

N_DEFAULT = 10_000
BOXES_PER_IMAGE = 5
SIDE = 32
FOLDERS = 10
LABELS = ("cat", "dog", "car", "bus", "tree")


def make_source(root: str, n: int) -> None:
    """N PNGs (16 distinct contents) with a VOC file of BOXES_PER_IMAGE boxes each."""
    rng = np.random.default_rng(0)
    pngs = []
    for _ in range(16):
        buf = io.BytesIO()
        pixels = rng.integers(0, 255, (SIDE, SIDE, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(buf, format="PNG")
        pngs.append(buf.getvalue())
    for folder in range(FOLDERS):
        os.makedirs(os.path.join(root, f"f{folder}"), exist_ok=True)
    for i in range(n):
        rel = f"f{i % FOLDERS}/img{i:06d}.png"
        with open(os.path.join(root, rel), "wb") as f:
            f.write(pngs[i % 16])
        corners = rng.integers(0, SIDE // 2, (BOXES_PER_IMAGE, 2))
        sizes = rng.integers(2, SIDE // 2, (BOXES_PER_IMAGE, 2))
        boxes = [
            {
                "label": LABELS[(i + j) % len(LABELS)],
                "xmin": int(x),
                "ymin": int(y),
                "xmax": int(x + w),
                "ymax": int(y + h),
            }
            for j, ((x, y), (w, h)) in enumerate(zip(corners, sizes, strict=True))
        ]
        with open(os.path.join(root, rel[:-4] + ".xml"), "wb") as f:
            f.write(voc_xml(rel, (SIDE, SIDE), boxes))


def count_boxes(ds: jlabel.Dataset) -> int:
    return sum(len(b) for b in ds.to_pandas()["boxes"] if b is not None)


def coco_read_back(path: str) -> int:
    """Boxes per image from a COCO file (what a COCO reader does); returns the box count."""
    with open(path) as f:
        doc = json.load(f)
    names = {c["id"]: c["name"] for c in doc["categories"]}
    files = {im["id"]: im["file_name"] for im in doc["images"]}
    boxes: dict[str, list[dict]] = {}
    for ann in doc["annotations"]:
        if "bbox" in ann:
            x, y, w, h = ann["bbox"]
            boxes.setdefault(files[ann["image_id"]], []).append(
                {
                    "label": names[ann["category_id"]],
                    "xmin": x,
                    "ymin": y,
                    "xmax": x + w,
                    "ymax": y + h,
                }
            )
    return sum(len(b) for b in boxes.values())


def timed(name: str, n: int, fn: Callable[[], Any]) -> Any:
    """Run `fn` once, print its seconds and images/s, return its value."""
    start = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - start
    report(f"{name} s", seconds, "s")
    report(f"{name} images/s", n / seconds, "img/s")
    return value


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    n = int(argv[0]) if argv else N_DEFAULT
    want = n * BOXES_PER_IMAGE
    print(f"boxes_io: {n} images of {SIDE}x{SIDE} px, {BOXES_PER_IMAGE} boxes each")
    with tempfile.TemporaryDirectory(prefix="jlabel-bench-boxes-") as tmp:
        source = os.path.join(tmp, "source")
        make_source(source, n)
        ds = timed("import voc (sync of the source)", n, lambda: jlabel.open(source))
        assert count_boxes(ds) == want, count_boxes(ds)
        for fmt in ("voc", "coco", "yolo"):
            target = os.path.join(tmp, f"out-{fmt}" + (".json" if fmt == "coco" else ""))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                timed(f"export {fmt}", n, lambda fmt=fmt, t=target: ds.export(t, format=fmt))
            if fmt == "coco":
                got = timed(
                    "read back coco (json + per-image boxes)", n, lambda t=target: coco_read_back(t)
                )
            else:
                copy = timed(
                    f"import {fmt} (sync of the export)", n, lambda t=target: jlabel.open(t)
                )
                got = count_boxes(copy)
                copy.close()
            assert got == want, (fmt, got, want)
        ds.close()


if __name__ == "__main__":
    main()
