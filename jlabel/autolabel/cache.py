"""Per-sample arrays (decoded pixels, embeddings) cached on local disk as one raw file of
fixed-size rows, memory-mapped, keyed by (id, file version).

Rows are only ever appended; the index (ids, file versions, row numbers) is written whole,
atomically, after each batch of rows, so it is the commit point: a job killed mid-way keeps
what it had computed, and an index never names a row that was not fully written. When more
than half the rows are stale (files changed, images deleted) the rows still named are copied
to a new file. Writers take an exclusive lock on the folder (where the OS has ``fcntl``).

Local datasets keep their caches under ``<root>/.jlabel/cache/``; remote ones in the user's
cache folder (``$JLABEL_CACHE_DIR/autolabel``, else ``~/.cache/jlabel/autolabel``), keyed by
the dataset's stable key: a memory map needs a local file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: no lock (one kernel per dataset there, as a rule)
    fcntl = None  # type: ignore[assignment]

INDEX = "index.npz"
COMMIT_ROWS = 4096
"""Rows gathered before they are written and the index committed."""
Chunk = tuple[list[str], np.ndarray, dict[str, str]]
"""What a compute step yields: ``(ok_ids, arrays [n, ...], skipped {id: reason})``."""


def default_dir() -> str:
    """``$JLABEL_CACHE_DIR/autolabel``, else ``$XDG_CACHE_HOME/jlabel/autolabel``, else
    ``~/.cache/jlabel/autolabel``."""
    if os.environ.get("JLABEL_CACHE_DIR"):
        return os.path.join(os.environ["JLABEL_CACHE_DIR"], "autolabel")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jlabel", "autolabel")


def folder_for(ds: Any, name: str) -> str | None:
    """The local folder of cache ``name`` for ``ds`` (None when it would lie outside the
    dataset's ``.jlabel/`` folder through a link)."""
    digest = hashlib.sha1(name.encode()).hexdigest()[:16]
    internal = ds.internal
    if not internal.local:
        key = hashlib.sha1(str(internal.key).encode()).hexdigest()[:16]
        return os.path.join(default_dir(), key, f"autolabel-{digest}")
    store = os.path.realpath(internal.store_path())
    folder = os.path.join(store, "cache", f"autolabel-{digest}")
    real = os.path.realpath(folder)
    if os.path.commonpath([store, real]) != store:  # a link leading out of the store
        return None
    return folder


class ArrayCache:
    """Rows of one shape and dtype per sample id, in ``directory`` (see the module doc)."""

    def __init__(self, directory: str, name: str) -> None:
        self.dir = directory
        self.name = name
        self.entries: dict[str, tuple[str, int]] = {}
        """``{id: (file_version, row)}`` as committed."""
        self.data = ""
        self.rows = 0
        self.shape: tuple[int, ...] | None = None
        self.dtype: np.dtype | None = None
        self._map: np.memmap | None = None
        self.load()

    # -- reading --------------------------------------------------------------------------
    def load(self) -> None:
        """Read the index (an empty cache when missing, foreign or damaged)."""
        self.entries, self.data, self.rows, self.shape, self.dtype = {}, "", 0, None, None
        self._map = None
        try:
            with np.load(os.path.join(self.dir, INDEX), allow_pickle=False) as z:
                if str(z["name"]) != self.name:
                    return
                shape = tuple(int(s) for s in z["shape"])
                dtype = np.dtype(str(z["dtype"]))
                data, rows = str(z["data"]), int(z["count"])
                size = os.path.getsize(os.path.join(self.dir, data))
                if size < rows * int(np.prod(shape)) * dtype.itemsize:
                    return  # truncated: start again
                self.entries = {
                    str(i): (str(v), int(r))
                    for i, v, r in zip(z["ids"], z["versions"], z["row"], strict=True)
                }
                self.data, self.rows, self.shape, self.dtype = data, rows, shape, dtype
        except Exception:  # missing, half-written or from another layout: recompute
            self.entries = {}

    def rows_of(self, ids: Sequence[str], versions: Sequence[str]) -> np.ndarray:
        """Row of each id whose cached file version matches, else -1."""
        out = np.full(len(ids), -1, dtype=np.int64)
        for n, (i, v) in enumerate(zip(ids, versions, strict=True)):
            hit = self.entries.get(i)
            if hit is not None and hit[0] == v:
                out[n] = hit[1]
        return out

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The arrays at ``rows`` (a copy in memory, in that order)."""
        assert self.shape is not None and self.dtype is not None
        if self._map is None or len(self._map) < self.rows:
            self._map = np.memmap(
                os.path.join(self.dir, self.data),
                dtype=self.dtype,
                mode="r",
                shape=(self.rows, *self.shape),
            )
        out = np.empty((len(rows), *self.shape), dtype=self.dtype)
        for start in range(0, len(rows), 8192):  # sorted reads within each block
            part = rows[start : start + 8192]
            order = np.argsort(part, kind="stable")
            out[start : start + len(part)][order] = self._map[part[order]]
        return out

    # -- writing --------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        os.makedirs(self.dir, exist_ok=True)
        if fcntl is None:
            yield
            return
        with open(os.path.join(self.dir, ".lock"), "a+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def append(self, ids: Sequence[str], versions: Sequence[str], arrays: np.ndarray) -> None:
        """Write ``arrays`` as new rows for ``ids`` and commit the index."""
        if not len(ids):
            return
        arrays = np.ascontiguousarray(arrays)
        with self._locked():
            self.load()  # the latest committed index: another writer may have added rows
            if self.shape is not None and (
                self.shape != arrays.shape[1:] or self.dtype != arrays.dtype
            ):
                self.entries, self.rows, self.shape = {}, 0, None  # another layout: start again
            if self.shape is None:
                self.shape, self.dtype = tuple(arrays.shape[1:]), arrays.dtype
                self.data, self.rows = f"rows-{secrets.token_hex(4)}.bin", 0
            row_bytes = int(np.prod(self.shape)) * self.dtype.itemsize
            path = os.path.join(self.dir, self.data)
            with open(path, "r+b" if os.path.exists(path) else "wb") as f:
                # past whatever a killed writer left beyond the committed rows
                start = max(self.rows, -(-f.seek(0, os.SEEK_END) // max(1, row_bytes)))
                f.seek(start * row_bytes)
                f.write(arrays.tobytes())
            for n, (i, v) in enumerate(zip(ids, versions, strict=True)):
                self.entries[i] = (v, start + n)
            self.rows = start + len(ids)
            self._map = None
            if self.rows > 2 * len(self.entries) + 1024:
                self._compact()
            self._write_index()

    def _compact(self) -> None:
        assert self.shape is not None
        ids = list(self.entries)
        old = np.array([self.entries[i][1] for i in ids], dtype=np.int64)
        name = f"rows-{secrets.token_hex(4)}.bin"
        with open(os.path.join(self.dir, name), "wb") as f:
            for start in range(0, len(ids), 8192):
                f.write(np.ascontiguousarray(self.read(old[start : start + 8192])).tobytes())
        previous = self.data
        self.entries = {i: (self.entries[i][0], n) for n, i in enumerate(ids)}
        self.data, self.rows, self._map = name, len(ids), None
        self._write_index()
        with contextlib.suppress(OSError):  # open maps elsewhere keep reading the old file
            os.remove(os.path.join(self.dir, previous))

    def _write_index(self) -> None:
        assert self.shape is not None and self.dtype is not None
        ids = list(self.entries)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".index-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(
                    f,
                    name=np.array(self.name),
                    shape=np.array(self.shape, dtype=np.int64),
                    dtype=np.array(self.dtype.str),
                    data=np.array(self.data),
                    ids=np.array(ids, dtype=str),
                    versions=np.array([self.entries[i][0] for i in ids], dtype=str),
                    row=np.array([self.entries[i][1] for i in ids], dtype=np.int64),
                    count=np.array(self.rows, dtype=np.int64),
                )
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, os.path.join(self.dir, INDEX))
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise


def cached_arrays(
    ds: Any,
    ids: Sequence[str],
    name: str,
    compute: Callable[[list[str]], Iterable[Chunk]],
    *,
    use_cache: bool = True,
) -> tuple[list[str], np.ndarray, dict[str, str], int]:
    """Arrays for ``ids``, from the cache where the file version matches, else ``compute``.

    ``compute(missing_ids)`` yields chunks ``(ok_ids, arrays, skipped {id: reason})``; each is
    written to the cache (a memory-mapped file) as it comes, so memory holds one chunk.
    Returns ``(ok_ids, arrays, skipped, n_computed)`` with ``ok_ids`` in the order of ``ids``
    and ``arrays`` one numpy array read back from the cache.
    """
    folder = folder_for(ds, name) if use_cache else None
    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="jlabel-"))
        cache = ArrayCache(folder, name)
        versions = [str(ds.internal.file_version(i)) for i in ids]
        version_of = dict(zip(ids, versions, strict=True))
        rows = cache.rows_of(ids, versions)
        missing = [i for i, r in zip(ids, rows, strict=True) if r < 0]
        skipped: dict[str, str] = {}
        if missing:
            held: list[Chunk] = []

            def flush() -> None:
                ok = [i for c in held for i in c[0]]
                if ok:
                    arrays = np.concatenate([c[1] for c in held if len(c[0])])
                    cache.append(ok, [version_of[i] for i in ok], arrays)
                held.clear()

            for chunk in compute(missing):
                skipped.update(chunk[2])
                held.append(chunk)
                if sum(len(c[0]) for c in held) >= COMMIT_ROWS:
                    flush()
            flush()
            rows = cache.rows_of(ids, versions)
        keep = [n for n, i in enumerate(ids) if rows[n] >= 0 and i not in skipped]
        if not keep:
            return [], np.zeros((0,)), skipped, len(missing)
        out = cache.read(rows[keep])
        return [ids[n] for n in keep], out, skipped, len(missing)
