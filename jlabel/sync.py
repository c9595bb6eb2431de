"""Synchronise the samples table with the files under the root (new, changed, removed images,
and `.txt` / `.xml` label files next to them)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jlabel import ops
from jlabel.boxes import check_box, image_size
from jlabel.errors import JLabelError
from jlabel.files import FileStat, LabelFile, Listing, parse_voc
from jlabel.labels import parse_label_text, validate_label_name
from jlabel.ops import made_in_jlabel
from jlabel.table import SampleTable
from jlabel.yolo import class_file_folders, label_paths, parse_classes
from jlabel.yolo import parse_boxes as parse_yolo

SHOWN = 20
"""Problems and skipped files listed by `SyncReport.to_dict` and `str()` (all are kept)."""


@dataclass
class SyncReport:
    """What a sync changed. Missing images are flagged (``missing=True``), not dropped, unless
    ``sync(prune=True)``; their labels stay until then.

    ``problems`` and ``skipped`` are ``"<path>: <reason>"`` lines: label files that could not
    be imported, and files left out of the dataset (links leading outside the root, FIFOs and
    other non-regular files, names that are not valid UTF-8).
    """

    added: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    labels_imported: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
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
            "problems": _shown(self.problems, "problems"),
            "skipped": _shown(self.skipped, "skipped"),
            "seconds": round(self.seconds, 3),
        }

    def __str__(self) -> str:
        parts = [
            f"{v} {k.replace('_', ' ')}"
            for k, v in self.to_dict().items()
            if isinstance(v, int) and v
        ]
        text = "sync: " + (", ".join(parts) if parts else "nothing changed")
        for name, title in (("problems", "problem(s)"), ("skipped", "file(s) skipped")):
            lines = getattr(self, name)
            if lines:
                text += f"\n{len(lines)} {title}:"
                text += "".join(f"\n  {line}" for line in _shown(lines, name))
        return text


def _shown(lines: list[str], name: str) -> list[str]:
    """The first `SHOWN` lines, and how many more there are."""
    if len(lines) <= SHOWN:
        return list(lines)
    return [*lines[:SHOWN], f"... and {len(lines) - SHOWN} more (all in report.{name})"]


def plan_sync(
    table: SampleTable,
    listing: Listing,
    read_file: Callable[[str], bytes],
    *,
    prune: bool = False,
    exists: Callable[[str], bool] = lambda rel: False,
) -> tuple[list[ops.Op], SyncReport]:
    """The operations that bring `table` in line with `listing`, and the report.

    `read_file(rel)` reads a file under the root; `exists(rel)` tells whether one is there
    (for YOLO's ``data.yaml``, which listings do not report).
    """
    report = SyncReport(skipped=[f"{path}: {why}" for path, why in listing.skipped.items()])
    planned: list[ops.Op] = []
    known = table.row_of

    images = listing.images
    same_names = images.keys() == known.keys()  # the usual re-sync: one C-level comparison
    new_ids = [] if same_names else [sid for sid in images if sid not in known]
    report.added = new_ids
    if new_ids:
        listed = images[new_ids[0]] is not None  # with sizes and mtimes (remote, or stat'ed)
        stats = [images[sid] for sid in new_ids] if listed else []
        planned.append(
            ops.add_files(
                new_ids,
                created_at=time.time(),
                sizes=[st.size for st in stats] if listed else None,
                mtimes=[st.mtime for st in stats] if listed else None,
            )
        )

    gone = [] if same_names else sorted(known.keys() - images.keys())
    flagged = [table.ids[row] for row in np.flatnonzero(table.missing & table.alive).tolist()]
    flagged_set = set(flagged)
    missing = [sid for sid in gone if sid not in flagged_set]
    restored = sorted(sid for sid in flagged if sid in images)
    changed = _changed_files(table, images) if next(iter(images.values()), None) else []
    if changed:
        sizes = [images[s].size for s in changed]
        planned.append(ops.update_files(changed, sizes, [images[s].mtime for s in changed]))
    if prune and gone:
        planned.append(ops.remove_samples(gone))
        report.pruned = gone
    elif missing:
        planned.append(ops.set_missing(missing, True))
    if restored:
        planned.append(ops.set_missing(restored, False))
    report.missing, report.restored, report.changed = missing, restored, changed

    imported = _plan_label_import(table, listing, read_file, report, new_ids, exists)
    if imported:
        planned.append(imported)
    return planned, report


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
    exists: Callable[[str], bool],
) -> dict[str, Any] | None:
    ids, labels, boxes, mtimes = [], [], [], []
    if not listing.label_files:  # the common case; saves two lookups per image
        return None
    yolo = _YoloFolders(listing, read_file, exists)
    candidates = new_ids + [s for s in table.row_of if s in listing.images]
    for sid in candidates:
        classes = yolo.classes_for(sid)
        if classes is None:
            txt = listing.label_file(sid, ".txt")
        else:
            found = [p for p in label_paths(sid) if (p[:-4], ".txt") in listing.label_files]
            txt = listing.label_files[(found[0][:-4], ".txt")] if found else None
        xml = listing.label_file(sid, ".xml")
        if txt is None and xml is None:
            continue
        row = table.row_of.get(sid)
        lmtime = max(f.mtime for f in (txt, xml) if f is not None)
        if row is not None:
            if made_in_jlabel(table, row):
                continue  # never overwrite labels or boxes made in jlabel
            if table.label_mtime[row] == lmtime:
                continue
        try:
            names, sample_boxes = _read_label_files(sid, txt, xml, classes, read_file)
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
    return ops.import_labels(ids, labels, boxes, mtimes, t=time.time())


def _read_label_files(
    sid: str,
    txt: LabelFile | None,
    xml: LabelFile | None,
    classes: list[str] | None,
    read_file: Callable[[str], bytes],
) -> tuple[list[str], list[dict]]:
    """Image labels and boxes (as stored: ids, source "imported") from an image's files."""
    names: list[str] = []
    found: list[tuple[str, list[dict]]] = []
    if txt is not None and classes is None:
        names += parse_label_text(read_file(txt.path).decode("utf-8", "replace"))
    elif txt is not None:
        size = image_size(read_file(sid))
        if size is None:
            raise JLabelError("the image cannot be read, so its YOLO boxes cannot be placed")
        text = read_file(txt.path).decode("utf-8", "replace")
        found.append(("yolo", parse_yolo(text, classes or [], size)))
    if xml is not None:
        found.append(("voc", parse_voc(read_file(xml.path))))
    sample_boxes = []
    for kind, parsed in found:
        for i, box in enumerate(parsed, start=1):
            where = f"{kind} box {i}"
            checked = check_box({**box, "box_id": f"{kind}-{i}"}, size=None, where=where)
            sample_boxes.append(
                {**checked, "source": "imported", "labeled_by": None, "labeled_at": None}
            )
    names += [b["label"] for b in sample_boxes if b["label"] not in names]
    for name in names:
        validate_label_name(name)
    return names, sample_boxes


class _YoloFolders:
    """Which folders are YOLO (a classes.txt or data.yaml in them or above), and their classes."""

    def __init__(
        self, listing: Listing, read_file: Callable[[str], bytes], exists: Callable[[str], bool]
    ) -> None:
        self._listing = listing
        self._read = read_file
        self._exists = exists
        self._by_folder: dict[str, list[str] | None] = {}

    def classes_for(self, image_id: str) -> list[str] | None:
        for folder in class_file_folders(image_id):
            classes = self._classes_in(folder)
            if classes is not None:
                return classes
        return None

    def _classes_in(self, folder: str) -> list[str] | None:
        if folder in self._by_folder:
            return self._by_folder[folder]
        classes = None
        prefix = folder + "/" if folder else ""
        if (prefix + "classes", ".txt") in self._listing.label_files:
            classes = parse_classes("classes.txt", self._read(prefix + "classes.txt"))
        elif self._exists(prefix + "data.yaml"):
            classes = parse_classes("data.yaml", self._read(prefix + "data.yaml"))
        self._by_folder[folder] = classes
        return classes
