"""The dataset model at scale: label latency, open time and memory, queries, sync.

`python -m bench.dataset` (or `python -m bench dataset`). Goals from issue 2: one label action
≤10 ms median and flat from 10k to 1M samples; open ≤1.5 s and ≤600 MB peak RSS at 1M; a query
≤100 ms at 1M; sync of 100k files ≤1.5x a bare `os.scandir` walk.

Large datasets are built without image files: a samples table is generated with vectorised
arrays and written straight into ``<root>/.jlabel/snapshots/`` (what a compaction would
write), then opened with ``sync=False``. Open time and memory are measured in a fresh process.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench._util import report
from bench.listing import make_files, scandir_walk
from jlabel.codec import write_parquet
from jlabel.table import SampleTable

SIZES = (10_000, 100_000, 1_000_000)
LABELS = ("cat", "dog", "bird", "car")
ACTIONS = 200  # label calls timed per size
BATCH = 48  # one page of the grid


def build_table(n: int, seed: int = 0) -> SampleTable:
    """A table of `n` samples in 100 folders; ~half labeled (one of LABELS), vectorised."""
    rng = np.random.default_rng(seed)
    table = SampleTable()
    for name in LABELS:
        table.masks[name] = np.zeros(0, dtype=bool)
    table.grow(n)
    table.ids = np.asarray([f"folder{i % 100:03d}/img{i:07d}.jpg" for i in range(n)], dtype=object)
    table.alive[:] = True
    now = np.datetime64(int(time.time() * 1e9), "ns")
    table.created_at[:] = now - rng.integers(0, 60 * 86400, n).astype("timedelta64[s]")
    table.size[:] = rng.integers(10_000, 5_000_000, n)
    table.mtime[:] = time.time()
    choice = rng.integers(-len(LABELS), len(LABELS), n)  # negative: unlabeled
    table.users.append("bench")
    for k, name in enumerate(LABELS):
        table.masks[name][:] = choice == k
    labeled = choice >= 0
    table.n_labels[:] = labeled
    table.source[labeled] = 2  # manual
    table.labeled_by[labeled] = 0
    table.labeled_at[labeled] = now
    table.hard[:] = rng.random(n) < 0.05
    table.rebuild_index()
    return table


def make_dataset(root: Path, n: int) -> None:
    """A dataset folder whose store holds an `n`-sample snapshot (no image files)."""
    store = root / ".jlabel" / "snapshots"
    store.mkdir(parents=True)
    data = write_parquet(build_table(n), {"watermarks": {}, "gen": 1})
    (store / "00000001.parquet").write_bytes(data)


def label_latency(root: Path) -> dict[str, list[float]]:
    """Seconds per `ds.label([one id], ...)` and per 48-id batch (wall clock, and CPU time of
    this process, which leaves out fsync waits and other processes), ACTIONS calls each."""
    import jlabel

    ds = jlabel.open(root, sync=False)
    ids = ds.internal.query_ids()
    rng = np.random.default_rng(1)
    out: dict[str, list[float]] = {"1 id": [], f"{BATCH} ids": [], "1 id cpu": []}
    out[f"{BATCH} ids cpu"] = []
    for k in range(ACTIONS + ACTIONS // 4):
        size = 1 if k < ACTIONS else BATCH
        page = [ids[int(i)] for i in rng.integers(len(ids), size=size)]
        start, cpu = time.perf_counter(), time.process_time()
        ds.label(page, LABELS[k % len(LABELS)])
        key = "1 id" if size == 1 else f"{BATCH} ids"
        out[key].append(time.perf_counter() - start)
        out[key + " cpu"].append(time.process_time() - cpu)
    ds.close()
    return out


_OPEN_CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
import jlabel, jlabel.dataset
t1, c1 = time.perf_counter(), time.process_time()
ds = jlabel.open(sys.argv[1], sync=False)
t2, c2 = time.perf_counter(), time.process_time()
try:  # VmHWM: ru_maxrss would carry over the parent's peak through fork + exec on Linux
    peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status")
                   if line.startswith("VmHWM:"))
except OSError:
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"import": t1 - t0, "open": t2 - t1, "open_cpu": c2 - c1, "n": len(ds),
                  "rss_mb": peak_kb / 1024}))
"""


def open_in_child(root: Path, repeat: int = 3) -> dict:
    """Open time (after imports; wall and CPU) and peak RSS of a fresh process opening `root`
    (the run with the median wall time of `repeat`)."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", _OPEN_CHILD, str(root)],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return sorted(runs, key=lambda r: r["open"])[len(runs) // 2]


def wall_cpu(fn: Callable[[], object], repeat: int = 3) -> tuple[float, float]:
    """Median wall-clock and median CPU seconds (this process, user + system) of `fn`.

    CPU time shows the cost of the code itself when other processes share the cores."""
    walls, cpus = [], []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def query_times(root: Path) -> dict[str, tuple[float, float]]:
    """(wall, CPU) median seconds of typical widget queries on the dataset at `root`."""
    import jlabel

    ds = jlabel.open(root, sync=False)
    ds.query(limit=1)
    ds.to_pandas()  # warm-up: first-touch page faults of the result buffers
    filters = {"tab": "labeled", "labels": ["cat", "dog"], "name": "img00123"}
    out = {
        "count of 4 tabs": wall_cpu(lambda: ds.counts(labels=["cat"]), repeat=5),
        "page: tab+label filter, 48 rows": wall_cpu(
            lambda: ds.query(tab="labeled", labels=["cat", "dog"], limit=BATCH), repeat=5
        ),
        "page: tab+label+name filter, 48 rows": wall_cpu(
            lambda: ds.query(**filters, limit=BATCH), repeat=5
        ),
        "full: tab+label filter (DataFrame)": wall_cpu(
            lambda: ds.query(tab="labeled", labels=["cat"])
        ),
        "full: tab+label+name filter (DataFrame)": wall_cpu(lambda: ds.query(**filters)),
        "to_pandas (all rows)": wall_cpu(ds.to_pandas),
    }
    ds.close()
    return out


def sync_times(tmp: Path) -> dict[str, Any]:
    """(wall, CPU) seconds to open+sync a new 100k-file folder, to re-sync it, to reopen it,
    and of bare walks."""
    import jlabel

    root = tmp / "sync"
    root.mkdir()
    make_files(str(root))
    n = len(scandir_walk(str(root)))
    out: dict[str, Any] = {"files": n}
    out["bare"] = wall_cpu(lambda: scandir_walk(str(root)))
    out["bare_stat"] = wall_cpu(lambda: scandir_walk(str(root), stat=True))
    opened = []
    out["first"] = wall_cpu(lambda: opened.append(jlabel.open(root)), repeat=1)
    ds = opened[0]
    assert len(ds) == n, (len(ds), n)  # sanity, not a timing assertion
    out["resync"] = wall_cpu(ds.sync)
    ds.close()
    out["reopen"] = wall_cpu(lambda: jlabel.open(root).close(), repeat=1)
    return out


def main() -> None:
    """Build the datasets and print every figure with its goal."""
    with tempfile.TemporaryDirectory(prefix="jlabel-bench-ds-") as tmp_name:
        tmp = Path(tmp_name)
        roots = {}
        for n in SIZES:
            roots[n] = tmp / f"n{n}"
            start = time.perf_counter()
            make_dataset(roots[n], n)
            report(f"build {n} samples (snapshot only)", time.perf_counter() - start, "s")
        print("  label latency (goal: median <= 10 ms, flat)", flush=True)
        for n in SIZES:
            for what, times in label_latency(roots[n]).items():
                report(f"label {what} @ {n}: median", statistics.median(times) * 1000, "ms")
                p95 = statistics.quantiles(times, n=20)[-1]
                report(f"label {what} @ {n}: p95", p95 * 1000, "ms")
        big = max(SIZES)
        fresh = tmp / "fresh"
        make_dataset(fresh, big)
        opened = open_in_child(fresh)
        report(f"open @ {big} (goal <= 1.5 s)", opened["open"], "s")
        report(f"open @ {big}, CPU time of the process", opened["open_cpu"], "s")
        report(f"peak RSS after open @ {big} (goal <= 600 MB)", opened["rss_mb"], "MB")
        report("import jlabel.dataset (not counted above)", opened["import"], "s")
        opened = open_in_child(roots[big], repeat=1)  # + the journal left by the label runs
        report(
            f"open @ {big} replaying {ACTIONS + ACTIONS // 4} records + compacting",
            opened["open"],
            "s",
        )
        for name, (wall, cpu) in query_times(fresh).items():
            report(f"query @ {big}: {name} (goal <= 100 ms)", wall * 1000, "ms")
            report("    CPU time", cpu * 1000, "ms")
        s = sync_times(tmp)
        rows = [
            (f"bare os.scandir walk, {s['files']} files", "bare"),
            ("bare os.scandir walk + stat", "bare_stat"),
            ("jlabel.open(new folder), includes sync", "first"),
            ("ds.sync(), nothing changed", "resync"),
            ("jlabel.open again (replay + compaction + sync)", "reopen"),
        ]
        for name, key in rows:
            wall, cpu = s[key]
            report(name, wall * 1000, "ms")
            report("    CPU time", cpu * 1000, "ms")
            if key in ("first", "resync"):
                report("    / bare walk (goal <= 1.5x)", wall / s["bare"][0], "x")
                report("    / bare walk + stat", wall / s["bare_stat"][0], "x")
                report("    CPU / bare walk + stat CPU", cpu / s["bare_stat"][1], "x")


if __name__ == "__main__":
    os.environ.setdefault("JLABEL_USER", "bench")
    main()
