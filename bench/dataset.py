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
from pathlib import Path

import numpy as np

from bench._util import median_time, report
from bench.listing import make_files, scandir_walk
from jlabel.store.snapshot import write_parquet
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
    table._grow(n)
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


def label_latency(root: Path) -> tuple[list[float], list[float]]:
    """Seconds per `ds.label([one id], ...)` and per 48-id batch, ACTIONS calls each."""
    import jlabel

    ds = jlabel.open(root, sync=False)
    ids = ds.query_ids()
    rng = np.random.default_rng(1)
    one, batch = [], []
    for k in range(ACTIONS):
        sid = ids[int(rng.integers(len(ids)))]
        start = time.perf_counter()
        ds.label([sid], LABELS[k % len(LABELS)])
        one.append(time.perf_counter() - start)
    for k in range(ACTIONS // 4):
        pick = rng.integers(len(ids), size=BATCH)
        page = [ids[int(i)] for i in pick]
        start = time.perf_counter()
        ds.label(page, LABELS[k % len(LABELS)])
        batch.append(time.perf_counter() - start)
    ds.close()
    return one, batch


_OPEN_CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
import jlabel, jlabel.dataset
t1, c1 = time.perf_counter(), time.process_time()
ds = jlabel.open(sys.argv[1], sync=False)
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"import": t1 - t0, "open": t2 - t1, "open_cpu": c2 - c1, "n": len(ds),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
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


def query_times(root: Path) -> dict[str, float]:
    """Median seconds of typical widget queries on the dataset at `root`."""
    import jlabel

    ds = jlabel.open(root, sync=False)
    ds.query(limit=1)  # the id order is computed once, then cached
    filters = {"tab": "labeled", "labels": ["cat", "dog"], "name": "img00123"}
    out = {
        "count of 4 tabs": median_time(lambda: ds.counts(labels=["cat"]), repeat=5),
        "page: tab+label filter, 48 rows": median_time(
            lambda: ds.query(tab="labeled", labels=["cat", "dog"], limit=BATCH), repeat=5
        ),
        "page: tab+label+name filter, 48 rows": median_time(
            lambda: ds.query(**filters, limit=BATCH), repeat=5
        ),
        "full: tab+label filter (DataFrame)": median_time(
            lambda: ds.query(tab="labeled", labels=["cat"]), repeat=3
        ),
        "full: tab+label+name filter (DataFrame)": median_time(
            lambda: ds.query(**filters), repeat=3
        ),
        "to_pandas (all rows)": median_time(ds.to_pandas, repeat=1),
    }
    ds.close()
    return out


def sync_times(tmp: Path) -> dict[str, float]:
    """Seconds to open+sync a new 100k-file folder, to re-sync it, and of a bare walk."""
    import jlabel

    root = tmp / "sync"
    root.mkdir()
    make_files(str(root))
    n = len(scandir_walk(str(root)))
    bare = median_time(lambda: scandir_walk(str(root)))
    bare_stat = median_time(lambda: scandir_walk(str(root), stat=True))
    start = time.perf_counter()
    ds = jlabel.open(root)
    first = time.perf_counter() - start
    assert len(ds) == n, (len(ds), n)  # sanity, not a timing assertion
    resync = median_time(ds.sync, repeat=3)
    ds.close()
    start = time.perf_counter()
    ds = jlabel.open(root)
    reopen = time.perf_counter() - start
    ds.close()
    return {
        "files": n,
        "bare": bare,
        "bare_stat": bare_stat,
        "first": first,
        "resync": resync,
        "reopen": reopen,
    }


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
            one, batch = label_latency(roots[n])
            for what, times in (("1 id", one), (f"{BATCH} ids", batch)):
                report(f"label {what} @ {n}: median", statistics.median(times) * 1000, "ms")
                report(
                    f"label {what} @ {n}: p95",
                    statistics.quantiles(times, n=20)[-1] * 1000,
                    "ms",
                )
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
        for name, seconds in query_times(fresh).items():
            report(f"query @ {big}: {name} (goal <= 100 ms)", seconds * 1000, "ms")
        s = sync_times(tmp)
        report(f"bare os.scandir walk, {s['files']} files", s["bare"] * 1000, "ms")
        report("bare os.scandir walk + stat", s["bare_stat"] * 1000, "ms")
        report("jlabel.open(new folder) incl. sync", s["first"] * 1000, "ms")
        report("  / bare walk (goal <= 1.5x)", s["first"] / s["bare"], "x")
        report("  / bare walk + stat", s["first"] / s["bare_stat"], "x")
        report("ds.sync() nothing changed", s["resync"] * 1000, "ms")
        report("  / bare walk (goal <= 1.5x)", s["resync"] / s["bare"], "x")
        report("  / bare walk + stat", s["resync"] / s["bare_stat"], "x")
        report("jlabel.open again (sync)", s["reopen"] * 1000, "ms")


if __name__ == "__main__":
    os.environ.setdefault("JLABEL_USER", "bench")
    main()
