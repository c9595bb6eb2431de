"""What a detection job learns from: preconditions, boxed and target images, decoded pixels."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jlabel.autolabel import data as cls_data
from jlabel.errors import PreconditionError

MIN_LABELS = 2
MIN_IMAGES_PER_LABEL = 5
PAD = 114
"""Grey of the letterbox padding."""


@dataclass
class BoxSamples:
    """A detection job's snapshot: boxed images with their boxes (original pixels, class
    indices), and the target images (no boxes, no labels)."""

    classes: list[str]
    labeled_ids: list[str]
    boxes: list[np.ndarray]
    labels: list[np.ndarray]
    target_ids: list[str]
    left_out: dict[str, int] = field(default_factory=dict)
    """Labels on too few images: how many images of theirs were left out of training."""

    def rarest(self) -> np.ndarray:
        """Per labeled image, its rarest class (what folds stratify on)."""
        freq = np.zeros(len(self.classes), np.int64)
        for lab in self.labels:
            for c in set(lab.tolist()):
                freq[c] += 1
        return np.array([min(set(lab.tolist()), key=lambda c: freq[c]) for lab in self.labels])


def collect(ds: Any, *, include_proposed: bool = True) -> BoxSamples:
    """Snapshot the dataset, raising ``PreconditionError`` if a detector cannot learn yet:
    at least 2 box labels each on at least 5 images, and at least one image without boxes or
    proposals. Images with a box of a rarer label are left out (their unboxed objects would
    teach the detector that such objects are background)."""
    frame = ds.query(tab="labeled", boxes=True)
    per_image = [
        (str(i), [b for b in (bx or []) if isinstance(b, dict)])
        for i, bx in zip(frame["id"], frame["boxes"], strict=True)
    ]
    images_of: dict[str, int] = {}
    for _, bx in per_image:
        for name in {b["label"] for b in bx}:
            images_of[name] = images_of.get(name, 0) + 1
    order = [c for c in getattr(ds, "labels", []) if c in images_of] or sorted(images_of)
    order += sorted(set(images_of) - set(order))
    classes = [c for c in order if images_of[c] >= MIN_IMAGES_PER_LABEL]
    if len(classes) < MIN_LABELS:
        have = ", ".join(f"{c}: {images_of[c]}" for c in order) or "no boxes yet"
        raise PreconditionError(
            f"Auto-labeling boxes needs at least {MIN_LABELS} box labels, each on at least "
            f"{MIN_IMAGES_PER_LABEL} images (now {have} images). Draw boxes on more images "
            "first (ds.add_boxes or the widget's box editor)."
        )
    index = {c: n for n, c in enumerate(classes)}
    left_out = {c: images_of[c] for c in order if c not in index}
    ids, boxes, labels = [], [], []
    for sid, bx in per_image:
        if any(b["label"] not in index for b in bx):
            continue
        ids.append(sid)
        boxes.append(
            np.array([[b["xmin"], b["ymin"], b["xmax"], b["ymax"]] for b in bx], np.float32)
        )
        labels.append(np.array([index[b["label"]] for b in bx], np.int64))
    targets = cls_data.target_ids_now(ds, include_proposed)
    if not targets:
        raise PreconditionError(
            "Every image already has boxes, labels or proposals: auto-labeling boxes needs at "
            "least one image without boxes or proposals. Add images (ds.add_images), or reject "
            "proposals to propose again."
        )
    return BoxSamples(classes, ids, boxes, labels, targets, left_out)


def check_after_decoding(samples: BoxSamples, readable: set[str]) -> BoxSamples:
    """Drop unreadable images (in place) and check the preconditions again."""
    keep = [n for n, i in enumerate(samples.labeled_ids) if i in readable]
    samples.labeled_ids = [samples.labeled_ids[n] for n in keep]
    samples.boxes = [samples.boxes[n] for n in keep]
    samples.labels = [samples.labels[n] for n in keep]
    samples.target_ids = [i for i in samples.target_ids if i in readable]
    counts = np.zeros(len(samples.classes), np.int64)
    for lab in samples.labels:
        counts[np.unique(lab)] += 1
    if (counts >= MIN_IMAGES_PER_LABEL).sum() < MIN_LABELS or (counts == 0).any():
        have = ", ".join(f"{c}: {int(k)}" for c, k in zip(samples.classes, counts, strict=True))
        raise PreconditionError(
            f"After skipping unreadable images too few boxed images are left ({have}); "
            "draw boxes on more images."
        )
    if not samples.target_ids:
        raise PreconditionError("No image without boxes could be read; nothing to auto-label.")
    return samples


def letterbox(image: Any, side: int) -> tuple[np.ndarray, float]:
    """A PIL image scaled so its longer side is ``side``, on a grey ``side`` x ``side`` canvas
    at the top left; returns the ``[side, side, 3]`` uint8 array and the scale."""
    from PIL import Image

    w, h = image.size
    scale = side / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    canvas = np.full((side, side, 3), PAD, np.uint8)
    canvas[:nh, :nw] = np.asarray(image.resize((nw, nh), Image.Resampling.BILINEAR))
    return canvas, scale


def decode_all(
    ds: Any,
    ids: Sequence[str],
    side: int,
    *,
    on_progress: Callable[[float], None] | None = None,
    workers: int = 4,
) -> tuple[dict[str, tuple[np.ndarray, float, tuple[int, int]]], dict[str, str]]:
    """``{id: (letterboxed pixels, scale, (width, height))}`` and ``{id: reason}`` for the
    images that could not be read."""
    from jlabel.images import open_rgb

    def one(sample_id: str) -> tuple[np.ndarray, float, tuple[int, int]] | str:
        try:
            image = open_rgb(ds.read_bytes(sample_id), draft_size=side * 2)
            array, scale = letterbox(image, side)
            return array, scale, image.size
        except Exception as exc:  # unreadable: reported, never the end of the job
            return f"{type(exc).__name__}: {exc}"[:300]

    ok: dict[str, tuple[np.ndarray, float, tuple[int, int]]] = {}
    skipped: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for n, (sid, out) in enumerate(zip(ids, pool.map(one, ids), strict=True), 1):
            if isinstance(out, str):
                skipped[sid] = out
            else:
                ok[sid] = out
            if on_progress is not None and (n % 64 == 0 or n == len(ids)):
                on_progress(n / max(1, len(ids)))
    return ok, skipped


def pick_side(sizes: list[tuple[int, int]], low: int = 64, high: int = 160) -> int:
    """The side images are learned at: the median longer side, in [low, high], a multiple
    of 16 (the detector's coarsest stride)."""
    longest = float(np.median([max(w, h) for w, h in sizes])) if sizes else high
    return int(min(high, max(low, round(longest / 16) * 16)))
