"""jlabel: image labeling inside the notebook."""

from __future__ import annotations

from jlabel.errors import (
    ImageRejected,
    InvalidArgument,
    InvalidLabelName,
    JLabelError,
    JobError,
    NotFound,
    PreconditionError,
    StorageError,
    UnsafePath,
    VersionError,
)

__all__ = [
    "Dataset",
    "ImageRejected",
    "InvalidArgument",
    "InvalidLabelName",
    "JLabelError",
    "Job",
    "JobError",
    "Labeler",
    "NotFound",
    "PreconditionError",
    "StorageError",
    "UnsafePath",
    "VersionError",
    "fsck",
    "open",
]
__version__ = "0.1.0"


def __getattr__(name: str):  # lazy: importing jlabel must not import torch or the widget
    if name in ("open", "Dataset"):
        from jlabel import dataset

        return getattr(dataset, name)
    if name == "fsck":
        from jlabel.health import fsck

        return fsck
    if name == "Labeler":
        from jlabel.widget import Labeler

        return Labeler
    if name == "Job":
        from jlabel.autolabel import Job

        return Job
    raise AttributeError(f"module 'jlabel' has no attribute {name!r}")
