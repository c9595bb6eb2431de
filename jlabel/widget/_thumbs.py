"""Pixels for the widget: a page of thumbnails as binary buffers, and the preview image."""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator
from functools import partial
from typing import Any

from jlabel.widget import _view

THUMB_SIZE = 192
"""Longest side of a grid thumbnail, in pixels: 1.6 device pixels per CSS pixel at the grid's
narrowest cells (about 118 CSS px of image; full 2x sharpness there would need 236)."""
PREVIEW_SIZE = 1280
"""Longest side of the preview image."""
REMOTE_READERS = 8
"""Threads reading a page of a remote (S3) dataset at once; local files get one per CPU."""


_shared: list[Any] = []


def _cache(w: Any) -> Any:
    """The widget's thumbnail cache (one per process unless a test set `w._thumbs`)."""
    if w._thumbs is None:
        if not _shared:
            from jlabel.thumbs_cache import ThumbnailCache

            _shared.append(ThumbnailCache())
        w._thumbs = _shared[0]
    return w._thumbs


def page(w: Any, ids: list[str], size: int) -> tuple[dict[str, Any], list[bytes]]:
    """Thumbnails of `ids`: `({"items": [meta...]}, [jpeg bytes...])`, same order as `ids`."""
    ds = w.dataset
    items_in = _cache_items(ds, ids)
    if len(ids) == 1:
        items_in = list(items_in)  # the cache decodes a lone image in this thread
    thumbs = _cache(w).get_many(items_in, size, workers=_readers(ds))
    items, buffers, decoded = [], [], []
    for sample_id, thumb in zip(ids, thumbs, strict=True):
        items.append(
            {
                "id": sample_id,
                "width": thumb.width,
                "height": thumb.height,
                "orig_width": thumb.orig_width,
                "orig_height": thumb.orig_height,
                "corrupt": bool(thumb.corrupt),
                "missing": bool(getattr(thumb, "missing", False)),
                "error": getattr(thumb, "error", None),
                "mime": "image/jpeg",
            }
        )
        buffers.append(thumb.data)
        if not getattr(thumb, "missing", False):
            decoded.append((sample_id, thumb))
    # Sizes and corrupt flags learned here are journaled off the reply's path (an fsync, or
    # an S3 PUT); the pixels and this reply already carry them.
    w._recorder = threading.Thread(target=_record_info, args=(ds, decoded), name="jlabel-info")
    w._recorder.start()
    if getattr(w, "prefetch", False):
        prefetch_next(w, size)
    return {"items": items, "size": size}, buffers


def prefetch_next(w: Any, size: int) -> threading.Thread | None:
    """Decode the next page's thumbnails into the cache in the background (one at a time), so
    turning the page finds them warm. Returns the thread, or None when there is nothing to do."""
    running = getattr(w, "_prefetcher", None)
    if running is not None and running.is_alive():
        return None
    start = (w.page + 1) * w.page_size
    if start >= w.total:
        return None
    ds, cache, tab = w.dataset, _cache(w), w.tab
    filters = _view.query_filters(w.filters)

    def work() -> None:
        with contextlib.suppress(Exception):  # a prefetch is only an optimisation
            ids = ds.internal.query_ids(tab=tab, **filters)[start : start + w.page_size]
            items = list(_cache_items(ds, ids))
            thumbs = cache.get_many(
                items, size, workers=_readers(ds), defer_writes=False, background=True
            )
            pairs = zip(ids, thumbs, strict=True)
            _record_info(ds, [(i, th) for i, th in pairs if not getattr(th, "missing", False)])

    thread = threading.Thread(target=work, name="jlabel-prefetch", daemon=True)
    w._prefetcher = thread
    thread.start()
    return thread


def _readers(ds: Any) -> int | None:
    """Threads for a page: the cache's default (one per CPU) for local files, more for S3."""
    protocol = getattr(getattr(ds, "fs", None), "protocol", "file")
    protocols = protocol if isinstance(protocol, (tuple, list)) else (protocol,)
    return None if {"file", "local"} & set(protocols) else REMOTE_READERS


def _cache_items(ds: Any, ids: list[str]) -> Iterator[tuple[str, str, str, Any]]:
    """`(ds_key, id, file_version, read_bytes)` per id, as the thumbnail cache takes them."""
    key, version = ds.internal.key, ds.internal.file_version
    return ((key, i, version(i), partial(ds.read_bytes, i)) for i in ids)


def _record_info(ds: Any, decoded: list[tuple[str, Any]]) -> None:
    """Tell the dataset the sizes it learned from decoding (only for rows that lack them)."""
    record = ds.internal.record_image_info
    if not decoded:
        return
    ids = [i for i, th in decoded if th.orig_width or th.corrupt]
    if not ids:
        return
    by_id = dict(decoded)
    with contextlib.suppress(Exception):  # best effort: the next decode learns them again
        record(
            ids,
            [by_id[i].orig_width for i in ids],
            [by_id[i].orig_height for i in ids],
            [bool(by_id[i].corrupt) for i in ids],
        )


def preview(w: Any, sample_id: str, size: int) -> tuple[dict[str, Any], list[bytes]]:
    """One large JPEG of `sample_id` and its row; a placeholder-free error if it cannot decode."""
    from jlabel.images import decode_rgb

    ds = w.dataset
    frame = ds.query(tab="all", name=sample_id)
    row = frame[frame["id"] == sample_id]
    if row.empty:
        raise KeyError(f"no sample {sample_id!r} in this dataset (deleted?)")
    meta = _view.page_rows(row)[0]
    try:
        image, orig_width, orig_height = decode_rgb(ds.read_bytes(sample_id), size)
    except Exception as exc:  # a broken file is shown as a message, not a failure
        meta["error"] = f"cannot show this image: {exc}"
        return {"row": meta}, []
    image.thumbnail((size, size))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=88)
    meta["width"], meta["height"] = image.size
    meta["orig_width"], meta["orig_height"] = orig_width, orig_height  # boxes are in these
    return {"row": meta, "mime": "image/jpeg"}, [out.getvalue()]
