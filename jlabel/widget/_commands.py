"""The widget's actions: `op` name -> handler `(widget, msg, buffers) -> (reply, buffers)`.

Handlers only call the `Dataset` (and the thumbnail cache); the dataset's change events then
refresh the widget's traits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jlabel.errors import JLabelError
from jlabel.widget import _thumbs, _view

Reply = tuple[Any, list[bytes]]
Handler = Callable[[Any, dict[str, Any], list[Any]], Reply]
HANDLERS: dict[str, Handler] = {}

OK: Reply = ({"ok": True}, [])


def error_reply(exc: BaseException) -> dict[str, str]:
    """The reply for a failed action: the message the user should read, and the error type."""
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, (JLabelError, ValueError, KeyError)):
        text = f"{type(exc).__name__}: {text}"
    return {"error": text, "type": type(exc).__name__}


def _handler(fn: Handler) -> Handler:
    HANDLERS[fn.__name__] = fn
    return fn


def _ids(msg: dict[str, Any], key: str = "ids") -> list[str]:
    ids = msg.get(key)
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ValueError(f"{key!r} must be a list of sample ids")
    return ids


def _names(msg: dict[str, Any], key: str = "names") -> list[str]:
    names = msg.get(key) or []
    if isinstance(names, str):
        names = [names]
    return [str(n) for n in names]


def _bytes(buffer: Any) -> bytes:
    return buffer if isinstance(buffer, bytes) else bytes(memoryview(buffer))


# -- images ----------------------------------------------------------------------------------
@_handler
def thumbnails(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """JPEG thumbnails of `ids`, one binary buffer each, in order."""
    return _thumbs.page(w, _ids(msg), int(msg.get("size") or _thumbs.THUMB_SIZE))


@_handler
def preview(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """A large JPEG of one sample plus its row."""
    return _thumbs.preview(w, str(msg["id"]), int(msg.get("size") or _thumbs.PREVIEW_SIZE))


@_handler
def add_images(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Add uploaded files (`names[i]` with bytes `buffers[i]`); they land in Unlabeled."""
    names = _names(msg)
    if len(names) != len(buffers):
        raise ValueError(f"got {len(names)} file names but {len(buffers)} files")
    ids = w.dataset.add_images([(n, _bytes(b)) for n, b in zip(names, buffers, strict=True)])
    w.say(f"added {len(ids)} image(s)")
    return {"ok": True, "ids": list(ids)}, []


@_handler
def delete_images(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Remove samples, optionally deleting their source files."""
    ids = _ids(msg)
    w.dataset.delete_images(ids, delete_sources=bool(msg.get("delete_sources")))
    gone = set(ids)
    w.selection = [i for i in w.selection if i not in gone]
    w.say(
        f"deleted {len(ids)} image(s)" + (" and their files" if msg.get("delete_sources") else "")
    )
    return OK


# -- labels ----------------------------------------------------------------------------------
@_handler
def label(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Add labels `names` to `ids` (new names join the label set)."""
    ids, names = _ids(msg), _names(msg)
    if not names:
        raise ValueError("choose a label to apply")
    if not ids:
        raise ValueError("select images first (click their checkboxes)")
    new = [n for n in names if n not in w.dataset.labels]
    if new:
        w.dataset.add_labels(*new)
    w.dataset.label(ids, *names)
    if w.tab == "unlabeled":  # labeled images leave this tab: keep the selection to what is shown
        done = set(ids)
        w.selection = [i for i in w.selection if i not in done]
    return OK


@_handler
def unlabel(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Remove labels `names` from `ids` (all labels when `names` is empty)."""
    w.dataset.unlabel(_ids(msg), *_names(msg))
    return OK


@_handler
def replace_label(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """On the samples of `ids` that carry `old`, put `new` in its place (one undo)."""
    changed = w.dataset.replace_label(_ids(msg), str(msg["old"]), str(msg["new"]))
    return {"ok": True, "changed": changed}, []


@_handler
def add_label(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Add a name to the label set."""
    w.dataset.add_labels(str(msg["name"]))
    return OK


@_handler
def rename_label(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Rename a label everywhere (merging into `new` when it exists)."""
    old, new = str(msg["old"]), str(msg["new"])
    merged = new in w.dataset.labels
    w.dataset.rename_label(old, new)
    w.say(f"{'merged' if merged else 'renamed'} {old} into {new}")
    return {"ok": True, "merged": merged}, []


@_handler
def label_impact(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """How many samples carry label `name`, and how many carry only it."""
    return w.dataset.label_impact(str(msg["name"])), []


@_handler
def delete_label(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Delete a label: mode `label`, `samples` or `sources` (see `Dataset.delete_label`)."""
    mode = str(msg.get("mode") or "label")
    w.dataset.delete_label(str(msg["name"]), mode=mode)
    return OK


# -- proposals (To Be Confirmed) -------------------------------------------------------------
@_handler
def confirm(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Accept proposals: of `ids`, or when `ids` is null all that the filters let through."""
    ids = None if msg.get("ids") is None else _ids(msg)
    filters = _view.query_filters(w.filters)
    if ids is None and filters:  # "Confirm all (N)" means the N the tab shows
        ids = w.dataset.internal.query_ids(tab="to_confirm", **filters)
    w.dataset.confirm(ids)
    if ids is not None:
        gone = set(ids)
        w.selection = [i for i in w.selection if i not in gone]
    else:
        w.selection = []
    return OK


@_handler
def reject(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Drop the proposals of `ids`."""
    ids = _ids(msg)
    w.dataset.reject(ids)
    gone = set(ids)
    w.selection = [i for i in w.selection if i not in gone]
    return OK


@_handler
def set_proposal(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Edit the proposed labels of `ids` before confirming."""
    names = _names(msg)
    new = [n for n in names if n not in w.dataset.labels]
    if new:
        w.dataset.add_labels(*new)
    w.dataset.set_proposal(_ids(msg), *names)
    return OK


@_handler
def sample_proposals(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Draw a random sample of proposals to review and show only it (the `ids` filter)."""
    ids = w.dataset.sample_proposals(int(msg.get("n") or 20))
    w.sample_check = _view.sample_check(w.dataset)
    w.tab = "to_confirm"
    w.filters = {**_view.EMPTY_FILTERS, "ids": ids}
    return {"ok": True, "ids": ids}, []


@_handler
def label_next(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Show only the `n` images of this tab whose labels would help the next job most."""
    tab = w.tab if w.tab in ("unlabeled", "to_confirm") else None
    ids = w.dataset.to_label_next(n=int(msg.get("n") or 20), tab=tab)
    if not ids:
        raise ValueError("every image of this tab has labels: nothing to label next here")
    w.label_next = ids
    w.filters = {**_view.EMPTY_FILTERS, "ids": ids}
    return {"ok": True, "ids": ids}, []


# -- dataset-wide ----------------------------------------------------------------------------
@_handler
def undo(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Undo the last operation."""
    result = w.dataset.undo()
    text = f"undid {result}" if isinstance(result, str) and result else "undone"
    w.say(text)
    return {"ok": True, "text": text}, []


@_handler
def sync(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Synchronize with the data source; reply with the report."""
    report = w.dataset.sync()
    data = _view.job_dict(report) if hasattr(report, "to_dict") else _report_dict(report)
    return {"ok": True, "report": data, "text": str(report)}, []


@_handler
def refresh(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Pick up changes made by other kernels."""
    w.dataset.refresh()
    return OK


@_handler
def create_version(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Create an immutable version of the current state."""
    name = msg.get("name") or None
    w.dataset.create_version(name, description=str(msg.get("description") or ""))
    w.versions = _view.version_list(w.dataset)
    return OK


@_handler
def use_version(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Make a version the current one."""
    w.dataset.use_version(str(msg["name"]))
    w.selection = []
    w.refresh_view()
    return OK


@_handler
def auto_label(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Start (or queue) an auto-labeling job; progress comes through the `job` trait."""
    kwargs: dict[str, Any] = {
        "mode": str(msg.get("mode") or "fast"),
        "target_precision": float(msg.get("target_precision") or 0.95),
        "progress": False,
    }
    if msg.get("backbone"):
        kwargs["backbone"] = str(msg["backbone"])
    if msg.get("task"):
        kwargs["task"] = str(msg["task"])
    job = w.dataset.auto_label(**kwargs)
    w.watch_job(job)
    return {"ok": True, "job": _view.job_dict(job)}, []


@_handler
def cancel_job(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Cancel the job the widget follows (running or queued), else the dataset's running one."""
    job = w.current_job
    if job is None or job.status not in ("queued", "running"):
        job = w.dataset.jobs.current
    if job is None:
        raise ValueError("no auto-labeling job is running")
    job.cancel()
    return OK


def _report_dict(report: Any) -> dict[str, Any]:
    if isinstance(report, dict):
        return {str(k): _view._plain(v) for k, v in report.items()}
    fields = getattr(report, "__dataclass_fields__", None)
    if fields:
        return {k: _view._plain(getattr(report, k)) for k in fields}
    return {"text": str(report)}


from jlabel.widget import _box_commands  # noqa: E402, F401  (registers the box editor's actions)
