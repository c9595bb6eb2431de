"""Files that must cost only themselves (issue 8, item 6), timed in fresh processes.

`python -m bench.odd_files [--big-mb 256] [--huge 12]`. Three cases, each in its own child
process so its peak RSS is its own:

- a `--big-mb` MiB file of noise named `.jpg`: open + sync + one thumbnail page holding it,
  until it is flagged (before: 37 s for 256 MiB, the whole file read); then the same file
  starting with JPEG magic bytes, which passes the header sniff and is read whole;
- a page of 2 and of `--huge` 10,000 x 10,000 PNGs (the pixel limit): cold thumbnail page,
  seconds and peak RSS, which stays flat (before: 16 s and 1.1 GB for twelve);
- a FIFO named `fifo.png` that replaced a labeled sample: a thumbnail page and a CSV export
  still return (before: both blocked forever).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench._util import OUTPUT, report

HUGE_SIDE = 10_000


def _page(root: Path, ids: list[str] | None = None) -> dict[str, object]:
    import jlabel
    from jlabel.widget import Labeler

    start = time.perf_counter()
    ds = jlabel.open(root)
    opened = time.perf_counter() - start
    w = Labeler(ds, page_size=48)
    ids = ids or [r["id"] for r in w.rows]
    t0 = time.perf_counter()
    reply, buffers = w._request({"op": "thumbnails", "ids": ids}, [])
    page_s = time.perf_counter() - t0
    return {
        "open_s": opened,
        "page_s": page_s,
        "total_s": time.perf_counter() - start,
        "flagged": [i["id"] for i in reply["items"] if i.get("corrupt") or i.get("error")],
        "bytes": sum(len(b) for b in buffers),
    }


def _child(case: str, root: str) -> None:
    from bench._util import peak_rss_mb

    out = _page(Path(root)) if case != "fifo" else _fifo(Path(root))
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out))


def _fifo(root: Path) -> dict[str, object]:
    import jlabel

    ds = jlabel.open(root)
    ds.label(["a.png", "b.png"], "cat")
    os.remove(root / "a.png")
    os.mkfifo(root / "a.png")
    out = _page(root, ["a.png", "b.png"])
    t0 = time.perf_counter()
    import warnings

    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        ds.export(root.parent / "labels.csv", format="csv")
    out["export_s"] = time.perf_counter() - t0
    return out


def _run_child(case: str, root: Path, timeout: float = 600) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.odd_files", "--child", case, str(root)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{case} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _small_pngs(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        pixels = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"{chr(97 + i)}.png")


def _huge_pngs(folder: Path, n: int) -> list[Path]:
    """`n` 10,000 x 10,000 PNGs (a gradient, cheap to encode), made once under bench/output."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"huge{i:02d}.png" for i in range(n)]
    missing = [p for p in paths if not p.exists()]
    if missing:
        row = np.linspace(0, 255, HUGE_SIDE, dtype=np.uint8)
        pixels = np.broadcast_to(row[None, :, None], (HUGE_SIDE, HUGE_SIDE, 3)).copy()
        first = Image.fromarray(pixels)
        missing[0].parent.mkdir(parents=True, exist_ok=True)
        first.save(missing[0], compress_level=1)
        for p in missing[1:]:
            p.write_bytes(missing[0].read_bytes())
    return paths


def main() -> None:
    """Run the three cases and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-mb", type=int, default=256)
    parser.add_argument("--huge", type=int, default=12)
    parser.add_argument("--child", nargs=2, metavar=("CASE", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    huge = _huge_pngs(OUTPUT / "huge_png", args.huge)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        small = base / "small"
        small.mkdir()
        _small_pngs(small, 4)
        r = _run_child("small", small)
        print("baseline: four 64 x 64 PNGs")
        report("thumbnail page", r["page_s"], "s")
        report("peak RSS (the process, imports included)", r["peak_rss_mb"], "MB")

        big = base / "big"
        big.mkdir()
        _small_pngs(big, 4)
        chunk = os.urandom(1 << 20)
        with open(big / "big.jpg", "wb") as f:
            for _ in range(args.big_mb):
                f.write(chunk)
        r = _run_child("big", big)
        print(f"not an image, {args.big_mb} MiB of noise named .jpg (flagged: {r['flagged']})")
        report("open + sync", r["open_s"], "s")
        report("thumbnail page (5 images)", r["page_s"], "s")
        report("peak RSS", r["peak_rss_mb"], "MB")
        fake = base / "fake"
        fake.mkdir()
        _small_pngs(fake, 4)
        with open(fake / "fake.jpg", "wb") as f:  # passes the sniff: read whole, then refused
            f.write(b"\xff\xd8\xff\xe0" + b"\0" * 12)
            for _ in range(args.big_mb):
                f.write(chunk)
        r = _run_child("big", fake)
        print(f"the same starting like a JPEG (flagged: {r['flagged']})")
        report("thumbnail page (5 images)", r["page_s"], "s")
        report("peak RSS", r["peak_rss_mb"], "MB")

        for n in sorted({2, args.huge}):  # flat peak RSS: the budget, not the page, bounds it
            page = base / f"huge{n}"
            page.mkdir()
            for p in huge[:n]:
                (page / p.name).write_bytes(p.read_bytes())
            r = _run_child("huge", page)
            print(f"{n} PNGs of {HUGE_SIDE:,} x {HUGE_SIDE:,} (flagged: {r['flagged']})")
            report("thumbnail page, cold", r["page_s"], "s")
            report("peak RSS", r["peak_rss_mb"], "MB")

        fifo = base / "fifo" / "root"
        fifo.mkdir(parents=True)
        _small_pngs(fifo, 2)
        r = _run_child("fifo", fifo, timeout=120)
        print(f"a FIFO replaced a labeled sample (flagged: {r['flagged']})")
        report("thumbnail page", r["page_s"], "s")
        report("CSV export", r["export_s"], "s")


if __name__ == "__main__":
    main()
