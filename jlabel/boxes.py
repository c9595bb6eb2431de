"""Object-detection boxes: the checks a box passes, and the `Dataset` methods that edit them.

A box is ``{"box_id", "label", "xmin", "ymin", "xmax", "ymax", "difficult", "source",
"labeled_by", "labeled_at"}`` in pixels of the original image (EXIF orientation applied),
Pascal VOC convention; ``labeled_at`` is seconds since the epoch (UTC), None for imported boxes.
A proposed box has a ``score`` instead of who/when. Each edit is one journaled operation and one
undo (:mod:`jlabel.ops`).
"""

from __future__ import annotations

import io
import math
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from PIL import Image

from jlabel import args, ops
from jlabel.errors import InvalidArgument, NotFound
from jlabel.labels import validate_label_name
from jlabel.replica import Replica

COORDS = ("xmin", "ymin", "xmax", "ymax")
EDITABLE = ("label", *COORDS, "difficult")
"""What `update_box` may change."""
_GIVEN = frozenset({"box_id", "label", *COORDS, "difficult", "score"})
_ORIENTATION_SWAPS = (5, 6, 7, 8)  # EXIF orientations that swap width and height
EDGE = 0.5
"""Pixels a coordinate may lie outside the image (VOC's 1-based pixel indices reach w)."""


def new_box_id() -> str:
    """A new, unique box id (`b` + 12 hex digits)."""
    return "b" + uuid.uuid4().hex[:12]


def check_box(
    box: Any, *, size: tuple[int, int] | None, where: str, proposed: bool = False
) -> dict[str, Any]:
    """A box as stored, after checking it; `where` names it in errors ("box 2 of 'a.png'")."""
    if not isinstance(box, dict):
        raise InvalidArgument(
            f"{where} must be a dict with label, xmin, ymin, xmax, ymax, not {type(box).__name__}"
        )
    unknown = set(box) - _GIVEN - ({"edited"} if proposed else set())
    if unknown:
        raise InvalidArgument(
            f"{where} has unknown keys {sorted(unknown)}: a box has label, xmin, ymin, xmax, "
            "ymax and optionally difficult"
        )
    if box.get("label") in (None, ""):
        raise InvalidArgument(f"{where} has no label: give each box a label name")
    label = validate_label_name(box["label"])
    coords = {k: _coordinate(box.get(k), k, where) for k in COORDS}
    check_extent(coords, size=size, where=where)
    out: dict[str, Any] = {
        "box_id": str(box.get("box_id") or new_box_id()),
        "label": label,
        **coords,
        "difficult": args.bool_value(box.get("difficult", False), name=f"{where}: difficult"),
    }
    if proposed:
        score = args.float_or_none(box.get("score"), name=f"{where}: score")
        if score is None or not 0 <= score <= 1:
            raise InvalidArgument(
                f"{where} needs a score between 0 and 1, not {box.get('score')!r}"
            )
        out["score"] = score
    return out


def check_extent(coords: dict[str, float], *, size: tuple[int, int] | None, where: str) -> None:
    """xmax > xmin, ymax > ymin, and inside the image when its size is known."""
    if coords["xmax"] <= coords["xmin"] or coords["ymax"] <= coords["ymin"]:
        raise InvalidArgument(
            f"{where} is empty: xmax must be greater than xmin and ymax than ymin (got "
            f"{coords['xmin']:g}..{coords['xmax']:g} x {coords['ymin']:g}..{coords['ymax']:g})"
        )
    if size is None:
        return
    width, height = size
    if (
        coords["xmin"] < -EDGE
        or coords["ymin"] < -EDGE
        or coords["xmax"] > width + EDGE
        or coords["ymax"] > height + EDGE
    ):
        raise InvalidArgument(
            f"{where} ({coords['xmin']:g}, {coords['ymin']:g}, {coords['xmax']:g}, "
            f"{coords['ymax']:g}) lies outside the image ({width}x{height} pixels): "
            "coordinates are pixels of the original image"
        )


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of an image as it is shown (EXIF rotation applied), from its header;
    None when it cannot be read."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            try:
                turned = im.getexif().get(0x0112, 1) in _ORIENTATION_SWAPS
            except Exception:  # a broken EXIF block only loses the rotation
                turned = False
    except Exception:
        return None
    return (height, width) if turned else (width, height)


def _coordinate(value: Any, key: str, where: str) -> float:
    number = args.float_or_none(value, name=f"{where}: {key}") if value is not None else None
    if number is None or not math.isfinite(number):
        raise InvalidArgument(f"{where} needs a number for {key}, not {value!r}")
    return number


class Boxes:
    """The box methods of a `Dataset` (a mixin: it needs the dataset's replica and commit)."""

    user: str
    _replica: Replica
    _commit: Callable[..., None]
    internal: Any

    def boxes(self, sample_id: str) -> list[dict[str, Any]]:
        """The boxes of one image (copies), in the order they were made."""
        with self._replica.reading() as table:
            return [dict(b) for b in table.boxes.get(self._row(sample_id), [])]

    def proposed_boxes(self, sample_id: str) -> list[dict[str, Any]]:
        """The proposed boxes of one image (copies; each has a ``score``)."""
        with self._replica.reading() as table:
            return [dict(b) for b in table.proposed_boxes.get(self._row(sample_id), [])]

    def add_boxes(self, sample_id: str, boxes: Iterable[dict[str, Any]]) -> list[str]:
        """Add boxes to one image; returns their box ids.

        Parameters
        ----------
        sample_id : the image
        boxes : dicts with ``label``, ``xmin``, ``ymin``, ``xmax``, ``ymax`` (pixels of the
            original image) and optionally ``difficult``; new labels join the label set
        """
        if isinstance(boxes, dict) or not isinstance(boxes, Iterable):
            raise InvalidArgument("boxes must be a list of box dicts (wrap a single box in [...])")
        given = list(boxes)
        if not given:
            raise InvalidArgument("boxes is empty: pass one or more boxes")
        size = self._size(sample_id)
        now = time.time()
        checked = [
            {
                **check_box(b, size=size, where=f"box {i} of {sample_id!r}"),
                "source": "manual",
                "labeled_by": self.user,
                "labeled_at": now,
            }
            for i, b in enumerate(given)
        ]
        taken = {b["box_id"] for b in self.boxes(sample_id)}
        if taken & {b["box_id"] for b in checked} or len({b["box_id"] for b in checked}) < len(
            checked
        ):
            raise InvalidArgument(f"box ids must be new on {sample_id!r}: leave box_id out")
        self._commit(ops.add_boxes(sample_id, checked, user=self.user, t=now))
        return [b["box_id"] for b in checked]

    def update_box(self, sample_id: str, box_id: str, **changes: Any) -> None:
        """Change a box's ``label``, coordinates or ``difficult``; a proposed box that is
        edited becomes a confirmed box (``source="manual"``)."""
        unknown = set(changes) - set(EDITABLE)
        if unknown or not changes:
            raise InvalidArgument(
                f"update_box changes {', '.join(EDITABLE)}; got {sorted(unknown) or 'nothing'}"
            )
        box = self._box(sample_id, box_id)
        where = f"box {box_id!r} of {sample_id!r}"
        clean: dict[str, Any] = {}
        if "label" in changes:
            clean["label"] = validate_label_name(changes["label"])
        for key in COORDS:
            if key in changes:
                clean[key] = _coordinate(changes[key], key, where)
        if "difficult" in changes:
            clean["difficult"] = args.bool_value(changes["difficult"], name=f"{where}: difficult")
        check_extent(
            {k: clean.get(k, box[k]) for k in COORDS}, size=self._size(sample_id), where=where
        )
        self._commit(ops.update_box(sample_id, box_id, clean, user=self.user, t=time.time()))

    def delete_boxes(self, sample_id: str, box_ids: Iterable[str] | None = None) -> int:
        """Delete boxes (or proposed boxes) of one image by id; None deletes all its confirmed
        boxes. Returns how many were deleted."""
        current = self.boxes(sample_id)
        if box_ids is None:
            if current:
                self._commit(ops.delete_boxes(sample_id, None))
            return len(current)
        ids = args.sample_ids(box_ids, name="box_ids")
        for box_id in ids:
            self._box(sample_id, box_id)
        self._commit(ops.delete_boxes(sample_id, ids))
        return len(ids)

    def accept_boxes(self, sample_id: str, box_ids: Iterable[str] | None = None) -> int:
        """Accept proposed boxes of one image as they are (None: all of them; the image's
        proposed labels stay); returns how many were accepted."""
        proposed = self.proposed_boxes(sample_id)
        if box_ids is None:
            ids = [b["box_id"] for b in proposed]
        else:
            ids = args.sample_ids(box_ids, name="box_ids")
            known = {b["box_id"] for b in proposed}
            missing = [i for i in ids if i not in known]
            if missing:
                raise NotFound(f"{sample_id!r} has no proposed box {missing[0]!r}")
        if ids:
            self._commit(ops.accept_boxes(sample_id, ids, user=self.user, t=time.time()))
        return len(ids)

    def box_counts(self) -> dict[str, int]:
        """Confirmed boxes per label, in label-set order."""
        with self._replica.reading() as table:
            counts = dict.fromkeys(table.masks, 0)
            for row, boxes in table.boxes.items():
                if table.alive[row]:
                    for b in boxes:
                        counts[b["label"]] = counts.get(b["label"], 0) + 1
            return counts

    # -- helpers ---------------------------------------------------------------------------
    def _row(self, sample_id: Any) -> int:
        if not isinstance(sample_id, str):
            raise InvalidArgument(f"sample_id must be a sample id (a string), not {sample_id!r}")
        row = self._replica.table.row_of.get(sample_id)
        if row is None:
            raise NotFound(f"no sample with id {sample_id!r}: ids are paths relative to the root")
        return row

    def _box(self, sample_id: str, box_id: Any) -> dict[str, Any]:
        for box in [*self.boxes(sample_id), *self.proposed_boxes(sample_id)]:
            if box["box_id"] == box_id:
                return box
        raise NotFound(f"{sample_id!r} has no box {box_id!r}; see ds.boxes({sample_id!r})")

    def _size(self, sample_id: str) -> tuple[int, int] | None:
        """The image's size: from the table, else read from its header (and remembered)."""
        row = self._row(sample_id)
        table = self._replica.table
        if table.width[row] > 0 and table.height[row] > 0:
            return int(table.width[row]), int(table.height[row])
        size = image_size(self.internal.read_source(sample_id))
        if size is not None:
            self.internal.record_image_info([sample_id], [size[0]], [size[1]], [False])
        return size
