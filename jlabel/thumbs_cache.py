"""The on-disk thumbnail cache: keyed by (dataset, id, file version, size), filled in parallel."""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import itertools
import os
import queue
import struct
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sized
from concurrent.futures import Future, ThreadPoolExecutor
from typing import NamedTuple

from jlabel.errors import ImageRejected, NotFound, UnsafePath
from jlabel.images import _reason
from jlabel.thumbs_make import Thumb, make_thumbnail, placeholder

ReadBytes = Callable[[], bytes]
CacheItem = tuple[str, str, str, ReadBytes]
"""`(ds_key, sample_id, file_version, read_bytes)` for `ThumbnailCache.get_many`."""

# cached file: header, UTF-8 error text, JPEG bytes
_HEADER = struct.Struct("<4sIIHHBH")  # magic, orig w, orig h, w, h, flags, error length
_MAGIC_V1 = b"JLT1"
_CORRUPT = 1
_MISSING_ERRORS = (FileNotFoundError, NotFound)
_WRITER_IDLE_S = 5.0  # the writer thread ends after this long without work
_tmp_names = itertools.count()
_caches: weakref.WeakSet[ThumbnailCache] = weakref.WeakSet()


class _Job(NamedTuple):
    future: Future
    path: str
    read_bytes: ReadBytes
    size: int
    defer: bool


def default_cache_dir() -> str:
    """`$JLABEL_CACHE_DIR/thumbs`, else `$XDG_CACHE_HOME/jlabel/thumbs`, else `~/.cache/...`."""
    if os.environ.get("JLABEL_CACHE_DIR"):
        return os.path.join(os.environ["JLABEL_CACHE_DIR"], "thumbs")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jlabel", "thumbs")


def cpu_count() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class ThumbnailCache:
    """Thumbnails cached as files in a local folder, keyed by (dataset, id, file version, size).

    A changed file gets a new `file_version` and so a new entry; an unchanged one is never
    decoded again (corrupt ones included). Writes are atomic (temp file + `os.replace`), a
    damaged entry is recomputed, and when the folder grows beyond `max_bytes` the oldest
    entries are removed. Files that cannot be read (`read_bytes` raised) give a placeholder
    with `missing=True` (file not found) or only `error` set, and are not cached; a file
    `read_bytes` refused gives a `corrupt` placeholder: cached when it is no image
    (`ImageRejected`), not when it is a link out of the root or a FIFO (`UnsafePath`).
    """

    def __init__(
        self,
        directory: str | os.PathLike | None = None,
        *,
        max_bytes: int = 2 * 1024**3,
        workers: int | None = None,
        decoders: int | None = None,
    ) -> None:
        self.directory = os.fspath(directory) if directory is not None else default_cache_dir()
        self.max_bytes = max_bytes
        self.workers = workers or cpu_count()
        """Threads of `get_many` (one per CPU: measured faster for local files than more
        threads waiting for a decode slot; callers pass more `workers` for slow reads)."""
        self.decoders = decoders or cpu_count()
        """How many threads may decode at once (decoding is CPU-bound: one per CPU)."""
        self._decoding = threading.BoundedSemaphore(self.decoders)
        self._written = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pools: dict[int, ThreadPoolExecutor] = {}  # by thread count
        self._pending: dict[str, Thumb] = {}  # computed, not yet on disk (served from here)
        self._unwritten: list[tuple[str, Thumb]] = []  # in _pending, not yet queued to write
        self._inflight: dict[str, Future] = {}  # being computed, by path
        self._now: deque[_Job] = deque()  # jobs waiting for a thread: foreground first
        self._later: deque[_Job] = deque()  # then background (prefetch)
        self._drainers: dict[ThreadPoolExecutor, int] = {}  # running drain tasks per pool
        self._queue: queue.SimpleQueue[list[tuple[str, Thumb]]] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._folders: set[str] = set()
        _caches.add(self)

    def path_for(self, ds_key: str, sample_id: str, file_version: str, size: int) -> str:
        """The cache file of one thumbnail (which may not exist yet)."""
        key = "\x1f".join((str(ds_key), str(sample_id), str(file_version), str(size)))
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        return os.path.join(self.directory, digest[:2], digest[2:] + ".thumb")

    def get(
        self,
        ds_key: str,
        sample_id: str,
        file_version: str,
        read_bytes: ReadBytes,
        size: int = 256,
    ) -> Thumb:
        """The cached thumbnail, or compute it from `read_bytes()` and store it (on disk when
        this returns). Never raises for bad or unreadable image files."""
        if callable(size) and not callable(read_bytes):  # tolerate (…, size, read_bytes)
            read_bytes, size = size, read_bytes
        path = self.path_for(ds_key, sample_id, file_version, size)
        thumb = self._load(path)
        if thumb is None:
            thumb, keep = self._compute(read_bytes, size)
            if keep:
                self._store(path, thumb)
        return thumb

    def get_many(
        self,
        items: Iterable[CacheItem],
        size: int = 256,
        *,
        workers: int | None = None,
        defer_writes: bool = True,
        background: bool = False,
    ) -> list[Thumb]:
        """Thumbnails for `(ds_key, sample_id, file_version, read_bytes)` items, in order.

        Hits are read directly; misses are read and decoded in a thread pool of `workers`
        threads (default `self.workers`; pools are kept for later calls), queued as they are
        found: with a generator of `items`, decoding starts while later items (their file
        versions) are still being looked up. Pillow releases the GIL while decoding and
        resizing; at most `self.decoders` threads decode at once, so more `workers` only
        overlap slow reads (S3). A thumbnail another call is already computing is waited for,
        not computed twice; `background` work (prefetching) waits behind everything else.
        With `defer_writes` the new entries are written to disk by a background thread after
        this returns (until then they are served from memory; `flush()` waits for them).
        """
        threads = workers or self.workers
        one = isinstance(items, Sized) and len(items) == 1
        pool = None if one else self._executor(threads)  # one image: no thread hand-off
        out: list[Thumb | None] = []
        waits: list[tuple[int, Future]] = []
        try:
            for ds_key, sample_id, file_version, read_bytes in items:
                path = self.path_for(ds_key, sample_id, file_version, size)
                thumb = self._load(path)
                if thumb is None:
                    job = None
                    with self._lock:  # another call may have finished or started it meanwhile
                        thumb = self._pending.get(path)
                        future = None if thumb is not None else self._inflight.get(path)
                        if thumb is None and future is None:
                            future = self._inflight[path] = Future()
                            job = _Job(future, path, read_bytes, size, defer_writes)
                    if job is not None and pool is None:
                        self._do(job)
                    elif job is not None:  # queued at once: threads start while we look up
                        self._enqueue(pool, threads, job, background)
                    if future is not None:
                        waits.append((len(out), future))
                out.append(thumb)
            for i, future in waits:
                out[i] = future.result()
        finally:
            if defer_writes:
                self._kick_writer()
        return out  # type: ignore[return-value]  # every slot is filled above

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until deferred writes are on disk; False if `timeout` seconds passed first."""
        self._kick_writer()
        with self._idle:
            return self._idle.wait_for(lambda: not self._pending, timeout)

    def prune(self, max_bytes: int | None = None) -> int:
        """Delete the oldest entries until the cache holds at most 80% of `max_bytes`;
        return the number of bytes removed."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        entries = []
        try:
            for sub in os.scandir(self.directory):
                if sub.is_dir(follow_symlinks=False):
                    for entry in os.scandir(sub.path):
                        st = entry.stat(follow_symlinks=False)
                        entries.append((st.st_mtime, st.st_size, entry.path))
        except OSError:
            return 0
        total = sum(e[1] for e in entries)
        removed = 0
        if total <= limit:
            return 0
        for _, nbytes, path in sorted(entries):
            if total - removed <= 0.8 * limit:
                break
            with contextlib.suppress(OSError):
                os.remove(path)
                removed += nbytes
        with self._lock:
            self._folders.clear()  # a folder may have been emptied by hand meanwhile
        return removed

    def close(self) -> None:
        """Finish deferred writes and stop the worker threads (the cache stays usable; a new
        pool starts on demand)."""
        self.flush()
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.shutdown(wait=True)
            with self._lock:
                self._drainers.pop(pool, None)

    def _enqueue(self, pool: ThreadPoolExecutor, threads: int, job: _Job, background: bool) -> None:
        """Queue `job`; start a drainer on `pool` unless `threads` of them are running. A
        drainer takes the next queued job until none is left: uneven images split evenly,
        foreground jobs go first, and a caller wakes once per image, not per task."""
        with self._lock:
            (self._later if background else self._now).append(job)
            start = self._drainers.get(pool, 0) < threads
            if start:
                self._drainers[pool] = self._drainers.get(pool, 0) + 1
        if start:
            pool.submit(self._drain, pool)

    def _drain(self, pool: ThreadPoolExecutor) -> None:
        while True:
            with self._lock:
                queue_ = self._now or self._later
                if not queue_:
                    self._drainers[pool] = self._drainers.get(pool, 1) - 1
                    return
                job = queue_.popleft()
            self._do(job)

    def _do(self, job: _Job) -> None:
        """Compute one job, make its result visible (memory or disk), then resolve it."""
        try:
            thumb, keep = self._compute(job.read_bytes, job.size)
            if keep and not job.defer:
                self._store(job.path, thumb)
        except BaseException as exc:  # resolve the waiters even on a bug or MemoryError
            with self._lock:
                self._inflight.pop(job.path, None)
            job.future.set_exception(exc)
            return
        with self._lock:
            if keep and job.defer:
                self._pending[job.path] = thumb
                self._unwritten.append((job.path, thumb))
            self._inflight.pop(job.path, None)
        job.future.set_result(thumb)

    def _executor(self, threads: int) -> ThreadPoolExecutor:
        with self._lock:
            pool = self._pools.get(threads)
            if pool is None:
                pool = ThreadPoolExecutor(threads, thread_name_prefix="jlabel-thumb")
                self._pools[threads] = pool
            return pool

    def _load(self, path: str) -> Thumb | None:
        pending = self._pending.get(path)
        if pending is not None:
            return pending
        try:
            with open(path, "rb") as f:
                blob = f.read()
        except OSError:
            return None
        n = _HEADER.size
        if len(blob) < n:
            return None
        magic, ow, oh, w, h, flags, elen = _HEADER.unpack_from(blob)
        jpeg = blob[n + elen :]
        if magic != _MAGIC_V1 or not jpeg.endswith(b"\xff\xd9"):
            return None  # damaged or foreign file: recompute
        error = blob[n : n + elen].decode("utf-8", "replace") if elen else None
        return Thumb(jpeg, w, h, ow or None, oh or None, bool(flags & _CORRUPT), False, error)

    def _compute(self, read_bytes: ReadBytes, size: int) -> tuple[Thumb, bool]:
        """The thumbnail, and whether to cache it (not when the file could not be read)."""
        try:
            data = read_bytes()
        except _MISSING_ERRORS as exc:
            return placeholder(size, missing=True, error=f"missing: {_reason(exc)}"), False
        except ImageRejected as exc:  # its first bytes are no image: as corrupt as can be
            return placeholder(size, corrupt=True, error=f"corrupt: {_reason(exc)}"), True
        except UnsafePath as exc:  # a link out of the root, a FIFO: checked again next time
            return placeholder(size, corrupt=True, error=f"refused: {_reason(exc)}"), False
        except Exception as exc:  # e.g. S3 unreachable: show it, try again next time
            return placeholder(size, error=f"unreadable: {_reason(exc)}"), False
        with self._decoding:  # reads overlap freely; decodes never outnumber the CPUs
            return make_thumbnail(data, size), True

    def _kick_writer(self) -> None:
        """Hand the computed, unwritten entries to the writer thread (started on demand)."""
        with self._lock:  # put and the writer's exit check share the lock: none is stranded
            batch, self._unwritten = self._unwritten, []
            if not batch:
                return
            self._queue.put(batch)
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_loop, name="jlabel-thumb-writer", daemon=True
                )
                self._writer.start()

    def _write_loop(self) -> None:
        while True:
            try:
                batch = self._queue.get(timeout=_WRITER_IDLE_S)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._writer = None
                        return
                continue
            for path, thumb in batch:
                with contextlib.suppress(Exception):  # a failed write only costs a decode later
                    self._store(path, thumb)
                with self._lock:
                    if self._pending.get(path) is thumb:
                        del self._pending[path]
                    if not self._pending:
                        self._idle.notify_all()

    def _store(self, path: str, thumb: Thumb) -> None:
        error = (thumb.error or "").encode("utf-8", "replace")[:4000]
        header = _HEADER.pack(
            _MAGIC_V1,
            thumb.orig_width or 0,
            thumb.orig_height or 0,
            thumb.width,
            thumb.height,
            _CORRUPT if thumb.corrupt else 0,
            len(error),
        )
        folder = os.path.dirname(path)
        tmp = os.path.join(folder, f".tmp-{os.getpid()}-{next(_tmp_names)}")
        try:
            if folder not in self._folders:
                os.makedirs(folder, exist_ok=True)
                with self._lock:
                    self._folders.add(folder)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(header + error + thumb.data)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.remove(tmp)
                raise
        except OSError:  # the cache is an optimisation: a full or read-only disk is not fatal
            with self._lock:
                self._folders.discard(folder)
            return
        with self._lock:
            self._written += len(header) + len(error) + len(thumb.data)
            due = self._written > max(self.max_bytes // 20, 1 << 20)
            if due:
                self._written = 0
        if due:
            self.prune()


@atexit.register
def _flush_all() -> None:
    """Let deferred writes finish when the interpreter exits (at most a few seconds)."""
    for cache in list(_caches):
        cache.flush(timeout=5)
