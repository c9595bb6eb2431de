"""Dataset: the user API of one labeled image folder (local or S3).

Every method checks its arguments, builds one operation (:mod:`jlabel.ops`) and commits it
through the replica (:mod:`jlabel.replica`), which makes it durable before the call returns.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import threading
import time
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from jlabel import args, ops, sources, uploads
from jlabel import query as q
from jlabel.boxes import Boxes
from jlabel.errors import InvalidArgument, JLabelError, NotFound
from jlabel.files import info_mtime, list_files, safe_join
from jlabel.health import StoreReport, check_store
from jlabel.internal import DatasetInternals
from jlabel.labels import validate_label_name, validate_label_names
from jlabel.replica import COMPACT_ON_OPEN, Replica
from jlabel.sample_check import SampleCheck
from jlabel.store import Store
from jlabel.store.connect import check_root, connect
from jlabel.sync import SyncReport, plan_sync
from jlabel.versions import Versions
from jlabel.workflows import Workflows

if TYPE_CHECKING:
    from jlabel.autolabel import JobQueue

MB = 1024 * 1024
DELETE_MODES = ("label", "samples", "sources")
LARGE_SYNC = 10_000  # samples added by one sync after which it is compacted at once
SyncMode = bool | Literal["background"]


def open(
    source: str | os.PathLike[str],
    *,
    storage_options: dict[str, Any] | None = None,
    user: str | None = None,
    sync: SyncMode = True,
) -> Dataset:
    """Open (or create) the dataset of the images at a folder or ``s3://bucket/prefix``.

    Parameters
    ----------
    source : a local folder or ``s3://bucket/prefix``; the store lives in ``<source>/.jlabel/``
    storage_options : fsspec/s3fs options (endpoint_url, key, secret, timeouts...)
    user : who labels (``labeled_by``); default ``$JLABEL_USER``, then the OS user
    sync : True (list the images now), False (the stored state only), or ``"background"``
        (the stored state at once, the listing in a thread; subscribers hear ``sync``)
    """
    return Dataset(source, storage_options=storage_options, user=user, sync=sync)


@args.explain_bad_calls
class Dataset(Boxes, Workflows):
    """Samples, labels, proposals and versions of one image folder; every change is durable
    when the call returns."""

    def __init__(
        self,
        source: str | os.PathLike[str],
        *,
        storage_options: dict[str, Any] | None = None,
        user: str | None = None,
        sync: SyncMode = True,
    ) -> None:
        if not isinstance(source, (str, os.PathLike)):
            raise InvalidArgument(f"source must be a folder path or s3:// URL, not {source!r}")
        if sync not in (True, False, "background"):
            raise InvalidArgument(f"sync must be True, False or 'background', not {sync!r}")
        url = os.fspath(source)
        fs, root = connect(url, storage_options)
        self.url = url
        self.user = user or os.environ.get("JLABEL_USER") or _os_user()
        self.max_image_bytes = 5 * MB
        """Largest image `add_images` accepts (bytes)."""
        self.max_batch_bytes = 8 * MB
        """Largest total of one `add_images` call (bytes)."""
        store = Store(fs, root.rstrip("/") if root != "/" else root, url)
        self.root = store.root if store.local else f"s3://{store.root}"
        check_root(store, fs, url)
        self._store = store
        self._replica = Replica(store)
        self.internal = DatasetInternals(
            self._replica, self._commit, key=str(store.ensure_meta()["key"]), limits=self._limits
        )
        """What jlabel's own layers (auto-labeling, export, widget) use; not for users."""
        self._versions = Versions(self._replica, self._commit)
        self._check = SampleCheck(self._replica, self.internal)
        self.internal.on_proposals(self._check.forget_if_reproposed)
        self._jobs: JobQueue | None = None
        self._syncer: threading.Thread | None = None
        if self._replica.load() >= COMPACT_ON_OPEN:
            self._replica.compact_in_background()
        if sync == "background":
            self._syncer = threading.Thread(target=self._sync_quietly, name="jlabel-sync")
            self._syncer.start()
        elif sync:
            self.sync()

    def _limits(self) -> dict[str, int]:
        return {"file": int(self.max_image_bytes), "batch": int(self.max_batch_bytes)}

    def _commit(self, op: ops.Op, event: str = "change") -> None:
        self._replica.commit(op)
        self.internal.notify(event)

    # ------------------------------------------------------------------ state
    def refresh(self) -> bool:
        """Pick up the changes other kernels made; returns True if anything changed.

        On failure (a StorageError) the state stays as it was.
        """
        self._check.reread()
        changed = self._replica.refresh()
        if changed:
            self.internal.notify("refresh")
        return changed

    def undo(self) -> str | None:
        """Undo the last undoable operation (also after a restart); returns its kind or None."""
        with self._replica.lock:
            stack = self._replica.table.undo_stack
            if not stack:
                return None
            top = stack[-1]
            self._commit(ops.undo(), "undo")
        if top["op"] == "add_samples_manual":
            self._delete_paths(self._deletable(top["restore"].get("remove_ids", []), strict=False))
        return str(top["op"])

    def compact(self) -> bool:
        """Write the state as a new snapshot now (jlabel also does this on its own); False when
        another kernel wrote one first (nothing is lost)."""
        return self._replica.compact()

    def check(self) -> StoreReport:
        """The health of the store: damaged or unreadable files, what was kept aside, what to
        do. Reads everything; changes nothing."""
        return check_store(self._store, seen=self._store.problems)

    def close(self) -> None:
        """Finish background work (sync, compaction), then release this kernel's journal."""
        syncer = self._syncer
        if syncer is not None and syncer is not threading.current_thread():
            syncer.join()
        self._replica.close()

    # ------------------------------------------------------------------ the label set
    @property
    def labels(self) -> list[str]:
        """The label set, in order."""
        return self._replica.table.labels

    def add_labels(self, *names: str) -> None:
        """Add names to the label set (names already in it are ignored)."""
        table = self._replica.table
        new = [n for n in validate_label_names(args.names_list(names)) if n not in table.masks]
        if new:
            self._commit(ops.add_labels(new))

    def rename_label(self, old: str, new: str) -> None:
        """Rename a label everywhere; if `new` exists the two are merged."""
        validate_label_name(new)
        self._known_label(old)
        if old != new:
            self._commit(ops.rename_label(old, new))

    def delete_label(self, name: str, *, mode: str = "label") -> int:
        """Delete a label; returns how many samples were removed.

        Parameters
        ----------
        name : the label
        mode : ``"label"`` (only the label), ``"samples"`` (also the samples that had only this
            label), ``"sources"`` (also their source files)
        """
        args.choice(mode, DELETE_MODES, name="mode")
        self._known_label(name)
        with self._replica.reading() as t:
            doomed = t.ids[ops.only_label_rows(t, name)].tolist() if mode != "label" else []
            files = self._deletable(doomed) if mode == "sources" else []  # refuses first
            self._commit(ops.delete_label(name, mode))
        self._delete_paths(files)
        return len(doomed)

    def label_impact(self, name: str) -> dict[str, int]:
        """What deleting `name` touches: ``{"images": samples carrying it (as an image label or
        on a box), "only": samples carrying only it}`` (those ``mode="samples"`` removes)."""
        self._known_label(name)
        with self._replica.reading() as t:
            having = t.label_rows(name) & t.alive
            return {"images": int(having.sum()), "only": len(ops.only_label_rows(t, name))}

    def label_counts(self) -> dict[str, int]:
        """Images per label, in label-set order (0 for unused labels): an image counts once for
        a label it carries as an image label, on one or more boxes, or both (``box_counts()``
        counts the boxes)."""
        with self._replica.reading() as t:
            return {n: int((t.label_rows(n) & t.alive).sum()) for n in t.masks}

    # ------------------------------------------------------------------ labeling
    def label(self, ids: str | Iterable[str], *names: str) -> None:
        """Add labels to samples (a manual label: their proposals are cleared). New names join
        the label set in the same operation (so one undo removes them again)."""
        ids, names_ = self._ids(ids), validate_label_names(args.names_list(names))
        if not names_:
            raise InvalidArgument("label(ids, *names) needs at least one label name")
        self._commit(ops.label(ids, names_, user=self.user, t=time.time()))

    def unlabel(self, ids: str | Iterable[str], *names: str) -> None:
        """Remove the given labels from samples; no names removes all their labels."""
        ids, names_ = self._ids(ids), validate_label_names(args.names_list(names))
        unknown = [n for n in names_ if n not in self._replica.table.masks]
        if unknown:
            raise InvalidArgument(
                f"unlabel: no label {unknown[0]!r} in the label set {self.labels}; check the name"
            )
        self._commit(ops.unlabel(ids, names_ or None))

    def replace_label(self, ids: str | Iterable[str], old: str, new: str) -> int:
        """On the samples of `ids` that carry `old`, put `new` in its place (one operation,
        one undo); returns how many samples changed."""
        ids, new = self._ids(ids), validate_label_name(new)
        self._known_label(old)
        with self._replica.reading() as t:
            having = int(t.masks[old][t.rows(ids)].sum())
            if having and old != new:
                self._commit(ops.replace_label(ids, old, new, user=self.user, t=time.time()))
        return having if old != new else 0

    # ------------------------------------------------------------------ proposals
    def set_proposal(self, ids: str | Iterable[str], *names: str) -> None:
        """Edit the proposed labels of samples before confirming them."""
        ids = self._ids(ids)
        self._commit(ops.set_proposal(ids, validate_label_names(args.names_list(names))))

    def confirm(self, ids: str | Iterable[str] | None = None) -> int:
        """Accept proposals as labels (source ``"auto"``): of `ids`, or every proposal when
        None. Returns how many were confirmed."""
        with self._replica.reading() as t:
            if ids is None:
                count = int((t.has_proposal & t.alive).sum())
                payload = None
            else:
                payload = self._ids(ids, allow_empty=True)
                count = int(t.has_proposal[t.rows(payload)].sum()) if payload else 0
            if count:
                self._commit(ops.confirm(payload, user=self.user, t=time.time()))
        return count

    def reject(self, ids: str | Iterable[str]) -> None:
        """Drop proposals; the samples go back to the Unlabeled tab."""
        self._commit(ops.reject(self._ids(ids)))

    # ------------------------------------------------------------------ images
    def sync(self, *, prune: bool = False) -> SyncReport:
        """Pick up new and removed images and new or edited `.txt`/`.xml` label files.

        Removed images are flagged ``missing`` (labels kept); ``prune=True`` drops them. Local
        images are listed by name, not stat'ed (a stat per file would cost ~10x the listing):
        a file edited in place needs no sync, thumbnails follow the file's version. On S3 the
        listing carries sizes and mtimes, and edited files are reported as ``changed``.
        """
        start = time.perf_counter()
        with self._store.errors("list the images"):
            listing = list_files(self._store.fs, self._store.root, stat=False)
        with self._replica.reading() as table:
            planned, report = plan_sync(
                table, listing, self._read_rel, prune=prune, exists=self._exists_rel
            )
            for op in planned:
                self._commit(op, "sync")
        if len(report.added) >= LARGE_SYNC:  # a big journal record: fold it into a snapshot
            self._replica.compact_in_background()
        report.seconds = time.perf_counter() - start
        return report

    def _sync_quietly(self) -> None:
        try:
            self.sync()
        except JLabelError as exc:  # shown to whoever listens; the stored state stays usable
            self._store.report(f"the background sync failed: {exc}")
        self.internal.notify("sync")

    def add_images(self, files: Iterable[Any]) -> list[str]:
        """Add images from paths or ``(filename, bytes)`` pairs; returns the new ids.

        JPG/JPEG/PNG/BMP whose bytes really are that format, each at most ``max_image_bytes``
        (5 MB), together at most ``max_batch_bytes`` (8 MB). Files are saved at the top of the
        root under their base name; a taken name gets a ``-N`` suffix; nothing is overwritten.
        """
        items = uploads.read_items(files)
        uploads.check_items(items, max_image=self.max_image_bytes, max_batch=self.max_batch_bytes)
        store = self._store
        with self._replica.reading() as table:
            chosen, adopted = uploads.choose_names(
                items, known=table.row_of.__contains__, store=store, path_of=self._path
            )
            rows = []
            for sid, (_, data), there in zip(chosen, items, adopted, strict=True):
                if not there:
                    uploads.save_new_file(store, self._path(sid), data, sid)
                row = {"id": sid, "size": len(data), "mtime": self._mtime(sid)}
                rows.append({**row, "created_at": time.time()})
            if rows:
                self._commit(ops.add_uploads(rows))
        return chosen

    def delete_images(self, ids: str | Iterable[str], *, delete_sources: bool = False) -> None:
        """Remove samples from the dataset; with ``delete_sources`` also delete their files
        (other versions that reference them then show them as missing)."""
        ids = self._ids(ids)
        args.bool_value(delete_sources, name="delete_sources")
        doomed = self._deletable(ids) if delete_sources else []  # refuses before any change
        self._commit(ops.remove_samples(ids))
        self._delete_paths(doomed)

    def read_bytes(self, sample_id: str) -> bytes:
        """The source file's bytes."""
        return self.internal.read_source(sample_id)

    def _path(self, sample_id: str) -> str:
        return safe_join(self._store.root, sample_id)

    def _mtime(self, sample_id: str) -> float:
        with self._store.errors(f"read the time of {sample_id!r}"):
            return info_mtime(self._store.fs.info(self._path(sample_id)))

    def _exists_rel(self, rel: str) -> bool:
        path = self._path(rel)
        if self._store.local:  # a link leading outside the root counts as absent
            real, root = os.path.realpath(path), os.path.realpath(self._store.root)
            return os.path.isfile(real) and sources.inside(real, root)
        return bool(self._store.fs.exists(path))

    def _read_rel(self, rel: str) -> bytes:
        return self.internal.read_source(rel, image=False)

    def _deletable(self, ids: Iterable[str], *, strict: bool = True) -> list[str]:
        """The paths of the source files of `ids` that exist. `UnsafePath` (before anything is
        deleted) when one leads outside the root; with ``strict=False`` those are left alone,
        with a warning."""
        paths = []
        for sid in ids:
            try:
                path = self._path(sid)
                if self._store.local:
                    found = sources.deletable_path(self._store.root, path, sid)
                else:
                    found = path if self._store.fs.exists(path) else None
            except JLabelError as exc:
                if strict:
                    raise type(exc)(f"{exc}. Nothing was deleted.") from None
                warnings.warn(f"jlabel: {sid!r} left in place: {exc}", stacklevel=3)
                continue
            if found is not None:
                paths.append(found)
        return paths

    def _delete_paths(self, paths: list[str]) -> None:
        with self._store.errors("delete source files"):
            for path in paths:
                with contextlib.suppress(FileNotFoundError):
                    if self._store.local:
                        os.unlink(path)
                    else:
                        self._store.fs.rm_file(path)

    # ------------------------------------------------------------------ queries
    def query(
        self,
        *,
        tab: str = "all",
        labels: Iterable[str] | str | None = None,
        hard: bool | None = None,
        created: Any = None,
        name: str | None = None,
        labeled_by: Iterable[str] | str | None = None,
        group: Iterable[str] | str | None = None,
        ids: Iterable[str] | None = None,
        boxes: bool | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Samples of a tab matching every given filter, as a DataFrame (columns of `to_pandas`).

        Parameters
        ----------
        tab : ``"all"``, ``"unlabeled"``, ``"labeled"`` or ``"to_confirm"``
        labels, labeled_by, group : one value or a list (any of them); `labels` also finds
            images by their box labels
        hard : True / False: only hard / not hard examples
        created : ``"day"``, ``"month"`` or a ``(start, end)`` pair (either may be None)
        name : text the id contains (case-insensitive)
        ids : only these samples (unknown ids are ignored)
        boxes : True / False: only images with / without boxes
        offset, limit : a page of the result
        """
        filters = q.check_filters(
            {
                "labels": labels,
                "hard": hard,
                "created": created,
                "name": name,
                "labeled_by": labeled_by,
                "group": group,
                "ids": ids,
                "boxes": boxes,
            }
        )
        if not isinstance(offset, int) or offset < 0:
            raise InvalidArgument(f"offset must be a whole number >= 0, not {offset!r}")
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise InvalidArgument(f"limit must be None or a whole number >= 0, not {limit!r}")
        with self._replica.reading() as table:
            rows = q.query_rows(table, tab, filters)
            end = None if limit is None else offset + limit
            return q.to_frame(table, rows[offset:end])

    def count(self, *, tab: str = "all", **filters: Any) -> int:
        """How many samples `query` would return (same filters)."""
        q.check_filters(filters)
        with self._replica.reading() as t:
            return int((q.tab_mask(t, tab) & q.filter_mask(t, **filters)).sum())

    def counts(self, **filters: Any) -> dict[str, int]:
        """Samples per tab (all, unlabeled, labeled, to_confirm) matching the filters."""
        q.check_filters(filters)
        with self._replica.reading() as t:
            base = q.filter_mask(t, **filters)
            return {tab: int((q.tab_mask(t, tab) & base).sum()) for tab in q.TABS}

    def to_pandas(self) -> pd.DataFrame:
        """One row per sample (see README for the columns)."""
        return self.query()

    def users(self) -> list[str]:
        """People who labeled samples (values of ``labeled_by``)."""
        with self._replica.reading() as t:
            used = np.unique(t.labeled_by[t.alive])
            return [t.users[c] for c in used.tolist() if c >= 0]

    def groups(self) -> list[str]:
        """Auto-grouping groups in use."""
        with self._replica.reading() as t:
            used = np.unique(t.group[t.alive])
            return [t.groups[c] for c in used.tolist() if c >= 0]

    def __len__(self) -> int:
        return len(self._replica.table)

    def __repr__(self) -> str:
        c = self.counts()
        return (
            f"<jlabel.Dataset {self.url!r}: {c['all']} samples, {c['labeled']} labeled, "
            f"{c['to_confirm']} to confirm, {len(self.labels)} labels>"
        )

    # ------------------------------------------------------------------ helpers
    def _ids(self, ids: Any, *, allow_empty: bool = False) -> list[str]:
        ids = args.sample_ids(ids, allow_empty=allow_empty)
        with self._replica.reading() as table:
            table.rows(ids)  # raises NotFound for an unknown id
        return ids

    def _known_label(self, name: Any) -> None:
        if name not in self._replica.table.masks:
            raise NotFound(f"no label {name!r}; the labels are {self.labels}")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
