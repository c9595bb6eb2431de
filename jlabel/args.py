"""Checking the arguments of public calls: each bad one gets an `InvalidArgument` that names it
and says what is expected, before anything deep inside can fail on it."""

from __future__ import annotations

import difflib
import functools
import inspect
import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import numpy as np

from jlabel.errors import InvalidArgument

T = TypeVar("T")


def sample_ids(value: Any, *, name: str = "ids", allow_empty: bool = False) -> list[str]:
    """One id or an iterable of ids -> a list without repeats (order kept)."""
    if isinstance(value, str):
        return [value]
    if value is None or isinstance(value, (bytes, dict)) or not isinstance(value, Iterable):
        raise InvalidArgument(
            f"{name} must be a sample id or a list of sample ids (paths relative to the root, "
            f"e.g. 'cats/001.jpg'), not {_describe(value)}"
        )
    out = list(value)
    bad = next((v for v in out if not isinstance(v, str)), None)
    if bad is not None:
        raise InvalidArgument(
            f"{name} must hold sample ids (strings, paths relative to the root), not "
            f"{_describe(bad)}"
        )
    if not out and not allow_empty:
        raise InvalidArgument(f"{name} is empty: pass one or more sample ids")
    return list(dict.fromkeys(out))


def names_list(names: Iterable[Any]) -> list[Any]:
    """Label names given as ``*names``, where one may be a list or tuple of names."""
    out: list[Any] = []
    for name in names:
        if isinstance(name, (list, tuple)):
            out.extend(name)
        else:
            out.append(name)
    return out


def same_length(call: str, ids: list[str], **columns: Any) -> None:
    """Each of `columns` is a list as long as `ids` (None is allowed where it means "none")."""
    for key, column in columns.items():
        if column is None:
            continue
        if isinstance(column, (str, bytes)) or not hasattr(column, "__len__"):
            raise InvalidArgument(f"{call}: {key} must be a list, one entry per id")
        if len(column) != len(ids):
            raise InvalidArgument(
                f"{call}: {key} has {len(column)} entries for {len(ids)} ids; give one per id"
            )


def float_or_none(value: Any, *, name: str) -> float | None:
    """A number (None and NaN stay None)."""
    if value is None:
        return None
    if isinstance(value, bool) or (
        not isinstance(value, (int, float)) and not _numpy_number(value)
    ):
        raise InvalidArgument(f"{name} must be numbers (or None), not {_describe(value)}")
    value = float(value)
    return None if math.isnan(value) else value


def scores_rows(scores: Any, labels: list[list[str]], *, call: str) -> list[list[float]]:
    """A list of score lists, one score per proposed label."""
    if scores is None or isinstance(scores, (str, bytes)) or not hasattr(scores, "__len__"):
        raise InvalidArgument(
            f"{call}: scores must be a list with one list of scores per id, not {_describe(scores)}"
        )
    out = []
    for i, (row, names) in enumerate(zip(scores, labels, strict=False)):
        if isinstance(row, (str, bytes)) or not hasattr(row, "__len__"):
            raise InvalidArgument(f"{call}: scores[{i}] must be a list of numbers")
        if len(row) != len(names):
            raise InvalidArgument(
                f"{call}: scores[{i}] has {len(row)} scores for {len(names)} labels; give one "
                "score per proposed label"
            )
        floats = [float_or_none(s, name=f"scores[{i}]") for s in row]
        if any(s is None for s in floats):
            raise InvalidArgument(f"{call}: scores[{i}] holds a missing score; give numbers")
        out.append([float(s) for s in floats if s is not None])
    return out


def choice(value: Any, choices: Iterable[T], *, name: str) -> T:
    """`value` when it is one of `choices`, else an InvalidArgument naming `name`."""
    allowed = list(choices)
    if value not in allowed:
        raise InvalidArgument(f"{name}={value!r}: use one of {', '.join(repr(c) for c in allowed)}")
    return value


def bool_value(value: Any, *, name: str) -> bool:
    """`value` as a bool when it is True/False (numpy bools too), else an InvalidArgument."""
    if not isinstance(value, bool) and not _numpy_bool(value):
        raise InvalidArgument(f"{name} must be True or False, not {_describe(value)}")
    return bool(value)


def explain_bad_calls(cls: type[T]) -> type[T]:
    """Make every public method of `cls` answer a call that does not fit its signature (a
    misspelled keyword, a missing or extra argument) with an `InvalidArgument` naming the
    parameters, instead of Python's bare TypeError. Costs nothing on good calls."""
    for attr, value in list(vars(cls).items()):
        if attr.startswith("_") or not inspect.isfunction(value):
            continue
        setattr(cls, attr, _explained(value))
    return cls


def _explained(method: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(method)

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except TypeError:
            try:
                signature.bind(*args, **kwargs)
            except TypeError as exc:
                message = _binding_message(method.__name__, signature, kwargs, exc)
                raise InvalidArgument(message) from None
            raise

    return call


def _binding_message(
    name: str, signature: inspect.Signature, kwargs: dict[str, Any], exc: TypeError
) -> str:
    params = [p for p in signature.parameters if p != "self"]
    unknown = [k for k in kwargs if k not in signature.parameters]
    if unknown:
        close = difflib.get_close_matches(unknown[0], params, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        listed = ", ".join(params)
        return f"{name}() has no parameter {unknown[0]!r}: {hint}its parameters are {listed}"
    text = str(exc).split("() ", 1)[-1]
    return f"{name}(): {text}; its parameters are {', '.join(params)}"


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _numpy_number(value: Any) -> bool:
    return (
        type(value).__module__ == "numpy" and hasattr(value, "dtype") and value.dtype.kind in "iuf"
    )


def _numpy_bool(value: Any) -> bool:
    return type(value).__module__ == "numpy" and getattr(value, "dtype", np.dtype(int)).kind == "b"
