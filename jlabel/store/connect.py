"""Reaching a dataset's storage: the fsspec filesystem of a folder or ``s3://`` URL, with
timeouts that make an unreachable S3 fail in seconds, and the check that the root exists."""

from __future__ import annotations

import os
from typing import Any

import fsspec

from jlabel.errors import InvalidArgument, NotFound, StorageError
from jlabel.store import Store

S3_DEFAULTS: dict[str, Any] = {
    "retries": 1,  # s3fs's own retries, on top of botocore's: one layer of retrying is enough
    "config_kwargs": {
        "connect_timeout": 5,
        "read_timeout": 10,
        "retries": {"total_max_attempts": 3, "mode": "standard"},
    },
}
"""S3 settings under the user's `storage_options`: a call to an endpoint that does not answer
fails with a StorageError within about 30 s (3 tries of 10 s) instead of minutes."""


def check_root(store: Store, fs: Any, url: str) -> None:
    """Raise NotFound (or StorageError) when the dataset's root folder or bucket does not exist."""
    with store.errors("open the dataset"):
        if store.local:
            if not os.path.isdir(store.root):
                raise NotFound(
                    f"folder {url!r} does not exist: create it (or check the path), then open "
                    "it again"
                )
            return
        bucket = store.root.split("/", 1)[0]
        try:
            fs.info(bucket)
        except FileNotFoundError:
            raise NotFound(
                f"bucket {bucket!r} of {url!r} does not exist or these credentials cannot see "
                "it: create it or check storage_options"
            ) from None


def connect(url: str, storage_options: dict[str, Any] | None) -> tuple[Any, str]:
    """The fsspec filesystem and root path of `url`, with jlabel's S3 timeouts and retries
    under the user's `storage_options` (``retries`` sets s3fs's own retry count)."""
    if storage_options is not None and not isinstance(storage_options, dict):
        raise InvalidArgument(
            f"storage_options must be a dict, not {type(storage_options).__name__}"
        )
    options = dict(storage_options or {})
    s3 = url.startswith(("s3://", "s3a://"))
    retries = options.pop("retries", S3_DEFAULTS["retries"]) if s3 else None
    if s3:  # fail in seconds, not minutes, when S3 does not answer
        options["config_kwargs"] = {
            **S3_DEFAULTS["config_kwargs"],
            **(options.get("config_kwargs") or {}),
        }
    try:
        fs, root = fsspec.core.url_to_fs(url, **options)
    except (ImportError, ValueError, TypeError) as exc:
        raise StorageError(f"cannot open {url!r}: {exc}") from exc
    if retries is not None:
        fs.retries = int(retries)  # an s3fs attribute, not a constructor option
    return fs, root
