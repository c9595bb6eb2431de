"""What a job learns from: preconditions, the labeled/target samples, decoded pixels."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


def cached_arrays(*args: Any, **kwargs: Any) -> Any:
    """See :func:`jlabel.autolabel.cache.cached_arrays` (memory-mapped, filled by chunks)."""
    from jlabel.autolabel.cache import cached_arrays as impl

    return impl(*args, **kwargs)


def decode_many(
    ds: Any,
    ids: Sequence[str],
    size: int,
    *,
    on_progress: Callable[[float], None] | None = None,
    workers: int = 4,
) -> tuple[list[str], np.ndarray, dict[str, str]]:
    """Read and decode ``ids`` to ``[N, size, size, 3]`` uint8; unreadable ones are skipped
    (all in memory: for a few images; jobs use :func:`jlabel.autolabel.decoding.chunks`)."""
    from jlabel.autolabel.decoding import chunks

    ok: list[str] = []
    arrays: list[np.ndarray] = []
    skipped: dict[str, str] = {}
    for got, images, bad in chunks(
        ds, ids, size, workers=0, threads=workers, on_progress=on_progress
    ):
        ok += got
        arrays.append(images.numpy())
        skipped.update(bad)
    stacked = np.concatenate(arrays) if ok else np.zeros((0, size, size, 3), np.uint8)
    return ok, stacked, skipped
