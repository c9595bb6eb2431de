"""Per-sample values of query rows, as exports write them."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def labels_of(rows: pd.DataFrame) -> list[list[str]]:
    """The labels of each row, as lists of str."""
    return [as_list(v) for v in rows["labels"]]


def boxes_of(rows: pd.DataFrame) -> list[list[dict]]:
    """The boxes of each row (empty lists when the rows have none)."""
    if "boxes" not in rows.columns:
        return [[] for _ in range(len(rows))]
    return [[dict(b) for b in as_list(v)] for v in rows["boxes"]]


def as_list(value: Any) -> list:
    """A list cell as a list (None / NaN -> [])."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [str(v) if isinstance(v, str) else v for v in value]


def is_null(value: Any) -> bool:
    """True for None, NaN, NaT and pandas NA scalars."""
    import pandas as pd

    result = pd.isna(value)
    return result if isinstance(result, bool) else False


def iso(value: Any) -> str:
    """A time as ISO 8601 in UTC ("" when missing)."""
    if is_null(value):
        return ""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat()
    return str(value)


def text(value: Any) -> str:
    """A cell as text ("" when missing)."""
    return "" if is_null(value) else str(value)
