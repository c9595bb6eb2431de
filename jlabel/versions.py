"""Dataset versions: immutable snapshots under ``.jlabel/versions/<name>/``."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from jlabel import query as q
from jlabel.errors import NotFound, VersionError
from jlabel.files import list_files
from jlabel.store.snapshot import read_parquet, write_parquet

if TYPE_CHECKING:
    from jlabel.dataset import Dataset

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def create(ds: Dataset, name: str | None, description: str) -> dict[str, Any]:
    existing = set(ds._store.list("versions"))
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
    with ds._lock:
        counts = ds.counts()
        meta = {
            "name": name,
            "description": description,
            "created_at": time.time(),
            "created_by": ds.user,
            "samples": counts["all"],
            "labeled": counts["labeled"],
            "label_counts": ds.label_counts(),
        }
        data = write_parquet(ds._table, {"version": meta})
        if not ds._store.create_exclusive(f"versions/{name}/samples.parquet", data):
            if ds._store.read_json(f"versions/{name}/meta.json") is not None:
                raise VersionError(f"version {name!r} already exists: choose another name")
            # an earlier try was cut off before its meta.json: this one completes it
            ds._store.write_bytes(f"versions/{name}/samples.parquet", data)
        ds._store.write_json(f"versions/{name}/meta.json", meta)
        ds._commit({"op": "set_current_version", "name": name}, event="version")
    return meta


def listing(ds: Dataset) -> pd.DataFrame:
    rows = []
    current = ds._table.current_version
    for name in ds._store.list("versions"):
        meta = ds._store.read_json(f"versions/{name}/meta.json")
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
    columns = [
        "name",
        "description",
        "created_at",
        "created_by",
        "samples",
        "labeled",
        "label_counts",
        "current",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("created_at", ignore_index=True)


def use(ds: Dataset, name: str) -> None:
    if ds._store.read_json(f"versions/{name}/meta.json") is None:
        raise NotFound(f"no version {name!r}; see ds.versions() for the names")
    autosave = time.strftime("autosave-%Y%m%d-%H%M%S", time.gmtime())
    suffix = 0
    while ds._store.read_json(
        f"versions/{autosave}{'-' + str(suffix) if suffix else ''}/meta.json"
    ):
        suffix += 1
    autosave = f"{autosave}-{suffix}" if suffix else autosave
    create(ds, autosave, f"working state before switching to {name}")
    ds._commit({"op": "use_version", "name": name}, event="version")
    _flag_missing(ds)


def _flag_missing(ds: Dataset) -> None:
    listing_ = list_files(ds.fs, ds._store.root, stat=False)  # names are all it needs
    t = ds._table
    alive = np.nonzero(t.alive)[0]
    gone = [
        t.ids[r] for r in alive.tolist() if t.ids[r] not in listing_.images and not t.missing[r]
    ]
    back = [t.ids[r] for r in alive.tolist() if t.ids[r] in listing_.images and t.missing[r]]
    if gone:
        ds._commit({"op": "set_missing", "ids": gone, "missing": True})
    if back:
        ds._commit({"op": "set_missing", "ids": back, "missing": False})


def frame(ds: Dataset, name: str) -> pd.DataFrame:
    data = ds._store.read_bytes(f"versions/{name}/samples.parquet")
    if data is None:
        raise NotFound(f"no version {name!r}; see ds.versions() for the names")
    table, _ = read_parquet(data)
    present = list_files(ds.fs, ds._store.root, stat=False).images
    table.missing[:] = [sid not in present for sid in table.ids]
    return q.to_frame(table, np.nonzero(table.alive)[0])
