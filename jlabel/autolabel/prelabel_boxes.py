"""Detection pre-labeling (``ds.pre_label(model, task="detection")``): an existing detector
proposes boxes for the images without boxes; its classes are mapped onto dataset labels, boxes
under a score floor dropped, overlapping ones of a label suppressed (NMS), and the result
written as proposed boxes (To Be Confirmed) in one operation at the end of the job."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from jlabel.autolabel import box_ops, data, features
from jlabel.autolabel.jobs import Job
from jlabel.errors import PreconditionError

Detect = Callable[[list[Any]], list[list[dict[str, Any]]]]
"""list of PIL RGB images -> per image, box dicts (label name, xmin..ymax, score)."""


def target_ids(ds: Any, include_proposed: bool) -> list[str]:
    """Images without confirmed boxes (with proposals too when `include_proposed`)."""
    ids = ds.internal.query_ids(tab="all", boxes=False)
    if not include_proposed:
        proposed = set(ds.internal.query_ids(tab="to_confirm"))
        ids = [i for i in ids if i not in proposed]
    return [str(i) for i in ids]


def check_targets(ds: Any, include_proposed: bool) -> None:
    if not target_ids(ds, include_proposed):
        raise PreconditionError(
            "Every image already has boxes"
            + ("" if include_proposed else " or proposed boxes")
            + ": detection pre-labeling proposes boxes for images without them."
        )


def check_model(model: Any) -> None:
    """Refuse, before queueing, a model name that is no torchvision detection model."""
    if isinstance(model, str) and not os.path.isfile(model):
        _detection_model_name(model)


def _detection_model_name(name: str) -> None:
    import torchvision
    from torchvision.models import detection

    known = torchvision.models.list_models(module=detection)
    if name not in known:
        raise PreconditionError(
            f"{name!r} is not a torchvision detection model; use one of {', '.join(known)} "
            "(or pass an nn.Module, a TorchScript file or a callable)"
        )


def _module_detector(module: Any, classes: list[str] | None, device: torch.device) -> Detect:
    if isinstance(module, nn.Module):
        module = module.to(device).eval()

    @torch.no_grad()
    def detect(images: list[Any]) -> list[list[dict[str, Any]]]:
        tensors = [
            torch.from_numpy(np.asarray(im, np.uint8).copy())
            .permute(2, 0, 1)
            .float()
            .div_(255.0)
            .to(device)
            for im in images
        ]
        out = module(tensors)
        if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], list):
            out = out[1]  # scripted torchvision detectors return (losses, detections)
        if not isinstance(out, (list, tuple)) or len(out) != len(images):
            raise PreconditionError(
                "a detection model must return one dict (boxes, labels, scores) per image, as "
                f"torchvision detection models do; got {type(out).__name__}"
            )
        results = []
        for item in out:
            if not isinstance(item, dict) or not {"boxes", "labels", "scores"} <= set(item):
                raise PreconditionError(
                    "a detection model must return dicts with boxes, labels and scores per image"
                )
            results.append(
                box_ops.from_tensors(item["boxes"], item["labels"], item["scores"], classes)
            )
        return results

    return detect


def _callable_detector(model: Callable[[Any], Any], classes: list[str] | None) -> Detect:
    def detect(images: list[Any]) -> list[list[dict[str, Any]]]:
        results = []
        for image in images:
            boxes = box_ops.from_dicts(model(image))
            for box in boxes:
                if classes is not None and box["label"].isdigit():
                    box["label"] = box_ops.class_name(int(box["label"]), classes)
            results.append(boxes)
        return results

    return detect


def _torchvision_detector(name: str, weights: str | None, classes: Sequence[str] | None) -> Any:
    import torchvision

    _detection_model_name(name)
    enum = None
    if weights is not None:
        try:
            enum = torchvision.models.get_model_weights(name)[str(weights).split(".")[-1]]
        except KeyError:
            raise PreconditionError(
                f"{name!r} has no weights {weights!r}; use 'DEFAULT' or one of "
                f"{', '.join(w.name for w in torchvision.models.get_model_weights(name))}"
            ) from None
    kwargs: dict[str, Any] = {"weights": enum, "weights_backbone": None}
    if enum is None:
        if not classes:
            raise PreconditionError(f"Pass classes=[...] (or weights=) for {name!r}.")
        kwargs["num_classes"] = len(classes)
    try:
        module = torchvision.models.get_model(name, **kwargs)
    except Exception as exc:
        raise PreconditionError(
            f"Could not load torchvision model {name!r} with weights {weights!r}: {exc}. "
            "Without internet put the weights file in ~/.cache/torch/hub/checkpoints/."
        ) from exc
    if classes is None:
        classes = list(enum.meta.get("categories", [])) if enum is not None else []
    return module, list(classes)


def resolve(
    model: Any, classes: Sequence[str] | None, *, weights: str | None, device: torch.device
) -> tuple[Detect, str]:
    """Any accepted detector as ``(detect(list of PIL) -> box dicts per image, name)``."""
    names = list(classes) if classes is not None else None
    if isinstance(model, (str, os.PathLike)) and os.path.isfile(model):
        if names is None:
            raise PreconditionError("A TorchScript model needs classes=[...] (its output order).")
        module = torch.jit.load(str(model), map_location=device)
        return _module_detector(module, names, device), f"torchscript:{os.path.basename(model)}"
    if isinstance(model, str):
        module, names = _torchvision_detector(model, weights, names)
        return _module_detector(module, names, device), f"torchvision:{model}:{weights}"
    if isinstance(model, nn.Module):
        if names is None:
            raise PreconditionError("A torch.nn.Module needs classes=[...] (its output order).")
        return _module_detector(model, names, device), f"module:{type(model).__name__}"
    if callable(model):
        return _callable_detector(model, names), "callable"
    raise PreconditionError(
        "model must be a torchvision detection model name (with weights=), a torch.nn.Module "
        "or TorchScript file returning torchvision-style detections (with classes=), or a "
        f"callable from a PIL image to a list of box dicts; got {type(model).__name__}."
    )


def run(
    job: Job,
    ds: Any,
    model: Any,
    *,
    classes: Sequence[str] | None = None,
    mapping: dict[str, str] | None = None,
    weights: str | None = None,
    target_precision: float = 0.95,
    device: str | None = None,
    batch: int = 8,
    include_proposed: bool = True,
    min_score: float = box_ops.DEFAULT_SCORE_FLOOR,
    nms_iou: float = box_ops.DEFAULT_NMS_IOU,
    max_boxes: int = box_ops.DEFAULT_MAX_BOXES,
    **_classification_only: Any,
) -> dict[str, Any]:
    """Body of a detection pre-label job; returns the result summary. Writes nothing until
    every image is done (a failed or cancelled job leaves the dataset as it was)."""
    start = time.perf_counter()
    dev = features.pick_device(device)
    detect, name = resolve(model, classes, weights=weights, device=dev)
    keep = set(ds.labels) or None  # mapping None: the classes that are dataset labels
    ids = target_ids(ds, include_proposed)
    found: dict[str, list[dict[str, Any]]] = {}
    skipped: dict[str, str] = {}
    dropped: dict[str, int] = {}
    for first in range(0, len(ids), batch):
        job.check()
        chunk, images = [], []
        for sample_id in ids[first : first + batch]:
            try:
                images.append(data._open_rgb(ds.read_bytes(sample_id)))
                chunk.append(sample_id)
            except Exception as exc:  # unreadable: reported, never the end of the job
                skipped[sample_id] = f"{type(exc).__name__}: {exc}"[:300]
        if images:
            for sample_id, image, boxes in zip(chunk, images, detect(images), strict=True):
                boxes = box_ops.map_labels(boxes, mapping, keep, dropped)
                found[sample_id] = box_ops.postprocess(
                    boxes,
                    size=image.size,
                    score_floor=min_score,
                    nms_iou=nms_iou,
                    max_boxes=max_boxes,
                )
        job.report(0.95 * min(1.0, (first + batch) / max(1, len(ids))), "detecting")
    job.check()
    still = set(target_ids(ds, include_proposed))
    out = [i for i in ids if found.get(i) and i in still]
    lowest = [min(b["score"] for b in found[i]) for i in out]
    new_labels = sorted({b["label"] for i in out for b in found[i]} - set(ds.labels))
    if new_labels:
        ds.add_labels(*new_labels)
    if out:
        ds.internal.set_proposals(
            out,
            [[] for _ in out],
            [[] for _ in out],
            hardness=[1.0 - s for s in lowest],
            hard=[s < target_precision for s in lowest],
            boxes=[found[i] for i in out],
        )
    return {
        "model": name,
        "device": str(dev),
        "task": "detection",
        "proposed": len(out),
        "boxes": sum(len(found[i]) for i in out),
        "empty": len([i for i in found if not found[i]]),
        "hard": int(sum(s < target_precision for s in lowest)),
        "unmapped_classes": dict(sorted(dropped.items())),
        **data.skipped_summary(skipped),
        "min_score": min_score,
        "nms_iou": nms_iou,
        "target_precision": target_precision,
        "seconds": round(time.perf_counter() - start, 2),
    }
