"""Pre-labeling with an existing model: module + classes, TorchScript file, torchvision name,
or a Python callable; model classes mapped onto dataset labels; hard examples marked."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from jlabel.autolabel import calibrate, data, features
from jlabel.autolabel.jobs import Job
from jlabel.errors import PreconditionError

Predictor = Callable[[list[Any]], list[tuple[list[str], list[float]]]]


def _module_predictor(
    module: nn.Module, device: torch.device, size: int, multi_label: bool
) -> Callable[[list[Any]], np.ndarray]:
    module = module.to(device).eval()

    @torch.no_grad()
    def predict(images: list[Any]) -> np.ndarray:
        arr = np.stack([np.asarray(data.square(im, size), np.uint8) for im in images])
        logits = module(features.normalise(arr, device)).float()
        act = torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=1)
        return act.cpu().numpy()

    return predict


def check_model(model: Any, classes: Sequence[str] | None, weights: str | None) -> None:
    """Refuse, before queueing, a model that cannot work (``PreconditionError``)."""
    is_file = isinstance(model, (str, os.PathLike)) and os.path.isfile(model)
    if classes is None and (isinstance(model, nn.Module) or is_file):
        raise PreconditionError(
            "A torch.nn.Module or TorchScript model needs classes=[...] (its output order)."
        )
    if isinstance(model, str) and not is_file and classes is None and weights is None:
        raise PreconditionError(f"Pass classes=[...] or weights= for torchvision model {model!r}.")
    if not (isinstance(model, (str, os.PathLike, nn.Module)) or callable(model)):
        raise PreconditionError(
            "model must be a torch.nn.Module (with classes=), a TorchScript file path, a "
            f"torchvision model name, or a callable; got {type(model).__name__}."
        )


def resolve(
    model: Any,
    classes: Sequence[str] | None,
    *,
    weights: str | None,
    device: torch.device,
    input_size: int,
    multi_label: bool,
) -> tuple[Callable[[list[Any]], Any], list[str] | None, str]:
    """Turn any accepted model kind into ``(predict(list of PIL) -> output, classes, name)``."""
    if isinstance(model, (str, os.PathLike)) and os.path.isfile(model):
        module = torch.jit.load(str(model), map_location=device)
        if classes is None:
            raise PreconditionError("A TorchScript model needs classes=[...] (its output order).")
        name = f"torchscript:{os.path.basename(str(model))}"
        return _module_predictor(module, device, input_size, multi_label), list(classes), name
    if isinstance(model, str):
        import torchvision

        enum = None
        if weights is not None:
            enum = torchvision.models.get_model_weights(model)[str(weights).split(".")[-1]]
        try:
            module = torchvision.models.get_model(model, weights=enum)
        except Exception as exc:
            raise PreconditionError(
                f"Could not load torchvision model {model!r} with weights {weights!r}: {exc}. "
                "Without internet put the weights file in ~/.cache/torch/hub/checkpoints/."
            ) from exc
        if classes is None and enum is not None:
            classes = list(enum.meta.get("categories", []))
        if not classes:
            raise PreconditionError(f"Pass classes=[...] for {model!r} (no weights metadata).")
        name = f"torchvision:{model}:{weights}"
        return _module_predictor(module, device, input_size, multi_label), list(classes), name
    if isinstance(model, nn.Module):
        if classes is None:
            raise PreconditionError("A torch.nn.Module needs classes=[...] (its output order).")
        name = f"module:{type(model).__name__}"
        return _module_predictor(model, device, input_size, multi_label), list(classes), name
    if callable(model):
        return model, list(classes) if classes is not None else None, "callable"
    raise PreconditionError(
        "model must be a torch.nn.Module (with classes=), a TorchScript file path, a torchvision "
        f"model name, or a callable; got {type(model).__name__}."
    )


def _rows(
    out: Any, classes: list[str] | None, multi_label: bool
) -> list[tuple[list[str], list[float], float]]:
    """Model output to ``[(model labels, scores, confidence)]``."""
    if isinstance(out, (np.ndarray, torch.Tensor)):
        probs = np.asarray(out.detach().cpu() if isinstance(out, torch.Tensor) else out, float)
        if classes is None or probs.shape[1] != len(classes):
            raise PreconditionError(
                f"The model returned {probs.shape[1]} scores per image; pass classes= with "
                "that many names."
            )
        conf = calibrate.confidence(probs, multi_label)
        return [
            ([classes[c] for c in picks], [float(probs[n, c]) for c in picks], float(conf[n]))
            for n, picks in enumerate(calibrate.decide(probs, multi_label))
        ]
    rows = []
    for labels, scores in out:
        labels, scores = [str(x) for x in labels], [float(s) for s in scores]
        rows.append((labels, scores, min(scores) if scores else 0.0))
    return rows


def _map(
    row: tuple[list[str], list[float], float], mapping: dict[str, str] | None, keep: set | None
) -> tuple[list[str], list[float], float]:
    labels, scores, conf = row
    out_l, out_s = [], []
    for name, score in zip(labels, scores, strict=True):
        if mapping is not None:
            target = mapping.get(name)
        else:
            target = name if keep is None or name in keep else None
        if target is not None and target not in out_l:
            out_l.append(target)
            out_s.append(score)
    return out_l, out_s, conf


def run(
    job: Job,
    ds: Any,
    model: Any,
    *,
    classes: Sequence[str] | None = None,
    mapping: dict[str, str] | None = None,
    weights: str | None = None,
    target_precision: float = 0.95,
    multi_label: bool = False,
    device: str | None = None,
    input_size: int = 224,
    batch: int = 32,
    include_proposed: bool = True,
    calibrate_on_labels: bool = True,
) -> dict[str, Any]:
    """Body of a pre-label job; returns the result summary."""
    start = time.perf_counter()
    dev = features.pick_device(device)
    predict, classes, name = resolve(
        model,
        classes,
        weights=weights,
        device=dev,
        input_size=input_size,
        multi_label=multi_label,
    )
    # mapping None: keep the model classes that are dataset labels (all, on a label-less dataset)
    keep = set(mapping.values()) if mapping is not None else (set(ds.labels) or None)
    targets = data.target_ids(ds, include_proposed)
    labeled = ds.query(tab="labeled") if calibrate_on_labels else None
    lab_ids = [str(i) for i in labeled["id"]] if labeled is not None else []
    truth = (
        {str(i): set(data._as_list(v)) for i, v in zip(lab_ids, labeled["labels"], strict=True)}
        if (labeled is not None)
        else {}
    )
    ids = lab_ids + targets
    results: dict[str, tuple[list[str], list[float], float]] = {}
    skipped: dict[str, str] = {}
    for start_i in range(0, len(ids), batch):
        chunk, images = [], []
        for i in ids[start_i : start_i + batch]:
            try:
                images.append(data._open_rgb(ds.read_bytes(i)))
                chunk.append(i)
            except Exception as exc:  # unreadable: reported, never the end of the job
                skipped[i] = f"{type(exc).__name__}: {exc}"[:300]
        if images:
            for i, row in zip(chunk, _rows(predict(images), classes, multi_label), strict=True):
                results[i] = _map(row, mapping, keep)
        job.report(0.95 * min(1.0, (start_i + batch) / len(ids)), "predicting")
    # precision of what would be proposed: labeled images the model maps onto a dataset label
    held = [
        (results[i][2], set(results[i][0]) == truth[i])
        for i in lab_ids
        if i in results and results[i][0]
    ]
    if len(held) >= 10:
        conf, right = np.array([h[0] for h in held]), np.array([h[1] for h in held])
        th = calibrate.fit_threshold(conf, right, target_precision)
        calibration = {**th.to_dict(), "calibrated": True}
    else:
        calibration = {
            "threshold": target_precision,
            "estimated_precision": None,
            "held_out": len(held),
            "calibrated": False,
        }
    cut = calibration["threshold"]
    new_labels = sorted(
        {n for i in targets if i in results for n in results[i][0]} - set(ds.labels)
    )
    if new_labels:
        ds.add_labels(*new_labels)
    still = set(data.target_ids_now(ds, include_proposed))
    out = [i for i in targets if i in results and results[i][0] and i in still]
    floor = 0.5 if multi_label else 1.0 / max(2, len(classes or []) or 2)
    hardness = [float(np.clip((1 - results[i][2]) / (1 - floor), 0, 1)) for i in out]
    hard = [results[i][2] < cut for i in out]
    if out:
        ds.internal.set_proposals(
            out,
            [results[i][0] for i in out],
            [results[i][1] for i in out],
            hardness=hardness,
            hard=hard,
        )
    return {
        "model": name,
        "device": str(dev),
        "proposed": len(out),
        "hard": int(sum(hard)),
        "accepted": len(out) - int(sum(hard)),
        "unmapped": len([i for i in targets if i in results and not results[i][0]]),
        **data.skipped_summary(skipped),
        **calibration,
        "target_precision": target_precision,
        "seconds": round(time.perf_counter() - start, 2),
    }
