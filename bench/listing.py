"""Listing 100k image files: `jlabel.files.list_files` against a bare `os.scandir` walk.

`python -m bench.listing`. Files are empty `.jpg` names in 100 folders of 1,000, created once
in a temporary folder. Two baselines: a walk that only collects names (what any listing must
do) and one that also stats each file. `list_files(stat=False)` (what sync uses) lists names
only and compares with the first; `list_files()` stats every file and compares with the second.
"""

from __future__ import annotations

import os
import statistics
import tempfile

import fsspec

from bench._util import report, timeit
from jlabel.files import list_files

FOLDERS = 100
PER_FOLDER = 1000
ROUNDS = 3  # median of 3


def make_files(root: str) -> None:
    """Create FOLDERS x PER_FOLDER empty `.jpg` files under `root`."""
    for d in range(FOLDERS):
        folder = os.path.join(root, f"folder{d:03d}")
        os.mkdir(folder)
        for i in range(PER_FOLDER):
            with open(os.path.join(folder, f"img{i:05d}.jpg"), "wb"):
                pass


def scandir_walk(root: str, *, stat: bool = False) -> list:
    """The baseline: recursive `os.scandir`, collecting paths (and stats)."""
    out = []
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif stat:
                    out.append((entry.path, entry.stat()))
                else:
                    out.append(entry.path)
    return out


def main() -> None:
    """Print the listing times and their ratios."""
    fs = fsspec.filesystem("file")
    with tempfile.TemporaryDirectory(prefix="jlabel-bench-") as root:
        make_files(root)
        n = len(scandir_walk(root))
        assert len(list_files(fs, root).images) == n  # sanity, not a timing assertion
        runs = {
            "bare": lambda: scandir_walk(root),
            "bare_stat": lambda: scandir_walk(root, stat=True),
            "ours": lambda: list_files(fs, root),
            "names_only": lambda: list_files(fs, root, stat=False),
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        for fn in runs.values():  # warm the dentry cache for every variant
            fn()
        for _ in range(ROUNDS):  # interleaved, so load changes hit every variant alike
            for name, fn in runs.items():
                times[name] += timeit(fn, repeat=1)
        bare, bare_stat, ours, names_only = (statistics.median(times[n]) for n in runs)
    report(f"bare os.scandir walk, {n} files", bare * 1000, "ms")
    report("bare os.scandir walk + stat", bare_stat * 1000, "ms")
    report("list_files", ours * 1000, "ms")
    report("list_files / bare walk", ours / bare, "x")
    report("list_files / bare walk + stat", ours / bare_stat, "x")
    report("list_files(stat=False)", names_only * 1000, "ms")
    report("list_files(stat=False) / bare walk", names_only / bare, "x")


if __name__ == "__main__":
    main()
