"""Where an export may write: a new or empty folder, an earlier export, or one file."""

from __future__ import annotations

import json
import os
import posixpath
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import fsspec
from fsspec.implementations.local import LocalFileSystem

from jlabel.errors import JLabelError
from jlabel.export.formats import Files
from jlabel.files import IMAGE_EXTENSIONS, LABEL_EXTENSIONS

if TYPE_CHECKING:
    from jlabel.dataset import Dataset

MARKER = ".jlabel-export.json"
"""Written first into every exported folder; `overwrite=True` replaces only such folders."""


class Target:
    """The export destination: one folder or one file, on any fsspec filesystem."""

    def __init__(self, path: str | os.PathLike[str], storage_options: dict | None) -> None:
        self.fs, stripped = fsspec.core.url_to_fs(os.fspath(path), **(storage_options or {}))
        self.local = isinstance(self.fs, LocalFileSystem)
        if self.local:
            stripped = os.path.realpath(stripped)
        self.path = stripped.rstrip("/") or stripped
        self.display = self.path if self.local else self.fs.unstrip_protocol(self.path)

    def protocols(self) -> tuple[str, ...]:
        protocol = self.fs.protocol
        return (protocol,) if isinstance(protocol, str) else tuple(protocol)

    def _exists(self, path: str) -> bool:
        self.fs.invalidate_cache(path)
        return self.fs.exists(path)

    def check_file(self, overwrite: bool) -> None:
        if not self._exists(self.path):
            return
        if self.fs.isdir(self.path):
            raise JLabelError(
                f"{self.display} is a folder; give a file path for this format "
                "(e.g. labels.csv or coco.json)"
            )
        if not overwrite:
            raise JLabelError(f"{self.display} exists; pass overwrite=True to replace it")

    def write_file(self, data: bytes) -> None:
        if self.local:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            temp = f"{self.path}.{uuid.uuid4().hex}.tmp"
            with open(temp, "wb") as f:
                f.write(data)
            os.replace(temp, self.path)  # readers never see a half-written file
        else:
            self.fs.pipe_file(self.path, data)

    def prepare_folder(self, overwrite: bool, meta: dict) -> None:
        """Make the folder new and empty (replacing an earlier export), then write MARKER."""
        if self._exists(self.path):
            if not self.fs.isdir(self.path):
                raise JLabelError(f"{self.display} is a file; give a folder path for this format")
            if self.fs.ls(self.path, detail=False):
                if not self._exists(posixpath.join(self.path, MARKER)):
                    raise JLabelError(
                        f"{self.display} is not empty and is not an earlier jlabel export; "
                        "choose a new or empty folder"
                    )
                if not overwrite:
                    raise JLabelError(
                        f"{self.display} holds an earlier export; pass overwrite=True to replace it"
                    )
                self.fs.rm(self.path, recursive=True)
        if self.local:
            os.makedirs(self.path, exist_ok=True)
        meta = {**meta, "exported_at": datetime.now(timezone.utc).isoformat()}
        self.write_all([(MARKER, json.dumps(meta, indent=1).encode("utf-8"))])

    def write_all(self, files: Files) -> None:
        for rel, data in files:
            norm = posixpath.normpath(rel)
            if norm.startswith(("../", "/")) or norm in ("..", "."):
                raise JLabelError(f"refusing to write {rel!r} outside {self.display}")
            full = posixpath.join(self.path, norm)
            if self.local:
                os.makedirs(os.path.dirname(full), exist_ok=True)
                with open(full, "wb") as f:
                    f.write(data)
            else:
                self.fs.pipe_file(full, data)


def inside(path: str, parent: str) -> bool:
    """True when `path` is `parent` or below it."""
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def check_location(ds: Dataset, target: Target, *, folder: bool) -> None:
    """Refuse targets in the dataset's store, and folder exports inside the dataset root."""
    root = str(ds.root)
    protocol, sep, rest = root.partition("://")
    if target.local:
        if sep:
            return
        root_path = os.path.realpath(root)
    else:
        if not sep or protocol not in target.protocols():
            return
        root_path = rest.rstrip("/")
    if inside(target.path, posixpath.join(root_path, ".jlabel")):
        raise JLabelError(
            f"cannot export into the dataset's .jlabel/ folder ({target.display}); "
            "choose a path outside the dataset"
        )
    if not folder and inside(target.path, root_path):
        _refuse_dataset_file(ds, target, target.path[len(root_path) :].lstrip("/"))
    if folder and (inside(target.path, root_path) or inside(root_path, target.path)):
        raise JLabelError(
            f"cannot export images to {target.display}: it is inside (or contains) the dataset "
            f"root {root}, whose next sync would take the copies for new images; choose a "
            "folder outside the dataset"
        )


def _refuse_dataset_file(ds: Dataset, target: Target, rel: str) -> None:
    """Refuse a file export onto a file the dataset reads: an image (a sample's source, or one
    the next sync would add), a sample's `.txt`/`.xml` label file, or a YOLO class list."""
    if not rel:
        return
    name = posixpath.basename(rel).lower()
    stem, ext = posixpath.splitext(rel)
    known = ds.internal.query_ids(tab="all", ids=[rel]) if ext.lower() in IMAGE_EXTENSIONS else []
    what = None
    if known or ext.lower() in IMAGE_EXTENSIONS:
        what = "a source image of the dataset" if known else "an image file name in the dataset"
    elif name in ("classes.txt", "data.yaml"):
        what = "a class list the dataset's sync reads"
    elif ext.lower() in LABEL_EXTENSIONS and _labels_an_image(ds, stem):
        what = "the label file of one of the dataset's images"
    if what is not None:
        raise JLabelError(
            f"cannot export to {target.display}: it is {what}, which an export never "
            "overwrites (overwrite=True or not); choose another name, e.g. labels.csv or "
            "coco.json"
        )


def _labels_an_image(ds: Dataset, stem: str) -> bool:
    """True when a sample's id is `stem` plus an image extension (its label files share it)."""
    spellings = [stem + e for e in IMAGE_EXTENSIONS] + [stem + e.upper() for e in IMAGE_EXTENSIONS]
    return bool(ds.internal.query_ids(tab="all", ids=spellings))
