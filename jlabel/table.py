"""SampleTable: the in-memory, columnar samples table and the primitive changes of its rows.

Columns are numpy arrays indexed by row; removed samples are tombstoned (``alive`` False) until
the next snapshot, so no operation on a few samples costs time proportional to the table.
Labels are one boolean mask per label name. The table knows nothing of operations: the
operation vocabulary (:mod:`jlabel.ops`) changes it through the methods below, so replaying the
journal rebuilds exactly the same state.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from jlabel.errors import NotFound

SOURCES = (None, "imported", "manual", "auto")
_SOURCE_CODE = {name: code for code, name in enumerate(SOURCES)}
NAT = np.datetime64("NaT", "ns")


def ns(t: float | None) -> np.datetime64:
    """Seconds since the epoch as a datetime64[ns] (NaT for None)."""
    return NAT if t is None else np.datetime64(round(t * 1e9), "ns")


class SampleTable:
    """All samples of a dataset, plus its label set, undo stack and a few settings."""

    def __init__(self) -> None:
        self.ids = np.empty(0, dtype=object)
        self.alive = np.empty(0, dtype=bool)
        self.source = np.empty(0, dtype=np.int8)
        self.labeled_by = np.empty(0, dtype=np.int32)
        self.labeled_at = np.empty(0, dtype="datetime64[ns]")
        self.created_at = np.empty(0, dtype="datetime64[ns]")
        self.hard = np.empty(0, dtype=bool)
        self.hardness = np.empty(0, dtype=np.float32)
        self.group = np.empty(0, dtype=np.int32)
        self.width = np.empty(0, dtype=np.int32)
        self.height = np.empty(0, dtype=np.int32)
        self.missing = np.empty(0, dtype=bool)
        self.corrupt = np.empty(0, dtype=bool)
        self.size = np.empty(0, dtype=np.int64)
        self.mtime = np.empty(0, dtype=np.float64)
        self.label_mtime = np.empty(0, dtype=np.float64)
        self.has_proposal = np.empty(0, dtype=bool)
        self.proposal_score = np.empty(0, dtype=np.float32)
        self.masks: dict[str, np.ndarray] = {}
        self.n_labels = np.empty(0, dtype=np.int16)
        self.n_boxes = np.empty(0, dtype=np.int32)
        self.proposals: dict[int, tuple[list[str], list[float]]] = {}
        self.boxes: dict[int, list[dict]] = {}
        """Object-detection boxes per row (lists are replaced, never changed in place)."""
        self.proposed_boxes: dict[int, list[dict]] = {}
        """Proposed boxes per row (each with a ``score``), awaiting confirmation."""
        self.box_masks: dict[str, np.ndarray] = {}
        """Per label name: rows with at least one (confirmed) box of that label."""
        self.users: list[str] = []
        self.groups: list[str] = []
        self.undo_stack: list[dict] = []
        """Undo entries ``{"op", "restore", "t"}``, newest last (see :mod:`jlabel.ops`)."""
        self.current_version: str | None = None
        self.row_of: dict[str, int] = {}
        self._order: np.ndarray | None = None
        self._ids_arrow: pa.Array | None = None

    # ---------------------------------------------------------------- structure
    ROW_ARRAYS = (
        ("alive", False),
        ("source", 0),
        ("labeled_by", -1),
        ("labeled_at", NAT),
        ("created_at", NAT),
        ("hard", False),
        ("hardness", np.nan),
        ("group", -1),
        ("width", -1),
        ("height", -1),
        ("missing", False),
        ("corrupt", False),
        ("size", 0),
        ("mtime", 0.0),
        ("label_mtime", np.nan),
        ("has_proposal", False),
        ("proposal_score", np.nan),
        ("n_labels", 0),
        ("n_boxes", 0),
    )

    @property
    def labels(self) -> list[str]:
        """The label set, in order."""
        return list(self.masks)

    def __len__(self) -> int:
        return int(self.alive.sum())

    def copy(self) -> SampleTable:
        """An independent copy (arrays copied), e.g. to write a snapshot off the lock."""
        other = SampleTable()
        for name, _ in self.ROW_ARRAYS:
            setattr(other, name, getattr(self, name).copy())
        other.ids = self.ids.copy()
        other.masks = {name: mask.copy() for name, mask in self.masks.items()}
        other.box_masks = {name: mask.copy() for name, mask in self.box_masks.items()}
        other.proposals = dict(self.proposals)
        other.boxes = dict(self.boxes)
        other.proposed_boxes = dict(self.proposed_boxes)
        other.users = list(self.users)
        other.groups = list(self.groups)
        other.undo_stack = list(self.undo_stack)
        other.current_version = self.current_version
        other.row_of = self.row_of  # read-only use by the copy's owner
        return other

    def rebuild_index(self) -> None:
        """Recompute the id -> row index from the live rows."""
        rows = np.nonzero(self.alive)[0]
        self.row_of = dict(zip(self.ids[rows].tolist(), rows.tolist(), strict=True))
        self._order = self._ids_arrow = None

    def ids_arrow(self) -> pa.Array:
        """The ids as an Arrow string array (cached until rows are added)."""
        cached = self._ids_arrow
        if cached is None:
            cached = pa.array(self.ids.tolist(), pa.string())
        elif len(cached) < len(self.ids):  # rows were added: convert only those
            added = pa.array(self.ids[len(cached) :].tolist(), pa.string())
            cached = pa.concat_arrays([cached, added])
        self._ids_arrow = cached
        return cached

    def order(self) -> np.ndarray:
        """Row numbers of all rows sorted by id (cached until rows are added)."""
        if self._order is None:
            self._order = np.argsort(self.ids, kind="stable") if len(self.ids) else np.empty(0, int)
        elif len(self._order) < len(self.ids):  # rows were added: merge them in, no full sort
            new = np.arange(len(self._order), len(self.ids))
            new = new[np.argsort(self.ids[new], kind="stable")]
            at = np.searchsorted(self.ids[self._order], self.ids[new])
            self._order = np.insert(self._order, at, new)
        return self._order

    def rows(self, ids: Iterable[str]) -> np.ndarray:
        """Row numbers of `ids`; raises NotFound naming the first unknown id."""
        out = []
        for sid in ids:
            row = self.row_of.get(sid)
            if row is None:
                raise NotFound(f"no sample with id {sid!r}: ids are paths relative to the root")
            out.append(row)
        return np.asarray(out, dtype=np.int64)

    def existing_rows(self, ids: Iterable[str]) -> np.ndarray:
        """Row numbers of those `ids` that exist (others were deleted, maybe by another kernel)."""
        row_of = self.row_of
        return np.asarray([row_of[sid] for sid in ids if sid in row_of], dtype=np.int64)

    def adopt_index(self, row_of: dict[str, int], ids_arrow: pa.Array, *, sorted_ids: bool) -> None:
        """Take an index built by a bulk reader (all rows alive; ids sorted when `sorted_ids`)."""
        self.row_of = row_of
        self._ids_arrow = ids_arrow
        self._order = np.arange(len(self.ids)) if sorted_ids else None

    def grow(self, n_new: int) -> int:
        """Append `n_new` empty rows; returns the first new row."""
        start = len(self.ids)
        for name, fill in self.ROW_ARRAYS:
            old = getattr(self, name)
            setattr(self, name, np.concatenate([old, np.full(n_new, fill, dtype=old.dtype)]))
        for masks in (self.masks, self.box_masks):
            for name, mask in masks.items():
                masks[name] = np.concatenate([mask, np.zeros(n_new, dtype=bool)])
        self.ids = np.concatenate([self.ids, np.empty(n_new, dtype=object)])
        return start  # order() and ids_arrow() pick up the new rows incrementally

    def code(self, table: list[str], value: str | None) -> int:
        """The index of `value` in the string table `table`, adding it when new (-1 for None)."""
        if value is None:
            return -1
        try:
            return table.index(value)
        except ValueError:
            table.append(value)
            return len(table) - 1

    def mask(self, name: str) -> np.ndarray:
        """The boolean row mask of label `name`, created (all False) when new."""
        mask = self.masks.get(name)
        if mask is None:
            mask = self.masks[name] = np.zeros(len(self.ids), dtype=bool)
        return mask

    # ---------------------------------------------------------------- row records
    def row_labels(self, row: int) -> list[str]:
        """The labels of one row, in label-set order."""
        return [name for name, mask in self.masks.items() if mask[row]]

    def row_record(self, row: int) -> dict[str, Any]:
        """A JSON-able copy of one row (used for undo)."""
        proposed = self.proposals.get(row, ([], []))
        return {
            "id": self.ids[row],
            "labels": self.row_labels(row),
            "source": SOURCES[self.source[row]],
            "labeled_by": self.users[self.labeled_by[row]] if self.labeled_by[row] >= 0 else None,
            "labeled_at": _seconds(self.labeled_at[row]),
            "created_at": _seconds(self.created_at[row]),
            "hard": bool(self.hard[row]),
            "hardness": _float(self.hardness[row]),
            "group": self.groups[self.group[row]] if self.group[row] >= 0 else None,
            "proposed_labels": list(proposed[0]),
            "proposed_scores": list(proposed[1]),
            "width": int(self.width[row]),
            "height": int(self.height[row]),
            "missing": bool(self.missing[row]),
            "corrupt": bool(self.corrupt[row]),
            "size": int(self.size[row]),
            "mtime": float(self.mtime[row]),
            "label_mtime": _float(self.label_mtime[row]),
            "boxes": self.boxes.get(row),
            "proposed_boxes": self.proposed_boxes.get(row),
        }

    def write_record(self, row: int, rec: dict[str, Any]) -> None:
        """Write a row back from a `row_record` dict (used by undo)."""
        if self.ids[row] != rec["id"]:
            self.ids[row] = rec["id"]
            if self._order is not None and row < len(self._order):
                self._order = None
            if self._ids_arrow is not None and row < len(self._ids_arrow):
                self._ids_arrow = None
        self.alive[row] = True
        self.set_labels(row, rec.get("labels") or [])
        self.source[row] = _SOURCE_CODE[rec.get("source")]
        self.labeled_by[row] = self.code(self.users, rec.get("labeled_by"))
        self.labeled_at[row] = ns(rec.get("labeled_at"))
        self.created_at[row] = ns(rec.get("created_at"))
        self.hard[row] = bool(rec.get("hard", False))
        self.hardness[row] = nan_if_none(rec.get("hardness"))
        self.group[row] = self.code(self.groups, rec.get("group"))
        self.width[row] = rec.get("width", -1)
        self.height[row] = rec.get("height", -1)
        self.missing[row] = bool(rec.get("missing", False))
        self.corrupt[row] = bool(rec.get("corrupt", False))
        self.size[row] = rec.get("size", 0)
        self.mtime[row] = rec.get("mtime", 0.0)
        self.label_mtime[row] = nan_if_none(rec.get("label_mtime"))
        self.set_boxes(row, rec.get("boxes") or [])
        self.set_proposed_boxes(row, rec.get("proposed_boxes") or [])
        self.set_proposal(row, rec.get("proposed_labels") or [], rec.get("proposed_scores") or [])
        self.row_of[rec["id"]] = row

    def set_labels(self, row: int, names: Sequence[str]) -> None:
        """Make `names` exactly the labels of one row (new names join the label set)."""
        for name, mask in self.masks.items():
            mask[row] = name in names
        for name in names:
            self.mask(name)[row] = True
        self.n_labels[row] = len(set(names))

    def set_proposal(self, row: int, names: Sequence[str], scores: Sequence[float]) -> None:
        """The proposed image labels of `row` (none: no label proposal)."""
        if names:
            self.proposals[row] = (list(names), [float(s) for s in scores])
        else:
            self.proposals.pop(row, None)
        self._proposal_flags(row)

    def set_boxes(self, row: int, boxes: Sequence[dict]) -> None:
        """The confirmed boxes of `row` (replaced whole); keeps the box masks and counts."""
        old = {b["label"] for b in self.boxes.get(row, ())}
        if boxes:
            self.boxes[row] = list(boxes)
        else:
            self.boxes.pop(row, None)
        new = dict.fromkeys(b["label"] for b in boxes)  # new labels join in box order
        for name in old - new.keys():
            self.box_masks[name][row] = False
        for name in new:
            mask = self.box_masks.get(name)
            if mask is None:
                mask = self.box_masks[name] = np.zeros(len(self.ids), dtype=bool)
            mask[row] = True
            self.mask(name)  # box labels are in the label set
        self.n_boxes[row] = len(boxes)

    def set_proposed_boxes(self, row: int, boxes: Sequence[dict]) -> None:
        """The proposed boxes of `row` (replaced whole)."""
        if boxes:
            self.proposed_boxes[row] = list(boxes)
        else:
            self.proposed_boxes.pop(row, None)
        self._proposal_flags(row)

    def _proposal_flags(self, row: int) -> None:
        names_scores = self.proposals.get(row)
        boxes = self.proposed_boxes.get(row)
        self.has_proposal[row] = bool(names_scores or boxes)
        scores = list(names_scores[1]) if names_scores else []
        scores += [float(b.get("score", 1.0)) for b in boxes or ()]
        self.proposal_score[row] = min(scores) if scores else np.nan

    def label_rows(self, name: str) -> np.ndarray:
        """Rows carrying label `name` as an image label or on a box (all rows, as a mask)."""
        mask = self.masks.get(name)
        out = np.zeros(len(self.ids), dtype=bool) if mask is None else mask.copy()
        boxed = self.box_masks.get(name)
        if boxed is not None:
            out |= boxed
        return out

    def mark_labeled(self, rows: np.ndarray, user: str | None, t: float, source: str) -> None:
        """Record who labeled `rows`, when, and from where (`source`)."""
        self.source[rows] = _SOURCE_CODE[source]
        self.labeled_by[rows] = self.code(self.users, user)
        self.labeled_at[rows] = ns(t)

    def clear_labeled(self, rows: np.ndarray) -> None:
        """Forget who labeled the rows that carry no label and no box any more."""
        empty = rows[(self.n_labels[rows] == 0) & (self.n_boxes[rows] == 0)]
        self.source[empty] = 0
        self.labeled_by[empty] = -1
        self.labeled_at[empty] = NAT

    def remove_rows(self, rows: np.ndarray) -> None:
        """Tombstone rows: out of the index, no labels, proposals or boxes."""
        for row in rows.tolist():
            self.row_of.pop(self.ids[row], None)
            self.alive[row] = False
            self.set_labels(row, [])
            self.set_boxes(row, [])
            self.set_proposed_boxes(row, [])
            self.set_proposal(row, [], [])

    def recount(self, rows: np.ndarray) -> None:
        """Recompute the label count of `rows`."""
        total = np.zeros(len(rows), dtype=np.int16)
        for mask in self.masks.values():
            total += mask[rows]
        self.n_labels[rows] = total

    # ---------------------------------------------------------------- bulk builders
    @classmethod
    def from_records(cls, records: list[dict], labels: list[str]) -> SampleTable:
        """A table from row dicts (`row_record` form) and a label set."""
        table = cls()
        for name in labels:
            table.mask(name)
        if records:
            table.grow(len(records))
            for i, rec in enumerate(records):
                table.write_record(i, rec)
        return table


def _seconds(value: np.datetime64) -> float | None:
    if np.isnat(value):
        return None
    return int(value.astype("datetime64[ns]").astype(np.int64)) / 1e9


def _float(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def nan_if_none(value: float | None) -> float:
    """`value` as a float, NaN for None."""
    return np.nan if value is None else float(value)
