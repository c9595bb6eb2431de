"""The auto-label job: learn from the labels (fast) or also the unlabeled images (precise),
calibrate a threshold on held-out folds, write proposals with hard examples marked."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from jlabel.autolabel import calibrate, cnn, data, features, heads, label_next, views
from jlabel.autolabel.jobs import Job

MIN_UNLABELED_FOR_SEMI = 500
"""Below this many unlabeled images semi-supervision is skipped (it tends to hurt)."""
SEMI_LEARNERS = ("cnn+fixmatch", "cnn+fixmatch+views", "propagation", "ensemble")
"""Learners that use the unlabeled images; the others are inductive (labels and image only)."""


@dataclass
class Candidate:
    """One learner's out-of-fold probabilities on the labels and averaged ones on the targets."""

    name: str
    oof: np.ndarray
    target: np.ndarray
    fold_conf: list[np.ndarray] = field(default_factory=list)
    fold_keys: list[np.ndarray] = field(default_factory=list)
    accuracy: float = 0.0
    nll: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def _score(c: Candidate, y: np.ndarray, multi_label: bool) -> Candidate:
    c.accuracy = float(calibrate.correct(c.oof, y, multi_label).mean())
    eps = 1e-6
    if multi_label:
        p = np.clip(c.oof, eps, 1 - eps)
        c.nll = float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())
    else:
        c.nll = float(-np.log(np.clip(c.oof[np.arange(len(y)), y], eps, 1)).mean())
    return c


def _pick(cands: list[Candidate]) -> Candidate:
    """The candidate whose proposals are written.

    Small-CNN path: fast takes ``cnn+knn`` (inductive: all it trains); precise takes
    ``cnn+fixmatch+views`` unless ``cnn+knn`` is more accurate on the held-out labels
    (semi-supervision can hurt on small or odd sets). Embedding path: the best held-out
    accuracy, then log-loss.
    """
    by_name = {c.name: c for c in cands}
    if "cnn+knn" in by_name:
        sup, semi = by_name["cnn+knn"], by_name.get("cnn+fixmatch+views")
        return semi if semi is not None and semi.accuracy >= sup.accuracy else sup
    return max(cands, key=lambda c: (c.accuracy, -c.nll))


def _ensembles(
    name: str,
    model: torch.nn.Module,
    x: torch.Tensor,
    seeds: np.ndarray,
    y: np.ndarray,
    in_views: list[np.ndarray],
    multi_label: bool,
) -> dict[str, np.ndarray]:
    """A fold model's probabilities on every image, and their mean with ``in_views`` (what the
    fold's labels say through fixed views). The labels-only CNN (``+knn``) also gets a
    similarity-weighted vote of the fold's labeled images in its own feature space, and its
    ``in_views`` are such votes too: every score depends on the labels and the image alone.
    FixMatch's ``in_views`` are label spreading over graphs of all images (``+views``)."""
    if name != "cnn":
        probs = cnn.predict(model, x, multi_label)
        return {name: probs, f"{name}+views": np.mean([probs, *in_views], axis=0)}
    probs, feats = cnn.predict_and_embed(model, x, multi_label)
    own = heads.vote(feats[seeds], y, feats, probs.shape[1], multi_label)
    return {name: probs, f"{name}+knn": np.mean([probs, own, *in_views], axis=0)}


def _cnn_candidates(
    job: Job,
    x: torch.Tensor,
    y: np.ndarray,
    n_labeled: int,
    n_out: int,
    multi_label: bool,
    semi: bool,
    cfg: cnn.TrainConfig,
    seed: int,
    span: tuple[float, float],
) -> list[Candidate]:
    """Fold CNNs (FixMatch-continued ones too when ``semi``), each alone and ensembled with
    what the fold's labels say through fixed views (see :func:`_ensembles`)."""
    xl, xt = x[:n_labeled], x[n_labeled:]
    yt = torch.from_numpy(y).to(x.device)
    fold = calibrate.folds(y)
    n_folds = int(fold.max()) + 1
    names = ["cnn", "cnn+knn"] + (["cnn+fixmatch", "cnn+fixmatch+views"] if semi else [])
    oof = {n: np.zeros((n_labeled, n_out), np.float32) for n in names}
    tgt = {n: np.zeros((len(xt), n_out), np.float32) for n in names}
    fconf: dict[str, list[np.ndarray]] = {n: [] for n in names}
    fkeys: dict[str, list[np.ndarray]] = {n: [] for n in names}
    fixed = (views.pixel_view(x), views.gradient_view(x, dims=256))
    view_graphs = [heads.knn_graph(v) for v in fixed] if semi else []

    per_fold = cfg.steps + (cfg.fm_steps * (1 + cfg.mu) if semi else 0)
    total, done = per_fold * n_folds, [0]
    lo, hi = span

    def tick(steps: int, label: str) -> Callable[[], None]:
        def f() -> None:
            done[0] += steps
            job.report(lo + (hi - lo) * min(1.0, done[0] / total), label)

        return f

    def record(outputs: dict[str, np.ndarray], held: np.ndarray) -> None:
        for key, p in outputs.items():
            oof[key][held] = p[:n_labeled][held]
            tgt[key] += p[n_labeled:] / n_folds
            fconf[key].append(calibrate.confidence(p[n_labeled:], multi_label))
            fkeys[key].append(calibrate.decision_key(p[n_labeled:], multi_label))

    for j in range(n_folds):
        train, held = fold != j, fold == j
        ti = torch.from_numpy(np.flatnonzero(train)).to(x.device)
        seeds, ys = np.flatnonzero(train), y[train]
        votes = [heads.vote(v[seeds], ys, v, n_out, multi_label) for v in fixed]

        label = f"training fold {j + 1}/{n_folds}"
        model = cnn.train_supervised(
            xl[ti], yt[ti], n_out, multi_label, cfg, seed=seed + j, tick=tick(25, label)
        )
        record(_ensembles("cnn", model, x, seeds, ys, votes, multi_label), held)
        if semi:
            spread = [heads.spread(g, seeds, ys, n_out, multi_label) for g in view_graphs]
            pool = torch.cat([xt, xl[torch.from_numpy(held).to(x.device)]])
            model = cnn.train_fixmatch(
                model,
                xl[ti],
                yt[ti],
                pool,
                multi_label,
                cfg,
                seed=seed + j,
                tick=tick(25 * (1 + cfg.mu), f"semi-supervised fold {j + 1}/{n_folds}"),
            )
            outputs = _ensembles("cnn+fixmatch", model, x, seeds, ys, spread, multi_label)
            record(outputs, held)
        job.check()
    return [Candidate(n, oof[n], tgt[n], fconf[n], fkeys[n]) for n in names]


def _feature_candidates(
    job: Job,
    emb: np.ndarray,
    y: np.ndarray,
    n_labeled: int,
    n_out: int,
    multi_label: bool,
    semi: bool,
) -> list[Candidate]:
    el, et = emb[:n_labeled], emb[n_labeled:]
    fold = calibrate.folds(y)
    n_folds = int(fold.max()) + 1
    names = ["linear"] + (["propagation"] if semi else [])
    oof = {n: np.zeros((n_labeled, n_out), np.float32) for n in names}
    fprobs: dict[str, list[np.ndarray]] = {n: [] for n in names}
    graph = heads.knn_graph(emb) if semi else None  # one graph: the folds only move the seeds
    for j in range(n_folds):
        train, held = fold != j, fold == j
        a, b = heads.linear_head(el[train], y[train], n_out, multi_label, [el[held], et])
        oof["linear"][held] = a
        fprobs["linear"].append(b)
        if graph is not None:
            p = heads.spread(graph, np.flatnonzero(train), y[train], n_out, multi_label)
            oof["propagation"][held] = p[:n_labeled][held]
            fprobs["propagation"].append(p[n_labeled:])
        job.report(0.5 + 0.4 * (j + 1) / n_folds, f"fitting fold {j + 1}/{n_folds}")
    if semi:
        names.append("ensemble")
        oof["ensemble"] = (oof["linear"] + oof["propagation"]) / 2
        fprobs["ensemble"] = [
            (a + b) / 2 for a, b in zip(fprobs["linear"], fprobs["propagation"], strict=True)
        ]
    return [
        Candidate(
            n,
            oof[n],
            np.mean(fprobs[n], axis=0),
            [calibrate.confidence(p, multi_label) for p in fprobs[n]],
            [calibrate.decision_key(p, multi_label) for p in fprobs[n]],
        )
        for n in names
    ]


def run(
    job: Job,
    ds: Any,
    *,
    mode: str = "fast",
    target_precision: float = 0.95,
    backbone: Any = "resnet18",
    weights: str | None = "DEFAULT",
    device: str | None = None,
    seed: int = 0,
    image_size: int = 24,
    input_size: int = 224,
    include_proposed: bool = True,
    train: cnn.TrainConfig | None = None,
    min_unlabeled_for_semi: int = MIN_UNLABELED_FOR_SEMI,
    min_agreement: float = 0.8,
) -> dict[str, Any]:
    """Body of an auto-label job; returns the result summary.

    Hard examples: confidence under the calibrated threshold, or fewer than ``min_agreement``
    of the fold models agreeing with the final decision.
    """
    start = time.perf_counter()
    job.report(0.0, "reading the dataset")
    samples = data.collect(ds, include_proposed=include_proposed)
    dev = features.pick_device(device)
    notes: list[str] = []
    bb = None
    if not (isinstance(backbone, str) and backbone == "cnn"):
        try:
            bb = features.load_backbone(backbone, weights, size=input_size)
        except features.WeightsUnavailable as exc:
            notes.append(features.fallback_warning(exc))
    ids = samples.labeled_ids + samples.target_ids
    job.report(0.02, "decoding images" if bb is None else "computing embeddings")
    tick = lambda f: job.report(0.02 + 0.38 * f)  # noqa: E731
    if bb is None:
        ok, arrays, skipped, computed = features.pixels(ds, ids, image_size, tick=tick)
    else:
        ok, arrays, skipped, computed = features.embeddings(ds, ids, bb, dev, tick=tick)
    okset = set(ok)
    index = {i: n for n, i in enumerate(ok)}
    lab = [
        (i, names)
        for i, names in zip(samples.labeled_ids, samples.labeled, strict=True)
        if i in okset
    ]
    samples = data.Samples(
        samples.classes,
        [i for i, _ in lab],
        [n for _, n in lab],
        [i for i in samples.target_ids if i in okset],
        samples.multi_label,
    )
    data.collect_check(samples)
    y = samples.targets()
    order = [index[i] for i in samples.labeled_ids + samples.target_ids]
    arrays = arrays[order]
    n_lab, n_out, multi = len(samples.labeled_ids), len(samples.classes), samples.multi_label
    semi = mode == "precise"
    if semi and bb is None and len(samples.target_ids) < min_unlabeled_for_semi:
        semi = False
        notes.append(
            f"Semi-supervision skipped: {len(samples.target_ids)} unlabeled images "
            f"(it needs {min_unlabeled_for_semi}+); trained on the labels only."
        )
    learned_from: Any = arrays
    if bb is None:
        x, _ = cnn.to_tensor(arrays, dev, fit=n_lab)  # precise's cnn+knn is fast's, exactly
        learned_from = x
        cands = _cnn_candidates(
            job, x, y, n_lab, n_out, multi, semi, train or cnn.TrainConfig(), seed, (0.4, 0.9)
        )
    else:
        cands = _feature_candidates(job, arrays, y, n_lab, n_out, multi, semi)
    cands = [_score(c, y, multi) for c in cands]
    best = _pick(cands)
    job.report(0.92, "calibrating")
    person = data.given_by_a_person(ds, samples.labeled_ids)  # calibrate on those only
    conf_oof = calibrate.confidence(best.oof, multi)[person]
    right = calibrate.correct(best.oof, y, multi)[person]
    th = calibrate.fit_threshold(conf_oof, right, target_precision)
    if th.held_out_above == 0:
        notes.append(
            calibrate.uncertified_note(
                conf_oof,
                right,
                best.oof[person],
                y[person],
                samples.classes,
                multi,
                target_precision,
            )
        )
    final_conf = calibrate.confidence(best.target, multi)
    agree = calibrate.agreement(best.fold_keys, calibrate.decision_key(best.target, multi))
    fold_conf = np.array(best.fold_conf)
    if best.name in SEMI_LEARNERS:  # the cut moved to the fold average at equal coverage
        cut = calibrate.transfer(th.value, fold_conf, final_conf)
        below = final_conf < cut
    else:  # inductive: each target on its own, sure if most fold models pass the fitted cut
        cut = th.value
        below = ~calibrate.accepted_by_folds(th.value, fold_conf)
    written = write_proposals(
        ds,
        samples.target_ids,
        best.target,
        samples.classes,
        multi,
        cut,
        include_proposed,
        uncertain=agree < min_agreement,
        below=below,
    )
    if unsaved := label_next.record(ds, job.id, samples, learned_from, best.target, skipped):
        notes.append(unsaved)
    result = {
        "mode": mode,
        "learner": best.name,
        "candidates": {c.name: {"accuracy": c.accuracy, "nll": c.nll} for c in cands},
        "backbone": bb.name if bb is not None else f"cnn:{image_size}px",
        "pretrained": bool(bb is not None and bb.pretrained),
        "device": str(dev),
        "classes": samples.classes,
        "multi_label": multi,
        "labeled": n_lab,
        "target_precision": target_precision,
        **th.to_dict(),
        "threshold": cut,
        "threshold_fold_models": th.value,
        **written,
        **data.skipped_summary(skipped),
        "computed": computed,
        "notes": notes,
        "seconds": round(time.perf_counter() - start, 2),
    }
    return {**result, "next_step": label_next.next_step(result)}


def write_proposals(
    ds: Any,
    ids: list[str],
    probs: np.ndarray,
    classes: list[str],
    multi_label: bool,
    threshold: float,
    include_proposed: bool = True,
    uncertain: np.ndarray | None = None,
    below: np.ndarray | None = None,
) -> dict[str, Any]:
    """``set_proposals`` for the ids still without labels; hard = ``below`` (default: under
    ``threshold``) or ``uncertain``."""
    still = set(data.target_ids_now(ds, include_proposed))
    keep = [n for n, i in enumerate(ids) if i in still]
    conf = calibrate.confidence(probs, multi_label)
    decisions = calibrate.decide(probs, multi_label)
    hardness = calibrate.hardness(conf, len(classes), multi_label)
    hard = conf < threshold if below is None else np.asarray(below, dtype=bool)
    n_uncertain = 0
    if uncertain is not None:
        n_uncertain = int((uncertain & ~hard).sum())
        hard = hard | uncertain
    if keep:
        ds.internal.set_proposals(
            [ids[n] for n in keep],
            [[classes[c] for c in decisions[n]] for n in keep],
            [[float(probs[n, c]) for c in decisions[n]] for n in keep],
            hardness=[float(hardness[n]) for n in keep],
            hard=[bool(hard[n]) for n in keep],
        )
    n_hard = int(hard[keep].sum()) if keep else 0
    return {
        "proposed": len(keep),
        "hard": n_hard,
        "accepted": len(keep) - n_hard,
        "hard_disagreement": n_uncertain,
        "accepted_share": (len(keep) - n_hard) / len(keep) if keep else 0.0,
        "mean_confidence_accepted": float(conf[keep][~hard[keep]].mean())
        if len(keep) - n_hard
        else None,
    }
