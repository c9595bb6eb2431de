"""`ds.internal`: what jlabel's own layers (auto-labeling, export, the widget) use of a dataset.

Users call the methods of :class:`jlabel.Dataset`; the calls here write model results
(proposals, hard flags, groups, decoded image sizes), reach the store's side files and the
source files, and follow changes. Keeping them behind one object keeps the user API small.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jlabel.dataset import Dataset


class DatasetInternals:
    """The layer API of one open dataset (``ds.internal``)."""

    def __init__(self, ds: Dataset) -> None:
        self._ds = ds

    # -- identity and files --------------------------------------------------------------
    @property
    def key(self) -> str:
        """A stable id of the dataset (survives renames of its folder), for cache keys."""
        return self._ds.key

    @property
    def fs(self) -> Any:
        """The fsspec filesystem of the dataset's root."""
        return self._ds.fs

    def source_path(self, sample_id: str) -> str:
        """The sample's path on the dataset's filesystem (refuses paths leaving the root)."""
        return self._ds.source_path(sample_id)

    def file_version(self, sample_id: str) -> str:
        """A string that changes whenever the sample's source file changes."""
        return self._ds.file_version(sample_id)

    def upload_limits(self) -> dict[str, int]:
        """Upload limits in bytes: ``{"file": ..., "batch": ...}``."""
        return {"file": int(self._ds.max_image_bytes), "batch": int(self._ds.max_batch_bytes)}

    # -- side files under .jlabel/ ---------------------------------------------------------
    def store_path(self, *parts: str) -> str:
        """A path inside ``<root>/.jlabel/``."""
        return self._ds.store_path(*parts)

    def write_store_json(self, rel: str, obj: Any) -> None:
        """Atomically write JSON under ``.jlabel/``."""
        self._ds.write_store_json(rel, obj)

    def read_store_json(self, rel: str) -> Any:
        """JSON under ``.jlabel/``, or None when it does not exist."""
        return self._ds.read_store_json(rel)

    # -- reading ---------------------------------------------------------------------------
    def query_ids(self, *, tab: str = "all", **filters: Any) -> list[str]:
        """The ids ``ds.query`` would return (same filters), without building a DataFrame."""
        return self._ds.query_ids(tab=tab, **filters)

    def subscribe(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(event)`` after every visible change; returns an unsubscribe function."""
        return self._ds.subscribe(callback)

    # -- writing model results -------------------------------------------------------------
    def set_proposals(
        self,
        ids: Iterable[str],
        labels: list[list[str]],
        scores: list[list[float]],
        *,
        hardness: list[float | None] | None = None,
        hard: list[bool] | None = None,
    ) -> None:
        """Store proposals (To Be Confirmed) in one durable operation."""
        self._ds.set_proposals(ids, labels, scores, hardness=hardness, hard=hard)

    def set_hard(
        self,
        ids: Iterable[str],
        hard: bool | list[bool] = True,
        hardness: list[float | None] | None = None,
    ) -> None:
        """Mark (or unmark) samples as hard examples, with optional hardness scores."""
        self._ds.set_hard(ids, hard, hardness)

    def set_groups(self, ids: Iterable[str], groups: list[str]) -> None:
        """Set the auto-grouping group of samples."""
        self._ds.set_groups(ids, groups)

    def record_image_info(
        self,
        ids: list[str],
        widths: list[int | None],
        heights: list[int | None],
        corrupt: list[bool],
    ) -> None:
        """Remember decoded sizes and corrupt flags (not undoable)."""
        self._ds.record_image_info(ids, widths, heights, corrupt)
