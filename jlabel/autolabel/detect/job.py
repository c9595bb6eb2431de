"""The detection auto-label job: fold detectors (from scratch, or a COCO-pretrained one
fine-tuned when its weights can be had), per-image calibration on the held-out boxed images,
then one ``set_proposals`` with the sure images not hard and the others hard."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from jlabel.autolabel import calibrate as cls_cal
from jlabel.autolabel import data as cls_data
from jlabel.autolabel import features
from jlabel.autolabel.detect import augment, calibrate, data, pretrained, train
from jlabel.autolabel.detect.calibrate import Candidates
from jlabel.autolabel.jobs import Job
from jlabel.boxes import image_size

PRETRAINED_STEPS = 300


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _side(ds: Any, samples: data.BoxSamples, cfg: train.DetectConfig) -> int:
    if cfg.side is not None:
        return int(cfg.side)
    sizes = []
    for sid in samples.labeled_ids[:32]:
        with contextlib.suppress(Exception):
            size = image_size(ds.read_bytes(sid))
            if size is not None:
                sizes.append(size)
    return data.pick_side(sizes)


class Learner:
    """Trains fold models one way (scratch, or fine-tuning the pretrained detector)."""

    def __init__(
        self, n_classes: int, cfg: train.DetectConfig, dev: torch.device, base: Any = None
    ) -> None:
        self.n, self.cfg, self.dev, self.base = n_classes, cfg, dev, base

    @property
    def steps(self) -> int:
        return PRETRAINED_STEPS if self.base is not None else self.cfg.steps

    def fit(self, batches: augment.Batches, seed: int, tick: Callable[[int], None]) -> Any:
        if self.base is not None:
            return pretrained.fine_tune(
                self.base, batches, self.n, self.steps, self.dev, seed, tick=tick
            )
        return train.train_supervised(batches, self.n, self.cfg, self.dev, seed, tick)

    def predict(self, net: Any, images: np.ndarray) -> list[Candidates]:
        if self.base is not None:
            return pretrained.predict(net, images, self.dev, self.cfg.floor)
        return train.predict(net, images, self.dev, self.cfg.floor)


def _folds(samples: data.BoxSamples, n_folds: int) -> np.ndarray:
    return cls_cal.folds(samples.rarest(), n_folds)


def _scaled(boxes: list[np.ndarray], scales: np.ndarray) -> list[np.ndarray]:
    return [b * s for b, s in zip(boxes, scales, strict=True)]


def run(
    job: Job,
    ds: Any,
    *,
    mode: str = "fast",
    target_precision: float = 0.95,
    weights: str | None = "DEFAULT",
    device: str | None = None,
    seed: int = 0,
    include_proposed: bool = True,
    train_config: train.DetectConfig | None = None,
) -> dict[str, Any]:
    """Body of a detection auto-label job; returns the result summary."""
    start = time.perf_counter()
    cfg = train_config or train.DetectConfig()
    notes: list[str] = []
    job.report(0.0, "reading the dataset")
    samples = data.collect(ds, include_proposed=include_proposed)
    for name, k in samples.left_out.items():
        notes.append(
            f"Label {name!r} is on {k} image(s) (it needs {data.MIN_IMAGES_PER_LABEL}); its "
            "images were left out of training and it is not proposed."
        )
    dev = features.pick_device(device)
    side = _side(ds, samples, cfg)
    ids = samples.labeled_ids + samples.target_ids
    decoded, skipped = data.decode_all(
        ds, ids, side, on_progress=lambda f: job.report(0.02 + 0.06 * f, "decoding images")
    )
    data.check_after_decoding(samples, set(decoded))
    lab = np.stack([decoded[i][0] for i in samples.labeled_ids])
    tgt = np.stack([decoded[i][0] for i in samples.target_ids])
    lab_scale = np.array([decoded[i][1] for i in samples.labeled_ids])
    truth = list(zip(_scaled(samples.boxes, lab_scale), samples.labels, strict=True))
    n_cls = len(samples.classes)

    base, detector = None, f"CenterNet-style detector trained from scratch ({side} px)"
    if weights is not None:
        try:
            base = pretrained.load(weights)
            detector = f"{pretrained.ARCH} fine-tuned from COCO weights ({weights})"
        except features.WeightsUnavailable as exc:
            notes.append(
                f"{exc}. Trained a small detector from scratch instead (no download needed); "
                "with pretrained weights in the torch cache the job fine-tunes a COCO detector."
            )
    notes.append(f"Detector: {detector}.")
    learner = Learner(n_cls, cfg, dev, base)

    fold = _folds(samples, cfg.folds)
    n_folds = int(fold.max()) + 1
    semi = mode == "precise" and base is None
    if mode == "precise" and base is not None:
        notes.append("Semi-supervision runs with the small detector only; fine-tuned one used.")
    per_fold = learner.steps + (cfg.semi_steps if semi else 0)
    total, done = per_fold * n_folds, [0]

    def tick(label: str) -> Callable[[int], None]:
        def f(k: int) -> None:
            done[0] += k
            job.report(0.1 + 0.8 * min(1.0, done[0] / total), label)

        return f

    names = ["fast"] + (["precise"] if semi else [])
    oof: dict[str, list[Any]] = {n: [None] * len(lab) for n in names}
    on_targets: dict[str, list[list[Candidates]]] = {n: [] for n in names}
    with _threads(cfg.threads):
        for j in range(n_folds):
            tr, held = np.flatnonzero(fold != j), np.flatnonzero(fold == j)
            batches = augment.Batches(
                lab[tr],
                [truth[i][0] for i in tr],
                [truth[i][1] for i in tr],
                cfg.augment,
                seed + j,
            )
            net = learner.fit(batches, seed + j, tick(f"training fold {j + 1}/{n_folds}"))
            models = {"fast": net}
            if semi:
                pool = np.concatenate([tgt, lab[held]])
                models["precise"] = train.train_semi(
                    net,
                    batches,
                    pool,
                    n_cls,
                    cfg,
                    dev,
                    seed + j,
                    tick(f"self-training fold {j + 1}/{n_folds}"),
                )
            for name, m in models.items():
                for i, c in zip(held, learner.predict(m, lab[held]), strict=True):
                    oof[name][i] = c
                on_targets[name].append(learner.predict(m, tgt))
            job.check()

    job.report(0.92, "calibrating")
    fits = {n: calibrate.fit(oof[n], truth, target_precision) for n in names}
    chosen = "fast"
    if semi:
        a, b = fits["fast"].threshold.held_out_above, fits["precise"].threshold.held_out_above
        if b > a or (b == a and fits["precise"].right.sum() > fits["fast"].right.sum()):
            chosen = "precise"
        else:
            notes.append(
                "Self-training did not help on the held-out boxed images "
                f"({b} accepted vs {a} labels-only): the labels-only detectors were used."
            )
    fitted = fits[chosen]
    if not fitted.certified:
        notes.append(calibrate.uncertified_note(fitted, target_precision))
    written = _write(ds, samples, decoded, on_targets[chosen], fitted, include_proposed)
    th = fitted.threshold
    return {
        "task": "detection",
        "mode": mode,
        "learner": chosen,
        "detector": detector,
        "pretrained": base is not None,
        "device": str(dev),
        "side": side,
        "folds": n_folds,
        "classes": samples.classes,
        "labeled": len(lab),
        "target_precision": target_precision,
        "decision_score": fitted.t,
        **th.to_dict(),
        "held_out_exactly_right": int(fitted.right.sum()),
        "candidates": {
            n: {
                "held_out_accepted": f.threshold.held_out_above,
                "held_out_exactly_right": int(f.right.sum()),
            }
            for n, f in fits.items()
        },
        **written,
        **cls_data.skipped_summary(skipped),
        "notes": notes,
        "seconds": round(time.perf_counter() - start, 2),
    }


def _write(
    ds: Any,
    samples: data.BoxSamples,
    decoded: dict[str, tuple[np.ndarray, float, tuple[int, int]]],
    per_fold: list[list[Candidates]],
    fitted: calibrate.Fit,
    include_proposed: bool,
) -> dict[str, Any]:
    """One ``set_proposals`` for the targets still without boxes or labels."""
    still = set(cls_data.target_ids_now(ds, include_proposed))
    cut = fitted.threshold.value
    ids, labels, scores, boxes, hardness, hard = [], [], [], [], [], []
    n_conflict = n_disagree = n_empty = 0
    for n, sid in enumerate(samples.target_ids):
        if sid not in still:
            continue
        fused = calibrate.fuse([f[n] for f in per_fold])
        final = calibrate.decide(fused, fitted.t)
        folds = [calibrate.decide(f[n], fitted.t) for f in per_fold]
        sure, share = calibrate.accept(final, folds, cut)
        _, scale, (w, h) = decoded[sid]
        rows = []
        for (x0, y0, x1, y1), c, s in zip(
            final.boxes / scale, final.labels, final.scores, strict=True
        ):
            x0, x1 = float(np.clip(x0, 0, w)), float(np.clip(x1, 0, w))
            y0, y1 = float(np.clip(y0, 0, h)), float(np.clip(y1, 0, h))
            if x1 - x0 < 1e-3 or y1 - y0 < 1e-3:
                continue
            rows.append(
                {
                    "label": samples.classes[int(c)],
                    "xmin": x0,
                    "ymin": y0,
                    "xmax": x1,
                    "ymax": y1,
                    "score": float(np.clip(s, 0, 1)),
                }
            )
        sure = sure and len(rows) == len(final.boxes)
        n_conflict += int(final.conflict)
        n_disagree += int(share <= 0.5)
        n_empty += int(not rows)
        ids.append(sid)
        labels.append([])
        scores.append([])
        boxes.append(rows)
        hardness.append(calibrate.hardness(final, share) if not sure else 1 - final.confidence)
        hard.append(not sure)
    if ids:
        ds.internal.set_proposals(ids, labels, scores, hardness=hardness, hard=hard, boxes=boxes)
    n_hard = int(sum(hard))
    return {
        "proposed": len(ids) - n_empty,
        "no_boxes_found": n_empty,
        "hard": n_hard,
        "accepted": len(ids) - n_hard,
        "accepted_share": (len(ids) - n_hard) / len(ids) if ids else 0.0,
        "hard_label_conflict": n_conflict,
        "hard_fold_disagreement": n_disagree,
    }
