"""The labeling widget (anywidget): `Labeler(ds)` or `ds.labeler()`."""

from __future__ import annotations

from jlabel.widget._labeler import Labeler

__all__ = ["Labeler"]
