"""The label-name rule and label files (`.txt` next to an image)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from jlabel.errors import InvalidLabelName

LABEL_RULE = "1-32 characters: letters, digits, '-' and '_'"
_LABEL_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")


def validate_label_name(name: object) -> str:
    """Return `name` if it follows the label rule, else raise `InvalidLabelName`."""
    if not isinstance(name, str) or not _LABEL_RE.fullmatch(name):
        raise InvalidLabelName(
            f"invalid label name {name!r}: a label name is {LABEL_RULE} "
            "(no spaces or other characters); rename it, e.g. "
            f"{_suggest(name)!r}"
        )
    return name


def validate_label_names(names: Iterable[object]) -> list[str]:
    """Validate several names; keep their order, drop repeats."""
    out: list[str] = []
    for name in names:
        valid = validate_label_name(name)
        if valid not in out:
            out.append(valid)
    return out


def parse_label_text(text: str) -> list[str]:
    """Labels from a `.txt` label file: one per line, or comma-separated; blanks ignored."""
    names: list[str] = []
    for line in text.splitlines():
        for part in line.split(","):
            part = part.strip()
            if part and part not in names:
                names.append(part)
    return names


def _suggest(name: object) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", str(name)).strip("_")[:32]
    return cleaned or "label_1"
