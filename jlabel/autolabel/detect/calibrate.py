"""Per-image decisions and their calibration: what the user accepts is an image's whole set
of proposed boxes, so the unit of precision is the image.

A detector gives candidates (box, label, score) per image. The *decision* keeps, after
class-agnostic NMS, the candidates scoring at least ``t``. The image's *confidence* is the
least margin of any candidate from ``t``: a kept box barely over it, or a dropped one barely
under it (something possibly missed), or a suppressed box of another label (label confusion)
all make the image unsure. A cut on that confidence is fitted on held-out labeled images
(folds) so that the images above it are *exactly right* (every true box found with IoU >= 0.5
and the right label, nothing extra) at the smoothed target rate of
:func:`jlabel.autolabel.calibrate.fit_threshold`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jlabel.autolabel import calibrate as cls_cal
from jlabel.autolabel.detect.augment import _box_iou as iou

Candidates = tuple[np.ndarray, np.ndarray, np.ndarray]
"""``(boxes [N, 4], labels [N], scores [N])`` of one image."""
NMS_IOU = 0.5
MATCH_IOU = 0.5
DECISION_GRID = (0.2, 0.3, 0.4, 0.5, 0.6)


@dataclass
class Decision:
    """The boxes kept for one image and how sure the image is of them."""

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    confidence: float
    conflict: bool
    """Two overlapping candidates of different labels both near or over the cut."""


def nms(cands: Candidates, thr: float = NMS_IOU) -> tuple[np.ndarray, float]:
    """Indices kept by class-agnostic greedy NMS (surest first) and the highest score of a
    suppressed candidate whose label differs from the one that suppressed it."""
    boxes, labels, scores = cands
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    conflict = 0.0
    overlaps = iou(boxes, boxes)
    for i in order:
        hit = [k for k in keep if overlaps[i, k] >= thr]
        if not hit:
            keep.append(int(i))
        elif labels[hit[0]] != labels[i]:
            conflict = max(conflict, float(scores[i]))
    return np.array(keep, np.int64), conflict


def decide(cands: Candidates, t: float) -> Decision:
    """Keep the NMS survivors scoring at least ``t``; confidence = least margin from ``t``
    (kept: ``(s - t) / (1 - t)``, dropped or conflicting: ``(t - s) / t``), 1 with none."""
    boxes, labels, scores = cands
    keep, conflict = nms(cands)
    s = scores[keep] if len(keep) else np.zeros(0, np.float32)
    chosen = keep[s >= t] if len(keep) else keep
    margins = [(s[s >= t] - t) / (1 - t), (t - s[s < t]) / t, [(t - conflict) / t]]
    conf = float(np.clip(np.concatenate([np.ravel(m) for m in margins]).min(), 0.0, 1.0))
    return Decision(
        boxes[chosen].reshape(-1, 4),
        labels[chosen],
        scores[chosen],
        conf,
        bool(conflict >= 0.5 * t),
    )


def exactly_right(
    boxes: np.ndarray, labels: np.ndarray, true_boxes: np.ndarray, true_labels: np.ndarray
) -> bool:
    """Every true box matched one-to-one by a box of its label with IoU >= 0.5, none extra."""
    if len(boxes) != len(true_boxes):
        return False
    return matches(boxes, labels, true_boxes, true_labels) == len(true_boxes)


def matches(
    boxes: np.ndarray, labels: np.ndarray, true_boxes: np.ndarray, true_labels: np.ndarray
) -> int:
    """How many boxes match a true box (same label, IoU >= 0.5), one-to-one, greedily by IoU."""
    if len(boxes) == 0 or len(true_boxes) == 0:
        return 0
    ov = iou(np.asarray(boxes, np.float32), np.asarray(true_boxes, np.float32))
    ov[np.asarray(labels)[:, None] != np.asarray(true_labels)[None, :]] = 0
    n = 0
    while True:
        i, j = np.unravel_index(int(ov.argmax()), ov.shape)
        if ov[i, j] < MATCH_IOU:
            return n
        n += 1
        ov[i, :] = 0
        ov[:, j] = 0


def same(a: Decision, b: Decision) -> bool:
    """Whether two decisions on one image propose the same boxes (IoU >= 0.5, same labels)."""
    return exactly_right(a.boxes, a.labels, b.boxes, b.labels)


@dataclass
class Fit:
    """The decision score ``t`` and the fitted confidence cut, with its held-out evidence."""

    t: float
    threshold: cls_cal.Threshold
    confidence: np.ndarray
    right: np.ndarray

    @property
    def certified(self) -> bool:
        return self.threshold.held_out_above > 0


def fit(
    oof: list[Candidates],
    truth: list[tuple[np.ndarray, np.ndarray]],
    target: float,
    grid: tuple[float, ...] = DECISION_GRID,
) -> Fit:
    """For each decision score in ``grid`` fit the cut on the held-out images; keep the
    ``t`` whose cut accepts the most of them (then the most exactly right)."""
    best: Fit | None = None
    for t in grid:
        ds = [decide(c, t) for c in oof]
        conf = np.array([d.confidence for d in ds])
        right = np.array(
            [
                exactly_right(d.boxes, d.labels, b, lab)
                for d, (b, lab) in zip(ds, truth, strict=True)
            ]
        )
        th = cls_cal.fit_threshold(conf, right, target)
        cand = Fit(t, th, conf, right)
        if best is None or (th.held_out_above, right.sum()) > (
            best.threshold.held_out_above,
            best.right.sum(),
        ):
            best = cand
    assert best is not None
    return best


def fuse(per_model: list[Candidates], thr: float = 0.55) -> Candidates:
    """Candidates of several models on one image merged: same-label boxes overlapping the
    surest one (IoU >= ``thr``, one per model) become one box, score-weighted, whose score is
    the models' mean (a model that did not see it counts 0)."""
    n = len(per_model)
    rows = [(m, k) for m, (_, _, s) in enumerate(per_model) for k in range(len(s))]
    if not rows:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32)
    boxes = np.concatenate([c[0] for c in per_model]).reshape(-1, 4)
    labels = np.concatenate([c[1] for c in per_model])
    scores = np.concatenate([c[2] for c in per_model])
    model = np.array([m for m, _ in rows])
    ov = iou(boxes, boxes)
    used = np.zeros(len(scores), bool)
    out_b, out_l, out_s = [], [], []
    for i in np.argsort(-scores, kind="stable"):
        if used[i]:
            continue
        members, seen = [], set()
        for j in np.argsort(-ov[i], kind="stable"):
            if used[j] or labels[j] != labels[i] or ov[i, j] < thr or model[j] in seen:
                continue
            members.append(j)
            seen.add(model[j])
        used[members] = True
        w = scores[members]
        out_b.append((boxes[members] * w[:, None]).sum(0) / max(w.sum(), 1e-9))
        out_l.append(labels[i])
        out_s.append(w.sum() / n)
    return np.array(out_b, np.float32), np.array(out_l, np.int64), np.array(out_s, np.float32)


def accept(final: Decision, per_fold: list[Decision], cut: float) -> tuple[bool, float]:
    """Whether a target image is sure, and the share of fold models agreeing with ``final``.

    Sure: the fused decision proposes boxes at confidence ``cut`` or more, and most fold
    models are each that sure of the very same boxes (the cut was fitted on single fold
    models, so each agreeing one vouches for the decision at the target rate).
    """
    agree = [same(d, final) for d in per_fold]
    vouch = sum(a and d.confidence >= cut for a, d in zip(agree, per_fold, strict=True))
    share = float(np.mean(agree)) if agree else 1.0
    ok = len(final.boxes) > 0 and final.confidence >= cut and vouch > len(per_fold) / 2
    return ok, share


def hardness(final: Decision, agree_share: float) -> float:
    """0 for a sure image, towards 1 for one whose boxes are coin flips or that the fold
    models disagree on (count or labels), and 1 when overlapping boxes conflict in label."""
    h = max(1.0 - final.confidence, 1.0 - agree_share)
    if final.conflict:
        h = 1.0
    return float(np.clip(h, 0.0, 1.0))


def uncertified_note(fitted: Fit, target: float) -> str:
    """Why the held-out labeled images cannot certify ``target``, and what to do."""
    conf, right = fitted.confidence, fitted.right
    need = cls_cal.needed_run(target)
    clean = cls_cal.first_miss(conf, right)
    if clean >= len(conf):
        why = (
            f"only {len(conf)} boxed images could be held out, all exactly right, but "
            f"{need}+ are needed to certify {target:.0%}"
        )
    else:
        why = (
            f"{len(conf)} boxed images were held out in turn and {int(right.sum())} came out "
            f"exactly right; certifying {target:.0%} needs about {need} of the surest exactly "
            f"right before any miss, and here only {clean} are"
        )
    return (
        f"Cannot certify {target:.0%} of images exactly right from the boxes: {why}. Every "
        "image is marked hard (surest first still holds). Draw boxes on more images (most "
        "where the detector errs) and run again, or check a random sample of the proposals "
        "(ds.sample_proposals(20))."
    )
