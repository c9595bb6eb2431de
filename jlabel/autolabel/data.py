"""What a job learns from: preconditions, the labeled/target samples, decoded pixels."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jlabel.errors import PreconditionError

MIN_LABELS = 2
MIN_PER_LABEL = 5


def _as_list(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return [str(v) for v in value]


@dataclass
class Samples:
    """A job's snapshot: labeled ids with their labels, and the target (label-less) ids."""

    classes: list[str]
    labeled_ids: list[str]
    labeled: list[list[str]]
    target_ids: list[str]
    multi_label: bool = field(default=False)

    def targets(self) -> np.ndarray:
        """Labels as class indices ``[N]`` (single-label) or a 0/1 matrix ``[N, C]`` (multi)."""
        index = {c: i for i, c in enumerate(self.classes)}
        if self.multi_label:
            y = np.zeros((len(self.labeled), len(self.classes)), dtype=np.float32)
            for row, names in enumerate(self.labeled):
                for name in names:
                    y[row, index[name]] = 1.0
            return y
        return np.array([index[names[0]] for names in self.labeled], dtype=np.int64)


def target_ids_now(ds: Any, include_proposed: bool) -> list[str]:
    ids = [str(i) for i in ds.internal.query_ids(tab="unlabeled")]
    if include_proposed:
        frame = ds.query(tab="to_confirm")
        ids += [
            i for i, names in zip(frame["id"], frame["labels"], strict=True) if not _as_list(names)
        ]
    return sorted(set(ids))


def collect(ds: Any, *, include_proposed: bool = True, need_targets: bool = True) -> Samples:
    """Snapshot the dataset for a job, raising ``PreconditionError`` if it cannot learn yet.

    Labels with fewer than 5 images are ignored when at least 2 others have 5 or more; the
    targets are the images without labels (those with unconfirmed proposals too when
    ``include_proposed``).
    """
    frame = ds.query(tab="labeled")
    ids = [str(i) for i in frame["id"]]
    names = [_as_list(v) for v in frame["labels"]]
    counts: dict[str, int] = {}
    for row in names:
        for name in row:
            counts[name] = counts.get(name, 0) + 1
    order = list(getattr(ds, "labels", [])) or sorted(counts)
    classes = [c for c in order if counts.get(c, 0) >= MIN_PER_LABEL]
    if len(classes) < MIN_LABELS:
        have = ", ".join(f"{c}: {counts.get(c, 0)}" for c in order) or "no labels yet"
        raise PreconditionError(
            f"Auto-labeling needs at least {MIN_LABELS} labels with at least {MIN_PER_LABEL} "
            f"images each (now {have}). Label more images first."
        )
    keep = set(classes)
    pairs = [(i, [n for n in row if n in keep]) for i, row in zip(ids, names, strict=True)]
    pairs = [(i, row) for i, row in pairs if row]
    targets = target_ids_now(ds, include_proposed) if need_targets else []
    if need_targets and not targets:
        raise PreconditionError(
            "Every image already has labels: auto-labeling needs at least one unlabeled image. "
            "Add images (ds.add_images) or unlabel some."
        )
    return Samples(
        classes=classes,
        labeled_ids=[i for i, _ in pairs],
        labeled=[row for _, row in pairs],
        target_ids=targets,
        multi_label=any(len(row) > 1 for _, row in pairs),
    )


def given_by_a_person(ds: Any, ids: Sequence[str]) -> np.ndarray:
    """Per labeled id ``[N]``: whether a person gave its labels (labeled, imported, or a
    proposal reviewed in the random sample check) rather than confirmed a proposal unseen.

    A confirmed proposal is the learner's own guess, and mostly an easy one: held out, it says
    how well the learner repeats itself, not how right it is on the images still left.
    """
    frame = ds.query(tab="labeled", ids=list(ids))
    auto = set(frame["id"][frame["source"] == "auto"])
    check = ds.sample_check() if hasattr(ds, "sample_check") else None
    reviewed = set(check["ids"]) if check else set()
    return np.array([i not in auto or i in reviewed for i in ids], dtype=bool)


def collect_check(samples: Samples) -> Samples:
    """Re-apply the preconditions after unreadable images were dropped (in place)."""
    counts = {c: 0 for c in samples.classes}
    for row in samples.labeled:
        for name in row:
            counts[name] += 1
    keep = [c for c in samples.classes if counts[c] >= MIN_PER_LABEL]
    if len(keep) < MIN_LABELS:
        raise PreconditionError(
            f"After skipping unreadable images fewer than {MIN_LABELS} labels have "
            f"{MIN_PER_LABEL}+ readable images ({counts}). Label more images."
        )
    if not samples.target_ids:
        raise PreconditionError("No unlabeled image could be read; nothing to auto-label.")
    pairs = [
        (i, [n for n in row if n in keep])
        for i, row in zip(samples.labeled_ids, samples.labeled, strict=True)
    ]
    pairs = [(i, row) for i, row in pairs if row]
    samples.classes = keep
    samples.labeled_ids = [i for i, _ in pairs]
    samples.labeled = [row for _, row in pairs]
    return samples


def skipped_summary(skipped: dict[str, str], limit: int = 100) -> dict[str, Any]:
    """Result fields for unreadable images: the first ``limit`` with their reason, and a count."""
    return {"skipped": dict(list(skipped.items())[:limit]), "skipped_count": len(skipped)}


def target_ids(ds: Any, include_proposed: bool = True) -> list[str]:
    """Images without labels now (for pre-labeling), raising if there are none."""
    ids = target_ids_now(ds, include_proposed)
    if not ids:
        raise PreconditionError(
            "Every image already has labels: pre-labeling needs at least one unlabeled image."
        )
    return ids


def _open_rgb(data: bytes, draft_size: int | None = None):
    from jlabel.images import open_rgb

    return open_rgb(data, draft_size=draft_size)


def square(image, size: int):
    """Resize the shorter side to ``size`` and center-crop to ``size``x``size`` (PIL image)."""
    from PIL import Image

    w, h = image.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    image = image.resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return image.crop((left, top, left + size, top + size))


def decode(data: bytes, size: int) -> np.ndarray:
    """Bytes to a ``[size, size, 3]`` uint8 array (any mode converted to RGB)."""
    image = _open_rgb(data, draft_size=size * 2)
    return np.asarray(square(image, size), dtype=np.uint8)


class ArrayCache:
    """Per-sample arrays stored under the dataset's store, keyed by (name, file version)."""

    def __init__(self, ds: Any, name: str) -> None:
        self.ds = ds
        digest = hashlib.sha1(name.encode()).hexdigest()[:16]
        self.path = ds.internal.store_path("cache", f"autolabel-{digest}.npz")
        self.name = name

    def load(self) -> dict[str, tuple[str, np.ndarray]]:
        """``{id: (file_version, array)}`` from the store (empty if missing or unreadable)."""
        try:
            with self.ds.internal.fs.open(self.path, "rb") as f:
                z = np.load(io.BytesIO(f.read()), allow_pickle=False)
                if str(z["name"]) != self.name:
                    return {}
                return {
                    str(i): (str(v), a)
                    for i, v, a in zip(z["ids"], z["versions"], z["arrays"], strict=True)
                }
        except Exception:  # missing or from an older layout: recompute
            return {}

    def save(self, entries: dict[str, tuple[str, np.ndarray]]) -> None:
        """Write every entry (one file; written then moved into place by fsspec)."""
        if not entries:
            return
        ids = list(entries)
        buf = io.BytesIO()
        np.savez(
            buf,
            name=np.array(self.name),
            ids=np.array(ids),
            versions=np.array([entries[i][0] for i in ids]),
            arrays=np.stack([entries[i][1] for i in ids]),
        )
        parent = self.path.rsplit("/", 1)[0]
        self.ds.internal.fs.makedirs(parent, exist_ok=True)
        with self.ds.internal.fs.open(self.path, "wb") as f:
            f.write(buf.getvalue())


def cached_arrays(
    ds: Any,
    ids: Sequence[str],
    name: str,
    compute: Callable[[list[str]], tuple[list[str], np.ndarray, dict[str, str]]],
    *,
    use_cache: bool = True,
) -> tuple[list[str], np.ndarray, dict[str, str], int]:
    """Arrays for ``ids``, from the cache where the file version matches, else ``compute``.

    ``compute(missing_ids) -> (ok_ids, arrays, skipped: {id: reason})``.
    Returns ``(ok_ids, arrays, skipped, n_computed)`` with ``ok_ids`` in the order of ``ids``.
    """
    cache = ArrayCache(ds, name)
    entries = cache.load() if use_cache else {}
    versions = {i: str(ds.internal.file_version(i)) for i in ids}
    missing = [i for i in ids if i not in entries or entries[i][0] != versions[i]]
    skipped: dict[str, str] = {}
    if missing:
        ok, arrays, skipped = compute(missing)
        for i, a in zip(ok, arrays, strict=True):
            entries[i] = (versions[i], np.asarray(a))
        if use_cache:
            cache.save(entries)
    ok_ids = [i for i in ids if i not in skipped and i in entries]
    if not ok_ids:
        return [], np.zeros((0,)), skipped, len(missing)
    return ok_ids, np.stack([entries[i][1] for i in ok_ids]), skipped, len(missing)


def decode_many(
    ds: Any,
    ids: Sequence[str],
    size: int,
    *,
    on_progress: Callable[[float], None] | None = None,
    workers: int = 4,
) -> tuple[list[str], np.ndarray, dict[str, str]]:
    """Read and decode ``ids`` to ``[N, size, size, 3]`` uint8; unreadable ones are skipped."""

    def one(sample_id: str) -> np.ndarray | str:
        try:
            return decode(ds.read_bytes(sample_id), size)
        except Exception as exc:  # unreadable: reported, never the end of the job
            return f"{type(exc).__name__}: {exc}"[:300]

    ok: list[str] = []
    arrays: list[np.ndarray] = []
    skipped: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for n, (sample_id, out) in enumerate(zip(ids, pool.map(one, ids), strict=True), 1):
            if isinstance(out, str):
                skipped[sample_id] = out
            else:
                ok.append(sample_id)
                arrays.append(out)
            if on_progress is not None and (n % 64 == 0 or n == len(ids)):
                on_progress(n / max(1, len(ids)))
    stacked = np.stack(arrays) if arrays else np.zeros((0, size, size, 3), np.uint8)
    return ok, stacked, skipped
