"""Post-processing of detector output shared by detection jobs (``pre_label(task="detection")``
and detection auto-labeling): model output to box dicts, a score floor, clipping to the image,
class-wise non-maximum suppression and a cap on boxes per image.

A box dict here is ``{"label", "xmin", "ymin", "xmax", "ymax", "score"}`` in pixels of the
original image (VOC convention), what ``ds.internal.set_proposals(..., boxes=...)`` takes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from jlabel.errors import InvalidArgument, PreconditionError

COORDS = ("xmin", "ymin", "xmax", "ymax")
DEFAULT_SCORE_FLOOR = 0.3
DEFAULT_NMS_IOU = 0.5
DEFAULT_MAX_BOXES = 100
BACKGROUND = "__background__"
IGNORED_CLASSES = frozenset({BACKGROUND, "N/A"})
"""Placeholders in torchvision's category lists (index 0 and COCO's gaps), never labels."""


def from_tensors(
    boxes: Any, labels: Any, scores: Any, classes: Sequence[str] | None
) -> list[dict[str, Any]]:
    """Box dicts from a torchvision-style detection output (``boxes`` [N, 4] xyxy, ``labels``
    [N] class indices or names, ``scores`` [N]); ``classes[i]`` names class index ``i``."""
    rows = _as_rows(boxes)
    label_list = _as_list(labels)
    score_list = [float(s) for s in _as_list(scores)]
    if not len(rows) == len(label_list) == len(score_list):
        raise PreconditionError(
            f"the detector returned {len(rows)} boxes, {len(label_list)} labels and "
            f"{len(score_list)} scores; they must be as many"
        )
    out = []
    for row, label, score in zip(rows, label_list, score_list, strict=True):
        out.append(
            {
                "label": class_name(label, classes),
                **dict(zip(COORDS, (float(v) for v in row), strict=True)),
                "score": score,
            }
        )
    return out


def class_name(label: Any, classes: Sequence[str] | None) -> str:
    """A detector's class (an index into `classes`, or already a name) as a name."""
    if isinstance(label, str):
        return label
    index = int(label)
    if classes is None:
        return str(index)
    if not 0 <= index < len(classes):
        raise PreconditionError(
            f"the detector returned class index {index}, but classes= names {len(classes)} "
            "classes; pass the model's full class list (index 0 is often the background)"
        )
    return str(classes[index])


def from_dicts(items: Iterable[Any]) -> list[dict[str, Any]]:
    """Box dicts from a callable's output: dicts with label, xmin, ymin, xmax, ymax, score
    (a missing score counts as 1)."""
    if isinstance(items, dict) or not isinstance(items, Iterable):
        raise PreconditionError(
            "a detection callable must return, per image, a list of box dicts with label, "
            f"xmin, ymin, xmax, ymax and score; got {type(items).__name__}"
        )
    out = []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or any(k not in item for k in ("label", *COORDS)):
            raise PreconditionError(
                f"box {n} returned by the detector is not a dict with label, xmin, ymin, xmax, "
                f"ymax (and score): {item!r:.80}"
            )
        try:
            coords = {k: float(item[k]) for k in COORDS}
            score = float(item.get("score", 1.0))
        except (TypeError, ValueError):
            raise PreconditionError(f"box {n} returned by the detector has a non-number") from None
        out.append({"label": str(item["label"]), **coords, "score": score})
    return out


def clip(box: dict[str, Any], size: tuple[int, int] | None) -> dict[str, Any] | None:
    """The box clipped to a `size` = (width, height) image; None when nothing is left of it
    (or a coordinate is not finite)."""
    coords = [float(box[k]) for k in COORDS]
    if not all(math.isfinite(v) for v in coords):
        return None
    xmin, ymin, xmax, ymax = coords
    if size is not None:
        width, height = size
        xmin, xmax = min(max(xmin, 0.0), width), min(max(xmax, 0.0), width)
        ymin, ymax = min(max(ymin, 0.0), height), min(max(ymax, 0.0), height)
    if xmax <= xmin or ymax <= ymin:
        return None
    return {**box, "xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax}


def nms(boxes: list[dict[str, Any]], iou: float) -> list[dict[str, Any]]:
    """Class-wise non-maximum suppression (``torchvision.ops.batched_nms``): of boxes of one
    label overlapping by more than `iou`, the best scored is kept. Sorted by score, best first."""
    if len(boxes) < 2:
        return list(boxes)
    import torch
    from torchvision.ops import batched_nms

    index = {name: k for k, name in enumerate(dict.fromkeys(b["label"] for b in boxes))}
    coords = torch.tensor([[b[k] for k in COORDS] for b in boxes], dtype=torch.float64)
    scores = torch.tensor([b["score"] for b in boxes], dtype=torch.float64)
    groups = torch.tensor([index[b["label"]] for b in boxes], dtype=torch.int64)
    keep = batched_nms(coords, scores, groups, float(iou)).tolist()
    return [boxes[k] for k in keep]


def postprocess(
    boxes: list[dict[str, Any]],
    *,
    size: tuple[int, int] | None,
    score_floor: float = DEFAULT_SCORE_FLOOR,
    nms_iou: float = DEFAULT_NMS_IOU,
    max_boxes: int | None = DEFAULT_MAX_BOXES,
) -> list[dict[str, Any]]:
    """Score floor, clipping to the image, NMS, then the `max_boxes` best; scores clamped to
    [0, 1]."""
    kept = []
    for box in boxes:
        if not box["score"] >= score_floor:  # NaN scores go too
            continue
        clipped = clip(box, size)
        if clipped is not None:
            clipped["score"] = min(1.0, max(0.0, float(clipped["score"])))
            kept.append(clipped)
    kept = nms(kept, nms_iou)
    kept.sort(key=lambda b: -b["score"])
    return kept if max_boxes is None else kept[:max_boxes]


def as_label_name(name: str) -> str:
    """A model class name made to follow the label rule ("traffic light" -> "traffic_light")."""
    from jlabel.labels import LABEL_RULE, _suggest, validate_label_name

    try:
        return validate_label_name(name)
    except InvalidArgument:
        cleaned = _suggest(name)
        try:
            return validate_label_name(cleaned)
        except InvalidArgument:
            raise PreconditionError(
                f"model class {name!r} cannot be a label name ({LABEL_RULE}); map it with "
                "mapping={...}"
            ) from None


def map_labels(
    boxes: list[dict[str, Any]],
    mapping: dict[str, str] | None,
    keep: set[str] | None,
    dropped: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Model classes as dataset labels: through `mapping` (unmapped classes dropped), else the
    classes that are labels in `keep` (None: all), names made to follow the label rule.
    Background placeholders (``__background__``, ``N/A``) are always dropped; `dropped`
    counts the boxes left out per model class."""
    out = []
    for box in boxes:
        model_class = box["label"]
        if model_class in IGNORED_CLASSES:
            continue
        if mapping is not None:
            target = mapping.get(model_class)
        else:
            target = as_label_name(model_class)
            if keep is not None and target not in keep:
                target = None
        if target is None:
            if dropped is not None:
                dropped[model_class] = dropped.get(model_class, 0) + 1
            continue
        out.append({**box, "label": target})
    return out


def _as_rows(value: Any) -> list[list[float]]:
    if hasattr(value, "detach"):
        value = value.detach().cpu().tolist()
    elif hasattr(value, "tolist"):
        value = value.tolist()
    rows = [list(r) for r in value]
    if any(len(r) != 4 for r in rows):
        raise PreconditionError("detector boxes must be [N, 4] (xmin, ymin, xmax, ymax)")
    return rows


def _as_list(value: Any) -> list[Any]:
    if hasattr(value, "detach"):
        return value.detach().cpu().tolist()
    if hasattr(value, "tolist"):
        return value.tolist()
    return list(value)
