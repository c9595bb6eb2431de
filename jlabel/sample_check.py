"""Checking a random sample of proposals: the honest precision estimate when the labels alone
cannot certify one (too few held-out labels above the threshold).

The user draws a uniform random sample of the To Be Confirmed proposals, reviews each one
(confirm as proposed, edit then confirm, or reject), and the share confirmed unchanged
estimates the precision of the proposals left: smoothed, (right + 1) / (reviewed + 2), the same
rule as the threshold calibration (20 of 20 right gives 95.5%).
"""

from __future__ import annotations

import time
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from jlabel.errors import JLabelError
from jlabel.table import SOURCES

if TYPE_CHECKING:
    from jlabel.dataset import Dataset

STORE_FILE = "sample_check.json"
DEFAULT_SIZE = 20
_records: weakref.WeakKeyDictionary[Dataset, dict[str, Any]] = weakref.WeakKeyDictionary()
"""Each dataset's check as last read or written: the widget asks after every change, and a
store read there (an S3 GET) would sit on the labeling path."""


def _record(ds: Dataset) -> dict[str, Any]:
    if ds not in _records:
        _records[ds] = ds.internal.read_store_json(STORE_FILE) or {}
    return _records[ds]


def _save(ds: Dataset, record: dict[str, Any]) -> None:
    ds.internal.write_store_json(STORE_FILE, record)
    _records[ds] = record


def reread(ds: Dataset) -> None:
    """Read the check from the store again next time (another kernel may have drawn one)."""
    _records.pop(ds, None)


def draw(ds: Dataset, n: int = DEFAULT_SIZE, seed: int | None = None) -> list[str]:
    """Draw up to `n` proposals at random and remember what they proposed."""
    if not isinstance(n, int) or n < 1:
        raise JLabelError(f"n={n!r}: ask for a sample of at least 1 proposal (20 is typical)")
    pool = ds.internal.query_ids(tab="to_confirm")
    if not pool:
        raise JLabelError(
            "there are no proposals to check: run ds.auto_label() or ds.pre_label() first"
        )
    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(len(pool), size=min(n, len(pool)), replace=False).tolist())
    ids = [pool[i] for i in picked]
    frame = ds.query(tab="to_confirm", ids=ids).set_index("id")
    proposed = {sid: sorted(frame.at[sid, "proposed_labels"]) for sid in ids}
    _save(ds, {"ids": ids, "proposed": proposed, "created_at": time.time()})
    return ids


def status(ds: Dataset) -> dict[str, Any] | None:
    """Progress and estimate of the current sample check, or None when there is none.

    Keys: ``ids``, ``size``, ``reviewed``, ``right`` (confirmed with the proposed labels),
    ``pending`` and ``estimated_precision`` (None until something was reviewed).
    """
    check = _record(ds)
    if not check:
        return None
    table = ds._table
    reviewed = right = pending = 0
    ids = []
    for sid in check["ids"]:
        row = table.row_of.get(sid)
        if row is None:  # deleted since: not part of the sample any more
            continue
        ids.append(sid)
        if table.has_proposal[row]:
            pending += 1
            continue
        reviewed += 1
        labels = sorted(table.row_labels(row))
        if SOURCES[table.source[row]] == "auto" and labels == check["proposed"].get(sid):
            right += 1
    estimate = (right + 1) / (reviewed + 2) if reviewed else None
    return {
        "ids": ids,
        "size": len(ids),
        "reviewed": reviewed,
        "right": right,
        "pending": pending,
        "estimated_precision": estimate,
    }


def forget_if_reproposed(ds: Dataset, ids: list[str]) -> None:
    """Forget the current check when new proposals (a new job) replace sampled ones."""
    check = _record(ds)
    if check and not set(check["ids"]).isdisjoint(ids):
        _save(ds, {})
