"""Checking a random sample of proposals: the honest precision estimate when the labels alone
cannot certify one (too few held-out labels above the threshold).

The user draws a uniform random sample of the To Be Confirmed proposals, reviews each one
(confirm as proposed, edit then confirm, or reject), and the share confirmed unchanged
estimates the precision of the proposals left: smoothed, (right + 1) / (reviewed + 2), the same
rule as the threshold calibration (20 of 20 right gives 95.5%).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from jlabel import query as q
from jlabel.errors import InvalidArgument, PreconditionError
from jlabel.table import SOURCES

if TYPE_CHECKING:
    from jlabel.internal import DatasetInternals
    from jlabel.replica import Replica

STORE_FILE = "sample_check.json"
DEFAULT_SIZE = 20


class SampleCheck:
    """The random sample check of one dataset: drawn, then followed as the user reviews it.

    The check is kept in memory as last read or written: the widget asks after every change,
    and a store read there (an S3 GET) would sit on the labeling path.
    """

    def __init__(self, replica: Replica, internal: DatasetInternals) -> None:
        self._replica = replica
        self._internal = internal
        self._record: dict[str, Any] | None = None

    def _current(self) -> dict[str, Any]:
        if self._record is None:
            self._record = self._internal.read_store_json(STORE_FILE) or {}
        return self._record

    def _save(self, record: dict[str, Any]) -> None:
        self._internal.write_store_json(STORE_FILE, record)
        self._record = record

    def reread(self) -> None:
        """Read the check from the store again next time (another kernel may have drawn one)."""
        self._record = None

    def draw(self, n: int = DEFAULT_SIZE, seed: int | None = None) -> list[str]:
        """Draw up to `n` proposals at random and remember what they proposed."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise InvalidArgument(
                f"n={n!r}: ask for a sample of at least 1 proposal (20 is typical)"
            )
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise InvalidArgument(f"seed must be None or a whole number, not {seed!r}")
        with self._replica.reading() as table:
            pool = table.ids[q.query_rows(table, "to_confirm", {})].tolist()
            if not pool:
                raise PreconditionError(
                    "there are no proposals to check: run ds.auto_label() or ds.pre_label() first"
                )
            rng = np.random.default_rng(seed)
            picked = sorted(rng.choice(len(pool), size=min(n, len(pool)), replace=False).tolist())
            ids = [pool[i] for i in picked]
            proposed = {sid: sorted(table.proposals[table.row_of[sid]][0]) for sid in ids}
        self._save({"ids": ids, "proposed": proposed, "created_at": time.time()})
        return ids

    def status(self) -> dict[str, Any] | None:
        """Progress and estimate of the current sample check, or None when there is none.

        Keys: ``ids``, ``size``, ``reviewed``, ``right`` (confirmed with the proposed labels),
        ``pending`` and ``estimated_precision`` (None until something was reviewed).
        """
        check = self._current()
        if not check:
            return None
        reviewed = right = pending = 0
        ids = []
        with self._replica.reading() as table:
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

    def forget_if_reproposed(self, ids: list[str]) -> None:
        """Forget the current check when new proposals (a new job) replace sampled ones."""
        check = self._current()
        if check and not set(check["ids"]).isdisjoint(ids):
            self._save({})
