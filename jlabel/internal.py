"""`ds.internal`: what jlabel's own layers (auto-labeling, export, the widget) use of a dataset.

Users call the methods of :class:`jlabel.Dataset`; the calls here write model results
(proposals, hard flags, groups, decoded image sizes), reach the store's side files and the
source files, and follow changes. Keeping them behind one object keeps the user API small.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from typing import Any

from jlabel import args, ops
from jlabel import query as q
from jlabel.boxes import check_box
from jlabel.errors import JLabelError, NotFound
from jlabel.files import safe_join
from jlabel.labels import validate_label_names
from jlabel.replica import Replica
from jlabel.sources import SourceReader
from jlabel.store import Store

Commit = Callable[[ops.Op, str], None]


class DatasetInternals:
    """The layer API of one open dataset (``ds.internal``)."""

    def __init__(self, replica: Replica, commit: Commit, *, key: str, limits: Callable[[], dict]):
        self._replica = replica
        self._store: Store = replica.store
        self._commit = commit
        self._limits = limits
        self._subscribers: list[Callable[[str], None]] = []
        self._on_proposals: list[Callable[[list[str]], None]] = []
        self.key = key
        """A stable id of the dataset (survives renames of its folder), for cache keys."""

    # -- identity and files --------------------------------------------------------------
    @property
    def fs(self) -> Any:
        """The fsspec filesystem of the dataset's root."""
        return self._store.fs

    @property
    def local(self) -> bool:
        """True when the dataset is on local disk."""
        return self._store.local

    def source_path(self, sample_id: str) -> str:
        """The sample's path on the dataset's filesystem (refuses paths leaving the root)."""
        return safe_join(self._store.root, sample_id)

    @property
    def source_reader(self) -> SourceReader:
        """Reads source files by id, safely (see `jlabel.sources`); picklable."""
        return SourceReader(self._store.fs, self._store.root, self._store.local)

    def read_source(self, sample_id: str, *, image: bool = True) -> bytes:
        """The source file's bytes (a StorageError when the storage cannot be read).

        Refuses (`UnsafePath`) a local file whose real path leaves the root or that is not a
        regular file, and (`ImageRejected`, with `image`) one whose first bytes are no JPEG,
        PNG or BMP, before reading the rest.
        """
        row = self._replica.table.row_of.get(sample_id)
        size = None if row is None or self._store.local else int(self._replica.table.size[row])
        with self._store.errors(f"read {sample_id!r}"):
            return self.source_reader(sample_id, image=image, size=size)

    def file_version(self, sample_id: str) -> str:
        """Changes whenever the source file changes: its size and mtime.

        Local files are stat'ed now (sync lists names only, so a file edited in place gets a
        new version without a sync); remote ones use what the last sync listed.
        """
        table = self._replica.table
        row = table.row_of.get(sample_id)
        if row is None:
            raise NotFound(f"no sample with id {sample_id!r}")
        if self._store.local:
            try:
                st = os.stat(self.source_path(sample_id))
            except JLabelError:  # a name no path can hold: reading it fails, not the caller
                return "refused"
            except OSError:  # missing: the thumbnail is a placeholder whatever the version
                return "missing"
            return f"{st.st_size}-{st.st_mtime:.6f}"
        return f"{int(table.size[row])}-{table.mtime[row]:.6f}"

    def upload_limits(self) -> dict[str, int]:
        """Upload limits in bytes: ``{"file": ..., "batch": ...}``."""
        return self._limits()

    # -- side files under .jlabel/ ---------------------------------------------------------
    def store_path(self, *parts: str) -> str:
        """A path inside ``<root>/.jlabel/``."""
        return self._store.path(*parts)

    def write_store_json(self, rel: str, obj: Any) -> None:
        """Atomically write JSON under ``.jlabel/``."""
        self._store.write_json(rel, obj)

    def read_store_json(self, rel: str) -> Any:
        """JSON under ``.jlabel/``, or None when it does not exist."""
        return self._store.read_json(rel)

    # -- reading ---------------------------------------------------------------------------
    def query_ids(self, *, tab: str = "all", **filters: Any) -> list[str]:
        """The ids ``ds.query`` would return (same filters), without building a DataFrame."""
        q.check_filters(filters)
        with self._replica.reading() as table:
            return table.ids[q.query_rows(table, tab, filters)].tolist()

    def subscribe(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(event)`` after every visible change; returns an unsubscribe function.

        Events: ``change``, ``sync``, ``refresh``, ``undo``, ``version``, ``image_info``.
        """
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def notify(self, event: str) -> None:
        """Tell every subscriber about a change (a broken one never breaks labeling)."""
        for callback in list(self._subscribers):
            with contextlib.suppress(Exception):
                callback(event)

    def on_proposals(self, callback: Callable[[list[str]], None]) -> None:
        """Call ``callback(ids)`` after proposals are written for `ids` (the sample check
        forgets a draw whose proposals a new job replaced)."""
        self._on_proposals.append(callback)

    # -- writing model results -------------------------------------------------------------
    def set_proposals(
        self,
        ids: Iterable[str],
        labels: list[list[str]],
        scores: list[list[float]],
        *,
        hardness: list[float | None] | None = None,
        hard: list[bool] | None = None,
        boxes: list[list[dict[str, Any]]] | None = None,
    ) -> None:
        """Store proposals (To Be Confirmed) in one durable operation.

        Parameters
        ----------
        ids : the samples, each known to the dataset
        labels : per id, the proposed label names
        scores : per id, one score in [0, 1] per proposed label
        hardness, hard : per id, a hardness score (None: unknown) and the hard-example flag
        boxes : per id, proposed boxes (label, xmin, ymin, xmax, ymax, score); a detection
            job's proposals replace the image's proposed boxes
        """
        call = "set_proposals"
        ids = self._known_ids(ids)
        args.same_length(
            call, ids, labels=labels, scores=scores, hardness=hardness, hard=hard, boxes=boxes
        )
        names = [validate_label_names(row) for row in labels]
        checked = None
        if boxes is not None:
            checked = [
                [
                    check_box(b, size=None, where=f"proposed box {j} of {sid!r}", proposed=True)
                    for j, b in enumerate(row)
                ]
                for sid, row in zip(ids, boxes, strict=True)
            ]
        op = ops.set_proposals(
            ids,
            names,
            args.scores_rows(scores, names, call=call),
            hardness=None
            if hardness is None
            else [args.float_or_none(h, name="hardness") for h in hardness],
            hard=None if hard is None else [args.bool_value(h, name="hard") for h in hard],
            boxes=checked,
        )
        self._commit(op, "change")
        for callback in self._on_proposals:
            callback(ids)

    def set_hard(
        self,
        ids: Iterable[str],
        hard: bool | list[bool] = True,
        hardness: list[float | None] | None = None,
    ) -> None:
        """Mark (or unmark) samples as hard examples, with optional hardness scores."""
        ids = self._known_ids(ids)
        if isinstance(hard, list):
            args.same_length("set_hard", ids, hard=hard)
            flags = [args.bool_value(h, name="hard") for h in hard]
        else:
            flags = [args.bool_value(hard, name="hard")] * len(ids)
        args.same_length("set_hard", ids, hardness=hardness)
        marks = None
        if hardness is not None:
            marks = [args.float_or_none(h, name="hardness") for h in hardness]
        self._commit(ops.set_hard(ids, flags, marks), "change")

    def set_groups(self, ids: Iterable[str], groups: list[str]) -> None:
        """Set the auto-grouping group of samples (one group name per id)."""
        ids = self._known_ids(ids)
        args.same_length("set_groups", ids, groups=groups)
        self._commit(ops.set_groups(ids, [str(g) for g in groups]), "change")

    def record_image_info(
        self,
        ids: list[str],
        widths: list[int | None],
        heights: list[int | None],
        corrupt: list[bool],
    ) -> None:
        """Remember decoded sizes and corrupt flags (not undoable); rows that already have them
        cost nothing."""
        args.same_length("record_image_info", ids, widths=widths, heights=heights, corrupt=corrupt)
        with self._replica.reading() as t:
            todo = [
                i
                for i, sid in enumerate(ids)
                if sid in t.row_of
                and (
                    t.width[t.row_of[sid]] != (widths[i] if widths[i] is not None else -1)
                    or t.corrupt[t.row_of[sid]] != bool(corrupt[i])
                )
            ]
            if todo:
                op = ops.image_info(
                    [ids[i] for i in todo],
                    [-1 if widths[i] is None else int(widths[i]) for i in todo],
                    [-1 if heights[i] is None else int(heights[i]) for i in todo],
                    [bool(corrupt[i]) for i in todo],
                )
                self._commit(op, "image_info")

    def _known_ids(self, ids: Iterable[str]) -> list[str]:
        ids = args.sample_ids(ids, allow_empty=True)
        with self._replica.reading() as table:
            table.rows(ids)  # raises NotFound for an unknown id
        return ids
