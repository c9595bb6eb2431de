"""Reading a dataset's images for an export: in threads, with sizes from the headers."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from jlabel.errors import JLabelError
from jlabel.export.values import is_null

if TYPE_CHECKING:
    import pandas as pd

    from jlabel.dataset import Dataset

THREADS = 8  # overlaps reads and writes; S3 round trips dominate an export


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) as displayed (EXIF rotation applied), from the header only."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        orientation = image.getexif().get(0x0112, 1)
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def map_images(
    ds: Dataset,
    ids: Sequence[str],
    fn: Callable[[str, bytes], Any],
    *,
    then: Callable[[Any], Any] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """`fn(id, bytes)` for each id, in threads; returns results by id and the failed ids.

    A read or decode error in `fn` marks the id failed; errors in `then(result)` (writes)
    propagate.
    """

    def one(sample_id: str) -> tuple[str, Any, bool]:
        try:
            value = fn(sample_id, ds.read_bytes(sample_id))
        except (JLabelError, OSError, ValueError, SyntaxError):  # PIL raises all of these
            return sample_id, None, False
        if then is not None:
            then(value)
        return sample_id, value, True

    results: dict[str, Any] = {}
    failed: list[str] = []
    with ThreadPoolExecutor(THREADS) as pool:
        for sample_id, value, ok in pool.map(one, ids):
            if ok:
                results[sample_id] = value
            else:
                failed.append(sample_id)
    return results, failed


def image_sizes(ds: Dataset, rows: pd.DataFrame) -> list[tuple[int | None, int | None]]:
    """Width and height per row: recorded ones, else read from the image header."""
    known = {}
    for sample_id, width, height in zip(rows["id"], rows["width"], rows["height"], strict=True):
        if not is_null(width) and not is_null(height):
            known[sample_id] = (int(width), int(height))
    unknown = [i for i in rows["id"] if i not in known]
    read, _ = map_images(ds, unknown, lambda _i, data: image_size(data))
    known.update(read)
    return [known.get(i, (None, None)) for i in rows["id"]]


def warn_skipped(failed: list[str], total: int) -> None:
    """Warn that `failed` of `total` images could not be read."""
    if failed:
        shown = ", ".join(repr(i) for i in failed[:5])
        warnings.warn(
            f"export skipped {len(failed)} of {total} images that could not be read "
            f"(missing or corrupt), e.g. {shown}",
            stacklevel=3,
        )
