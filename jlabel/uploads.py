"""Adding images: read what the user gave, check it, choose safe names, save the files.

The dataset then journals the new samples in one operation. A retry of a call that failed after
its files were saved is harmless: a file under the chosen name with the same bytes and no sample
is adopted instead of being saved again under a ``-1`` name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from jlabel.errors import ImageRejected
from jlabel.files import safe_upload_name
from jlabel.images import validate_upload
from jlabel.store import Store

MB = 1024 * 1024


def read_items(files: Iterable[Any]) -> list[tuple[str, bytes]]:
    """``(name, bytes)`` of each path or ``(filename, bytes)`` pair."""
    if isinstance(files, (str, bytes, os.PathLike)) or not isinstance(files, Iterable):
        raise ImageRejected(
            f"add_images takes a list of file paths or (filename, bytes) pairs, not "
            f"{type(files).__name__}: wrap a single file in a list"
        )
    return [_read_item(f) for f in files]


def check_items(items: list[tuple[str, bytes]], *, max_image: int, max_batch: int) -> None:
    """Refuse the batch when it is too large or one file is not a real image."""
    total = sum(len(data) for _, data in items)
    if total > max_batch:
        raise ImageRejected(
            f"these {len(items)} images are {total / MB:.1f} MB together; at most "
            f"{max_batch / MB:g} MB can be added at once: add them in smaller batches"
        )
    for name, data in items:
        validate_upload(name, data, max_bytes=max_image)


def choose_names(
    items: list[tuple[str, bytes]],
    *,
    known: Callable[[str], bool],
    store: Store,
    path_of: Callable[[str], str],
) -> tuple[list[str], list[bool]]:
    """Each item's sample id, and whether its file is already there (an orphan of a failed
    earlier try with the same bytes, adopted as is)."""
    chosen: list[str] = []
    adopted: list[bool] = []
    fs = store.fs
    for name, data in items:
        orphan = False

        def taken(candidate: str, data: bytes = data) -> bool:
            nonlocal orphan
            if candidate in chosen or known(candidate):
                return True
            path = path_of(candidate)
            if not fs.exists(path):
                return False
            orphan = _same_bytes(fs, path, data)
            return not orphan

        chosen.append(safe_upload_name(name, taken))
        adopted.append(orphan)
    return chosen, adopted


def save_new_file(store: Store, path: str, data: bytes, sample_id: str) -> None:
    """Create the file (never overwriting one), durably."""
    with store.errors(f"save {sample_id!r}"):
        if store.local:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        else:
            store.fs.pipe_file(path, data, **store.write_deadline(len(data)))


def _same_bytes(fs: Any, path: str, data: bytes) -> bool:
    try:
        if fs.size(path) != len(data):
            return False
        return fs.cat_file(path) == data
    except OSError:
        return False


def _read_item(item: Any) -> tuple[str, bytes]:
    if isinstance(item, (tuple, list)) and len(item) == 2:
        name, data = item
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ImageRejected(
                f"cannot add {name!r}: the second item of a (filename, bytes) pair must be "
                f"bytes, not {type(data).__name__}"
            )
        return str(name), bytes(data)
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        try:
            return path.name, path.read_bytes()
        except OSError as exc:
            raise ImageRejected(f"cannot read {str(item)!r}: {exc}") from exc
    raise ImageRejected(
        f"cannot add {type(item).__name__}: give file paths or (filename, bytes) pairs"
    )
