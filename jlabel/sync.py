"""Synchronise the samples table with the files under the root (new, changed, removed images,
and `.txt` / `.xml` label files next to them)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jlabel.errors import JLabelError
from jlabel.files import FileStat, Listing, parse_voc
from jlabel.labels import parse_label_text, validate_label_name
from jlabel.table import SOURCES, SampleTable


@dataclass
class SyncReport:
    """What a sync changed. Missing images are flagged (``missing=True``), not dropped, unless
    ``sync(prune=True)``; their labels stay until then."""

    added: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    labels_imported: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def unchanged(self) -> bool:
        return not (
            self.added
            or self.missing
            or self.restored
            or self.changed
            or self.labels_imported
            or self.pruned
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": len(self.added),
            "missing": len(self.missing),
            "restored": len(self.restored),
            "changed": len(self.changed),
            "labels_imported": len(self.labels_imported),
            "pruned": len(self.pruned),
            "problems": self.problems[:20],
            "seconds": round(self.seconds, 3),
        }

    def __str__(self) -> str:
        parts = [
            f"{v} {k.replace('_', ' ')}"
            for k, v in self.to_dict().items()
            if isinstance(v, int) and v
        ]
        text = "sync: " + (", ".join(parts) if parts else "nothing changed")
        if self.problems:
            text += f"; {len(self.problems)} problem(s), first: {self.problems[0]}"
        return text


def plan_sync(
    table: SampleTable,
    listing: Listing,
    read_file: Callable[[str], bytes],
    *,
    prune: bool = False,
) -> tuple[list[dict[str, Any]], SyncReport]:
    """The operations that bring `table` in line with `listing`, and the report."""
    report = SyncReport()
    now = time.time()
    ops: list[dict[str, Any]] = []
    known = table.row_of

    images = listing.images
    same_names = images.keys() == known.keys()  # the usual re-sync: one C-level comparison
    new_ids = [] if same_names else [sid for sid in images if sid not in known]
    report.added = new_ids
    if new_ids:
        add: dict[str, Any] = {"op": "add_files", "ids": new_ids, "created_at": now}
        if images[new_ids[0]] is not None:  # listed with sizes and mtimes (remote, or stat'ed)
            stats = [images[sid] for sid in new_ids]
            add["sizes"] = [st.size for st in stats]
            add["mtimes"] = [st.mtime for st in stats]
        ops.append(add)

    gone = [] if same_names else sorted(known.keys() - images.keys())
    flagged = [table.ids[row] for row in np.flatnonzero(table.missing & table.alive).tolist()]
    flagged_set = set(flagged)
    missing = [sid for sid in gone if sid not in flagged_set]
    restored = sorted(sid for sid in flagged if sid in images)
    changed = _changed_files(table, images) if next(iter(images.values()), None) else []
    if changed:
        ops.append(
            {
                "op": "update_files",
                "ids": changed,
                "sizes": [images[s].size for s in changed],
                "mtimes": [images[s].mtime for s in changed],
            }
        )
    if prune and gone:
        ops.append({"op": "remove_samples", "ids": gone})
        report.pruned = gone
    elif missing:
        ops.append({"op": "set_missing", "ids": missing, "missing": True})
    if restored:
        ops.append({"op": "set_missing", "ids": restored, "missing": False})
    report.missing, report.restored, report.changed = missing, restored, changed

    imported = _plan_label_import(table, listing, read_file, report, new_ids)
    if imported:
        ops.append(imported)
    return ops, report


def _changed_files(table: SampleTable, images: dict[str, FileStat | None]) -> list[str]:
    """Known images whose listed size or mtime differs from the table's (listings with stats)."""
    changed = []
    for sid, row in table.row_of.items():
        stat = images.get(sid)
        if stat is not None and (
            stat.size != table.size[row] or abs(stat.mtime - table.mtime[row]) > 1e-6
        ):
            changed.append(sid)
    return changed


def _plan_label_import(
    table: SampleTable,
    listing: Listing,
    read_file: Callable[[str], bytes],
    report: SyncReport,
    new_ids: list[str],
) -> dict[str, Any] | None:
    ids, labels, boxes, mtimes = [], [], [], []
    if not listing.label_files:  # the common case; saves two lookups per image
        return None
    candidates = new_ids + [s for s in table.row_of if s in listing.images]
    for sid in candidates:
        txt = listing.label_file(sid, ".txt")
        xml = listing.label_file(sid, ".xml")
        if txt is None and xml is None:
            continue
        row = table.row_of.get(sid)
        lmtime = max(f.mtime for f in (txt, xml) if f is not None)
        if row is not None:
            if SOURCES[table.source[row]] in ("manual", "auto"):
                continue  # never overwrite labels made in jlabel
            if table.label_mtime[row] == lmtime:
                continue
        names: list[str] = []
        sample_boxes: list[dict] = []
        try:
            if txt is not None:
                names += parse_label_text(read_file(txt.path).decode("utf-8", "replace"))
            if xml is not None:
                sample_boxes = parse_voc(read_file(xml.path))
                names += [b["label"] for b in sample_boxes if b["label"] not in names]
            for name in names:
                validate_label_name(name)
        except (JLabelError, OSError) as exc:
            report.problems.append(f"{sid}: label file skipped: {exc}")
            continue
        ids.append(sid)
        labels.append(names)
        boxes.append(sample_boxes)
        mtimes.append(lmtime)
    report.labels_imported = ids
    if not ids:
        return None
    return {
        "op": "import_labels",
        "ids": ids,
        "labels": labels,
        "boxes": boxes,
        "label_mtimes": mtimes,
        "t": time.time(),
    }
