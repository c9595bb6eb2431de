"""Auto-labeling on an accelerator: embedding images/s against the decode-bound peak, job time.

On the device the jobs would pick (CUDA, else MPS, else CPU; the line says which):
- ``decode``: images/s of decoding alone (64 px PNGs to 224 px, DataLoader workers on CUDA,
  threads elsewhere): the peak any embedding pipeline can reach;
- ``model``: images/s of resnet18 (random weights: the same cost) on batches already on the
  device (autocast and channels-last on CUDA);
- ``embed``: images/s of ``features.embeddings`` end to end (decode, copy, model), which should
  sit near min(decode, model);
- ``job``: wall time of ``auto_label`` fast and precise on the embedding path and on the small
  CNN (``backbone="cnn"``) at ``--n`` images.

Usage: ``python -m bench.gpu [--n 50000] [--workers N] [--skip-jobs]``; on a CPU machine use a
small ``--n`` (e.g. 200) to check it runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench._util import peak_rss_mb
from bench.scale import PER_CLASS, write_set


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print every figure."""
    import jlabel
    from jlabel.autolabel import decoding, features

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=None, help="decode processes")
    parser.add_argument("--skip-jobs", action="store_true")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    device = features.pick_device()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    workers = args.workers
    if workers is None:
        workers = decoding.auto_workers(device, local=True)
    print(
        f"device {device} ({name}); torch {torch.__version__}, {torch.get_num_threads()} "
        f"threads, {os.cpu_count()} CPUs; decode workers {workers}",
        flush=True,
    )
    base = Path(tempfile.mkdtemp(prefix="jlabel-gpu-"))
    try:
        root = base / "digits"
        t = time.perf_counter()
        truth = write_set(root, args.n)
        print(f"  wrote {args.n:,} PNGs (64 px) in {time.perf_counter() - t:.0f} s", flush=True)
        ds = jlabel.open(root, user="bench")
        ids = [str(i) for i in ds.query(tab="all")["id"]]

        t = time.perf_counter()
        n = sum(
            len(ok) for ok, _, _ in decoding.chunks(ds, ids, 224, device=device, workers=workers)
        )
        decode_rate = n / (time.perf_counter() - t)
        print(f"  decode: {decode_rate:8.0f} images/s (64 px PNG to 224 px)", flush=True)

        bb = features.load_backbone("resnet18", None, size=224)
        module = features.prepare(bb.module, device)
        batch = torch.randint(0, 255, (256, 224, 224, 3), dtype=torch.uint8)
        reps = 8 if device.type == "cuda" else 1
        with torch.no_grad():
            for rep in range(reps + 1):
                if rep == 1:
                    _sync(device)
                    t = time.perf_counter()
                with features.autocast(device):
                    module(features.normalise(batch, device))
            _sync(device)
        model_rate = 256 * reps / (time.perf_counter() - t)
        print(f"  model:  {model_rate:8.0f} images/s (resnet18, 224 px, batch 256)", flush=True)

        t = time.perf_counter()
        ok, _emb, _, _ = features.embeddings(ds, ids, bb, device, use_cache=False, workers=workers)
        embed_rate = len(ok) / (time.perf_counter() - t)
        print(
            f"  embed:  {embed_rate:8.0f} images/s end to end "
            f"({embed_rate / min(decode_rate, model_rate):.0%} of min(decode, model)); "
            f"peak RSS {peak_rss_mb():.0f} MB",
            flush=True,
        )
        if args.skip_jobs:
            return
        rng = np.random.default_rng(0)
        for cls in sorted(set(truth.values())):
            members = sorted(i for i, c in truth.items() if c == cls)
            ds.label(list(rng.choice(members, PER_CLASS, replace=False)), cls)
        for backbone in ("resnet18", "cnn"):
            for mode in ("fast", "precise"):
                shutil.rmtree(root / ".jlabel" / "cache", ignore_errors=True)
                t = time.perf_counter()
                job = ds.auto_label(
                    mode=mode, backbone=backbone, weights=None, progress=False
                ).wait()
                r = job.result
                print(
                    f"  job {backbone:>8} {mode:>7} at {args.n:,}: {time.perf_counter() - t:7.1f} s"
                    f" ({r['learner']}, accepted {r['accepted_share']:.1%}, {r['device']}); "
                    f"peak RSS {peak_rss_mb():.0f} MB",
                    flush=True,
                )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
