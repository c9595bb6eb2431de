"""YOLO label files: how a folder is recognised as YOLO, reading its boxes, writing them.

A folder is YOLO when it, or a folder above it (up to the dataset root), holds ``classes.txt``
(one class name per line) or ``data.yaml`` (a ``names:`` list or ``index: name`` map, as
Ultralytics writes it). An image's boxes are in a ``.txt`` with the same name, next to it or in
the ``labels/`` folder that mirrors an ``images/`` folder (``images/train/a.jpg`` ->
``labels/train/a.txt``). Each line is ``class cx cy w h``, coordinates normalised to [0, 1].
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable

from jlabel.errors import JLabelError

CLASS_FILES = ("classes.txt", "data.yaml")


def label_paths(image_id: str) -> list[str]:
    """Where the YOLO `.txt` of an image may be (relative to the root), in order."""
    stem = posixpath.splitext(image_id)[0]
    paths = [stem + ".txt"]
    parts = stem.split("/")
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            paths.append("/".join([*parts[:i], "labels", *parts[i + 1 :]]) + ".txt")
            break
    return paths


def class_file_folders(image_id: str) -> list[str]:
    """Folders (relative to the root, "" for the root) whose class files make `image_id`'s
    folder YOLO: its own folder, then each one above it."""
    folder = posixpath.dirname(image_id)
    out = []
    while True:
        out.append(folder)
        if not folder:
            return out
        folder = posixpath.dirname(folder)


def parse_classes(name: str, data: bytes) -> list[str]:
    """Class names from ``classes.txt`` or ``data.yaml`` bytes."""
    text = data.decode("utf-8", "replace")
    if name == "classes.txt":
        return [line.strip() for line in text.splitlines() if line.strip()]
    return _yaml_names(text)


def _yaml_names(text: str) -> list[str]:
    """The ``names`` of a data.yaml: ``names: [a, b]``, a ``- a`` list or a ``0: a`` map."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^names\s*:\s*(.*)$", line)
        if not match:
            continue
        rest = match.group(1).strip()
        if rest.startswith("["):
            inner = rest.strip("[]")
            return [_unquote(p) for p in inner.split(",") if p.strip()]
        names: dict[int, str] = {}
        listed: list[str] = []
        for item in lines[i + 1 :]:
            if not item.strip() or item.lstrip().startswith("#"):
                continue
            if not item.startswith((" ", "\t")):
                break
            entry = item.strip()
            if entry.startswith("-"):
                listed.append(_unquote(entry[1:]))
            elif ":" in entry:
                key, value = entry.split(":", 1)
                if key.strip().isdigit():
                    names[int(key)] = _unquote(value)
        if listed:
            return listed
        return [names[k] for k in sorted(names)]
    raise JLabelError("data.yaml has no 'names:' entry; list the class names there")


def _unquote(text: str) -> str:
    return text.strip().strip("'\"").strip()


def parse_boxes(text: str, classes: list[str], size: tuple[int, int]) -> list[dict]:
    """Boxes in pixels (label, xmin, ymin, xmax, ymax, difficult) from a YOLO `.txt`."""
    width, height = size
    boxes = []
    for n, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 5:
            raise JLabelError(f"line {n} is not 'class cx cy w h': {line.strip()[:40]!r}")
        try:
            index = int(parts[0])
            cx, cy, w, h = (float(p) for p in parts[1:5])
        except ValueError:
            raise JLabelError(f"line {n} holds a non-number: {line.strip()[:40]!r}") from None
        if not 0 <= index < len(classes):
            raise JLabelError(
                f"line {n} names class {index}, but the class file lists {len(classes)} classes"
            )
        boxes.append(
            {
                "label": classes[index],
                "xmin": (cx - w / 2) * width,
                "ymin": (cy - h / 2) * height,
                "xmax": (cx + w / 2) * width,
                "ymax": (cy + h / 2) * height,
                "difficult": False,
            }
        )
    return boxes


def format_boxes(boxes: list[dict], classes: list[str], size: tuple[int, int]) -> str:
    """A YOLO `.txt` for boxes in pixels (`classes` gives each label's index)."""
    width, height = size
    index = {name: i for i, name in enumerate(classes)}
    lines = []
    for b in boxes:
        w, h = (b["xmax"] - b["xmin"]) / width, (b["ymax"] - b["ymin"]) / height
        cx, cy = (b["xmin"] + b["xmax"]) / 2 / width, (b["ymin"] + b["ymax"]) / 2 / height
        lines.append(f"{index[b['label']]} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return "\n".join(lines) + ("\n" if lines else "")


def format_data_yaml(classes: list[str]) -> str:
    """A data.yaml naming the classes (and where the images and labels are)."""
    names = "\n".join(f"  {i}: {name}" for i, name in enumerate(classes))
    return f"path: .\ntrain: images\nval: images\nnc: {len(classes)}\nnames:\n{names}\n"


ReadFile = Callable[[str], bytes]
