"""Auto-labeling at scale: job time and peak memory at 2k / 10k (/ 50k) images, and kNN graphs.

Images: scikit-learn's digits drawn at random, upscaled to 64 px with a random rotation, scale
and shift and pixel noise, written as grayscale PNGs (1,000 per folder). Each dataset gets 5
labels per class; each job (``backbone="cnn"``: the path without pretrained weights, the one
this CPU machine runs) starts with an empty cache and runs in a fresh process, which reports
the job's seconds and its peak RSS (the dataset opened and labeled, before the job, is given
too). The growth ratio is time(N) / time(previous N) against the ratio of images.

``knn``: the kNN graph's neighbour search, exact (blockwise products) against faiss HNSW as
used above :data:`jlabel.autolabel.heads.EXACT_KNN_MAX` points, on views of the same images
(pixels projected to 512 and 64 dims, gradient histograms projected to 256): seconds and
recall@10 (on 2,000 sampled rows).

Usage: ``python -m bench.scale [--sizes 2000,10000] [--big] [--modes fast,precise]
[--knn 10000,50000] [--no-jobs] [--threads N]``; ``--big`` adds 50,000 images. Run it under
``nice`` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench._util import peak_rss_mb

PER_CLASS = 5


def digit_images(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` grayscale digits ``[n, size, size]`` uint8 (dark ink on white) and their class."""
    from sklearn.datasets import load_digits

    d = load_digits()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d.target), n)
    out = np.empty((n, size, size), np.uint8)
    gen = torch.Generator().manual_seed(seed)
    for s in range(0, n, 2048):
        b = idx[s : s + 2048]
        x = torch.from_numpy(d.images[b].astype(np.float32) / 16.0)[:, None]
        m = len(b)
        angle = (torch.rand(m, generator=gen) * 2 - 1) * 15 * math.pi / 180
        scale = 1 + (torch.rand(m, generator=gen) * 2 - 1) * 0.15
        tx, ty = (torch.rand(2, m, generator=gen) * 2 - 1) * 0.1
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
        grid = F.affine_grid(theta, [m, 1, size, size], align_corners=False)
        y = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        y = 1 - y + torch.randn(y.shape, generator=gen) * 0.08
        out[s : s + m] = (y.clamp(0, 1) * 255).round().to(torch.uint8)[:, 0].numpy()
    return out, d.target[idx]


def write_set(root: Path, n: int, size: int = 64, seed: int = 0) -> dict[str, str]:
    """Write ``n`` digit PNGs under ``root`` (and ``_truth.json``); return ``{id: class}``."""
    from PIL import Image

    truth: dict[str, str] = {}
    for start in range(0, n, 4096):
        images, classes = digit_images(min(4096, n - start), size, seed=seed + start)
        for k, (image, c) in enumerate(zip(images, classes, strict=True)):
            sid = f"{(start + k) // 1000:03d}/{start + k:06d}.png"
            (root / sid).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image, mode="L").save(root / sid, compress_level=1)
            truth[sid] = f"digit-{int(c)}"
    (root / "_truth.json").write_text(json.dumps(truth))
    return truth


def child(root: str, mode: str, threads: int) -> None:
    """One job in this process: label 5 per class, auto-label, print a JSON line."""
    import jlabel

    if threads:
        torch.set_num_threads(threads)
    truth = json.loads((Path(root) / "_truth.json").read_text())
    shutil.rmtree(Path(root) / ".jlabel" / "cache", ignore_errors=True)
    t = time.perf_counter()
    ds = jlabel.open(root, user="bench")
    opened = time.perf_counter() - t
    rng = np.random.default_rng(0)
    for cls in sorted(set(truth.values())):
        members = sorted(i for i, c in truth.items() if c == cls)
        ds.label(list(rng.choice(members, PER_CLASS, replace=False)), cls)
    before = peak_rss_mb()
    t = time.perf_counter()
    job = ds.auto_label(mode=mode, backbone="cnn", progress=False).wait()
    wall = time.perf_counter() - t
    frame = ds.query(tab="to_confirm")
    accepted = ~frame["hard"].to_numpy(bool)
    right = np.array(
        [
            str(next(iter(p))) == truth[str(i)]
            for p, i in zip(frame["proposed_labels"], frame["id"], strict=True)
        ]
    )
    r = job.result
    print(
        json.dumps(
            {
                "n": len(truth),
                "mode": mode,
                "open_s": opened,
                "job_s": wall,
                "rss_before_mb": before,
                "peak_rss_mb": peak_rss_mb(),
                "learner": r["learner"],
                "accepted": float(accepted.mean()),
                "precision": float(right[accepted].mean()) if accepted.any() else float("nan"),
                "top1": float(right.mean()),
                "device": r["device"],
            }
        ),
        flush=True,
    )


def jobs(sizes: list[int], modes: list[str], threads: int, keep: Path | None) -> None:
    """Write each set once, run every mode on it in a fresh process, print the figures."""
    base = keep or Path(tempfile.mkdtemp(prefix="jlabel-scale-"))
    rows: dict[str, list[dict]] = {m: [] for m in modes}
    try:
        for n in sizes:
            root = base / f"digits-{n}"
            if not (root / "_truth.json").exists():
                t = time.perf_counter()
                write_set(root, n)
                print(f"  wrote {n:,} PNGs (64 px) in {time.perf_counter() - t:.0f} s", flush=True)
            for mode in modes:
                cmd = [sys.executable, "-m", "bench.scale", "--child", str(root), mode]
                out = subprocess.run(
                    [*cmd, "--threads", str(threads)], capture_output=True, text=True
                )
                lines = [x for x in out.stdout.splitlines() if x.startswith("{")]
                if out.returncode or not lines:
                    print(f"  {n:>6,} {mode}: failed\n{out.stderr[-2000:]}", flush=True)
                    continue
                row = json.loads(lines[-1])
                rows[mode].append(row)
                prev = rows[mode][-2] if len(rows[mode]) > 1 else None
                growth = (
                    f"; x{row['job_s'] / prev['job_s']:.2f} time for "
                    f"x{row['n'] / prev['n']:.1f} images"
                    if prev
                    else ""
                )
                print(
                    f"  {row['n']:>6,} images {mode:>7}: job {row['job_s']:6.1f} s, peak RSS "
                    f"{row['peak_rss_mb']:6.0f} MB (before the job {row['rss_before_mb']:.0f} MB;"
                    f" open {row['open_s']:.1f} s); accepted {row['accepted']:.1%} at "
                    f"{row['precision']:.1%}, top-1 {row['top1']:.1%} ({row['learner']}, "
                    f"{row['device']}){growth}",
                    flush=True,
                )
    finally:
        if keep is None:
            shutil.rmtree(base, ignore_errors=True)


def knn(sizes: list[int], seed: int = 0) -> None:
    """Exact vs approximate neighbour search on views of digit images (see module doc)."""
    from jlabel.autolabel import heads, views

    for n in sizes:
        images, _ = digit_images(n, 24, seed=seed)
        x = torch.from_numpy(images).float()[:, None].repeat(1, 3, 1, 1) / 255
        x = (x - x.mean()) / x.std()
        pix = views.pixel_view(x, 512)
        _, _, v = torch.pca_lowrank(pix, q=64)
        named = {
            "pixels 512": pix,
            "gradients 256": views.gradient_view(x, dims=256),
            "pixels 64": pix @ v,
        }
        sample = np.random.default_rng(0).choice(n, min(n, 2000), replace=False)
        for name, feats in named.items():
            a = heads.standardise(feats.numpy())[0]
            t = time.perf_counter()
            _, exact = heads.neighbours(a, k=10, exact=True)
            te = time.perf_counter() - t
            t = time.perf_counter()
            _, approx = heads.neighbours(a, k=10, exact=False)
            ta = time.perf_counter() - t
            hits = [len(set(exact[i].tolist()) & set(approx[i].tolist())) / 10 for i in sample]
            print(
                f"  knn {n:>6,} x {name:<13}: exact {te:6.1f} s, faiss HNSW {ta:6.1f} s "
                f"(x{te / max(ta, 1e-9):.1f}), recall@10 {np.mean(hits):.3f}",
                flush=True,
            )


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print every figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,10000")
    parser.add_argument("--big", action="store_true", help="add 50,000 images")
    parser.add_argument("--modes", default="fast,precise")
    parser.add_argument("--knn", default="", help="sizes for the kNN comparison, e.g. 10000")
    parser.add_argument("--no-jobs", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's own)")
    parser.add_argument("--keep", default="", help="folder to keep (and reuse) the image sets")
    parser.add_argument("--child", nargs=2, metavar=("ROOT", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.child:
        child(args.child[0], args.child[1], args.threads)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    if not args.no_jobs:
        sizes = [int(s) for s in args.sizes.split(",") if s] + ([50_000] if args.big else [])
        keep = Path(args.keep) if args.keep else None
        jobs(sizes, args.modes.split(","), args.threads, keep)
    if args.knn:
        knn([int(s) for s in args.knn.split(",")])


if __name__ == "__main__":
    main()
