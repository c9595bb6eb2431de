"""Read-only view state for the widget: filters, page rows, counts, labels, versions, jobs.

Pure functions of a `Dataset`; the widget copies their results into traits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from jlabel.query import PUBLIC_COLUMNS

TABS = ("all", "unlabeled", "labeled", "to_confirm")
FILTER_KEYS = ("hard", "labels", "created", "name", "labeled_by", "group", "ids", "boxes")
EMPTY_FILTERS: dict[str, Any] = dict.fromkeys(FILTER_KEYS)


def query_filters(filters: Mapping[str, Any] | None) -> dict[str, Any]:
    """Turn the `filters` trait into `ds.query` keyword arguments (blank values dropped)."""
    out: dict[str, Any] = {}
    for key, value in (filters or {}).items():
        if key not in FILTER_KEYS:
            raise ValueError(f"unknown filter {key!r}; filters are {', '.join(FILTER_KEYS)}")
        if value is None or value == "" or value == []:
            continue
        if key in ("labels", "ids"):
            value = [value] if isinstance(value, str) else [str(v) for v in value]
        elif key == "created" and isinstance(value, (list, tuple)):
            start, end = ([*list(value), None, None])[:2]
            if not start and not end:
                continue
            value = (start or None, end or None)
        elif key in ("hard", "boxes"):
            value = bool(value)
        out[key] = value
    return out


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of one table cell (numpy arrays, timestamps, NaN, NA)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        seq = value.tolist() if hasattr(value, "tolist") else list(value)
        if isinstance(seq, list):
            return [_plain(v) for v in seq]
        return _plain(seq)
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, (str, bool, int)):
        return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


ROW_COLUMNS = PUBLIC_COLUMNS  # what the grid shows (boxes compacted, see compact_boxes)
_BOX_SENT = ("box_id", "label", "xmin", "ymin", "xmax", "ymax")


def compact_boxes(boxes: Any) -> list[dict[str, Any]]:
    """Boxes as the browser draws them: id, label, coordinates, and ``score`` (proposed) or
    ``difficult`` when set; who made them and when stay in the kernel."""
    out = []
    for box in boxes or ():
        item = {k: box.get(k) for k in _BOX_SENT}
        if box.get("score") is not None:
            item["score"] = float(box["score"])
        if box.get("difficult"):
            item["difficult"] = True
        out.append(item)
    return out


def page_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The page's rows as JSON-friendly dicts (columns the grid shows)."""
    columns = [c for c in ROW_COLUMNS if c in frame.columns]
    rows = []
    for record in frame[columns].itertuples(index=False, name=None):
        row = {col: _plain(val) for col, val in zip(columns, record, strict=True)}
        for key in ("labels", "proposed_labels", "proposed_scores"):
            row[key] = row.get(key) or []
        for key in ("hard", "missing", "corrupt"):
            row[key] = bool(row.get(key) or False)
        for key in ("boxes", "proposed_boxes"):
            row[key] = compact_boxes(row.get(key))
        rows.append(row)
    return rows


def label_list(ds: Any) -> list[dict[str, Any]]:
    """`[{"name", "count"}]` in the dataset's label order."""
    counts = ds.label_counts()
    return [{"name": name, "count": int(counts.get(name, 0))} for name in ds.labels]


def version_list(ds: Any) -> list[dict[str, Any]]:
    """The dataset's versions as JSON-friendly dicts (newest last, as the dataset lists them)."""
    listing = ds.versions()
    if isinstance(listing, pd.DataFrame):
        listing = listing.to_dict("records")
    out = []
    for item in listing:
        if isinstance(item, Mapping):
            entry = dict(item)
        elif hasattr(item, "to_dict"):
            entry = item.to_dict()
        elif hasattr(item, "__dict__"):
            entry = dict(vars(item))
        else:
            entry = {"name": str(item)}
        out.append({str(k): _plain(v) for k, v in entry.items()})
    return out


def job_dict(job: Any) -> dict[str, Any]:
    """A job as the widget shows it (works on a `Job` or on a history dict)."""
    if job is None:
        return {}
    raw = job.to_dict() if hasattr(job, "to_dict") else dict(job)
    return {str(k): _plain(v) for k, v in raw.items()}


def job_history(ds: Any, limit: int = 20) -> list[dict[str, Any]]:
    """Newest-first job history (empty when auto-labeling is not available)."""
    history = getattr(ds, "job_history", None)
    if history is None:
        return []
    try:
        items = history()
    except Exception:  # history is informative; a broken file must not break the widget
        return []
    return [job_dict(item) for item in list(items)[:limit]]


def job_notes(job: Mapping[str, Any]) -> list[str]:
    """What a finished job wants the user to know (fallbacks, too few labels, ...)."""
    result = job.get("result") or {}
    notes = result.get("notes") if isinstance(result, Mapping) else None
    return [str(n) for n in notes] if isinstance(notes, list) else []


def sample_check(ds: Any) -> dict[str, Any]:
    """The dataset's sample check of proposals (empty when none or not supported)."""
    status = getattr(ds, "sample_check", None)
    result = status() if status is not None else None
    return {str(k): _plain(v) for k, v in result.items()} if result else {}


def estimated_precision(history: Iterable[Mapping[str, Any]]) -> float | None:
    """The estimated precision reported by the newest finished job, if any."""
    for item in history:
        result = item.get("result") or {}
        value = result.get("estimated_precision") if isinstance(result, Mapping) else None
        if isinstance(value, (int, float)) and not math.isnan(value):
            return float(value)
    return None
