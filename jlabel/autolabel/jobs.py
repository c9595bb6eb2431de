"""Background jobs: one running at a time per dataset, the rest queued; history kept as JSON."""

from __future__ import annotations

import atexit
import contextlib
import secrets
import threading
import traceback
import weakref
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from jlabel.errors import JobError, PreconditionError

STATUSES = ("queued", "running", "done", "failed", "cancelled")
_FINISHED = ("done", "failed", "cancelled")


class Cancelled(Exception):
    """Raised inside a job body by :meth:`Job.check` once :meth:`Job.cancel` was called."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class Job:
    """A queued, running or finished auto-labeling job of one dataset.

    Attributes: ``id``, ``kind`` (``"auto_label"``, ``"pre_label"``, ``"auto_group"``), ``params``,
    ``status`` (``"queued"``, ``"running"``, ``"done"``, ``"failed"``, ``"cancelled"``),
    ``progress`` (0.0-1.0), ``message`` (current step), ``result`` (summary dict when done),
    ``error`` (str or None), ``created_at``, ``started_at``, ``finished_at`` (ISO strings, UTC).
    """

    def __init__(self, kind: str, params: dict[str, Any], body: Callable[[Job], dict]) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        self.id: str = f"{stamp}-{kind}-{secrets.token_hex(3)}"
        self.kind = kind
        self.params = params
        self.status = "queued"
        self.progress = 0.0
        self.message = "queued"
        self.result: dict[str, Any] | None = None
        self.error: str | None = None
        self.created_at: str = _now()
        self.started_at: str | None = None
        self.finished_at: str | None = None
        self._body = body
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[Job], None]] = []

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.status} {self.progress:.0%} {self.message!r}>"

    # -- public API ---------------------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> Job:
        """Block until the job finished; raise ``JobError`` if it failed or ``timeout`` passed."""
        if not self._finished.wait(timeout):
            raise JobError(f"Job {self.id} still {self.status} after {timeout} s; wait longer.")
        if self.status == "failed":
            raise JobError(f"Job {self.id} failed: {self.error}")
        return self

    def cancel(self) -> None:
        """Ask the job to stop: a queued job never starts, a running one stops at its next check."""
        self._cancel.set()
        if self.status == "queued":
            self.message = "cancelling"

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._cancel.is_set()

    @property
    def done(self) -> bool:
        """Whether the job finished (done, failed or cancelled)."""
        return self._finished.is_set()

    def subscribe(self, callback: Callable[[Job], None]) -> Callable[[], None]:
        """Call ``callback(job)`` on every progress/status change; returns an unsubscriber."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (what the history stores)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "params": self.params,
            "status": self.status,
            "progress": self.progress,
            "message": self.message,
            "result": self.result,
            "error": self.error,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }

    # -- used by job bodies -------------------------------------------------------------------
    def check(self) -> None:
        """Raise ``Cancelled`` if cancel was asked; job bodies call it between batches/epochs."""
        if self._cancel.is_set():
            raise Cancelled

    def report(self, progress: float | None = None, message: str | None = None) -> None:
        """Update progress (0-1) and/or the current step, notify subscribers, check cancel."""
        if progress is not None:
            self.progress = float(min(1.0, max(self.progress, progress)))
        if message is not None:
            self.message = message
        self._notify()
        self.check()

    def _notify(self) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            with contextlib.suppress(Exception):  # a broken view must not end the job
                callback(self)


_LIVE_QUEUES: weakref.WeakSet[JobQueue] = weakref.WeakSet()
EXIT_WAIT_S = 30.0


def _cancel_jobs_at_exit() -> None:
    """Cancel running jobs when the kernel exits and give them time to stop.

    A job thread still inside torch or pyarrow when the interpreter tears it down aborts the
    process; a cancelled job stops at its next progress step and records itself as cancelled.
    """
    queues = list(_LIVE_QUEUES)
    for queue in queues:
        queue.cancel_all()
    for queue in queues:
        thread = queue._thread
        if thread is not None:
            thread.join(EXIT_WAIT_S)


# threading's exit hooks run first at shutdown, before atexit handlers (torch's among them)
# start tearing down what a running job still uses; plain atexit where Python lacks them.
getattr(threading, "_register_atexit", atexit.register)(_cancel_jobs_at_exit)


class JobQueue:
    """The jobs of one dataset object: one worker thread runs them in order."""

    def __init__(self, ds: Any) -> None:
        _LIVE_QUEUES.add(self)
        self._ds = weakref.ref(ds)
        self._lock = threading.Lock()
        self._queue: deque[Job] = deque()
        self._current: Job | None = None
        self._thread: threading.Thread | None = None
        self._finished: list[Job] = []

    @property
    def current(self) -> Job | None:
        """The running job, or None."""
        return self._current

    @property
    def queued(self) -> list[Job]:
        """Jobs waiting to run, oldest first."""
        with self._lock:
            return [job for job in self._queue if not job.cancelled]

    @property
    def busy(self) -> bool:
        """Whether a job is running or waiting."""
        return self._current is not None or bool(self.queued)

    def submit(self, job: Job, *, queue: bool = True) -> Job:
        """Queue ``job``; with ``queue=False`` raise ``PreconditionError`` if one is running."""
        with self._lock:
            running = self._current
            if not queue and (running is not None or self._queue):
                other = running or self._queue[0]
                raise PreconditionError(
                    f"Job {other.id} ({other.kind}) is still {other.status} on this dataset. "
                    "Wait for it (job.wait()), cancel it (job.cancel()), or pass queue=True."
                )
            self._queue.append(job)
            self._save(job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="jlabel-jobs", daemon=True)
                self._thread.start()
        return job

    def cancel_all(self) -> None:
        """Cancel the running job and every queued one."""
        with self._lock:
            jobs = [*self._queue, *([self._current] if self._current else [])]
        for job in jobs:
            job.cancel()

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._thread = None
                    return
                job = self._queue.popleft()
                self._current = job
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._current = None
                    self._finished.append(job)

    def _run(self, job: Job) -> None:
        if job.cancelled:
            self._finish(job, "cancelled", "cancelled before it started")
            return
        job.status = "running"
        job.started_at = _now()
        job.message = "starting"
        self._save(job)
        job._notify()
        try:
            job.result = job._body(job)
        except Cancelled:
            self._finish(job, "cancelled", "cancelled")
        except Exception as exc:  # the job fails, the kernel and the queue live on
            if job.cancelled:  # what broke after a cancel (say, the kernel exiting) is not news
                self._finish(job, "cancelled", "cancelled")
                return
            job.error = f"{type(exc).__name__}: {exc}"
            job.result = {"traceback": traceback.format_exc(limit=8)}
            self._finish(job, "failed", "failed")
        else:
            job.progress = 1.0
            self._finish(job, "done", "done")

    def _finish(self, job: Job, status: str, message: str) -> None:
        job.status = status
        job.message = message
        job.finished_at = _now()
        self._save(job)
        job._notify()  # before waking wait(): views are final when wait() returns
        job._finished.set()

    def _save(self, job: Job) -> None:
        ds = self._ds()
        if ds is None:
            return
        try:
            ds.internal.write_store_json(f"jobs/{job.id}.json", job.to_dict())
        except Exception as exc:  # history is a convenience: never the end of a job
            job.message = f"{job.message} (history not saved: {exc})"


def load_history(ds: Any, live: list[Job]) -> list[dict[str, Any]]:
    """Every job of ``ds``: persisted JSON merged with live jobs, newest first."""
    records: dict[str, dict[str, Any]] = {}
    folder = ds.internal.store_path("jobs")
    try:
        paths = ds.internal.fs.glob(f"{folder}/*.json")
    except FileNotFoundError:
        paths = []
    for path in paths:
        name = str(path).rsplit("/", 1)[-1]
        try:
            record = ds.internal.read_store_json(f"jobs/{name}")
        except Exception:  # a half-written or foreign file: skip it
            continue
        if isinstance(record, dict) and "id" in record:
            if record.get("status") not in _FINISHED:  # its kernel stopped mid-way
                record["status"] = "failed"
                record["error"] = record.get("error") or "interrupted: the kernel stopped"
            records[record["id"]] = record
    for job in live:
        records[job.id] = job.to_dict()
    return sorted(
        records.values(), key=lambda r: (r.get("created_at") or "", r["id"]), reverse=True
    )
