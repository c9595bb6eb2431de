"""Auto grouping: k-means on embeddings; the group becomes a sample attribute."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from jlabel.autolabel import data, features
from jlabel.autolabel.jobs import Job
from jlabel.errors import PreconditionError


def kmeans(x: np.ndarray, k: int, *, seed: int = 0, iters: int = 50, n_init: int = 3) -> np.ndarray:
    """Cluster rows of ``x`` ``[N, D]`` into ``k`` groups (k-means++ start, best of ``n_init``);
    returns labels ``[N]``."""
    t = torch.from_numpy(np.asarray(x, np.float32))
    n = len(t)
    k = max(1, min(k, n))
    gen = torch.Generator().manual_seed(seed)
    best, best_inertia = None, float("inf")
    for _ in range(n_init):
        centers = t[torch.randint(0, n, (1,), generator=gen)]
        for _ in range(1, k):  # k-means++: far points more likely
            d = torch.cdist(t, centers).min(dim=1).values ** 2
            p = d / d.sum() if d.sum() > 0 else torch.full((n,), 1 / n)
            centers = torch.cat([centers, t[torch.multinomial(p, 1, generator=gen)]])
        for _ in range(iters):
            labels = torch.cdist(t, centers).argmin(dim=1)
            new = torch.stack(
                [t[labels == c].mean(0) if (labels == c).any() else centers[c] for c in range(k)]
            )
            if torch.allclose(new, centers):
                break
            centers = new
        labels = torch.cdist(t, centers).argmin(dim=1)
        inertia = float(((t - centers[labels]) ** 2).sum())
        if inertia < best_inertia:
            best, best_inertia = labels, inertia
    return best.numpy()


def _pixel_features(ds: Any, ids: list[str], job: Job) -> tuple[list[str], np.ndarray, dict]:
    ok, arrays, skipped, _ = features.pixels(ds, ids, 16, tick=lambda f: job.report(0.8 * f))
    flat = arrays.reshape(len(arrays), -1).astype(np.float32) / 255.0
    flat -= flat.mean(axis=0, keepdims=True)
    q = min(32, flat.shape[0], flat.shape[1])
    _, _, v = torch.pca_lowrank(torch.from_numpy(flat), q=q, center=False)
    return ok, (torch.from_numpy(flat) @ v).numpy(), skipped


def run(
    job: Job,
    ds: Any,
    *,
    n_groups: int = 8,
    backbone: Any = "resnet18",
    weights: str | None = "DEFAULT",
    device: str | None = None,
    seed: int = 0,
    prefix: str = "group",
) -> dict[str, Any]:
    """Body of an auto-group job: embeddings (pixels when no pretrained backbone), k-means,
    ``ds.internal.set_groups`` with names ``f"{prefix}-{n}"``."""
    start = time.perf_counter()
    ids = [str(i) for i in ds.query(tab="all")["id"]]
    if len(ids) < 2:
        raise PreconditionError("Auto grouping needs at least 2 images.")
    dev = features.pick_device(device)
    notes = []
    bb = None
    if not (isinstance(backbone, str) and backbone in ("cnn", "pixels")):
        try:
            bb = features.load_backbone(backbone, weights)
        except features.WeightsUnavailable as exc:
            notes.append(f"{exc}; grouped on downscaled pixels instead.")
    if bb is None:
        ok, emb, skipped = _pixel_features(ds, ids, job)
        source = "pixels:16px"
    else:
        ok, emb, skipped, _ = features.embeddings(
            ds, ids, bb, dev, tick=lambda f: job.report(0.8 * f)
        )
        source = bb.name
    job.report(0.85, "clustering")
    labels = kmeans(emb, n_groups, seed=seed)
    names = [f"{prefix}-{int(c)}" for c in labels]
    ds.internal.set_groups(ok, names)
    sizes = {n: names.count(n) for n in sorted(set(names))}
    return {
        "groups": sizes,
        "embeddings": source,
        **data.skipped_summary(skipped),
        "notes": notes,
        "device": str(dev),
        "seconds": round(time.perf_counter() - start, 2),
    }
