"""Typed errors: each message says what was wrong and what to do."""

from __future__ import annotations


class JLabelError(Exception):
    """Base class of every error jlabel raises on purpose."""


class InvalidArgument(JLabelError, ValueError):
    """An argument has the wrong type or value; the message names it and what is expected."""


class InvalidLabelName(InvalidArgument):
    """A label name breaks the naming rule."""


class ImageRejected(JLabelError, ValueError):
    """An image cannot be added or decoded."""


class UnsafePath(JLabelError):
    """A file jlabel refuses to read, copy or delete: its real path leads outside the dataset
    root (through a link), or it is not a regular file (a FIFO, socket or device)."""


class StorageError(JLabelError, OSError):
    """The dataset's storage (local disk or S3) could not be read or written."""


class PreconditionError(JLabelError):
    """An operation's preconditions do not hold (e.g. too few labels to auto-label)."""


class NotFound(JLabelError, KeyError):
    """A sample, label or version does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class VersionError(JLabelError):
    """A dataset version cannot be created or used."""


class JobError(JLabelError):
    """An auto-labeling job failed or was used wrongly."""


class DataLossWarning(UserWarning):
    """Part of a dataset's store was damaged (a disk or bucket fault, or a hand edit): what it
    held is lost. The message names the file and what was kept aside; ``ds.check()`` lists all."""
