"""What to label next: the images whose labels would help the next auto-label job most, and
what a finished job tells the user to do.

Each auto-label job leaves a record under the store (``cache/label-next.npz``): for every image it
read, a compact feature vector (the fixed views the small CNN is paired with, or the backbone's
embedding, projected to 128 columns, float16) and, for the images it proposed labels for, how
unsure the proposal was (``1 - margin`` between the two likeliest classes; multi-label: the least
sure label). :func:`to_label_next` then picks from the images without labels now:

1. a pool of the ``POOL_FACTOR * n`` most uncertain ones;
2. greedily, the pool image with the largest ``uncertainty x distance`` to the nearest image that
   is labeled or already picked (an uncertainty-weighted k-center: unsure, and not like anything
   the learner has seen labeled), until ``n`` are picked.

Images the last job did not see (added since, or no job yet) are unknown to the learner: they come
first, in a seeded random order.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from jlabel.autolabel import data, views
from jlabel.errors import InvalidArgument

RECORD = ("cache", "label-next.npz")
FEATURE_DIMS = 128
POOL_FACTOR = 10
"""The k-center runs over this many times ``n`` of the most uncertain candidates."""
TABS = (None, "unlabeled", "to_confirm")


# ------------------------------------------------------------------------------ the record
def features(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Compact features ``[N, 128]`` float16 (rows L2-normalised) of what a job learned from.

    ``x``: the small CNN's normalised images ``[N, C, H, W]`` (pixels and gradient histograms,
    each normalised, side by side) or a backbone's embeddings ``[N, D]``.
    """
    if isinstance(x, torch.Tensor) and x.ndim == 4:
        x = x.detach().cpu().float()
        parts = [views.pixel_view(x), views.gradient_view(x, dims=256)]
        t = torch.cat([F.normalize(p - p.mean(0, keepdim=True), dim=1) for p in parts], dim=1)
    else:
        t = torch.as_tensor(np.asarray(x, np.float32)).flatten(1)
        t = F.normalize(t - t.mean(0, keepdim=True), dim=1)
    t = F.normalize(views.project(t, FEATURE_DIMS), dim=1)
    return t.numpy().astype(np.float16)


def uncertainty(probs: np.ndarray, multi_label: bool) -> np.ndarray:
    """``[N]`` in [0, 1]: 1 minus the margin between the two likeliest classes (single-label),
    or 1 minus the least sure label's ``|2p - 1|`` (multi-label); 1 is a coin flip."""
    probs = np.asarray(probs, np.float64)
    if len(probs) == 0:
        return np.zeros(0)
    if multi_label:
        return 1.0 - np.abs(2 * probs - 1).min(axis=1)
    if probs.shape[1] < 2:
        return np.zeros(len(probs))
    top = np.sort(probs, axis=1)[:, -2:]
    return np.clip(1.0 - (top[:, 1] - top[:, 0]), 0.0, 1.0)


def save_record(
    ds: Any,
    *,
    job_id: str,
    ids: list[str],
    feats: np.ndarray,
    target_ids: list[str],
    target_uncertainty: np.ndarray,
    skipped: list[str],
) -> None:
    """Keep what :func:`to_label_next` needs from a job (replacing the last job's record)."""
    unsure = np.full(len(ids), np.nan, np.float32)
    index = {i: n for n, i in enumerate(ids)}
    for sid, u in zip(target_ids, target_uncertainty, strict=True):
        unsure[index[sid]] = u
    buf = io.BytesIO()
    np.savez(
        buf,
        job_id=np.array(job_id),
        ids=np.array(ids, dtype=str),
        features=np.asarray(feats, np.float16),
        uncertainty=unsure,
        skipped=np.array(skipped, dtype=str),
    )
    path = ds.internal.store_path(*RECORD)
    ds.internal.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    with ds.internal.fs.open(path, "wb") as f:
        f.write(buf.getvalue())


def record(
    ds: Any,
    job_id: str,
    samples: data.Samples,
    learned_from: torch.Tensor | np.ndarray,
    target_probs: np.ndarray,
    skipped: dict[str, str],
) -> str | None:
    """Save a finished job's record (rows of ``learned_from``: labeled ids, then targets);
    returns a note when it could not be written (the job's proposals stand regardless)."""
    try:
        save_record(
            ds,
            job_id=job_id,
            ids=samples.labeled_ids + samples.target_ids,
            feats=features(learned_from),
            target_ids=samples.target_ids,
            target_uncertainty=uncertainty(target_probs, samples.multi_label),
            skipped=list(skipped),
        )
    except Exception as exc:  # a convenience for the next round: never the end of a job
        return f"Suggestions of what to label next were not saved: {exc}"
    return None


def load_record(ds: Any) -> dict[str, Any] | None:
    """The last job's record, or None (no job yet, or a file this version cannot read)."""
    try:
        with ds.internal.fs.open(ds.internal.store_path(*RECORD), "rb") as f:
            z = np.load(io.BytesIO(f.read()), allow_pickle=False)
            return {
                "job_id": str(z["job_id"]),
                "ids": [str(i) for i in z["ids"]],
                "features": z["features"].astype(np.float32),
                "uncertainty": z["uncertainty"].astype(np.float64),
                "skipped": {str(i) for i in z["skipped"]},
            }
    except Exception:  # missing or unreadable: suggestions fall back to a random draw
        return None


# ------------------------------------------------------------------------------ the choice
def _check(n: Any, seed: Any, tab: Any) -> None:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise InvalidArgument(f"n={n!r}: ask for at least 1 image to label next (20 is typical)")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise InvalidArgument(f"seed must be a whole number of at least 0, not {seed!r}")
    if tab not in TABS:
        raise InvalidArgument(
            f"tab={tab!r}: use None (images without labels, proposed or not), 'unlabeled' "
            "(no proposal either) or 'to_confirm' (proposals not confirmed yet)"
        )


def candidates(ds: Any, tab: str | None) -> list[str]:
    """Ids without labels now, in id order: in Unlabeled, in To Be Confirmed, or either."""
    if tab == "unlabeled":
        return sorted(str(i) for i in ds.internal.query_ids(tab="unlabeled"))
    both = data.target_ids_now(ds, include_proposed=True)
    if tab == "to_confirm":
        plain = set(str(i) for i in ds.internal.query_ids(tab="unlabeled"))
        return [i for i in both if i not in plain]
    return both


def _min_dist(points: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Distance ``[P]`` from each point to its nearest center (rows unit length)."""
    out = torch.full((len(points),), float("inf"))
    for start in range(0, len(centers), 4096):
        sim = points @ centers[start : start + 4096].T
        out = torch.minimum(out, (2 - 2 * sim.max(dim=1).values).clamp_min(0).sqrt())
    return out


def k_center(feats: np.ndarray, unsure: np.ndarray, centers: np.ndarray, n: int) -> list[int]:
    """Greedy uncertainty-weighted k-center: ``n`` row indices of ``feats`` ``[P, D]``, each the
    one with the largest ``unsure x distance to the nearest center or earlier pick``; the first
    is the most uncertain when there are no ``centers`` ``[L, D]``. Ties: the lower index."""
    p = torch.from_numpy(np.asarray(feats, np.float32))
    w = torch.from_numpy(np.asarray(unsure, np.float32)).clamp_min(1e-6)
    if len(centers):
        d = _min_dist(p, torch.from_numpy(np.asarray(centers, np.float32)))
    else:
        d = torch.full((len(p),), float("inf"))
    picked: list[int] = []
    taken = torch.zeros(len(p), dtype=torch.bool)
    for _ in range(min(n, len(p))):
        finite = torch.isfinite(d)
        dn = torch.where(finite, d, torch.ones_like(d) * 2.0)  # unit rows: distances <= 2
        score = torch.where(taken, torch.full_like(w, -1.0), w * dn)
        i = int(torch.argmax(score))  # first maximum: the lower index wins ties
        picked.append(i)
        taken[i] = True
        d = torch.minimum(d, _min_dist(p, p[i : i + 1]))
    return picked


def to_label_next(ds: Any, *, n: int = 20, seed: int = 0, tab: str | None = None) -> list[str]:
    """The ``n`` images without labels whose labels would help the next auto-label job most.

    Parameters
    ----------
    ds : LabelingDataset
        The dataset.
    n : int, default 20
        How many to suggest (fewer when fewer images are without labels).
    seed : int, default 0
        Seed of the random order of images the last job did not see.
    tab : str | None, default None
        None: any image without labels; ``"unlabeled"``: only images without a proposal;
        ``"to_confirm"``: only proposals not confirmed yet.

    Returns
    -------
    list[str]
        Sample ids, most useful first. Never an image that has labels.
    """
    _check(n, seed, tab)
    pool_ids = candidates(ds, tab)
    record = load_record(ds)
    if record is None:
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(pool_ids))[:n]
        return [pool_ids[i] for i in order]
    index = {sid: k for k, sid in enumerate(record["ids"])}
    pool_ids = [i for i in pool_ids if i not in record["skipped"]]
    seen = [i for i in pool_ids if i in index and np.isfinite(record["uncertainty"][index[i]])]
    seen_set = set(seen)
    unseen = [i for i in pool_ids if i not in seen_set]
    rng = np.random.default_rng(seed)
    out = [unseen[i] for i in rng.permutation(len(unseen))[:n]]
    if len(out) >= n or not seen:
        return out
    rows = np.array([index[i] for i in seen])
    unsure = record["uncertainty"][rows]
    top = np.argsort(-unsure, kind="stable")[: POOL_FACTOR * n]
    labeled = set(str(i) for i in ds.internal.query_ids(tab="labeled"))
    center_rows = np.array([k for sid, k in index.items() if sid in labeled], dtype=np.int64)
    feats = record["features"]
    picks = k_center(feats[rows[top]], unsure[top], feats[center_rows], n - len(out))
    return out + [seen[top[i]] for i in picks]


# ------------------------------------------------------------------------------ what next
def next_step(result: dict[str, Any], *, n: int = 20) -> str:
    """What the user should do after an auto-label job, in plain words, from its result."""
    accepted, hard = int(result.get("accepted") or 0), int(result.get("hard") or 0)
    target = float(result.get("target_precision") or 0.95)
    if int(result.get("proposed") or 0) == 0:
        return "nothing to propose: every image has labels"
    if not result.get("held_out_above"):
        return (
            f"cannot certify {target:.0%} from your labels — check a random sample of {n} "
            f"proposals (Check a random sample), or label the {n} suggested next "
            "(Label next) and run again"
        )
    est = result.get("estimated_precision")
    head = f"{accepted:,} accepted" + (f" (est. {est:.1%})" if isinstance(est, float) else "")
    if hard == 0:
        return f"{head}; none hard — confirm them and you are done"
    if hard <= n:
        return f"{head}; {hard:,} hard — confirm the accepted, then label the {hard:,} hard ones"
    return (
        f"{head}; {hard:,} hard — confirm the accepted, label the {n} suggested next and run again"
    )
