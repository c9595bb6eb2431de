"""Tabs and filters -> the matching rows of a SampleTable, and rows -> a DataFrame."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from jlabel.codec import to_arrow
from jlabel.errors import InvalidArgument
from jlabel.table import SampleTable

TABS = ("all", "unlabeled", "labeled", "to_confirm")
PUBLIC_COLUMNS = (
    "id",
    "labels",
    "source",
    "labeled_by",
    "labeled_at",
    "created_at",
    "hard",
    "hardness",
    "group",
    "proposed_labels",
    "proposed_scores",
    "width",
    "height",
    "missing",
    "corrupt",
    "boxes",
    "proposed_boxes",
)


FILTERS = ("labels", "hard", "created", "name", "labeled_by", "group", "ids", "boxes")
"""The filters `query`, `count` and `counts` take (and the widget's filter bar sets)."""


def query_rows(table: SampleTable, tab: str, filters: dict[str, Any]) -> np.ndarray:
    """Rows of `tab` matching every filter, in the tab's order (see :func:`sorted_rows`)."""
    mask = tab_mask(table, tab) & filter_mask(table, **filters)
    return sorted_rows(table, mask, tab)


def check_filters(filters: dict[str, Any]) -> dict[str, Any]:
    """The filters, each of the right type (an InvalidArgument names the first that is not)."""
    unknown = [k for k in filters if k not in FILTERS]
    if unknown:
        raise InvalidArgument(
            f"unknown filter {unknown[0]!r}: the filters are {', '.join(FILTERS)}"
        )
    for key in ("labels", "labeled_by", "group", "ids"):
        value = filters.get(key)
        if value is not None and not _strings(value):
            raise InvalidArgument(
                f"filter {key} must be a string or a list of strings, not {type(value).__name__}"
            )
    for key in ("hard", "boxes"):
        value = filters.get(key)
        if value is not None and not isinstance(value, (bool, np.bool_)):
            raise InvalidArgument(f"filter {key} must be True, False or None, not {value!r}")
    if filters.get("name") is not None and not isinstance(filters["name"], str):
        raise InvalidArgument(f"filter name must be a string, not {filters['name']!r}")
    return filters


def _strings(value: Any) -> bool:
    if isinstance(value, str):
        return True
    if isinstance(value, (bytes, dict)) or not isinstance(value, Iterable):
        return False
    return all(isinstance(v, str) for v in value)


def tab_mask(table: SampleTable, tab: str) -> np.ndarray:
    """Rows of the samples in tab `tab` (`all`, `unlabeled`, `labeled`, `to_confirm`)."""
    if tab not in TABS:
        raise InvalidArgument(f"unknown tab {tab!r}: use one of {', '.join(TABS)}")
    alive = table.alive
    if tab == "all":
        return alive.copy()
    labeled = (table.n_labels > 0) | (table.n_boxes > 0)
    if tab == "labeled":
        return alive & labeled
    if tab == "to_confirm":
        return alive & table.has_proposal
    return alive & ~labeled & ~table.has_proposal


def filter_mask(
    table: SampleTable,
    *,
    labels: Iterable[str] | str | None = None,
    hard: bool | None = None,
    created: Any = None,
    name: str | None = None,
    labeled_by: Iterable[str] | str | None = None,
    group: Iterable[str] | str | None = None,
    ids: Iterable[str] | None = None,
    boxes: bool | None = None,
    now: dt.datetime | None = None,
) -> np.ndarray:
    """Rows matching every given filter (None = no filter). Lists mean "any of".

    `labels` matches image labels and box labels; `boxes` True keeps images with boxes.
    """
    mask = table.alive.copy()
    if ids is not None:
        only = np.zeros_like(mask)
        only[[table.row_of[sid] for sid in _as_list(ids) if sid in table.row_of]] = True
        mask &= only
    if labels is not None:
        any_label = np.zeros_like(mask)
        for label in _as_list(labels):
            any_label |= table.label_rows(label)
        mask &= any_label
    if boxes is not None:
        mask &= (table.n_boxes > 0) if boxes else (table.n_boxes == 0)
    if hard is not None:
        mask &= table.hard if hard else ~table.hard
    if created is not None:
        start, end = created_range(created, now)
        if start is not None:
            mask &= table.created_at >= np.datetime64(start.replace(tzinfo=None), "ns")
        if end is not None:
            mask &= table.created_at <= np.datetime64(end.replace(tzinfo=None), "ns")
    if name:
        mask = name_mask(table, name, mask)
    if labeled_by is not None:
        mask &= np.isin(table.labeled_by, _codes(table.users, labeled_by))
    if group is not None:
        mask &= np.isin(table.group, _codes(table.groups, group))
    return mask


def created_range(created: Any, now: dt.datetime | None = None) -> tuple[Any, Any]:
    """`"day"`, `"month"` or a (start, end) pair -> naive UTC datetimes (None = open)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    if created in ("day", "last_day"):
        return _utc(now - dt.timedelta(days=1)), None
    if created in ("month", "last_month"):
        return _utc(now - dt.timedelta(days=30)), None
    if isinstance(created, (tuple, list)) and len(created) == 2:
        try:
            return tuple(
                None if c is None else _utc(pd.Timestamp(c).to_pydatetime()) for c in created
            )
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(
                f"created={created!r}: {exc}; give datetimes or ISO strings such as "
                "'2026-01-31' (either may be None)"
            ) from None
    raise InvalidArgument(
        f"created={created!r} is not a time filter: use 'day', 'month' or a (start, end) pair "
        "of datetimes or ISO strings (either may be None)"
    )


def name_mask(table: SampleTable, text: str, within: np.ndarray | None = None) -> np.ndarray:
    """Rows (among `within`) whose id contains `text`, case-insensitive, vectorised."""
    ids = table.ids_arrow()
    if within is None:
        within = np.ones(len(table.ids), dtype=bool)
    rows = np.nonzero(within)[0]
    if len(rows) < len(ids) // 2:  # search only the candidates the other filters left
        found = pc.match_substring(ids.take(pa.array(rows)), text, ignore_case=True)
        out = np.zeros(len(ids), dtype=bool)
        out[rows] = found.to_numpy(zero_copy_only=False)
        return out
    found = pc.match_substring(ids, text, ignore_case=True)
    return within & found.to_numpy(zero_copy_only=False)


def sorted_rows(table: SampleTable, mask: np.ndarray, tab: str) -> np.ndarray:
    """Matching rows: by id; on the to_confirm tab surest first and hard examples last."""
    order = table.order()
    rows = order[mask[order]]
    if tab == "to_confirm" and len(rows):
        score = np.nan_to_num(table.proposal_score[rows], nan=-1.0)
        rows = rows[np.lexsort((-score, table.hard[rows]))]
    return rows


def to_frame(table: SampleTable, rows: np.ndarray) -> pd.DataFrame:
    """Rows as the public DataFrame (list columns hold Python lists)."""
    arrow = to_arrow(table, rows).select(list(PUBLIC_COLUMNS))
    json_columns = ("boxes", "proposed_boxes")
    parsed = {
        c: [None if b is None else json.loads(b) for b in arrow.column(c).to_pylist()]
        for c in json_columns
    }
    frame = arrow.drop_columns(list(json_columns)).to_pandas(types_mapper=_types_mapper)
    for c in json_columns:
        frame[c] = pd.Series(parsed[c], index=frame.index, dtype=object)
    for col in ("width", "height"):
        frame[col] = frame[col].astype("Int64")
    return frame


def _types_mapper(dtype: pa.DataType) -> Any:
    if pa.types.is_list(dtype):
        return pd.ArrowDtype(dtype)
    return None


def _as_list(value: Iterable[str] | str) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _codes(table: Sequence[str], values: Iterable[str] | str) -> list[int]:
    return [table.index(v) for v in _as_list(values) if v in table]


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc)
    return value.replace(tzinfo=None)
