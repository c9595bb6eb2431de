"""Confidence thresholds fitted on held-out labels to a target precision; hard examples.

Fold j holds out the j-th labeled image of every class, so every label gets an out-of-fold
confidence. The threshold is the lowest one at which the held-out points above it have a
smoothed precision ``(k + 1) / (n + 2)`` at or above the target: with few labels this is
honest (10 held-out points, all right, certify only 11/12 = 0.92).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

N_FOLDS = 5


def folds(y: np.ndarray, n_folds: int = N_FOLDS) -> np.ndarray:
    """Fold number ``[N]`` per labeled sample: round-robin within each class.

    ``y`` is ``[N]`` class indices or a ``[N, C]`` 0/1 matrix (multi-label: a sample counts in
    its rarest class).
    """
    if y.ndim == 2:
        freq = y.sum(axis=0)
        rank = np.where(y > 0, freq[None, :], np.inf)
        cls = rank.argmin(axis=1)
    else:
        cls = y
    fold = np.zeros(len(cls), dtype=np.int64)
    for c in np.unique(cls):
        members = np.flatnonzero(cls == c)
        fold[members] = np.arange(len(members)) % n_folds
    return fold


def confidence(probs: np.ndarray, multi_label: bool) -> np.ndarray:
    """Confidence of each decision ``[N]``: top probability, or for multi-label the least sure
    of the independent per-label decisions ``min_c max(p_c, 1 - p_c)``."""
    if multi_label:
        return np.maximum(probs, 1 - probs).min(axis=1)
    return probs.max(axis=1)


def decide(probs: np.ndarray, multi_label: bool) -> list[list[int]]:
    """Predicted class indices per sample: top-1, or every label with p >= 0.5 (at least one)."""
    if not multi_label:
        return [[int(i)] for i in probs.argmax(axis=1)]
    out = []
    for row in probs:
        chosen = [int(i) for i in np.flatnonzero(row >= 0.5)]
        out.append(chosen or [int(row.argmax())])
    return out


def correct(probs: np.ndarray, y: np.ndarray, multi_label: bool) -> np.ndarray:
    """Whether each decision matches the truth (multi-label: the whole label set)."""
    if multi_label:
        return np.all((probs >= 0.5) == (y > 0.5), axis=1)
    return probs.argmax(axis=1) == y


@dataclass
class Threshold:
    """A fitted cut: accept decisions with ``confidence >= value``."""

    value: float
    estimated_precision: float
    held_out: int
    held_out_above: int

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready."""
        return {
            "threshold": self.value,
            "estimated_precision": self.estimated_precision,
            "held_out": self.held_out,
            "held_out_above": self.held_out_above,
        }


def fit_threshold(conf: np.ndarray, right: np.ndarray, target: float = 0.95) -> Threshold:
    """Lowest threshold whose held-out points above it have smoothed precision >= ``target``.

    When none qualifies the threshold is above 1 (nothing accepted) and the estimate is the best
    smoothed precision seen.
    """
    conf = np.asarray(conf, dtype=np.float64)
    right = np.asarray(right, dtype=bool)
    order = np.argsort(-conf, kind="stable")
    c, r = conf[order], right[order]
    n = np.arange(1, len(c) + 1)
    smoothed = (np.cumsum(r) + 1) / (n + 2)
    # only cut between distinct confidences: ties go in or out together
    last_of_tie = np.r_[c[1:] != c[:-1], True] if len(c) else np.array([], bool)
    ok = np.flatnonzero(last_of_tie & (smoothed >= target))
    if len(ok) == 0:
        best = float(smoothed.max()) if len(c) else 0.5
        return Threshold(1.0 + 1e-9, best, len(c), 0)
    i = int(ok.max())
    return Threshold(float(c[i]), float(smoothed[i]), len(c), int(i + 1))


def needed_run(target: float) -> int:
    """Fewest held-out points, all right, whose smoothed precision reaches ``target``
    (18 for 0.95, 8 for 0.9)."""
    return max(1, math.ceil((2 * target - 1) / (1 - target) - 1e-9))


def first_miss(conf: np.ndarray, right: np.ndarray) -> int:
    """How many held-out points are right before the first mistake, surest first (ties count
    as ranked after the mistake); ``len(conf)`` when none is wrong."""
    conf = np.asarray(conf, dtype=np.float64)
    wrong = conf[~np.asarray(right, dtype=bool)]
    if len(wrong) == 0:
        return len(conf)
    return int((conf > wrong.max()).sum())


def transfer(threshold: float, fold_conf: np.ndarray, final_conf: np.ndarray) -> float:
    """The cut on the fold-averaged predictions that accepts as many targets as one fold model
    does at ``threshold`` (on average over ``fold_conf`` ``[folds, T]``), never above it.

    The threshold is fitted on single fold models; their average is more accurate but less
    confident, so the same cut on it would accept fewer, not more precise, proposals. Taking
    the average's most confident ones, as many as a single model accepts, keeps at least the
    single model's precision (the average ranks better) at its coverage.
    """
    if threshold > 1 or len(final_conf) == 0 or fold_conf.size == 0:
        return threshold
    count = int(np.floor((fold_conf >= threshold).mean(axis=1).mean() * len(final_conf)))
    if count == 0:
        return threshold
    ranked = np.sort(final_conf)[::-1]
    return float(min(threshold, ranked[count - 1]))


def accepted_by_folds(threshold: float, fold_conf: np.ndarray) -> np.ndarray:
    """Per target ``[T]``: whether most fold models (``fold_conf`` ``[folds, T]``) are at least
    ``threshold`` sure of it. Depends on each target alone, unlike :func:`transfer`."""
    if fold_conf.size == 0:
        return np.zeros(fold_conf.shape[-1] if fold_conf.ndim else 0, dtype=bool)
    return (fold_conf >= threshold).mean(axis=0) > 0.5


def decision_key(probs: np.ndarray, multi_label: bool) -> np.ndarray:
    """A comparable key per decision ``[N, k]``: the top class, or the packed label set."""
    if multi_label:
        return np.packbits(probs >= 0.5, axis=1)
    return probs.argmax(axis=1)[:, None]


def agreement(fold_keys: list[np.ndarray], final_key: np.ndarray) -> np.ndarray:
    """Share of fold models ``[N]`` whose decision equals the final one."""
    if not fold_keys:
        return np.ones(len(final_key))
    return np.mean([np.all(k == final_key, axis=1) for k in fold_keys], axis=0)


def hardness(conf: np.ndarray, n_classes: int, multi_label: bool) -> np.ndarray:
    """Hardness in [0, 1]: 0 for a certain decision, 1 for a coin flip."""
    floor = 0.5 if multi_label else 1.0 / max(2, n_classes)
    return np.clip((1.0 - conf) / (1.0 - floor), 0.0, 1.0)


def uncertified_note(
    conf: np.ndarray,
    right: np.ndarray,
    oof: np.ndarray,
    y: np.ndarray,
    classes: list[str],
    multi_label: bool,
    target: float,
) -> str:
    """Why no cut reaches ``target`` on the held-out labels, and what the user can do."""
    need = needed_run(target)
    clean = first_miss(conf, right)
    order = np.argsort(-conf, kind="stable")
    decided = decide(oof, multi_label)
    truth = decide(y.astype(np.float32), True) if multi_label else [[int(c)] for c in y]
    misses = [
        f"{'+'.join(classes[c] for c in truth[i])} taken for "
        f"{'+'.join(classes[c] for c in decided[i])} ({conf[i]:.0%} sure)"
        for i in order
        if not right[i]
    ][:3]
    if clean >= len(conf):
        why = (
            f"only {len(conf)} labeled images could be held out, all proposed right, but "
            f"{need}+ right ones are needed to certify {target:.0%}"
        )
    else:
        why = (
            f"{len(conf)} labeled images were held out in turn; certifying {target:.0%} needs "
            f"about {need} of the surest ones right before any mistake, and here the "
            f"{_ordinal(clean + 1)} surest is already wrong ({'; '.join(misses)})"
        )
    return (
        f"Cannot certify {target:.0%} precision from the labels: {why}. Every proposal is marked "
        "hard (their ranking still holds: surest first). Either label more images (a few more "
        "per label, most where the mistakes are) and run again, or check a random sample of "
        "the proposals (ds.sample_proposals(20) or the widget's 'Check a random sample': 20 of "
        "20 right certifies about 95%)."
    )


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
