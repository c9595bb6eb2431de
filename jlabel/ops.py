"""The operation vocabulary: every change of a dataset is one JSON operation.

An operation is a plain dict ``{"op": kind, ...fields}``: it is journaled as it is and replayed
the same way after a restart or in another kernel. For each kind this module holds, in one
place: its constructor (the only way producers make one), its fields, how it applies to a
:class:`~jlabel.table.SampleTable`, which samples it touches (to tell whether another kernel's
older operation commutes with it), and whether it is undoable.

Concurrency rule (DESIGN.md): an operation that names a sample another kernel deleted applies to
the samples that still exist and is otherwise a no-op. Replay never fails on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from jlabel.errors import StorageError
from jlabel.table import SOURCES, SampleTable, nan_if_none, ns

Op = dict[str, Any]
UNDO_DEPTH = 50
"""Undo entries kept (the stack lives in the table and so in every snapshot)."""
_FILE_FIELDS = frozenset({"id", "size", "mtime", "created_at"})


@dataclass(frozen=True)
class Kind:
    """What one kind of operation is and does."""

    name: str
    fields: tuple[str, ...]
    """Fields every operation of this kind has (a record without one is refused on replay)."""
    apply: Callable[[SampleTable, Op], None]
    undoable: bool = False
    touches_all: bool = False
    """True when it changes the label set or the whole table (conflicts with everything)."""
    ids_of: Callable[[Op], Iterable[str]] | None = None
    """The sample ids it touches (default: the ``ids`` field)."""


KINDS: dict[str, Kind] = {}


def _kind(
    name: str,
    fields: tuple[str, ...],
    *,
    undoable: bool = False,
    touches_all: bool = False,
    ids_of: Callable[[Op], Iterable[str]] | None = None,
) -> Callable[[Callable[[SampleTable, Op], None]], Callable[[SampleTable, Op], None]]:
    def register(fn: Callable[[SampleTable, Op], None]) -> Callable[[SampleTable, Op], None]:
        KINDS[name] = Kind(name, fields, fn, undoable, touches_all, ids_of)
        return fn

    return register


# ------------------------------------------------------------------------------ checking
class NewerFormatError(StorageError):
    """The store holds an operation this jlabel does not know (a newer jlabel wrote it)."""


def check(op: Any, where: str) -> Kind:
    """The kind of `op`, after checking it has that kind's fields; `where` names its record.

    An unknown kind or a missing field means the record was written by a newer (or different)
    jlabel: refusing it is the only safe answer, since skipping it and compacting would drop
    another kernel's acknowledged work.
    """
    name = op.get("op") if isinstance(op, dict) else None
    kind = KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise NewerFormatError(
            f"{where} holds an operation {name!r} this jlabel does not know: the dataset was "
            "written by a newer jlabel. Upgrade jlabel (pip install -U jlabel) in this kernel; "
            "nothing was changed."
        )
    missing = [f for f in kind.fields if f not in op]
    if missing:
        raise NewerFormatError(
            f"{where} holds a {name!r} operation without {', '.join(missing)}: it was written by "
            "a different jlabel version. Upgrade jlabel (pip install -U jlabel); nothing was "
            "changed."
        )
    return kind


def touched(op: Op) -> frozenset[str] | None:
    """Sample ids `op` touches; None when it touches the label set or the whole table."""
    kind = KINDS[op["op"]]
    if kind.touches_all:
        return None
    if kind.ids_of is not None:
        return frozenset(kind.ids_of(op))
    ids = op.get("ids")
    return None if ids is None else frozenset(ids)


# ------------------------------------------------------------------------------ applying
def apply(table: SampleTable, op: Op) -> None:
    """Apply one checked operation to `table` (deterministic: replay gives the same state).

    ``use_version`` replaces the whole table and is applied by the replica, which can read the
    version's rows; it never reaches this function.
    """
    kind = KINDS[op["op"]]
    inverse = _inverse(table, op) if kind.undoable else None
    kind.apply(table, op)
    if inverse is not None:
        table.undo_stack.append({"op": kind.name, "restore": inverse, "t": op.get("t")})
        del table.undo_stack[:-UNDO_DEPTH]


def _affected_rows(table: SampleTable, op: Op) -> list[int]:
    """Rows whose records an undo of `op` must restore."""
    kind = op["op"]
    if kind in ("rename_label", "delete_label"):
        names = [op.get("old", op.get("name"))] + ([op["new"]] if kind == "rename_label" else [])
        hit = np.zeros(len(table.ids), dtype=bool)
        for name in names:
            hit |= table.label_rows(name)
        rows = set(np.nonzero(hit & table.alive)[0].tolist())
        rows |= {r for r, (ns, _) in table.proposals.items() if set(ns) & set(names)}
        rows |= {
            r for r, bs in table.proposed_boxes.items() if {b["label"] for b in bs} & set(names)
        }
        return sorted(rows)
    if kind == "add_samples_manual":
        return []
    if kind == "confirm" and op.get("ids") is None:
        return np.nonzero(table.has_proposal & table.alive)[0].tolist()
    ids_of = KINDS[kind].ids_of
    return table.existing_rows(ids_of(op) if ids_of is not None else op["ids"]).tolist()


def _inverse(table: SampleTable, op: Op) -> dict[str, Any]:
    inverse: dict[str, Any] = {
        "rows": [table.row_record(r) for r in _affected_rows(table, op)],
        "labels": table.labels,
    }
    if op["op"] == "add_samples_manual":
        inverse["remove_ids"] = [r["id"] for r in op["rows"]]
    return inverse


@_kind("undo", (), touches_all=True)
def _apply_undo(table: SampleTable, op: Op) -> None:
    if not table.undo_stack:
        return
    restore = table.undo_stack.pop()["restore"]
    table.remove_rows(table.existing_rows(restore.get("remove_ids", [])))
    for rec in restore["rows"]:
        row = table.row_of.get(rec["id"])
        if row is None:
            row = table.grow(1)
        table.write_record(row, rec)
    # The label set goes back too (labels created or deleted by the undone operation).
    old = restore["labels"]
    for name in list(table.masks):
        if name not in old and not table.masks[name].any():
            del table.masks[name]
    for name in old:
        table.mask(name)
    table.masks = {name: table.masks[name] for name in old} | {
        n: m for n, m in table.masks.items() if n not in old
    }


# ------------------------------------------------------------------------------ the label set
def add_labels(names: list[str]) -> Op:
    """New names join the label set (already known ones are ignored)."""
    return {"op": "add_labels", "names": names}


@_kind("add_labels", ("names",), touches_all=True)
def _apply_add_labels(table: SampleTable, op: Op) -> None:
    for name in op["names"]:
        table.mask(name)


def rename_label(old: str, new: str) -> Op:
    """Rename `old` to `new` everywhere, boxes too; merges into `new` when it exists."""
    return {"op": "rename_label", "old": old, "new": new}


@_kind("rename_label", ("old", "new"), undoable=True, touches_all=True)
def _apply_rename_label(table: SampleTable, op: Op) -> None:
    old, new = op["old"], op["new"]
    if old not in table.masks:
        return
    if new in table.masks:  # merge
        moved = table.masks.pop(old)
        table.masks[new] |= moved
        table.recount(np.nonzero(moved)[0])
    else:  # keep the label's place in the label set
        table.masks = {(new if k == old else k): v for k, v in table.masks.items()}
    for row, (names, scores) in list(table.proposals.items()):
        if old in names:
            merged = [new if n == old else n for n in names]
            keep = [i for i, n in enumerate(merged) if n not in merged[:i]]
            table.set_proposal(row, [merged[i] for i in keep], [scores[i] for i in keep])
    _relabel_boxes(table, lambda box: {**box, "label": new} if box["label"] == old else box)


def _relabel_boxes(table: SampleTable, change: Callable[[dict], dict | None]) -> None:
    """Apply `change` to every box and proposed box (None drops the box)."""
    for store, put in (
        (table.boxes, table.set_boxes),
        (table.proposed_boxes, table.set_proposed_boxes),
    ):
        for row, boxes in list(store.items()):
            changed = [c for c in map(change, boxes) if c is not None]
            if changed != boxes:
                put(row, changed)


def delete_label(name: str, mode: str) -> Op:
    """Delete label `name`; `mode` is `label`, `samples` or `sources` (see Dataset.delete_label)."""
    return {"op": "delete_label", "name": name, "mode": mode}


@_kind("delete_label", ("name",), undoable=True, touches_all=True)
def _apply_delete_label(table: SampleTable, op: Op) -> None:
    name = op["name"]
    if name not in table.masks:
        return
    only = only_label_rows(table, name)
    rows = np.nonzero(table.label_rows(name))[0]
    table.masks.pop(name)
    _relabel_boxes(table, lambda box: None if box["label"] == name else box)
    table.box_masks.pop(name, None)
    table.recount(rows)
    table.clear_labeled(rows)
    if op.get("mode", "label") != "label":
        table.remove_rows(only)
    for row, (names, scores) in list(table.proposals.items()):
        if name in names:
            keep = [i for i, n in enumerate(names) if n != name]
            table.set_proposal(row, [names[i] for i in keep], [scores[i] for i in keep])


def only_label_rows(table: SampleTable, name: str) -> np.ndarray:
    """Alive rows whose only label is `name`: every image label and every box carries it."""
    having = table.label_rows(name) & table.alive
    image_only = table.n_labels == table.masks.get(name, np.zeros(len(table.ids), bool))
    rows = np.nonzero(having & image_only)[0]
    return np.asarray(
        [r for r in rows.tolist() if all(b["label"] == name for b in table.boxes.get(r, ()))],
        dtype=np.int64,
    )


# ------------------------------------------------------------------------------ labels of samples
def label(ids: list[str], names: list[str], *, user: str, t: float) -> Op:
    """Add `names` to the samples `ids` (a manual label: their proposals are cleared)."""
    return {"op": "label", "ids": ids, "names": names, "user": user, "t": t}


@_kind("label", ("ids", "names", "t"), undoable=True)
def _apply_label(table: SampleTable, op: Op) -> None:
    rows = table.existing_rows(op["ids"])
    for name in op["names"]:  # new names join the label set (and leave it on undo)
        table.mask(name)[rows] = True
    table.recount(rows)
    table.mark_labeled(rows, op.get("user"), op["t"], "manual")
    for row in rows.tolist():
        table.set_proposal(row, [], [])


def unlabel(ids: list[str], names: list[str] | None) -> Op:
    """Remove `names` (None: all labels) from the samples `ids`."""
    return {"op": "unlabel", "ids": ids, "names": names}


@_kind("unlabel", ("ids",), undoable=True)
def _apply_unlabel(table: SampleTable, op: Op) -> None:
    rows = table.existing_rows(op["ids"])
    for name in op.get("names") or list(table.masks):
        if name in table.masks:
            table.masks[name][rows] = False
    table.recount(rows)
    table.clear_labeled(rows)


def replace_label(ids: list[str], old: str, new: str, *, user: str, t: float) -> Op:
    """Swap `old` for `new` on the samples `ids`: one op, so one undo."""
    return {"op": "replace_label", "ids": ids, "old": old, "new": new, "user": user, "t": t}


@_kind("replace_label", ("ids", "old", "new", "t"), undoable=True)
def _apply_replace_label(table: SampleTable, op: Op) -> None:
    """On the samples of `ids` that carry `old`, `new` in its place (a manual edit)."""
    old, new = op["old"], op["new"]
    if old not in table.masks:
        return
    rows = table.existing_rows(op["ids"])
    rows = rows[table.masks[old][rows]]
    table.masks[old][rows] = False
    table.mask(new)[rows] = True
    table.recount(rows)
    table.mark_labeled(rows, op.get("user"), op["t"], "manual")
    for row in rows.tolist():
        table.set_proposal(row, [], [])


# ------------------------------------------------------------------------------ samples and files
def add_files(
    ids: list[str], *, created_at: float, sizes: list[int] | None, mtimes: list[float] | None
) -> Op:
    """Sync's compact form: ids, one creation time, and sizes/mtimes where the listing had them."""
    op: Op = {"op": "add_files", "ids": ids, "created_at": created_at}
    if sizes is not None and mtimes is not None:
        op["sizes"], op["mtimes"] = sizes, mtimes
    return op


@_kind("add_files", ("ids",))
def _apply_add_files(table: SampleTable, op: Op) -> None:
    new = [i for i, sid in enumerate(op["ids"]) if sid not in table.row_of]
    if not new:
        return
    ids = op["ids"] if len(new) == len(op["ids"]) else [op["ids"][i] for i in new]
    start = table.grow(len(ids))
    end = start + len(ids)
    table.ids[start:end] = ids
    table.alive[start:end] = True
    if "sizes" in op:  # remote listings come with sizes and mtimes; local ones do not
        table.size[start:end] = np.asarray(op["sizes"], dtype=np.int64)[new]
        table.mtime[start:end] = np.asarray(op["mtimes"], dtype=np.float64)[new]
    table.created_at[start:end] = ns(op.get("created_at"))
    table.row_of.update(zip(ids, range(start, end), strict=True))


def add_uploads(rows: list[dict[str, Any]]) -> Op:
    """Images saved under the root by ``add_images``: ``[{"id", "size", "mtime", "created_at"}]``.

    Undoing it removes the samples (and the dataset deletes the files it saved).
    """
    return {"op": "add_samples_manual", "rows": rows}


def _row_ids(op: Op) -> list[str]:
    return [r["id"] for r in op["rows"]]


@_kind("add_samples_manual", ("rows",), undoable=True, ids_of=_row_ids)
def _apply_add_samples(table: SampleTable, op: Op) -> None:
    recs = [r for r in op["rows"] if r["id"] not in table.row_of]
    if not recs:
        return
    start = table.grow(len(recs))
    if all(rec.keys() <= _FILE_FIELDS for rec in recs):  # vectorised (100k: ms)
        end = start + len(recs)
        table.ids[start:end] = [rec["id"] for rec in recs]
        table.alive[start:end] = True
        table.size[start:end] = [rec.get("size", 0) for rec in recs]
        table.mtime[start:end] = [rec.get("mtime", 0.0) for rec in recs]
        created = np.asarray([nan_if_none(rec.get("created_at")) for rec in recs]) * 1e9
        stamps = np.round(np.nan_to_num(created)).astype(np.int64).view("datetime64[ns]")
        table.created_at[start:end] = np.where(np.isnan(created), np.datetime64("NaT"), stamps)
        table.row_of.update(zip(table.ids[start:end].tolist(), range(start, end), strict=True))
        return
    for i, rec in enumerate(recs):
        table.write_record(start + i, rec)


# Written by sync before `add_files` existed (stores made by jlabel 0.1 pre-releases hold it):
# replayed, never produced.
KINDS["add_samples"] = Kind("add_samples", ("rows",), _apply_add_samples, ids_of=_row_ids)


def remove_samples(ids: list[str]) -> Op:
    """Drop the samples `ids` from the table (undoable; source files are not touched here)."""
    return {"op": "remove_samples", "ids": ids}


@_kind("remove_samples", ("ids",), undoable=True)
def _apply_remove_samples(table: SampleTable, op: Op) -> None:
    table.remove_rows(table.existing_rows(op["ids"]))


def update_files(ids: list[str], sizes: list[int], mtimes: list[float]) -> Op:
    """New sizes and mtimes of files that changed (their file version)."""
    return {"op": "update_files", "ids": ids, "sizes": sizes, "mtimes": mtimes}


@_kind("update_files", ("ids", "sizes", "mtimes"))
def _apply_update_files(table: SampleTable, op: Op) -> None:
    keep = _present(table, op["ids"])
    rows = table.existing_rows(op["ids"])
    table.size[rows] = [op["sizes"][i] for i in keep]
    table.mtime[rows] = [op["mtimes"][i] for i in keep]
    table.width[rows] = -1
    table.height[rows] = -1
    table.corrupt[rows] = False


def set_missing(ids: list[str], missing: bool) -> Op:
    """Flag (or unflag) samples whose source file is gone."""
    return {"op": "set_missing", "ids": ids, "missing": missing}


@_kind("set_missing", ("ids", "missing"))
def _apply_set_missing(table: SampleTable, op: Op) -> None:
    table.missing[table.existing_rows(op["ids"])] = op["missing"]


def image_info(ids: list[str], widths: list[int], heights: list[int], corrupt: list[bool]) -> Op:
    """Sizes and corrupt flags learned by decoding (thumbnails); -1 for an unknown size."""
    return {
        "op": "image_info",
        "ids": ids,
        "widths": widths,
        "heights": heights,
        "corrupt": corrupt,
    }


@_kind("image_info", ("ids", "widths", "heights", "corrupt"))
def _apply_image_info(table: SampleTable, op: Op) -> None:
    keep = _present(table, op["ids"])
    rows = table.existing_rows(op["ids"])
    table.width[rows] = [op["widths"][i] for i in keep]
    table.height[rows] = [op["heights"][i] for i in keep]
    table.corrupt[rows] = [op["corrupt"][i] for i in keep]


def import_labels(
    ids: list[str],
    labels: list[list[str]],
    boxes: list[list[dict[str, Any]]],
    label_mtimes: list[float],
    *,
    t: float,
) -> Op:
    """Labels and boxes read from label files next to the images (sync)."""
    return {
        "op": "import_labels",
        "ids": ids,
        "labels": labels,
        "boxes": boxes,
        "label_mtimes": label_mtimes,
        "t": t,
    }


@_kind("import_labels", ("ids", "labels", "boxes", "label_mtimes", "t"))
def _apply_import_labels(table: SampleTable, op: Op) -> None:
    """Labels from `.txt`/`.xml` files; never overwrites labels made in jlabel."""
    for sid, names, boxes, lmtime in zip(
        op["ids"], op["labels"], op["boxes"], op["label_mtimes"], strict=True
    ):
        row = table.row_of.get(sid)
        if row is None or made_in_jlabel(table, row):
            continue
        table.set_labels(row, names)
        table.set_boxes(row, boxes)
        table.label_mtime[row] = nan_if_none(lmtime)
        rows = np.asarray([row])
        if names:
            table.mark_labeled(rows, None, op["t"], "imported")
        else:
            table.clear_labeled(rows)


def made_in_jlabel(table: SampleTable, row: int) -> bool:
    """True when labels or boxes of `row` were made in jlabel (imports never overwrite them)."""
    if SOURCES[table.source[row]] in ("manual", "auto"):
        return True
    return any(b.get("source") in ("manual", "auto") for b in table.boxes.get(row, ()))


# ------------------------------------------------------------------------------ boxes
def add_boxes(sample_id: str, boxes: list[dict[str, Any]], *, user: str, t: float) -> Op:
    """Boxes drawn on one image (complete box dicts, ids assigned by the caller)."""
    return {"op": "add_boxes", "id": sample_id, "boxes": boxes, "user": user, "t": t}


def _sample_id(op: Op) -> list[str]:
    return [op["id"]]


@_kind("add_boxes", ("id", "boxes", "t"), undoable=True, ids_of=_sample_id)
def _apply_add_boxes(table: SampleTable, op: Op) -> None:
    row = table.row_of.get(op["id"])
    if row is None:
        return
    have = {b["box_id"] for b in table.boxes.get(row, ())}
    new = [b for b in op["boxes"] if b["box_id"] not in have]  # a replayed retry adds nothing
    table.set_boxes(row, table.boxes.get(row, []) + new)
    table.mark_labeled(np.asarray([row]), op.get("user"), op["t"], "manual")


def update_box(sample_id: str, box_id: str, changes: dict[str, Any], *, user: str, t: float) -> Op:
    """New label and/or coordinates of one box; a proposed box edited becomes a confirmed one."""
    return {
        "op": "update_box",
        "id": sample_id,
        "box_id": box_id,
        "changes": changes,
        "user": user,
        "t": t,
    }


@_kind("update_box", ("id", "box_id", "changes", "t"), undoable=True, ids_of=_sample_id)
def _apply_update_box(table: SampleTable, op: Op) -> None:
    row = table.row_of.get(op["id"])
    if row is None:
        return
    who = {"labeled_by": op.get("user"), "labeled_at": op["t"]}
    boxes = table.boxes.get(row, [])
    if any(b["box_id"] == op["box_id"] for b in boxes):
        table.set_boxes(
            row,
            [
                {**b, **op["changes"], **who, "source": "manual"}
                if b["box_id"] == op["box_id"]
                else b
                for b in boxes
            ],
        )
    else:
        proposed = table.proposed_boxes.get(row, [])
        edited = [b for b in proposed if b["box_id"] == op["box_id"]]
        if not edited:
            return  # deleted meanwhile (another kernel, or an undo)
        box = {**_accepted(edited[0], op.get("user"), op["t"], "manual"), **op["changes"]}
        table.set_boxes(row, [*boxes, box])
        table.set_proposed_boxes(row, [b for b in proposed if b["box_id"] != op["box_id"]])
    table.mark_labeled(np.asarray([row]), op.get("user"), op["t"], "manual")


def accept_boxes(sample_id: str, box_ids: list[str], *, user: str, t: float) -> Op:
    """Some proposed boxes of one image, accepted as they are (the rest stay proposed)."""
    return {"op": "accept_boxes", "id": sample_id, "box_ids": box_ids, "user": user, "t": t}


@_kind("accept_boxes", ("id", "box_ids", "t"), undoable=True, ids_of=_sample_id)
def _apply_accept_boxes(table: SampleTable, op: Op) -> None:
    row = table.row_of.get(op["id"])
    if row is None:
        return
    chosen = set(op["box_ids"])
    proposed = table.proposed_boxes.get(row, [])
    accepted = [_accepted(b, op.get("user"), op["t"]) for b in proposed if b["box_id"] in chosen]
    if not accepted:
        return
    table.set_boxes(row, table.boxes.get(row, []) + accepted)
    table.set_proposed_boxes(row, [b for b in proposed if b["box_id"] not in chosen])
    table.mark_labeled(np.asarray([row]), op.get("user"), op["t"], "auto")


def delete_boxes(sample_id: str, box_ids: list[str] | None) -> Op:
    """Boxes (or proposed boxes) of one image; None: all its confirmed boxes."""
    return {"op": "delete_boxes", "id": sample_id, "box_ids": box_ids}


@_kind("delete_boxes", ("id", "box_ids"), undoable=True, ids_of=_sample_id)
def _apply_delete_boxes(table: SampleTable, op: Op) -> None:
    row = table.row_of.get(op["id"])
    if row is None:
        return
    doomed = op["box_ids"]
    if doomed is None:
        table.set_boxes(row, [])
    else:
        gone = set(doomed)
        table.set_boxes(row, [b for b in table.boxes.get(row, []) if b["box_id"] not in gone])
        proposed = table.proposed_boxes.get(row, [])
        table.set_proposed_boxes(row, [b for b in proposed if b["box_id"] not in gone])
    table.clear_labeled(np.asarray([row]))


# ------------------------------------------------------------------------------ proposals
def set_proposals(
    ids: list[str],
    labels: list[list[str]],
    scores: list[list[float]],
    *,
    hardness: list[float | None] | None,
    hard: list[bool] | None,
    boxes: list[list[dict[str, Any]]] | None = None,
) -> Op:
    """Model results for the To Be Confirmed tab (one job's whole output, one operation):
    per id, proposed image labels with scores and (detection) proposed boxes with scores."""
    op: Op = {
        "op": "set_proposals",
        "ids": ids,
        "labels": labels,
        "scores": scores,
        "hardness": hardness,
        "hard": hard,
    }
    if boxes is not None:
        op["boxes"] = boxes
    return op


@_kind("set_proposals", ("ids", "labels", "scores"), undoable=True)
def _apply_set_proposals(table: SampleTable, op: Op) -> None:
    n = len(op["ids"])
    hardness = op.get("hardness") or [None] * n
    hard = op.get("hard") or [False] * n
    boxes = op.get("boxes")
    for i, (sid, names, scores, h, hd) in enumerate(
        zip(op["ids"], op["labels"], op["scores"], hardness, hard, strict=True)
    ):
        row = table.row_of.get(sid)
        if row is None:
            continue  # deleted meanwhile
        if boxes is None:
            if table.n_labels[row] > 0:
                continue  # labeled by a person meanwhile: label proposals never touch those
        elif table.n_boxes[row] > 0:
            continue  # boxed by a person meanwhile: box proposals never touch those
        if boxes is None or names:
            table.set_proposal(row, names, scores)
        if boxes is not None:
            table.set_proposed_boxes(row, boxes[i])
        table.hard[row] = bool(hd)
        table.hardness[row] = nan_if_none(h)


def set_proposal(ids: list[str], names: list[str]) -> Op:
    """The user's edit of proposed labels before confirming."""
    return {"op": "set_proposal", "ids": ids, "names": names}


@_kind("set_proposal", ("ids", "names"), undoable=True)
def _apply_set_proposal(table: SampleTable, op: Op) -> None:
    for row in table.existing_rows(op["ids"]).tolist():
        old_names, old_scores = table.proposals.get(row, ([], []))
        scores = [old_scores[old_names.index(n)] if n in old_names else 1.0 for n in op["names"]]
        table.set_proposal(row, op["names"], scores)
    for name in op["names"]:
        table.mask(name)


def confirm(ids: list[str] | None, *, user: str, t: float) -> Op:
    """Accept proposals as labels (source "auto"); ``ids=None``: every proposal."""
    return {"op": "confirm", "ids": ids, "user": user, "t": t}


@_kind("confirm", ("t",), undoable=True)
def _apply_confirm(table: SampleTable, op: Op) -> None:
    ids = op.get("ids")
    rows = _affected_rows(table, op) if ids is None else table.existing_rows(ids).tolist()
    done = []
    for row in rows:
        names, _ = table.proposals.get(row, ([], []))
        proposed = table.proposed_boxes.get(row, [])
        if not names and not proposed:
            continue
        if names:
            current = table.row_labels(row)
            table.set_labels(row, current + [n for n in names if n not in current])
            table.set_proposal(row, [], [])
        if proposed:
            accepted = [_accepted(b, op.get("user"), op["t"]) for b in proposed]
            table.set_boxes(row, table.boxes.get(row, []) + accepted)
            table.set_proposed_boxes(row, [])
        done.append(row)
    if done:
        table.mark_labeled(np.asarray(done), op.get("user"), op["t"], "auto")


def _accepted(box: dict[str, Any], user: str | None, t: float, source: str = "auto") -> dict:
    """A proposed box as a confirmed one: no score, who confirmed it and when."""
    out = {k: v for k, v in box.items() if k not in ("score", "edited")}
    return {**out, "source": source, "labeled_by": user, "labeled_at": t}


def reject(ids: list[str]) -> Op:
    """Drop the proposals (labels and boxes) of the samples `ids`."""
    return {"op": "reject", "ids": ids}


@_kind("reject", ("ids",), undoable=True)
def _apply_reject(table: SampleTable, op: Op) -> None:
    for row in table.existing_rows(op["ids"]).tolist():
        table.set_proposal(row, [], [])
        table.set_proposed_boxes(row, [])


def set_hard(ids: list[str], hard: list[bool], hardness: list[float | None] | None) -> Op:
    """Mark samples as hard examples (or not), with an optional hardness score each."""
    op: Op = {"op": "set_hard", "ids": ids, "hard": hard}
    if hardness is not None:
        op["hardness"] = hardness
    return op


@_kind("set_hard", ("ids", "hard"), undoable=True)
def _apply_set_hard(table: SampleTable, op: Op) -> None:
    keep = _present(table, op["ids"])
    rows = table.existing_rows(op["ids"])
    hard = op["hard"]
    table.hard[rows] = [hard[i] for i in keep] if isinstance(hard, list) else hard
    if op.get("hardness") is not None:
        table.hardness[rows] = [nan_if_none(op["hardness"][i]) for i in keep]


def set_groups(ids: list[str], groups: list[str]) -> Op:
    """The auto-grouping result: one group name per sample."""
    return {"op": "set_groups", "ids": ids, "groups": groups}


@_kind("set_groups", ("ids", "groups"))
def _apply_set_groups(table: SampleTable, op: Op) -> None:
    keep = _present(table, op["ids"])
    rows = table.existing_rows(op["ids"])
    table.group[rows] = [table.code(table.groups, op["groups"][i]) for i in keep]


# ------------------------------------------------------------------------------ versions
def set_current_version(name: str) -> Op:
    """Record which version the working state was last switched to."""
    return {"op": "set_current_version", "name": name}


@_kind("set_current_version", ("name",), touches_all=True)
def _apply_set_current_version(table: SampleTable, op: Op) -> None:
    table.current_version = op["name"]


def use_version(name: str) -> Op:
    """Replace the working state by a version's rows (the replica reads them)."""
    return {"op": "use_version", "name": name}


def _applied_by_replica(table: SampleTable, op: Op) -> None:  # pragma: no cover - guard
    raise AssertionError("use_version is applied by the replica, which reads the version")


KINDS["use_version"] = Kind("use_version", ("name",), _applied_by_replica, touches_all=True)


def undo() -> Op:
    """Undo the newest undoable operation (its inverse is on the table's undo stack)."""
    return {"op": "undo"}


# ------------------------------------------------------------------------------ helpers
def _present(table: SampleTable, ids: list[str]) -> list[int]:
    """Positions in `ids` of the samples that exist, in order (aligned with existing_rows)."""
    return [i for i, sid in enumerate(ids) if sid in table.row_of]
