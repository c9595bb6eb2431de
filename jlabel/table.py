"""SampleTable: the in-memory, columnar samples table and the operations that change it.

Columns are numpy arrays indexed by row; removed samples are tombstoned (``alive`` False) until
the next snapshot, so no operation on a few samples costs time proportional to the table.
Labels are one boolean mask per label name. Every change goes through :meth:`SampleTable.apply`
with a JSON-able operation, so replaying the journal rebuilds exactly the same state.
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
UNDO_DEPTH = 50
_FILE_FIELDS = frozenset({"id", "size", "mtime", "created_at"})
# Operations that go on the undo stack; everything else (sync, image info, version loads done by
# ``use_version`` which has its own undo) is not undoable.
UNDOABLE = frozenset(
    {
        "label",
        "unlabel",
        "replace_label",
        "rename_label",
        "delete_label",
        "add_samples_manual",
        "remove_samples",
        "set_proposals",
        "set_proposal",
        "confirm",
        "reject",
        "set_hard",
    }
)


def _ns(t: float | None) -> np.datetime64:
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
        self.proposals: dict[int, tuple[list[str], list[float]]] = {}
        self.boxes: dict[int, list[dict]] = {}
        self.users: list[str] = []
        self.groups: list[str] = []
        self.undo_stack: list[dict] = []
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
    )

    @property
    def labels(self) -> list[str]:
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
        other.proposals = dict(self.proposals)
        other.boxes = dict(self.boxes)
        other.users = list(self.users)
        other.groups = list(self.groups)
        other.undo_stack = list(self.undo_stack)
        other.current_version = self.current_version
        other.row_of = self.row_of  # read-only use by the copy's owner
        return other

    def rebuild_index(self) -> None:
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

    def _grow(self, n_new: int) -> int:
        start = len(self.ids)
        for name, fill in self.ROW_ARRAYS:
            old = getattr(self, name)
            setattr(self, name, np.concatenate([old, np.full(n_new, fill, dtype=old.dtype)]))
        for name, mask in self.masks.items():
            self.masks[name] = np.concatenate([mask, np.zeros(n_new, dtype=bool)])
        self.ids = np.concatenate([self.ids, np.empty(n_new, dtype=object)])
        return start  # order() and ids_arrow() pick up the new rows incrementally

    def _code(self, table: list[str], value: str | None) -> int:
        if value is None:
            return -1
        try:
            return table.index(value)
        except ValueError:
            table.append(value)
            return len(table) - 1

    def _mask(self, name: str) -> np.ndarray:
        mask = self.masks.get(name)
        if mask is None:
            mask = self.masks[name] = np.zeros(len(self.ids), dtype=bool)
        return mask

    # ---------------------------------------------------------------- row records
    def row_labels(self, row: int) -> list[str]:
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
        }

    def _write_record(self, row: int, rec: dict[str, Any]) -> None:
        if self.ids[row] != rec["id"]:
            self.ids[row] = rec["id"]
            if self._order is not None and row < len(self._order):
                self._order = None
            if self._ids_arrow is not None and row < len(self._ids_arrow):
                self._ids_arrow = None
        self.alive[row] = True
        self._set_labels(row, rec.get("labels") or [])
        self.source[row] = _SOURCE_CODE[rec.get("source")]
        self.labeled_by[row] = self._code(self.users, rec.get("labeled_by"))
        self.labeled_at[row] = _ns(rec.get("labeled_at"))
        self.created_at[row] = _ns(rec.get("created_at"))
        self.hard[row] = bool(rec.get("hard", False))
        self.hardness[row] = _nan(rec.get("hardness"))
        self.group[row] = self._code(self.groups, rec.get("group"))
        self.width[row] = rec.get("width", -1)
        self.height[row] = rec.get("height", -1)
        self.missing[row] = bool(rec.get("missing", False))
        self.corrupt[row] = bool(rec.get("corrupt", False))
        self.size[row] = rec.get("size", 0)
        self.mtime[row] = rec.get("mtime", 0.0)
        self.label_mtime[row] = _nan(rec.get("label_mtime"))
        self._set_proposal(row, rec.get("proposed_labels") or [], rec.get("proposed_scores") or [])
        if rec.get("boxes"):
            self.boxes[row] = rec["boxes"]
        else:
            self.boxes.pop(row, None)
        self.row_of[rec["id"]] = row

    def _set_labels(self, row: int, names: Sequence[str]) -> None:
        for name, mask in self.masks.items():
            mask[row] = name in names
        for name in names:
            self._mask(name)[row] = True
        self.n_labels[row] = len(set(names))

    def _set_proposal(self, row: int, names: Sequence[str], scores: Sequence[float]) -> None:
        if names:
            self.proposals[row] = (list(names), [float(s) for s in scores])
            self.has_proposal[row] = True
            self.proposal_score[row] = min(scores) if len(scores) else np.nan
        else:
            self.proposals.pop(row, None)
            self.has_proposal[row] = False
            self.proposal_score[row] = np.nan

    def _mark_labeled(self, rows: np.ndarray, user: str | None, t: float, source: str) -> None:
        self.source[rows] = _SOURCE_CODE[source]
        self.labeled_by[rows] = self._code(self.users, user)
        self.labeled_at[rows] = _ns(t)

    def _clear_labeled(self, rows: np.ndarray) -> None:
        empty = rows[self.n_labels[rows] == 0]
        self.source[empty] = 0
        self.labeled_by[empty] = -1
        self.labeled_at[empty] = NAT

    def _recount(self, rows: np.ndarray) -> None:
        total = np.zeros(len(rows), dtype=np.int16)
        for mask in self.masks.values():
            total += mask[rows]
        self.n_labels[rows] = total

    # ---------------------------------------------------------------- operations
    def apply(self, op: dict[str, Any]) -> None:
        """Apply one journaled operation (deterministic: replay gives the same state)."""
        kind = op["op"]
        if kind == "undo":
            self._undo()
            return
        inverse = self._inverse(op) if kind in UNDOABLE else None
        getattr(self, "_op_" + kind)(op)
        if inverse is not None:
            self.undo_stack.append({"op": kind, "restore": inverse, "t": op.get("t")})
            del self.undo_stack[:-UNDO_DEPTH]

    def affected_rows(self, op: dict[str, Any]) -> list[int]:
        kind = op["op"]
        if kind in ("rename_label", "delete_label"):
            mask = self.masks.get(op.get("old", op.get("name")))
            rows = [] if mask is None else np.nonzero(mask & self.alive)[0].tolist()
            if kind == "rename_label" and op["new"] in self.masks:
                rows = sorted(set(rows) | set(np.nonzero(self.masks[op["new"]])[0].tolist()))
            return rows
        if kind == "add_samples_manual":
            return []
        if kind == "confirm" and op.get("ids") is None:
            return np.nonzero(self.has_proposal & self.alive)[0].tolist()
        return [self.row_of[sid] for sid in op["ids"] if sid in self.row_of]

    def _inverse(self, op: dict[str, Any]) -> dict[str, Any]:
        rows = self.affected_rows(op)
        inverse: dict[str, Any] = {
            "rows": [self.row_record(r) for r in rows],
            "labels": self.labels,
        }
        if op["op"] == "add_samples_manual":
            inverse["remove_ids"] = [r["id"] for r in op["rows"]]
        return inverse

    def _undo(self) -> None:
        if not self.undo_stack:
            return
        entry = self.undo_stack.pop()
        restore = entry["restore"]
        for sid in restore.get("remove_ids", []):
            row = self.row_of.pop(sid, None)
            if row is not None:
                self.alive[row] = False
                self._set_labels(row, [])
                self._set_proposal(row, [], [])
        for rec in restore["rows"]:
            row = self.row_of.get(rec["id"])
            if row is None:
                row = self._grow(1)
            self._write_record(row, rec)
        # The label set goes back too (labels created or deleted by the undone operation).
        old = restore["labels"]
        for name in list(self.masks):
            if name not in old and not self.masks[name].any():
                del self.masks[name]
        for name in old:
            self._mask(name)
        self.masks = {name: self.masks[name] for name in old} | {
            n: m for n, m in self.masks.items() if n not in old
        }

    def _op_add_labels(self, op: dict) -> None:
        for name in op["names"]:
            self._mask(name)

    def _op_label(self, op: dict) -> None:
        rows = self.rows(op["ids"])
        for name in op["names"]:
            self._mask(name)[rows] = True
        self._recount(rows)
        self._mark_labeled(rows, op.get("user"), op["t"], "manual")
        for row in rows.tolist():
            self._set_proposal(row, [], [])

    def _op_unlabel(self, op: dict) -> None:
        rows = self.rows(op["ids"])
        names = op.get("names") or list(self.masks)
        for name in names:
            if name in self.masks:
                self.masks[name][rows] = False
        self._recount(rows)
        self._clear_labeled(rows)

    def _op_replace_label(self, op: dict) -> None:
        """On the samples of `ids` that carry `old`, `new` in its place (a manual edit)."""
        old, new = op["old"], op["new"]
        if old not in self.masks:
            return
        rows = self.rows([sid for sid in op["ids"] if sid in self.row_of])
        rows = rows[self.masks[old][rows]]
        self.masks[old][rows] = False
        self._mask(new)[rows] = True
        self._recount(rows)
        self._mark_labeled(rows, op.get("user"), op["t"], "manual")
        for row in rows.tolist():
            self._set_proposal(row, [], [])

    def _op_rename_label(self, op: dict) -> None:
        old, new = op["old"], op["new"]
        if old not in self.masks:
            return
        if new in self.masks:  # merge
            moved = self.masks.pop(old)
            self.masks[new] |= moved
            self._recount(np.nonzero(moved)[0])
        else:  # keep the label's place in the label set
            self.masks = {(new if k == old else k): v for k, v in self.masks.items()}
        for row, (names, scores) in list(self.proposals.items()):
            if old in names:
                merged = [new if n == old else n for n in names]
                keep = [i for i, n in enumerate(merged) if n not in merged[:i]]
                self._set_proposal(row, [merged[i] for i in keep], [scores[i] for i in keep])

    def _op_delete_label(self, op: dict) -> None:
        name = op["name"]
        mask = self.masks.pop(name, None)
        if mask is None:
            return
        rows = np.nonzero(mask)[0]
        only = rows[self.n_labels[rows] == 1]
        self._recount(rows)
        self._clear_labeled(rows)
        if op.get("mode", "label") != "label":
            self._remove_rows(only)
        for row, (names, scores) in list(self.proposals.items()):
            if name in names:
                keep = [i for i, n in enumerate(names) if n != name]
                self._set_proposal(row, [names[i] for i in keep], [scores[i] for i in keep])

    def _remove_rows(self, rows: np.ndarray) -> None:
        for row in rows.tolist():
            self.row_of.pop(self.ids[row], None)
            self.alive[row] = False
            self._set_labels(row, [])
            self._set_proposal(row, [], [])
            self.boxes.pop(row, None)

    def _op_add_samples(self, op: dict) -> None:
        recs = [r for r in op["rows"] if r["id"] not in self.row_of]
        if not recs:
            return
        start = self._grow(len(recs))
        if all(rec.keys() <= _FILE_FIELDS for rec in recs):  # from sync: vectorised (100k: ms)
            end = start + len(recs)
            self.ids[start:end] = [rec["id"] for rec in recs]
            self.alive[start:end] = True
            self.size[start:end] = [rec.get("size", 0) for rec in recs]
            self.mtime[start:end] = [rec.get("mtime", 0.0) for rec in recs]
            created = np.asarray([_nan(rec.get("created_at")) for rec in recs]) * 1e9
            ns = np.round(np.nan_to_num(created)).astype(np.int64).view("datetime64[ns]")
            self.created_at[start:end] = np.where(np.isnan(created), NAT, ns)
            self.row_of.update(zip(self.ids[start:end].tolist(), range(start, end), strict=True))
            return
        for i, rec in enumerate(recs):
            self._write_record(start + i, rec)

    _op_add_samples_manual = _op_add_samples

    def _op_add_files(self, op: dict) -> None:
        """Sync's compact form: ids, one creation time, and sizes/mtimes where listed."""
        new = [i for i, sid in enumerate(op["ids"]) if sid not in self.row_of]
        if not new:
            return
        ids = op["ids"] if len(new) == len(op["ids"]) else [op["ids"][i] for i in new]
        start = self._grow(len(ids))
        end = start + len(ids)
        self.ids[start:end] = ids
        self.alive[start:end] = True
        if "sizes" in op:  # remote listings come with sizes and mtimes; local ones do not
            self.size[start:end] = np.asarray(op["sizes"], dtype=np.int64)[new]
            self.mtime[start:end] = np.asarray(op["mtimes"], dtype=np.float64)[new]
        self.created_at[start:end] = _ns(op.get("created_at"))
        self.row_of.update(zip(ids, range(start, end), strict=True))

    def _op_remove_samples(self, op: dict) -> None:
        self._remove_rows(self.rows([sid for sid in op["ids"] if sid in self.row_of]))

    def _op_update_files(self, op: dict) -> None:
        rows = self.rows(op["ids"])
        self.size[rows] = op["sizes"]
        self.mtime[rows] = op["mtimes"]
        self.width[rows] = -1
        self.height[rows] = -1
        self.corrupt[rows] = False

    def _op_set_missing(self, op: dict) -> None:
        self.missing[self.rows(op["ids"])] = op["missing"]

    def _op_import_labels(self, op: dict) -> None:
        """Labels from `.txt`/`.xml` files; never overwrites labels made in jlabel."""
        for sid, names, boxes, lmtime in zip(
            op["ids"], op["labels"], op["boxes"], op["label_mtimes"], strict=True
        ):
            row = self.row_of.get(sid)
            if row is None or SOURCES[self.source[row]] in ("manual", "auto"):
                continue
            self._set_labels(row, names)
            if boxes:
                self.boxes[row] = boxes
            else:
                self.boxes.pop(row, None)
            self.label_mtime[row] = _nan(lmtime)
            rows = np.asarray([row])
            if names:
                self._mark_labeled(rows, None, op["t"], "imported")
            else:
                self._clear_labeled(rows)

    def _op_set_proposals(self, op: dict) -> None:
        rows = self.rows(op["ids"])
        hardness = op.get("hardness") or [None] * len(rows)
        hard = op.get("hard") or [False] * len(rows)
        for row, names, scores, h, hd in zip(
            rows.tolist(), op["labels"], op["scores"], hardness, hard, strict=True
        ):
            if self.n_labels[row] > 0:
                continue  # proposals never touch samples a person labeled meanwhile
            self._set_proposal(row, names, scores)
            self.hard[row] = bool(hd)
            self.hardness[row] = _nan(h)

    def _op_set_proposal(self, op: dict) -> None:
        for row in self.rows(op["ids"]).tolist():
            old_names, old_scores = self.proposals.get(row, ([], []))
            scores = [
                old_scores[old_names.index(n)] if n in old_names else 1.0 for n in op["names"]
            ]
            self._set_proposal(row, op["names"], scores)
        for name in op["names"]:
            self._mask(name)

    def _op_confirm(self, op: dict) -> None:
        ids = op.get("ids")
        rows = self.affected_rows(op) if ids is None else self.rows(ids).tolist()
        done = []
        for row in rows:
            names, _ = self.proposals.get(row, ([], []))
            if not names:
                continue
            current = self.row_labels(row)
            self._set_labels(row, current + [n for n in names if n not in current])
            self._set_proposal(row, [], [])
            done.append(row)
        if done:
            self._mark_labeled(np.asarray(done), op.get("user"), op["t"], "auto")

    def _op_reject(self, op: dict) -> None:
        for row in self.rows(op["ids"]).tolist():
            self._set_proposal(row, [], [])

    def _op_set_hard(self, op: dict) -> None:
        rows = self.rows(op["ids"])
        self.hard[rows] = op["hard"]
        if op.get("hardness") is not None:
            self.hardness[rows] = [_nan(h) for h in op["hardness"]]

    def _op_set_groups(self, op: dict) -> None:
        rows = self.rows([sid for sid in op["ids"] if sid in self.row_of])
        codes = [self._code(self.groups, g) for g in op["groups"]]
        self.group[rows] = codes[: len(rows)]

    def _op_image_info(self, op: dict) -> None:
        keep = [i for i, sid in enumerate(op["ids"]) if sid in self.row_of]
        rows = self.rows([op["ids"][i] for i in keep])
        self.width[rows] = [op["widths"][i] for i in keep]
        self.height[rows] = [op["heights"][i] for i in keep]
        self.corrupt[rows] = [op["corrupt"][i] for i in keep]

    def _op_load_rows(self, op: dict) -> None:
        """Replace the whole table by the given records (use_version)."""
        fresh = SampleTable.from_records(op["rows"], op["labels"])
        fresh.undo_stack = self.undo_stack
        fresh.current_version = op.get("version")
        self.__dict__.update(fresh.__dict__)

    def _op_set_current_version(self, op: dict) -> None:
        self.current_version = op["name"]

    # ---------------------------------------------------------------- bulk builders
    @classmethod
    def from_records(cls, records: list[dict], labels: list[str]) -> SampleTable:
        table = cls()
        for name in labels:
            table._mask(name)
        if records:
            table._grow(len(records))
            for i, rec in enumerate(records):
                table._write_record(i, rec)
        return table


def _seconds(value: np.datetime64) -> float | None:
    if np.isnat(value):
        return None
    return int(value.astype("datetime64[ns]").astype(np.int64)) / 1e9


def _float(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def _nan(value: float | None) -> float:
    return np.nan if value is None else float(value)
