"""Small helpers shared by the benchmarks: timing, peak memory, one-line reports."""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

OUTPUT = Path(__file__).parent / "output"
"""Scratch folder for generated inputs (ignored by git)."""


def timeit(
    fn: Callable[[], object], *, repeat: int = 3, setup: Callable[[], object] | None = None
) -> list[float]:
    """Run `fn` `repeat` times (calling `setup` untimed before each); return seconds per run."""
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median_time(
    fn: Callable[[], object], *, repeat: int = 3, setup: Callable[[], object] | None = None
) -> float:
    """Median seconds of `repeat` runs of `fn` (see `timeit`)."""
    return statistics.median(timeit(fn, repeat=repeat, setup=setup))


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def report(name: str, value: float, unit: str) -> None:
    """Print one figure as an aligned `name  value unit` line."""
    print(f"  {name:<48} {value:>12.3f} {unit}", flush=True)
