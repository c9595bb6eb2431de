"""Images decoded in chunks: a thread pool in the kernel (CPU), or DataLoader worker processes
with pinned memory when a CUDA device waits for them. Memory holds one chunk at a time."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

CHUNK = 256
"""Images per chunk (about 38 MB at 224 px)."""


def _decode(data: bytes, size: int) -> np.ndarray:
    from jlabel.autolabel.data import decode

    return decode(data, size)


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


class LocalFiles(torch.utils.data.Dataset):
    """Files by path (checked inside the dataset root by the kernel) decoded to uint8
    ``[size, size, 3]``; item ``n`` is ``(n, array or None, reason)``. Picklable: what
    DataLoader workers run."""

    def __init__(self, paths: Sequence[str], size: int) -> None:
        self.paths = list(paths)
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, n: int) -> tuple[int, np.ndarray | None, str]:
        try:
            with open(self.paths[n], "rb") as f:
                return n, _decode(f.read(), self.size), ""
        except Exception as exc:  # unreadable: reported, never the end of the job
            return n, None, _reason(exc)


def collate(items: list[tuple[int, np.ndarray | None, str]]) -> tuple[Any, Any, dict]:
    """A chunk: positions ``[n]`` and images ``[n, S, S, 3]`` (uint8 tensors) of the decoded
    items, and ``{position: reason}`` of the others."""
    good = [(n, a) for n, a, _ in items if a is not None]
    bad = {n: why for n, a, why in items if a is None}
    pos = torch.tensor([n for n, _ in good], dtype=torch.int64)
    if good:
        images = torch.from_numpy(np.stack([a for _, a in good]))
    else:
        images = torch.zeros((0, 0, 0, 3), dtype=torch.uint8)
    return pos, images, bad


def auto_workers(device: torch.device | None, local: bool) -> int:
    """Decoding processes for a job: none on CPU (threads share the cores with the model),
    up to 8 when a CUDA device waits for images from local files."""
    if device is None or device.type != "cuda" or not local:
        return 0
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus - 1))


def _context() -> Any:
    # forkserver: workers start from a clean process, not a fork of a kernel with threads
    return multiprocessing.get_context("forkserver" if sys.platform == "linux" else "spawn")


def chunks(
    ds: Any,
    ids: Sequence[str],
    size: int,
    *,
    device: torch.device | None = None,
    workers: int | None = None,
    chunk: int = CHUNK,
    threads: int = 4,
    on_progress: Callable[[float], None] | None = None,
) -> Iterator[tuple[list[str], torch.Tensor, dict[str, str]]]:
    """Decode ``ids`` chunk by chunk: ``(ok_ids, uint8 [n, size, size, 3], skipped {id: why})``.

    ``workers`` (default: :func:`auto_workers`) > 0 decodes local files in that many
    DataLoader processes, with pinned memory when ``device`` is CUDA; else ``threads`` threads
    in this process read through ``ds.read_bytes``.
    """
    ids = list(ids)
    local = bool(getattr(ds.internal, "local", False))
    if workers is None:
        workers = auto_workers(device, local)
    done = 0

    def progress(n: int) -> None:
        if on_progress is not None:
            on_progress(n / max(1, len(ids)))

    if workers > 0 and local:
        paths = [ds.internal.source_path(i) for i in ids]
        loader = torch.utils.data.DataLoader(
            LocalFiles(paths, size),
            batch_size=chunk,
            num_workers=workers,
            collate_fn=collate,
            pin_memory=device is not None and device.type == "cuda",
            multiprocessing_context=_context(),
        )
        for pos, images, bad in loader:
            done += len(pos) + len(bad)
            progress(done)
            if not len(pos):
                images = torch.zeros((0, size, size, 3), dtype=torch.uint8)
            yield (
                [ids[int(n)] for n in pos],
                images,
                {ids[int(n)]: why for n, why in bad.items()},
            )
        return

    def one(sample_id: str) -> np.ndarray | str:
        try:
            return _decode(ds.read_bytes(sample_id), size)
        except Exception as exc:  # unreadable: reported, never the end of the job
            return _reason(exc)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for start in range(0, len(ids), chunk):
            part = ids[start : start + chunk]
            outs = list(pool.map(one, part))
            ok = [i for i, o in zip(part, outs, strict=True) if not isinstance(o, str)]
            bad = {i: o for i, o in zip(part, outs, strict=True) if isinstance(o, str)}
            arrays = [o for o in outs if not isinstance(o, str)]
            images = (
                torch.from_numpy(np.stack(arrays))
                if arrays
                else torch.zeros((0, size, size, 3), dtype=torch.uint8)
            )
            done += len(part)
            progress(done)
            yield ok, images, bad
