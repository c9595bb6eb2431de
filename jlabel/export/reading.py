"""Reading a dataset's images for an export: in threads, each checked before it is used.

An image that cannot be read or decoded is skipped, never the export: the reason is kept, a
warning names the first ones, and the export's result lists them all
(`ExportResult.skipped`). The check (`jlabel.images.check_image`) reads the header, the pixel
limit, PNG checksums and a JPEG's end marker; images the dataset flagged corrupt are decoded.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from jlabel.errors import JLabelError
from jlabel.export.values import is_null
from jlabel.images import check_image

if TYPE_CHECKING:
    import pandas as pd

    from jlabel.dataset import Dataset

THREADS = 8  # overlaps reads and writes; S3 round trips dominate an export


class ExportResult(str):
    """The path an export wrote (a `str`, as before), plus `skipped`: ``{sample id: reason}``
    of the images left out because they could not be read or decoded."""

    skipped: dict[str, str]

    def __new__(cls, path: str, skipped: Mapping[str, str]) -> ExportResult:
        result = super().__new__(cls, path)
        result.skipped = dict(skipped)
        return result


class _Skips:
    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}  # every failure seen by map_images
        self.skipped: dict[str, str] = {}  # those the export left out (warn_skipped)


_current: ContextVar[_Skips | None] = ContextVar("jlabel_export_skips", default=None)


def reporting_skipped(export: Callable[..., str]) -> Callable[..., ExportResult]:
    """Make `export` return an `ExportResult` listing the images it skipped."""

    @functools.wraps(export)
    def run(*args: Any, **kwargs: Any) -> ExportResult:
        skips = _Skips()
        token = _current.set(skips)
        try:
            path = export(*args, **kwargs)
        finally:
            _current.reset(token)
        return ExportResult(path, skips.skipped)

    return run


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) as displayed (EXIF rotation applied), from the header; `ImageRejected`
    when the bytes are no image jlabel can decode (see `check_image`)."""
    return check_image(data)


def map_images(
    ds: Dataset,
    ids: Sequence[str],
    fn: Callable[[str, bytes], Any],
    *,
    then: Callable[[Any], Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """`fn(id, bytes)` for each id whose image passes `check_image`, in threads; returns the
    results by id and ``{id: reason}`` of the ids that failed.

    A read, check or decode error marks the id failed; errors in `then(result)` (writes)
    propagate.
    """
    suspect = _flagged_corrupt(ds, ids)

    def one(sample_id: str) -> tuple[str, Any, str | None]:
        try:
            data = ds.read_bytes(sample_id)
            check_image(data, decode=sample_id in suspect)
            value = fn(sample_id, data)
        except (JLabelError, OSError, ValueError, SyntaxError) as exc:  # PIL raises these too
            return sample_id, None, str(exc) or type(exc).__name__
        if then is not None:
            then(value)
        return sample_id, value, None

    results: dict[str, Any] = {}
    failed: dict[str, str] = {}
    with ThreadPoolExecutor(THREADS) as pool:
        for sample_id, value, error in pool.map(one, ids):
            if error is None:
                results[sample_id] = value
            else:
                failed[sample_id] = error
    skips = _current.get()
    if skips is not None:
        skips.reasons.update(failed)
    return results, failed


def _flagged_corrupt(ds: Dataset, ids: Sequence[str]) -> set[str]:
    """Of `ids`, those the dataset flagged corrupt (a thumbnail decode failed): they are
    decoded, not only checked, before they are exported."""
    if not ids:
        return set()
    rows = ds.query(tab="all", ids=list(ids))
    if "corrupt" not in rows.columns:
        return set()
    return set(rows["id"][rows["corrupt"].astype(bool)])


def image_sizes(ds: Dataset, rows: pd.DataFrame) -> list[tuple[int | None, int | None]]:
    """Width and height per row: recorded ones, else read from the (checked) image; (None,
    None) where the image cannot be read or decoded."""
    known = {}
    for sample_id, width, height in zip(rows["id"], rows["width"], rows["height"], strict=True):
        if not is_null(width) and not is_null(height) and int(width) >= 0:
            known[sample_id] = (int(width), int(height))
    unknown = [i for i in rows["id"] if i not in known]
    read, _ = map_images(ds, unknown, lambda _i, data: image_size(data))
    known.update(read)
    return [known.get(i, (None, None)) for i in rows["id"]]


def warn_skipped(failed: Iterable[str] | Mapping[str, str], total: int) -> None:
    """Warn that the `failed` of `total` images were left out, with the first reasons; the
    running export's result lists them all."""
    skips = _current.get()
    known = skips.reasons if skips is not None else {}
    given = failed if isinstance(failed, Mapping) else {}
    reasons = {i: given.get(i) or known.get(i) or "could not be read" for i in failed}
    if skips is not None:
        skips.skipped.update(reasons)
    if reasons:
        shown = "; ".join(f"{i!r}: {why}" for i, why in list(reasons.items())[:5])
        warnings.warn(
            f"export skipped {len(reasons)} of {total} images that could not be read or "
            f"decoded (missing, corrupt, too large or refused; the result's .skipped lists "
            f"them all), e.g. {shown}",
            stacklevel=3,
        )


def usable_rows(rows: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """The rows whose image is neither flagged missing nor corrupt by the dataset, and
    ``{id: reason}`` of the others (for views that serve images, e.g. `to_torch`)."""
    bad = rows["missing"].astype(bool) | rows["corrupt"].astype(bool)
    skipped = {
        sample_id: "the file is missing" if missing else "the image is corrupt (flagged)"
        for sample_id, missing in zip(rows["id"][bad], rows["missing"][bad], strict=True)
    }
    if skipped:
        shown = ", ".join(repr(i) for i in list(skipped)[:5])
        warnings.warn(
            f"left out {len(skipped)} image(s) flagged missing or corrupt (their .skipped "
            f"lists them), e.g. {shown}",
            stacklevel=3,
        )
    return rows[~bad], skipped


def load_usable(
    read: Callable[[str], bytes], ids: Sequence[str], index: int, bad: set[int]
) -> tuple[Any, int]:
    """The decoded RGB image of `ids[index]`, or, when it cannot be read or decoded, of the
    next index that can (warning once per bad id, remembered in `bad`): one broken file costs
    its own sample, not a DataLoader pass. Returns the image and the index it came from."""
    from jlabel.images import open_rgb

    if not -len(ids) <= index < len(ids):
        raise IndexError(f"index {index} out of range for {len(ids)} images")
    index %= len(ids)
    for step in range(len(ids)):
        at = (index + step) % len(ids)
        if at in bad:
            continue
        try:
            return open_rgb(read(ids[at])), at
        except (JLabelError, OSError) as exc:
            bad.add(at)
            warnings.warn(
                f"jlabel: skipping {ids[at]!r}, which cannot be read or decoded ({exc}); "
                "serving the next image in its place",
                stacklevel=3,
            )
    raise JLabelError(f"none of the {len(ids)} images can be read or decoded")
