"""Files under a dataset root: listing, Pascal VOC parsing, safe names and paths.

Pure functions over an fsspec filesystem; the Dataset decides what to do with the results.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from fsspec.implementations.local import LocalFileSystem

from jlabel.errors import ImageRejected, JLabelError, StorageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
"""Image file extensions jlabel lists and accepts (compared case-insensitively)."""

LABEL_EXTENSIONS = (".txt", ".xml")
"""Label files next to an image: `.txt` (classification labels), `.xml` (Pascal VOC boxes)."""

STORE_DIR = ".jlabel"
_COMMON_EXTENSIONS = IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS)

_MAX_NAME_BYTES = 200  # below the usual 255-byte file-name limit, leaving room for "-N"
_MAX_COLLISIONS = 100_000


class FileStat(NamedTuple):
    """Size in bytes and modification time (seconds since the epoch) of an image."""

    size: int
    mtime: float


class LabelFile(NamedTuple):
    """A label file found next to an image: its path relative to the root, and its mtime."""

    path: str
    mtime: float


@dataclass
class Listing:
    """What one walk of a dataset root found.

    `images` maps a sample id (path relative to the root, `/` separators) to its `FileStat`
    (None when listed with `stat=False`).
    `label_files` maps `(stem, kind)` to a `LabelFile`, where `stem` is a relative path without
    its extension (`"cats/001"` for `cats/001.txt`) and `kind` is `".txt"` or `".xml"` (lower
    case); use `label_file(image_id, kind)` to look one up for an image.
    """

    images: dict[str, FileStat | None] = field(default_factory=dict)
    label_files: dict[tuple[str, str], LabelFile] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    """Files and folders left out, and why: links leading outside the root, FIFOs and other
    non-regular files under an image or label name, names that are not valid UTF-8 (shown
    with `\\x` escapes)."""

    def label_file(self, image_id: str, kind: str) -> LabelFile | None:
        """The `.txt`/`.xml` label file with the same name as `image_id`, or None."""
        return self.label_files.get((posixpath.splitext(image_id)[0], kind))


def is_image_name(name: str) -> bool:
    """True when `name` ends with one of `IMAGE_EXTENSIONS` (any case)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def list_files(fs: Any, root: str, *, stat: bool = True) -> Listing:
    """List the images and label files under `root` and its subfolders, in one walk.

    Skips `.jlabel/` and every hidden folder or file (name starting with "."). Local roots
    are walked with `os.scandir` (symlinked folders are not followed, so links cannot loop);
    other filesystems (S3, ...) use one `fs.find(root, detail=True)`. Raises `StorageError`
    when `root` is not a readable folder. Local files that jlabel must not read are left out
    and listed in `Listing.skipped` with the reason: links leading outside the root (to
    files or folders), FIFOs, sockets and devices, and names that are not valid UTF-8.

    With `stat=False`, local images are not stat'ed and map to None: one `stat` per file
    costs several times the walk itself, so a caller that only needs the names (new and
    removed images) can stat lazily, e.g. with `stat_file`. Remote listings always carry
    size and mtime (they come free with `find`).
    """
    if isinstance(fs, LocalFileSystem):
        return _list_local(fs._strip_protocol(root), stat)
    return _list_fsspec(fs, root)


def stat_file(fs: Any, path: str) -> FileStat:
    """Size and mtime of one file (local: `os.stat`; else `fs.info`)."""
    if isinstance(fs, LocalFileSystem):
        st = os.stat(fs._strip_protocol(path))
        return FileStat(st.st_size, st.st_mtime)
    info = fs.info(path)
    return FileStat(int(info.get("size") or 0), info_mtime(info))


def _list_local(root: str, stat: bool) -> Listing:
    # Tuned for 100k+ files: per-folder list comprehensions instead of per-entry branching,
    # since the Python work per file, not the scandir syscalls, is what this function adds.
    listing = Listing()
    images = listing.images
    keys: list[str] = []
    stack = [(root, "")]
    real_root = os.path.realpath(root)
    while stack:
        path, prefix = stack.pop()
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except OSError as exc:
            if prefix:  # an unreadable subfolder must not stop the listing
                continue
            raise StorageError(
                f"cannot list the dataset folder {root!r}: {exc.strerror or exc}; "
                "check that it exists and is readable"
            ) from exc
        names = [e.name for e in entries if e.is_file(follow_symlinks=False)]
        dirs = [e for e in entries if e.is_dir(follow_symlinks=False)]
        if len(names) + len(dirs) < len(entries):  # links, FIFOs, sockets, devices
            names += _odd_entries(entries, prefix, real_root, listing.skipped)
        if not _utf8("\0".join(names) + "\0".join(e.name for e in dirs)):
            names, dirs = _utf8_only(names, dirs, prefix, listing.skipped)
        if dirs:
            stack.extend((e.path, prefix + e.name + "/") for e in dirs if e.name[0] != ".")
        if "\0." in "\0" + "\0".join(names):
            names = [n for n in names if n[0] != "."]
        found = [n for n in names if n.endswith(_COMMON_EXTENSIONS)]
        if len(found) < len(names):  # mixed-case extensions, label files, other files
            others = [n for n in names if not n.endswith(_COMMON_EXTENSIONS)]
            found += [n for n in others if n.lower().endswith(IMAGE_EXTENSIONS)]
            for name in others:
                ext = name[-4:].lower()
                if ext in LABEL_EXTENSIONS:
                    with contextlib.suppress(OSError):
                        mtime = os.stat(os.path.join(path, name)).st_mtime
                        rel = prefix + name
                        listing.label_files[(rel[:-4], ext)] = LabelFile(rel, mtime)
        if not stat:
            keys.extend(map(prefix.__add__, found))
            continue
        for name in found:
            try:
                st = os.stat(os.path.join(path, name))
            except OSError:  # vanished since the listing, or a dangling link
                continue
            images[prefix + name] = FileStat(st.st_size, st.st_mtime)
    if keys:
        images.update(dict.fromkeys(keys))
    return listing


def _odd_entries(
    entries: list[os.DirEntry], prefix: str, real_root: str, skipped: dict[str, str]
) -> list[str]:
    """Of the entries that are neither plain files nor plain folders: the names of links to
    regular files inside the root (listed like files); the others that matter are recorded
    in `skipped` (links leading outside the root, non-regular files with an image or label
    name). Links to folders inside the root are not followed, as before."""
    keep = []
    for entry in entries:
        name = entry.name
        if name[0] == "." or entry.is_file(follow_symlinks=False):
            continue
        if entry.is_dir(follow_symlinks=False):
            continue
        rel = _shown(prefix + name)
        wanted = name.lower().endswith(IMAGE_EXTENSIONS + LABEL_EXTENSIONS)
        if entry.is_symlink():
            real = os.path.realpath(entry.path)
            if not (real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)):
                what = "folder" if os.path.isdir(real) else "file"
                skipped[rel] = (
                    f"a link to a {what} outside the dataset root ({_shown(real)}); jlabel "
                    "does not read files outside the root: copy the file in instead"
                )
            elif os.path.isfile(real):
                keep.append(name)
            elif wanted and not os.path.isdir(real) and os.path.lexists(real):
                skipped[rel] = "a link to something that is not a regular file (FIFO, device)"
        elif wanted:
            skipped[rel] = "not a regular file (a FIFO, socket or device): jlabel does not read it"
    return keep


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _utf8_only(
    names: list[str], dirs: list[os.DirEntry], prefix: str, skipped: dict[str, str]
) -> tuple[list[str], list[os.DirEntry]]:
    """Drop file and folder names that are not valid UTF-8 (on POSIX, bytes Python holds as
    surrogates), recording them in `skipped`: they cannot be stored, shown or sent as text."""
    reason = (
        "the name is not valid UTF-8 (e.g. Latin-1 bytes), so it cannot be stored or shown; "
        "rename it (e.g. with `convmv -f latin1 -t utf8`)"
    )
    good_names = []
    for name in names:
        if _utf8(name):
            good_names.append(name)
        elif name[0] != "." and name.lower().endswith(IMAGE_EXTENSIONS + LABEL_EXTENSIONS):
            skipped[_shown(prefix + name)] = reason
    good_dirs = []
    for entry in dirs:
        if _utf8(entry.name):
            good_dirs.append(entry)
        elif entry.name[0] != ".":
            skipped[_shown(prefix + entry.name) + "/"] = "folder not listed: " + reason
    return good_names, good_dirs


def _shown(path: str) -> str:
    """`path` as printable UTF-8 text: undecodable bytes as `\\xNN` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _list_fsspec(fs: Any, root: str) -> Listing:
    base = fs._strip_protocol(root).rstrip("/")
    try:
        found = fs.find(base, detail=True)
    except FileNotFoundError:
        found = {}
    except OSError as exc:
        raise StorageError(
            f"cannot list {root!r}: {exc}; check the address and credentials"
        ) from exc
    listing = Listing()
    cut = len(base) + 1 if base else 0
    for path, info in found.items():
        if info.get("type", "file") != "file":
            continue
        rel = path[cut:] if path.startswith(base + "/") or not base else None
        if not rel or any(part.startswith(".") for part in rel.split("/")):
            continue
        stem, ext = posixpath.splitext(rel)
        ext = ext.lower()
        if ext in IMAGE_EXTENSIONS:
            listing.images[rel] = FileStat(int(info.get("size") or 0), info_mtime(info))
        elif ext in LABEL_EXTENSIONS:
            listing.label_files[(stem, ext)] = LabelFile(rel, info_mtime(info))
    return listing


def info_mtime(info: dict) -> float:
    """Modification time from an fsspec info dict (keys differ between filesystems)."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if value is None:
            continue
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
        try:
            return float(value)
        except (TypeError, ValueError):
            continue
    return 0.0


def parse_voc(data: bytes) -> list[dict]:
    """Boxes from a Pascal VOC XML file.

    Returns one dict per `<object>`: `label` (str), `xmin`, `ymin`, `xmax`, `ymax` (float,
    pixels) and `difficult` (bool). Raises `JLabelError` for malformed XML, a missing name or
    box, and for documents with a DTD or entity declarations (refused for safety).
    """
    head = data.lstrip()[:4]
    if b"\x00" in data[:1024] or head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise JLabelError("VOC file is not UTF-8 (or ASCII) text; save it as UTF-8")
    upper = data.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        raise JLabelError(
            "VOC file contains a DOCTYPE or ENTITY declaration, which jlabel refuses for "
            "safety; remove it"
        )
    try:
        tree = ET.fromstring(data)
    except ET.ParseError as exc:
        raise JLabelError(f"VOC file is not well-formed XML ({exc}); fix or remove it") from exc
    boxes = []
    for i, obj in enumerate(tree.iter("object")):
        name = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        if not name or box is None:
            raise JLabelError(f"VOC object #{i + 1} has no <name> or no <bndbox>; fix the file")
        coords = {}
        for key in ("xmin", "ymin", "xmax", "ymax"):
            text = (box.findtext(key) or "").strip()
            try:
                coords[key] = float(text)
            except ValueError:
                raise JLabelError(
                    f"VOC object #{i + 1} ({name!r}) has a bad <{key}> {text!r}; expected a number"
                ) from None
        difficult = (obj.findtext("difficult") or "0").strip()
        boxes.append({"label": name, **coords, "difficult": difficult in ("1", "true", "True")})
    return boxes


_DRIVE = re.compile(r"^[A-Za-z]:")
_LEADING_JUNK = re.compile(r"^[\s.]+")


def safe_upload_name(name: str, taken: Callable[[str], bool]) -> str:
    """The file name (relative to the root) an uploaded image is saved under.

    Rule: unsafe names are renamed to their base name; collisions get a -N suffix; never
    overwrite. Precisely: directories, `..`, drive letters, backslashes and absolute paths are
    stripped so only the base name is kept (saved at the top of the root); control characters,
    surrounding spaces and leading dots (which would hide the file) are dropped; the name is
    NFC-normalised and its stem shortened to at most 200 bytes. A name that ends up empty or
    only dots, or whose extension is not JPG/JPEG/PNG/BMP, is refused with `ImageRejected`.
    While `taken(candidate)` is true, `-1`, `-2`, ... is inserted before the extension.
    """
    original = name
    base = _DRIVE.sub("", str(name).replace("\\", "/")).rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch) != "Cc")
    base = _LEADING_JUNK.sub("", unicodedata.normalize("NFC", base)).rstrip()
    stem, ext = posixpath.splitext(base)
    if not stem.strip(". "):
        raise ImageRejected(
            f"cannot save an upload named {original!r}: no usable file name is left once "
            "folders and unsafe characters are removed; give it a name like 'photo.jpg'"
        )
    if ext.lower() not in IMAGE_EXTENSIONS:
        raise ImageRejected(
            f"cannot save {original!r}: only {', '.join(IMAGE_EXTENSIONS)} files can be added; "
            "convert the image or rename it with the right extension"
        )
    while len(stem.encode("utf-8")) > _MAX_NAME_BYTES:
        stem = stem[:-1]
    candidate = stem + ext
    n = 0
    while taken(candidate):
        n += 1
        if n > _MAX_COLLISIONS:
            raise ImageRejected(f"cannot find a free name for {original!r}; rename the file")
        candidate = f"{stem}-{n}{ext}"
    return candidate


_WINDOWS = os.sep == "\\"


def safe_join(root: str, rel: str) -> str:
    """`root` + "/" + `rel` (normalised), refusing any `rel` that is absolute or escapes `root`.

    On Windows, backslashes count as separators and drive letters as absolute, so `..\\x` and
    `C:x` are refused too; elsewhere both are ordinary file-name characters (`C:x.png` and
    `a\\..\\x.png` are legal POSIX names, and S3 keys) and pass. Raises `JLabelError` naming
    the path. Links are not resolved here (see `jlabel.sources`).
    """
    unified = str(rel).replace("\\", "/") if _WINDOWS else str(rel)
    drive = _WINDOWS and _DRIVE.match(unified)
    if not unified or unified.startswith("/") or drive or "://" in unified:
        raise JLabelError(f"path {rel!r} must be a relative path inside the dataset root")
    norm = posixpath.normpath(unified)
    if norm == ".." or norm.startswith("../"):
        raise JLabelError(f"path {rel!r} leads outside the dataset root; use a path inside it")
    if norm == ".":
        return root.rstrip("/") or root
    # join the original spelling: on POSIX a backslash is an ordinary file-name character
    return root.rstrip("/") + "/" + posixpath.normpath(str(rel))


_mtime = info_mtime  # the earlier private name, still imported by jlabel/dataset.py
