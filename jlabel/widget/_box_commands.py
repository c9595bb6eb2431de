"""The box editor's actions: one dataset call each, replying with the image's boxes after it.

Registered into `jlabel.widget._commands.HANDLERS` (imported at the end of that module).
Each reply carries ``boxes`` and ``proposed_boxes`` in the compact form the browser draws
(`jlabel.widget._view.compact_boxes`): the editor shows what the dataset holds, once the edit
is durable.
"""

from __future__ import annotations

from typing import Any

from jlabel.widget._commands import Reply, _handler
from jlabel.widget._view import compact_boxes


def _sample(msg: dict[str, Any]) -> str:
    sample_id = msg.get("id")
    if not isinstance(sample_id, str) or not sample_id:
        raise ValueError("'id' must be the sample id of the image being edited")
    return sample_id


def _state(w: Any, sample_id: str, **extra: Any) -> Reply:
    ds = w.dataset
    reply = {
        "ok": True,
        "id": sample_id,
        "boxes": compact_boxes(ds.boxes(sample_id)),
        "proposed_boxes": compact_boxes(ds.proposed_boxes(sample_id)),
        **extra,
    }
    return reply, []


@_handler
def boxes(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """The boxes and proposed boxes of image `id`."""
    return _state(w, _sample(msg))


@_handler
def add_box(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Draw one box (`box`: label, xmin, ymin, xmax, ymax in original pixels) on image `id`."""
    sample_id = _sample(msg)
    box = msg.get("box")
    if not isinstance(box, dict):
        raise ValueError("'box' must be a dict with label, xmin, ymin, xmax, ymax")
    (box_id,) = w.dataset.add_boxes(sample_id, [box])
    return _state(w, sample_id, box_id=box_id)


@_handler
def update_box(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Change box `box_id` of image `id` (`changes`: label and/or coordinates); a proposed box
    edited becomes a confirmed one."""
    sample_id = _sample(msg)
    changes = msg.get("changes")
    if not isinstance(changes, dict):
        raise ValueError("'changes' must be a dict (label, xmin, ymin, xmax, ymax)")
    w.dataset.update_box(sample_id, str(msg.get("box_id")), **changes)
    return _state(w, sample_id)


@_handler
def delete_boxes(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Delete boxes (or proposed boxes) `box_ids` of image `id`."""
    sample_id = _sample(msg)
    box_ids = msg.get("box_ids")
    if not isinstance(box_ids, list) or not box_ids:
        raise ValueError("'box_ids' must be a list of the box ids to delete")
    w.dataset.delete_boxes(sample_id, [str(b) for b in box_ids])
    return _state(w, sample_id)


@_handler
def accept_boxes(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Accept proposed boxes `box_ids` of image `id` as they are."""
    sample_id = _sample(msg)
    box_ids = msg.get("box_ids")
    if not isinstance(box_ids, list) or not box_ids:
        raise ValueError("'box_ids' must be a list of proposed box ids")
    w.dataset.accept_boxes(sample_id, [str(b) for b in box_ids])
    return _state(w, sample_id)


@_handler
def box_undo(w: Any, msg: dict[str, Any], buffers: list[Any]) -> Reply:
    """Undo the dataset's last operation; reply with image `id`'s boxes after it."""
    sample_id = _sample(msg)
    result = w.dataset.undo()
    text = f"undid {result}" if isinstance(result, str) and result else "nothing to undo"
    w.say(text)
    return _state(w, sample_id, text=text)
