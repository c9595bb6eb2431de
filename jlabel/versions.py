"""Dataset versions: immutable snapshots under ``.jlabel/versions/<name>/``."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from jlabel import ops
from jlabel import query as q
from jlabel.codec import read_parquet, write_parquet
from jlabel.errors import InvalidArgument, NotFound, VersionError
from jlabel.files import list_files
from jlabel.replica import Replica

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
COLUMNS = (
    "name",
    "description",
    "created_at",
    "created_by",
    "samples",
    "labeled",
    "label_counts",
    "current",
)

Commit = Callable[[ops.Op, str], None]


class Versions:
    """Create, list and use the versions of one dataset."""

    def __init__(self, replica: Replica, commit: Commit) -> None:
        self._replica = replica
        self._store = replica.store
        self._commit = commit

    def create(self, name: str | None, description: str, *, user: str) -> dict[str, Any]:
        """Save the current state as version `name` (``v1``, ``v2``... when None); make it
        current. Returns its metadata."""
        if name is not None and not isinstance(name, str):
            raise InvalidArgument(f"name must be a string or None, not {type(name).__name__}")
        if not isinstance(description, str):
            raise InvalidArgument(f"description must be a string, not {type(description).__name__}")
        existing = set(self._store.list("versions"))
        if name is None:
            n = 1
            while f"v{n}" in existing:
                n += 1
            name = f"v{n}"
        if not _NAME.fullmatch(name):
            raise VersionError(
                f"invalid version name {name!r}: use 1-64 letters, digits, '.', '-' or '_', "
                "starting with a letter or digit"
            )
        with self._replica.reading() as table:
            labeled = q.tab_mask(table, "labeled")
            meta = {
                "name": name,
                "description": description,
                "created_at": time.time(),
                "created_by": user,
                "samples": int(table.alive.sum()),
                "labeled": int(labeled.sum()),
                "label_counts": {n: int((m & table.alive).sum()) for n, m in table.masks.items()},
            }
            data = write_parquet(table, {"version": meta})
            if not self._store.create_exclusive(f"versions/{name}/samples.parquet", data):
                if self._store.read_json(f"versions/{name}/meta.json") is not None:
                    raise VersionError(f"version {name!r} already exists: choose another name")
                # an earlier try was cut off before its meta.json: this one completes it
                self._store.write_bytes(f"versions/{name}/samples.parquet", data)
            self._store.write_json(f"versions/{name}/meta.json", meta)
            self._commit(ops.set_current_version(name), "version")
        return meta

    def listing(self) -> pd.DataFrame:
        """All versions, oldest first, with counts and which one is current."""
        rows = []
        current = self._replica.table.current_version
        for name in self._store.list("versions"):
            meta = self._store.read_json(f"versions/{name}/meta.json")
            if meta is None:
                continue  # a version whose creation was interrupted
            rows.append(
                {
                    "name": meta["name"],
                    "description": meta.get("description", ""),
                    "created_at": pd.Timestamp(meta["created_at"], unit="s", tz="UTC"),
                    "created_by": meta.get("created_by"),
                    "samples": meta.get("samples", 0),
                    "labeled": meta.get("labeled", 0),
                    "label_counts": meta.get("label_counts", {}),
                    "current": meta["name"] == current,
                }
            )
        frame = pd.DataFrame(rows, columns=list(COLUMNS))
        return frame.sort_values("created_at", ignore_index=True)

    def use(self, name: str, *, user: str) -> None:
        """Make version `name` current; the working state is first kept as ``autosave-…``."""
        if not isinstance(name, str):
            raise InvalidArgument(f"name must be a version name, not {type(name).__name__}")
        if not _NAME.fullmatch(name) or self._store.read_json(f"versions/{name}/meta.json") is None:
            raise NotFound(f"no version {name!r}; see ds.versions() for the names")
        self._replica.version_table(name)  # readable, before anything changes
        stamp = time.strftime("autosave-%Y%m%d-%H%M%S", time.gmtime())
        autosave, suffix = stamp, 0
        while self._store.read_json(f"versions/{autosave}/meta.json"):
            suffix += 1
            autosave = f"{stamp}-{suffix}"
        self.create(autosave, f"working state before switching to {name}", user=user)
        self._commit(ops.use_version(name), "version")
        self._flag_missing()

    def _flag_missing(self) -> None:
        listing = list_files(self._store.fs, self._store.root, stat=False)  # names suffice
        with self._replica.reading() as table:
            alive = np.nonzero(table.alive)[0].tolist()
            gone = [table.ids[r] for r in alive if table.ids[r] not in listing.images]
            gone = [sid for sid in gone if not table.missing[table.row_of[sid]]]
            back = [table.ids[r] for r in alive if table.ids[r] in listing.images]
            back = [sid for sid in back if table.missing[table.row_of[sid]]]
            if gone:
                self._commit(ops.set_missing(gone, True), "change")
            if back:
                self._commit(ops.set_missing(back, False), "change")

    def frame(self, name: str) -> pd.DataFrame:
        """A version's samples (``missing`` is True where the source file is gone)."""
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise NotFound(f"no version {name!r}; see ds.versions() for the names")
        data = self._store.read_bytes(f"versions/{name}/samples.parquet")
        if data is None:
            raise NotFound(f"no version {name!r}; see ds.versions() for the names")
        table, _ = read_parquet(data)
        present = list_files(self._store.fs, self._store.root, stat=False).images
        table.missing[:] = [sid not in present for sid in table.ids]
        return q.to_frame(table, np.nonzero(table.alive)[0])
