"""Dataset: the kernel-side model of one labeled image folder (local or S3)."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fsspec
import numpy as np
import pandas as pd

from jlabel import query as q
from jlabel import sample_check
from jlabel import versions as _versions
from jlabel.errors import ImageRejected, JLabelError, NotFound, StorageError
from jlabel.files import info_mtime as file_mtime
from jlabel.files import list_files, safe_join, safe_upload_name
from jlabel.images import validate_upload
from jlabel.internal import DatasetInternals
from jlabel.labels import validate_label_name, validate_label_names
from jlabel.options import AUTO_GROUP, AUTO_LABEL, PRE_LABEL, takes
from jlabel.store import Store
from jlabel.store.journal import Record
from jlabel.store.snapshot import read_parquet, write_parquet
from jlabel.sync import SyncReport, plan_sync
from jlabel.table import SampleTable

if TYPE_CHECKING:
    from jlabel.autolabel import Job

MB = 1024 * 1024
DELETE_MODES = ("label", "samples", "sources")
S3_TIMEOUTS = {"connect_timeout": 5, "read_timeout": 30, "retries": {"max_attempts": 3}}
COMPACT_EVERY = 2000  # journal records of this writer before it compacts into a snapshot
COMPACT_ON_OPEN = 200  # journal records replayed on open that make it compact (off the caller)
LARGE_SYNC = 10_000  # samples added by one sync after which it is compacted at once
RECENT_KEPT = 5000  # applied records kept to tell whether another kernel's older one commutes


def open(
    source: str | os.PathLike[str],
    *,
    storage_options: dict[str, Any] | None = None,
    user: str | None = None,
    sync: bool = True,
) -> Dataset:
    """Open (or create) the dataset of the images at a folder or ``s3://bucket/prefix``.

    The store lives in ``<source>/.jlabel/``. The first open syncs; later opens sync too unless
    ``sync=False``. ``user`` defaults to ``$JLABEL_USER``, then the OS user.
    """
    return Dataset(source, storage_options=storage_options, user=user, sync=sync)


class Dataset:
    """Samples, labels, proposals and versions of one image folder; every change is durable
    when the call returns."""

    def __init__(
        self,
        source: str | os.PathLike[str],
        *,
        storage_options: dict[str, Any] | None = None,
        user: str | None = None,
        sync: bool = True,
    ) -> None:
        url = os.fspath(source)
        options = dict(storage_options or {})
        if url.startswith(("s3://", "s3a://")):  # fail in seconds, not minutes, when S3 is down
            options.setdefault("config_kwargs", S3_TIMEOUTS)
        try:
            fs, root = fsspec.core.url_to_fs(url, **options)
        except (ImportError, ValueError) as exc:
            raise StorageError(f"cannot open {url!r}: {exc}") from exc
        self.fs = fs
        self.url = url
        self.user = user or os.environ.get("JLABEL_USER") or _os_user()
        self.max_image_bytes = 5 * MB
        self.max_batch_bytes = 8 * MB
        self._lock = threading.RLock()
        self._subscribers: list[Callable[[str], None]] = []
        self._store = Store(fs, root.rstrip("/") if root != "/" else root, url)
        self.root = self._store.root if self._store.local else f"s3://{self._store.root}"
        self._check_root()
        self.key = self._ensure_meta()
        self._table = SampleTable()
        self._gen = 0
        self._watermarks: dict[str, int] = {}
        self._last_key: tuple[float, str, int] = (0.0, "", -1)
        self._compactor: threading.Thread | None = None
        self._compact_lock = threading.Lock()
        self._recent: list[tuple[tuple[float, str, int], frozenset[str] | None]] = []
        self.internal = DatasetInternals(self)
        """What jlabel's own layers (auto-labeling, export, widget) use; not for users."""
        with self._lock:
            replayed = self._load()
        if replayed >= COMPACT_ON_OPEN:
            self._compact_in_background()
        if sync:
            self.sync()

    # ------------------------------------------------------------------ opening
    def _check_root(self) -> None:
        root = self._store.root
        with self._store.errors("open the dataset"):
            if self._store.local:
                if not os.path.isdir(root):
                    raise NotFound(
                        f"folder {self.url!r} does not exist: create it (or check the path), "
                        "then open it again"
                    )
                return
            bucket = root.split("/", 1)[0]
            try:
                self.fs.info(bucket)
            except FileNotFoundError:
                raise NotFound(
                    f"bucket {bucket!r} of {self.url!r} does not exist or these credentials "
                    "cannot see it: create it or check storage_options"
                ) from None

    def _ensure_meta(self) -> str:
        meta = self._store.read_json("meta.json")
        if meta is None:
            meta = {"format": 1, "key": uuid.uuid4().hex, "created_at": time.time()}
            data = json.dumps(meta).encode()
            if not self._store.create_exclusive("meta.json", data):
                meta = self._store.read_json("meta.json")
        return str(meta["key"])

    def _load(self) -> int:
        """Rebuild the table from the newest snapshot plus the journal; returns records replayed.

        A compactor deletes journal records only after its newer snapshot exists, so a load
        that sees no newer snapshot after reading the journal saw every record.
        """
        for _ in range(20):
            replayed = self._load_once()
            if not self._newer_snapshot():
                return replayed
        raise StorageError(
            f"the snapshots of {self.url} kept changing while being read (other kernels "
            "compacting); open it again"
        )

    def _newer_snapshot(self) -> bool:
        gens = self._store.snapshot_gens()
        return bool(gens) and gens[-1] > self._gen

    def _load_once(self) -> int:
        latest = self._store.read_latest_snapshot()
        gen = 0
        if latest is not None:
            gen, data = latest
            table, meta = read_parquet(data)
            table.undo_stack = meta.get("undo_stack", [])
            table.current_version = meta.get("current_version")
            watermarks = {k: int(v) for k, v in meta.get("watermarks", {}).items()}
        else:
            table, watermarks = SampleTable(), {}
        self._store.journal.reset()
        records = self._store.read_journal(watermarks)
        self._table, self._gen, self._watermarks = table, gen, watermarks
        self._last_key = (0.0, "", -1)
        self._recent = []
        for record in records:
            self._apply_record(record)
        return len(records)

    def _apply_record(self, record: Record) -> None:
        if record.op["op"] == "use_version":
            self._load_version_rows(record.op["name"])
        else:
            self._table.apply(record.op)
        self._watermarks[record.writer] = max(self._watermarks.get(record.writer, -1), record.seq)
        key = (record.t, record.writer, record.seq)
        self._last_key = max(self._last_key, key)
        self._recent.append((key, _touched(record.op)))
        del self._recent[:-RECENT_KEPT]

    def _commutes(self, record: Record) -> bool:
        """True if applying `record` now gives the state a replay in time order would give:
        nothing applied after its time touched the same samples (or the whole table)."""
        key = (record.t, record.writer, record.seq)
        if self._recent and len(self._recent) == RECENT_KEPT and self._recent[0][0] > key:
            return False
        ids = _touched(record.op)
        for later, touched in reversed(self._recent):
            if later < key:
                break
            if ids is None or touched is None or not ids.isdisjoint(touched):
                return False
        return True

    # ------------------------------------------------------------------ committing
    def _commit(self, op: dict[str, Any], event: str = "change") -> None:
        """Journal `op` durably, then apply it. Callers validate first."""
        with self._lock:
            record = self._store.append(op)
            self._apply_record(record)
            due = self._store.seq >= COMPACT_EVERY
        if due:
            self._compact_in_background()
        self._notify(event)

    def _compact_in_background(self) -> None:
        """Compact off the caller's path: a label action never waits for a snapshot."""
        with self._lock:
            if self._compactor is not None and self._compactor.is_alive():
                return
            # Not a daemon: the interpreter waits for it at exit, so a kernel that ends mid
            # compaction never tears down a thread inside pyarrow (that aborts the process).
            self._compactor = threading.Thread(target=self._compact_quietly, name="jlabel-compact")
            self._compactor.start()

    def _compact_quietly(self) -> None:
        with contextlib.suppress(JLabelError):  # the journal keeps everything; next one retries
            self.compact()

    def compact(self) -> bool:
        """Write the current state as a new snapshot and drop the journal it includes.

        Returns False when another kernel wrote a snapshot first (its journal is kept; nothing is
        lost, the next compaction retries).
        """
        with self._compact_lock:  # one compaction at a time per Dataset
            with self._lock:
                self.refresh(notify=False)
                base = self._gen
                frozen = self._table.copy()
                watermarks = dict(self._watermarks)
                old_writer = self._store.rotate_writer()
            data = write_parquet(frozen, {"watermarks": watermarks, "gen": base + 1})
            if not self._store.write_snapshot(base + 1, data):
                return False
            if self._store.snapshot_gens()[-1] != base + 1:
                # Our number was free only because old snapshots get deleted: newer ones exist,
                # so ours is stale. Withdraw it and keep the journal (nothing is lost).
                self._store.delete(f"snapshots/{base + 1:08d}.parquet")
                return False
            with self._lock:
                self._gen = max(self._gen, base + 1)
                with self._store.errors("clean up the journal"):
                    self._store.journal.delete_included(watermarks, {old_writer})
                self._store.delete_snapshots_before(base + 1, keep=1)
            return True

    def refresh(self, *, notify: bool = True) -> bool:
        """Pick up changes other kernels made; returns True if anything changed."""
        sample_check.reread(self)
        with self._lock:
            gens = self._store.snapshot_gens()
            if gens and gens[-1] > self._gen:
                before = dict(self._watermarks)
                self._load()
                changed = self._watermarks != before  # a compaction alone changes nothing
            else:
                records = self._store.read_journal(self._watermarks)
                changed = bool(records)
                # Another kernel's older operations apply in place when they touch other
                # samples than what we did since (the usual case: two people, two pages);
                # otherwise replay everything in time order. A snapshot that appeared while
                # we read may have taken records with it: then reload too.
                if not self._newer_snapshot() and all(self._commutes(r) for r in records):
                    for record in records:
                        self._apply_record(record)
                else:
                    self._load()
        if changed and notify:
            self._notify("refresh")
        return changed

    def close(self) -> None:
        """Finish a running background compaction, then release this kernel's journal file."""
        compactor = self._compactor
        if compactor is not None and compactor is not threading.current_thread():
            compactor.join()
        self._store.journal.close()

    def subscribe(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call `callback(event)` after every visible change; returns an unsubscribe function."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def _notify(self, event: str) -> None:
        for callback in list(self._subscribers):
            with contextlib.suppress(Exception):  # a broken view must not break labeling
                callback(event)

    # ------------------------------------------------------------------ labels
    @property
    def labels(self) -> list[str]:
        """The label set, in order."""
        return self._table.labels

    def add_labels(self, *names: str) -> None:
        """Add names to the label set (existing ones are ignored)."""
        new = [n for n in validate_label_names(_flatten(names)) if n not in self._table.masks]
        if new:
            self._commit({"op": "add_labels", "names": new})

    def label(self, ids: str | Iterable[str], *names: str) -> None:
        """Add labels to samples (manual labels; clears their proposals)."""
        ids, names_ = self._ids(ids), validate_label_names(_flatten(names))
        if not names_:
            raise JLabelError("label(ids, *names) needs at least one label name")
        if ids:
            self._commit(
                {"op": "label", "ids": ids, "names": names_, "user": self.user, "t": time.time()}
            )

    def unlabel(self, ids: str | Iterable[str], *names: str) -> None:
        """Remove the given labels from samples; no names removes all their labels."""
        ids = self._ids(ids)
        if ids:
            self._commit({"op": "unlabel", "ids": ids, "names": list(_flatten(names)) or None})

    def replace_label(self, ids: str | Iterable[str], old: str, new: str) -> int:
        """On the samples of `ids` that carry `old`, put `new` in its place (one operation, one
        undo); returns how many samples changed."""
        ids, new = self._ids(ids), validate_label_name(new)
        with self._lock:
            t = self._table
            mask = t.masks.get(old)
            having = 0 if mask is None else int(mask[t.rows(ids)].sum()) if ids else 0
            if having and old != new:
                self._commit(
                    {
                        "op": "replace_label",
                        "ids": ids,
                        "old": old,
                        "new": new,
                        "user": self.user,
                        "t": time.time(),
                    }
                )
        return having if old != new else 0

    def label_impact(self, name: str) -> dict[str, int]:
        """What deleting label `name` touches: ``{"images": samples carrying it, "only": samples
        carrying only it}`` (those a ``mode="samples"`` deletion removes)."""
        if name not in self._table.masks:
            raise NotFound(f"no label {name!r}; the labels are {self.labels}")
        with self._lock:
            t = self._table
            having = t.masks[name] & t.alive
            return {"images": int(having.sum()), "only": int((having & (t.n_labels == 1)).sum())}

    def rename_label(self, old: str, new: str) -> None:
        """Rename a label everywhere; if `new` exists the two are merged."""
        validate_label_name(new)
        if old not in self._table.masks:
            raise NotFound(f"no label {old!r}; the labels are {self.labels}")
        if old != new:
            self._commit({"op": "rename_label", "old": old, "new": new})

    def delete_label(self, name: str, *, mode: str = "label") -> int:
        """Delete a label. mode: "label" (only the label), "samples" (also the samples that had
        only this label), "sources" (also their source files). Returns samples removed."""
        if mode not in DELETE_MODES:
            raise JLabelError(f"mode={mode!r}: use one of {', '.join(DELETE_MODES)}")
        if name not in self._table.masks:
            raise NotFound(f"no label {name!r}; the labels are {self.labels}")
        with self._lock:
            t = self._table
            only = np.nonzero(t.masks[name] & (t.n_labels == 1) & t.alive)[0]
            doomed = t.ids[only].tolist() if mode != "label" else []
            self._commit({"op": "delete_label", "name": name, "mode": mode})
        if mode == "sources":
            self._delete_files(doomed)
        return len(doomed)

    def label_counts(self) -> dict[str, int]:
        """Samples per label, in label-set order."""
        with self._lock:
            alive = self._table.alive
            return {n: int((m & alive).sum()) for n, m in self._table.masks.items()}

    def users(self) -> list[str]:
        """People who labeled samples (values of `labeled_by`)."""
        with self._lock:
            used = np.unique(self._table.labeled_by[self._table.alive])
            return [self._table.users[c] for c in used.tolist() if c >= 0]

    def groups(self) -> list[str]:
        """Auto-grouping groups in use."""
        with self._lock:
            used = np.unique(self._table.group[self._table.alive])
            return [self._table.groups[c] for c in used.tolist() if c >= 0]

    # ------------------------------------------------------------------ proposals
    def set_proposals(
        self,
        ids: Iterable[str],
        labels: list[list[str]],
        scores: list[list[float]],
        *,
        hardness: list[float] | None = None,
        hard: list[bool] | None = None,
    ) -> None:
        """Store auto-labeling proposals (they go to the to_confirm tab)."""
        ids = self._ids(ids)
        labels = [validate_label_names(names) for names in labels]
        if not (len(ids) == len(labels) == len(scores)):
            raise JLabelError("set_proposals: ids, labels and scores must have the same length")
        self._commit(
            {
                "op": "set_proposals",
                "ids": ids,
                "labels": labels,
                "scores": [[float(s) for s in row] for row in scores],
                "hardness": None if hardness is None else [_opt_float(h) for h in hardness],
                "hard": None if hard is None else [bool(h) for h in hard],
            }
        )
        sample_check.forget_if_reproposed(self, ids)  # its answers were about old proposals

    def set_proposal(self, ids: str | Iterable[str], *names: str) -> None:
        """Edit the proposed labels of samples before confirming them."""
        ids = self._ids(ids)
        self._commit(
            {"op": "set_proposal", "ids": ids, "names": validate_label_names(_flatten(names))}
        )

    def confirm(self, ids: str | Iterable[str] | None = None) -> int:
        """Accept proposals (all when ids is None) as labels (source "auto"); returns how many."""
        with self._lock:
            if ids is None:
                count = int((self._table.has_proposal & self._table.alive).sum())
                payload = None
            else:
                payload = self._ids(ids)
                rows = self._table.rows(payload)
                count = int(self._table.has_proposal[rows].sum())
            if count:
                self._commit({"op": "confirm", "ids": payload, "user": self.user, "t": time.time()})
        return count

    def reject(self, ids: str | Iterable[str]) -> None:
        """Drop proposals; the samples go back to the unlabeled tab."""
        ids = self._ids(ids)
        if ids:
            self._commit({"op": "reject", "ids": ids})

    def set_hard(
        self, ids: str | Iterable[str], hard: bool | list[bool] = True, hardness: Any = None
    ) -> None:
        """Mark (or unmark) samples as hard examples, with optional hardness scores."""
        ids = self._ids(ids)
        hard_list = [bool(h) for h in hard] if isinstance(hard, list) else [bool(hard)] * len(ids)
        op = {"op": "set_hard", "ids": ids, "hard": hard_list}
        if hardness is not None:
            op["hardness"] = [_opt_float(h) for h in hardness]
        self._commit(op)

    def set_groups(self, ids: Iterable[str], groups: list[str]) -> None:
        """Set the auto-grouping attribute of samples."""
        ids = self._ids(ids)
        self._commit({"op": "set_groups", "ids": ids, "groups": [str(g) for g in groups]})

    def record_image_info(
        self, ids: list[str], widths: list[int], heights: list[int], corrupt: list[bool]
    ) -> None:
        """Remember decoded sizes and corrupt flags (from thumbnails); not undoable."""
        t = self._table
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
            self._commit(
                {
                    "op": "image_info",
                    "ids": [ids[i] for i in todo],
                    "widths": [-1 if widths[i] is None else int(widths[i]) for i in todo],
                    "heights": [-1 if heights[i] is None else int(heights[i]) for i in todo],
                    "corrupt": [bool(corrupt[i]) for i in todo],
                },
                event="image_info",
            )

    # ------------------------------------------------------------------ images
    def sync(self, *, prune: bool = False) -> SyncReport:
        """Pick up new and removed images and new or edited `.txt`/`.xml` label files.

        Removed images are flagged ``missing`` (labels kept); ``prune=True`` drops them. Local
        images are listed by name, not stat'ed (a stat per file would cost ~10x the listing):
        a file edited in place needs no sync, thumbnails follow `file_version`. On S3 the
        listing carries sizes and mtimes, and edited files are reported as ``changed``.
        """
        start = time.perf_counter()
        with self._store.errors("list the images"):
            listing = list_files(self.fs, self._store.root, stat=False)
        with self._lock:
            ops, report = plan_sync(self._table, listing, self._read_rel, prune=prune)
            for op in ops:
                self._commit(op, event="sync")
        if len(report.added) >= LARGE_SYNC:  # a big journal record: fold it into a snapshot
            self._compact_in_background()
        report.seconds = time.perf_counter() - start
        return report

    def add_images(self, files: Iterable[Any]) -> list[str]:
        """Add images from paths or ``(filename, bytes)`` pairs; returns the new ids.

        JPG/JPEG/PNG/BMP whose bytes really are that format, each at most ``max_image_bytes``
        (5 MB), together at most ``max_batch_bytes`` (8 MB). Files are saved at the top of the
        root under their base name; a taken name gets a ``-N`` suffix; nothing is overwritten.
        """
        items = [_read_item(f) for f in files]
        total = sum(len(data) for _, data in items)
        if total > self.max_batch_bytes:
            raise ImageRejected(
                f"these {len(items)} images are {total / MB:.1f} MB together; at most "
                f"{self.max_batch_bytes / MB:g} MB can be added at once: "
                "add them in smaller batches"
            )
        for name, data in items:
            validate_upload(name, data, max_bytes=self.max_image_bytes)
        with self._lock:
            chosen: list[str] = []

            def taken(candidate: str) -> bool:
                return (
                    candidate in chosen
                    or candidate in self._table.row_of
                    or self.fs.exists(safe_join(self._store.root, candidate))
                )

            for name, _ in items:
                chosen.append(safe_upload_name(name, taken))
            rows = []
            for sid, (_, data) in zip(chosen, items, strict=True):
                self._write_new_file(sid, data)
                rows.append(
                    {
                        "id": sid,
                        "size": len(data),
                        "mtime": self._mtime(sid),
                        "created_at": time.time(),
                    }
                )
            if rows:
                self._commit({"op": "add_samples_manual", "rows": rows})
        return chosen

    def delete_images(self, ids: str | Iterable[str], *, delete_sources: bool = False) -> None:
        """Remove samples from the dataset; with ``delete_sources`` also delete their files
        (other versions that reference them then show them as missing)."""
        ids = self._ids(ids)
        if ids:
            self._commit({"op": "remove_samples", "ids": ids})
        if delete_sources:
            self._delete_files(ids)

    def read_bytes(self, sample_id: str) -> bytes:
        """The source file's bytes."""
        with self._store.errors(f"read {sample_id!r}"):
            return self.fs.cat_file(self.source_path(sample_id))

    def source_path(self, sample_id: str) -> str:
        """The sample's path on the dataset's filesystem."""
        return safe_join(self._store.root, sample_id)

    def file_version(self, sample_id: str) -> str:
        """Changes whenever the source file changes: its size and mtime.

        Local files are stat'ed now (sync lists names only, so a file edited in place gets a
        new version without a sync); remote ones use what the last sync listed.
        """
        row = self._table.row_of.get(sample_id)
        if row is None:
            raise NotFound(f"no sample with id {sample_id!r}")
        if self._store.local:
            try:
                st = os.stat(self.source_path(sample_id))
            except OSError:  # missing: the thumbnail is a placeholder whatever the version
                return "missing"
            return f"{st.st_size}-{st.st_mtime:.6f}"
        return f"{int(self._table.size[row])}-{self._table.mtime[row]:.6f}"

    def _read_rel(self, rel: str) -> bytes:
        return self.fs.cat_file(safe_join(self._store.root, rel))

    def _mtime(self, sid: str) -> float:
        return file_mtime(self.fs.info(self.source_path(sid)))

    def _write_new_file(self, sid: str, data: bytes) -> None:
        path = self.source_path(sid)
        with self._store.errors(f"save {sid!r}"):
            if self._store.local:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    os.write(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            else:
                self.fs.pipe_file(path, data)

    def _delete_files(self, ids: list[str]) -> None:
        with self._store.errors("delete source files"):
            for sid in ids:
                path = self.source_path(sid)  # refuses anything outside the root
                if self.fs.exists(path):
                    self.fs.rm_file(path)

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
        offset: int = 0,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Samples of a tab matching every given filter, as a DataFrame (columns of `to_pandas`).

        tab: "all", "unlabeled", "labeled", "to_confirm". created: "day", "month" or (start, end).
        ids: only these samples (unknown ids are ignored).
        """
        filters = {
            "labels": labels,
            "hard": hard,
            "created": created,
            "name": name,
            "labeled_by": labeled_by,
            "group": group,
            "ids": ids,
        }
        with self._lock:
            rows = self._query_rows(tab, filters)
            end = None if limit is None else offset + limit
            return q.to_frame(self._table, rows[offset:end])

    def count(self, *, tab: str = "all", **filters: Any) -> int:
        """How many samples `query` would return."""
        with self._lock:
            return int((q.tab_mask(self._table, tab) & q.filter_mask(self._table, **filters)).sum())

    def counts(self, **filters: Any) -> dict[str, int]:
        """Samples per tab (all, unlabeled, labeled, to_confirm) matching the filters."""
        with self._lock:
            base = q.filter_mask(self._table, **filters)
            return {tab: int((q.tab_mask(self._table, tab) & base).sum()) for tab in q.TABS}

    def _query_rows(self, tab: str, filters: dict[str, Any]) -> np.ndarray:
        mask = q.tab_mask(self._table, tab) & q.filter_mask(self._table, **filters)
        return q.sorted_rows(self._table, mask, tab)

    def query_ids(self, *, tab: str = "all", **filters: Any) -> list[str]:
        """Ids `query` would return (same filters), without building a DataFrame."""
        with self._lock:
            return self._table.ids[self._query_rows(tab, filters)].tolist()

    def to_pandas(self) -> pd.DataFrame:
        """One row per sample (see README for the columns)."""
        return self.query()

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        c = self.counts()
        return (
            f"<jlabel.Dataset {self.url!r}: {c['all']} samples, {c['labeled']} labeled, "
            f"{c['to_confirm']} to confirm, {len(self.labels)} labels>"
        )

    # ------------------------------------------------------------------ undo
    def undo(self) -> str | None:
        """Undo the last undoable operation (also after a restart); returns what was undone."""
        with self._lock:
            stack = self._table.undo_stack
            if not stack:
                return None
            top = stack[-1]
            self._commit({"op": "undo"}, event="undo")
        if top["op"] == "add_samples_manual":
            self._delete_files(list(top["restore"].get("remove_ids", [])))
        return top["op"]

    # ------------------------------------------------------------------ versions
    def create_version(self, name: str | None = None, description: str = "") -> dict[str, Any]:
        """Save the current state as an immutable version and make it the current one."""
        return _versions.create(self, name, description)

    def versions(self) -> pd.DataFrame:
        """All versions, oldest first, with counts and which one is current."""
        return _versions.listing(self)

    def use_version(self, name: str) -> None:
        """Make a version current; the working state is first kept as an ``autosave-…`` version."""
        _versions.use(self, name)

    def version_frame(self, name: str) -> pd.DataFrame:
        """A version's samples (``missing`` is True where the source file is gone)."""
        return _versions.frame(self, name)

    def _load_version_rows(self, name: str) -> None:
        data = self._store.read_bytes(f"versions/{name}/samples.parquet")
        if data is None:
            raise NotFound(f"version {name!r} has no data in {self.url}")
        table, _ = read_parquet(data)
        table.undo_stack = self._table.undo_stack
        table.current_version = name
        self._table = table

    # ------------------------------------------------------------------ checking proposals
    def sample_proposals(self, n: int = 20, *, seed: int | None = None) -> list[str]:
        """Draw `n` random To Be Confirmed proposals for the user to review; returns their ids.

        Review each (confirm, edit then confirm, or reject); `sample_check()` then estimates
        the precision of the remaining proposals from the share confirmed as proposed.
        """
        return sample_check.draw(self, n, seed)

    def sample_check(self) -> dict[str, Any] | None:
        """Progress and precision estimate of the last `sample_proposals` draw (None: none)."""
        with self._lock:
            return sample_check.status(self)

    # ------------------------------------------------------------------ store helpers
    def store_path(self, *parts: str) -> str:
        """A path inside ``<root>/.jlabel/``."""
        return self._store.path(*parts)

    def write_store_json(self, rel: str, obj: Any) -> None:
        """Atomically write JSON under ``.jlabel/``."""
        self._store.write_json(rel, obj)

    def read_store_json(self, rel: str) -> Any:
        """JSON under ``.jlabel/``, or None."""
        return self._store.read_json(rel)

    # ------------------------------------------------------------------ other layers
    @takes(AUTO_LABEL, returns="Job")
    def auto_label(self, **options: Any) -> Job:
        """Start an active-learning job that proposes labels for the unlabeled images.

        The job runs in a background thread (one at a time per dataset; later ones queue);
        proposals go to the To Be Confirmed tab with hard examples marked.
        """
        from jlabel.autolabel import start_auto_label

        return start_auto_label(self, **options)

    @takes(PRE_LABEL, returns="Job")
    def pre_label(self, model: Any, **options: Any) -> Job:
        """Start a job that labels the unlabeled images with an existing model."""
        from jlabel.autolabel import start_pre_label

        return start_pre_label(self, model, **options)

    @takes(AUTO_GROUP, returns="Job")
    def auto_group(self, **options: Any) -> Job:
        """Start a job that clusters the images by their embeddings and sets their ``group``."""
        from jlabel.autolabel import start_auto_group

        return start_auto_group(self, **options)

    @property
    def jobs(self):
        """The auto-labeling job queue of this dataset."""
        from jlabel.autolabel import job_queue

        return job_queue(self)

    def job_history(self) -> list[dict]:
        """Past and current jobs, newest first."""
        from jlabel.autolabel import job_history

        return job_history(self)

    def export(self, path: str | os.PathLike[str], **kwargs: Any) -> str:
        """Export labeled samples (ImageFolder, CSV, COCO, VOC); see jlabel.export."""
        from jlabel.export import export

        return export(self, path, **kwargs)

    def to_torch(self, **kwargs: Any):
        """A torch.utils.data.Dataset of (image tensor, target); see jlabel.export."""
        from jlabel.export import to_torch

        return to_torch(self, **kwargs)

    def labeler(self, **kwargs: Any):
        """The labeling widget for this dataset."""
        from jlabel.widget import Labeler

        return Labeler(self, **kwargs)

    # ------------------------------------------------------------------ helpers
    def _ids(self, ids: str | Iterable[str]) -> list[str]:
        ids = [ids] if isinstance(ids, str) else [str(i) for i in ids]
        with self._lock:
            self._table.rows(ids)  # raises NotFound for an unknown id
        return list(dict.fromkeys(ids))


def _touched(op: dict[str, Any]) -> frozenset[str] | None:
    """Sample ids an operation touches; None when it touches the label set or the whole table."""
    if op["op"] in ("add_samples", "add_samples_manual"):
        return frozenset(r["id"] for r in op["rows"])
    if op["op"] == "add_files":
        return frozenset(op["ids"])
    if op["op"] in ("add_labels", "rename_label", "delete_label", "undo", "use_version"):
        return None
    ids = op.get("ids")
    return None if ids is None else frozenset(ids)


def _flatten(names: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for name in names:
        if isinstance(name, (list, tuple)):
            out.extend(name)
        else:
            out.append(name)
    return out


def _read_item(item: Any) -> tuple[str, bytes]:
    if isinstance(item, (tuple, list)) and len(item) == 2:
        name, data = item
        return str(name), bytes(data)
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        try:
            return path.name, path.read_bytes()
        except OSError as exc:
            raise ImageRejected(f"cannot read {str(item)!r}: {exc}") from exc
    raise ImageRejected(
        f"cannot add {type(item).__name__}: give file paths or (filename, bytes) pairs"
    )


def _opt_float(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
