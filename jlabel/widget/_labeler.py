"""`Labeler`: the anywidget over a `Dataset` (traits for view state, one request command)."""

from __future__ import annotations

import contextlib
import pathlib
import threading
import time
from typing import Any

import anywidget
import traitlets as t

from jlabel.widget import _view
from jlabel.widget._commands import HANDLERS, error_reply

_STATIC = pathlib.Path(__file__).parent / "static"
_PAGE_SIZES = (24, 48, 96, 192)
IDLE_AFTER_S = 90.0
"""A widget whose views sent nothing for this long (they ping every 20 s while visible: the
cell was re-run, the notebook closed or hidden) stops following dataset changes until its next
request, so widgets left behind do not slow labeling down."""


class Labeler(anywidget.AnyWidget):
    """The labeling console for one dataset: tabs, filters, grid, label panel, auto-labeling.

    Every change goes through the `Dataset`; the widget keeps only view state.
    """

    _esm = _STATIC / "widget.js"
    _css = _STATIC / "widget.css"

    tab = t.Unicode("all").tag(sync=True)
    """Current tab: `all`, `unlabeled`, `labeled` or `to_confirm`."""
    filters = t.Dict(dict(_view.EMPTY_FILTERS)).tag(sync=True)
    """Filters as `ds.query` takes them: hard, labels, created, name, labeled_by, group, ids."""
    page = t.Int(0).tag(sync=True)
    """Zero-based page number in the current tab."""
    page_size = t.Int(48).tag(sync=True)
    """Thumbnails per page (one of 24, 48, 96, 192)."""
    selection = t.List(t.Unicode()).tag(sync=True)
    """Selected sample ids (may span pages)."""
    counts = t.Dict().tag(sync=True)
    """Samples per tab under the current filters: `{tab: count}`."""
    total = t.Int(0).tag(sync=True)
    """Samples in the current tab under the current filters."""
    labels = t.List().tag(sync=True)
    """The label set in order, with counts: `[{"name", "count"}]`."""
    users = t.List(t.Unicode()).tag(sync=True)
    """Values of `labeled_by`, for the filter."""
    groups = t.List(t.Unicode()).tag(sync=True)
    """Auto-grouping groups, for the filter."""
    versions = t.List().tag(sync=True)
    """Dataset versions (dicts as `ds.versions()` describes them)."""
    rows = t.List().tag(sync=True)
    """The current page: one dict per sample (id, labels, hard, missing, corrupt, proposals...)."""
    revision = t.Int(0).tag(sync=True)
    """Bumped after every data change, so the browser knows its rows are fresh."""
    job = t.Dict().tag(sync=True)
    """The running (or last) auto-labeling job: id, kind, status, progress, message, result."""
    job_history = t.List().tag(sync=True)
    """Finished jobs, newest first."""
    estimated_precision = t.Float(None, allow_none=True).tag(sync=True)
    """Estimated precision of the proposals awaiting confirmation (from the newest job)."""
    sample_check = t.Dict().tag(sync=True)
    """The random sample of proposals under review: size, reviewed, right, pending, estimate."""
    label_next = t.List(t.Unicode()).tag(sync=True)
    """The images "Label next" suggested last (``ds.to_label_next``), shown by the ids filter."""
    limits = t.Dict().tag(sync=True)
    """Upload limits in bytes: `{"file": ..., "batch": ...}`."""
    notice = t.Dict().tag(sync=True)
    """Last message for the user: `{"kind": "error" | "info", "text": ..., "at": seconds}`."""
    user = t.Unicode("").tag(sync=True)
    """Who labels (recorded as `labeled_by`)."""

    def __init__(self, dataset: Any, *, page_size: int = 48, tab: str = "all") -> None:
        if tab not in _view.TABS:
            raise ValueError(f"unknown tab {tab!r}; tabs are {', '.join(_view.TABS)}")
        if page_size not in _PAGE_SIZES:
            raise ValueError(f"page_size must be one of {_PAGE_SIZES}, not {page_size!r}")
        self._ds = dataset
        self._lock = threading.RLock()
        self._thumbs: Any = None
        self._job_unsub: Any = None
        self.current_job: Any = None
        """The job the `job` trait follows (a `jlabel.Job`), or None."""
        self._prefetcher: threading.Thread | None = None
        self._recorder: threading.Thread | None = None  # journals what a page decode learned
        self.prefetch = True
        """Decode the next page's thumbnails in the background after serving a page."""
        self._job_sent = 0.0
        self._last_request: float | None = None  # monotonic; None until a view has asked
        self._behind = False  # skipped dataset changes while idle
        super().__init__(tab=tab, page_size=page_size)
        self.limits = _upload_limits(dataset)
        self.user = str(getattr(dataset, "user", "") or "")
        self.refresh_view()
        self._unsubscribe = dataset.internal.subscribe(self._on_dataset_event)
        current = _current_job(dataset)
        if current is not None:
            self.watch_job(current)

    @property
    def dataset(self) -> Any:
        """The `Dataset` this widget shows."""
        return self._ds

    # -- view state -------------------------------------------------------------------------
    def refresh_view(self) -> None:
        """Recompute every trait that mirrors the dataset (counts, labels, page, versions, jobs)."""
        with self._lock, self.hold_sync():
            self._update_counts()
            self._update_labels()
            self._update_rows()
            self._update_meta()

    def _update_counts(self) -> None:
        kwargs = _view.query_filters(self.filters)
        self.counts = {tab: int(n) for tab, n in self._ds.counts(**kwargs).items()}

    def _update_labels(self) -> None:
        ds = self._ds
        self.labels = _view.label_list(ds)
        self.users = [str(u) for u in ds.users()]
        self.groups = [str(g) for g in ds.groups()]

    def _update_rows(self) -> None:
        """The page of the current tab (clamped to the last page) and the tab's total."""
        kwargs = _view.query_filters(self.filters)
        total = int(self.counts.get(self.tab, 0))
        pages = max(1, -(-total // self.page_size))
        page = min(max(self.page, 0), pages - 1)
        frame = self._ds.query(
            tab=self.tab, offset=page * self.page_size, limit=self.page_size, **kwargs
        )
        self.total = total
        self.page = page
        self.rows = _view.page_rows(frame)
        self.revision += 1

    def _update_meta(self) -> None:
        history = _view.job_history(self._ds)
        self.versions = _view.version_list(self._ds)
        self.job_history = history
        self.estimated_precision = _view.estimated_precision(history)
        self.sample_check = _view.sample_check(self._ds)

    @t.observe("tab", "filters", "page", "page_size")
    def _on_view_change(self, change: dict[str, Any]) -> None:
        name = change["name"]
        if name == "tab":
            self.selection = []  # a selection belongs to what the tab showed
        if name in ("tab", "filters", "page_size") and self.page != 0:
            self.page = 0  # observer runs again for the page change
            if name != "filters":
                return
        try:
            with self._lock, self.hold_sync():
                if name == "filters":
                    self._update_counts()
                self._update_rows()
        except Exception as exc:  # a bad filter must show in the widget, not in a log
            self.say(str(exc), kind="error")

    def _on_dataset_event(self, event: str) -> None:
        if event == "image_info":
            return  # sizes learned from decoding thumbnails: nothing the grid shows changed
        last = self._last_request
        if last is not None and time.monotonic() - last > IDLE_AFTER_S:
            self._behind = True  # no view is looking: catch up when one asks again
            return
        try:
            with self._lock, self.hold_sync():
                self._update_counts()
                self._update_labels()
                self._update_rows()
                if event in ("version", "refresh", "undo"):
                    self._update_meta()
                elif self.sample_check:  # reviewing the sample moves its counts
                    self.sample_check = _view.sample_check(self._ds)
        except Exception as exc:  # the callback runs inside dataset calls: never raise there
            self.say(f"could not refresh the view: {exc}", kind="error")

    def say(self, text: str, *, kind: str = "info") -> None:
        """Show a message in the widget."""
        self.notice = {"kind": kind, "text": text, "at": time.time()}

    # -- jobs -------------------------------------------------------------------------------
    def watch_job(self, job: Any) -> None:
        """Mirror a job's progress into the `job` trait until it finishes."""
        if self._job_unsub is not None:
            self._job_unsub()
        self.current_job = job
        self.job = _view.job_dict(job)
        self._job_unsub = job.subscribe(self._on_job)

    def _on_job(self, job: Any) -> None:
        finished = job.status in ("done", "failed", "cancelled")
        now = time.monotonic()
        if not finished and now - self._job_sent < 0.2:
            return  # progress ticks can be many per second; five updates a second are enough
        self._job_sent = now
        self.job = _view.job_dict(job)
        if finished:
            history = _view.job_history(self._ds)
            if not any(item.get("id") == job.id for item in history):
                history = [self.job, *history]  # its record may not be written yet
            self.job_history = history
            self.estimated_precision = _view.estimated_precision(history)
            if job.status == "failed":
                self.say(f"auto-labeling failed: {job.error}", kind="error")
            elif job.status == "done" and (notes := _view.job_notes(self.job)):
                self.say(" ".join(notes))

    # -- the one command --------------------------------------------------------------------
    @anywidget.experimental.command
    def _request(self, msg: Any, buffers: list[Any]) -> tuple[Any, list[bytes]]:
        """Run the action `msg["op"]`; any exception comes back as `{"error": message}`."""
        try:
            op = msg.get("op") if isinstance(msg, dict) else None
            handler = HANDLERS.get(op)
            if handler is None:
                raise ValueError(f"unknown widget action {op!r}")
            self._last_request = time.monotonic()
            if self._behind:
                self._behind = False
                self.refresh_view()
            with self._lock:
                reply, out = handler(self, msg, list(buffers or []))
            return reply, out
        except Exception as exc:
            return error_reply(exc), []

    def close(self) -> None:
        """Stop listening to the dataset and its jobs, then close the widget."""
        for unsub in (getattr(self, "_unsubscribe", None), getattr(self, "_job_unsub", None)):
            if unsub is not None:
                with contextlib.suppress(Exception):  # closing must always succeed
                    unsub()
        self._unsubscribe = None
        self._job_unsub = None
        super().close()


def _upload_limits(ds: Any) -> dict[str, int]:
    return ds.internal.upload_limits()


def _current_job(ds: Any) -> Any:
    """The dataset's running job, or None (also when auto-labeling is not installed)."""
    try:
        return ds.jobs.current
    except Exception:  # no job queue (yet): nothing to follow
        return None
