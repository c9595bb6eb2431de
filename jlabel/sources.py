"""A dataset's source files, read and deleted safely.

Local files are reached through their real path (links resolved), which must lie inside the
real path of the dataset root: a link (or a folder swapped for a link) leading elsewhere is
refused with `UnsafePath`, for reads and deletes alike. Only regular files are read (opening a
FIFO would block forever). An image's first bytes are checked before the rest is read, so a
huge file that is not an image costs one small read. Remote (S3) keys have no links; their
paths are only checked not to leave the root.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Any

from jlabel.errors import ImageRejected, UnsafePath
from jlabel.files import safe_join
from jlabel.images import describe_bytes, sniff_format

HEADER_BYTES = 64
"""Bytes read first to recognise an image (JPEG, PNG or BMP magic)."""
REMOTE_SNIFF_BYTES = 16 * 1024 * 1024
"""Remote files known to be larger than this get a range read of their header first."""

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def inside(path: str, parent: str) -> bool:
    """True when `path` is `parent` or below it (both normalised, `os.sep` separators)."""
    return path == parent or path.startswith(parent.rstrip(os.sep) + os.sep)


def real_path(root: str, path: str, sample_id: str) -> str:
    """The real path of `path` (a file under `root`); `UnsafePath` when it leads outside the
    real path of `root`."""
    real = os.path.realpath(path)
    if not inside(real, os.path.realpath(root)):
        raise UnsafePath(
            f"{sample_id!r} leads outside the dataset root through a link (to {real!r}); jlabel "
            "does not read, copy or delete files outside the root: replace the link by the "
            "file itself, or delete the sample without its source"
        )
    return real


def not_regular(sample_id: str) -> UnsafePath:
    """The error for a FIFO, socket or device under an image's name."""
    return UnsafePath(
        f"{sample_id!r} is not a regular file (a FIFO, socket or device); jlabel does not read "
        "it: remove it or replace it by an image file"
    )


def not_an_image(sample_id: str, head: bytes) -> ImageRejected:
    """The error for a file whose first bytes are no JPEG, PNG or BMP."""
    return ImageRejected(
        f"{sample_id!r} is {describe_bytes(head)} despite its name (its first bytes say so; "
        "the rest was not read): convert it to JPEG or PNG, or remove it"
    )


def read_local(root: str, path: str, sample_id: str, *, image: bool = True) -> bytes:
    """The bytes of a local file under `root`: inside the root's real path, a regular file, and
    (with `image`) starting like a JPEG, PNG or BMP before the rest is read."""
    real = real_path(root, path, sample_id)
    fd = os.open(real, _OPEN_FLAGS | _NOFOLLOW)  # non-blocking: a FIFO must not hang the open
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise not_regular(sample_id)
        if image:
            head = os.pread(fd, HEADER_BYTES, 0)
            if sniff_format(head) is None:
                raise not_an_image(sample_id, head)
        with os.fdopen(os.dup(fd), "rb", buffering=0) as f:
            return f.readall()
    finally:
        os.close(fd)


def deletable_path(root: str, path: str, sample_id: str) -> str | None:
    """The local path to delete for a sample's source (None when it is already gone);
    `UnsafePath` when the file or a folder on its way is a link leading outside the root."""
    if not os.path.lexists(path):
        return None
    real_path(root, path, sample_id)
    return path


@dataclass(frozen=True)
class SourceReader:
    """Reads a dataset's source files by sample id (picklable: DataLoader workers use it)."""

    fs: Any
    root: str
    local: bool

    def path(self, sample_id: str) -> str:
        """The sample's path on the filesystem (refusing ids that leave the root)."""
        return safe_join(self.root, sample_id)

    def __call__(self, sample_id: str, *, image: bool = True, size: int | None = None) -> bytes:
        """The file's bytes. `image`: refuse (`ImageRejected`) a file that does not start like
        an image, before reading it whole; `size`: its listed size (remote files), which
        decides whether the header is read first."""
        path = self.path(sample_id)
        if self.local:
            return read_local(self.root, path, sample_id, image=image)
        if image and size is not None and size > REMOTE_SNIFF_BYTES:
            head = self.fs.cat_file(path, start=0, end=HEADER_BYTES)
            if sniff_format(head) is None:
                raise not_an_image(sample_id, head)
        return self.fs.cat_file(path)
