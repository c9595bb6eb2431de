"""Label efficiency of auto-labeling: 5 labels per class, the rest proposed.

Data that ships in packages, written as PNG files and opened as a real dataset:
- scikit-learn's digits (1,797 images, 10 classes), via ``jlabel.demo.write_digits``;
- textures: non-overlapping 40 px patches cut from five scikit-image photos (brick, grass,
  gravel, moon surface, cells), 144 per class, the class being the source photo.

For each data set and mode (fast, precise): the share of unlabeled images auto-accepted (proposals
not marked hard) at the calibrated threshold, the precision of those against the truth, top-1 on
all unlabeled, the job's estimated precision, wall time and device. ``embed``: images/second of
resnet18 embedding extraction on the device.

Usage: ``python -m bench.autolabel [digits|textures ...] [--modes fast,precise] [--seed N]
[--threads N]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import jlabel

TEXTURES = ("brick", "grass", "gravel", "moon", "cell")
PATCH = 40


def write_textures(directory: Path) -> dict[str, str]:
    """Write texture patches as PNGs; return ``{id: class}``."""
    import skimage.data

    truth = {}
    directory.mkdir(parents=True, exist_ok=True)
    for name in TEXTURES:
        image = np.asarray(getattr(skimage.data, name)())[:480, :480]
        for r in range(0, 480, PATCH):
            for c in range(0, 480, PATCH):
                sid = f"{name}-{r:03d}-{c:03d}.png"
                Image.fromarray(image[r : r + PATCH, c : c + PATCH]).save(directory / sid)
                truth[sid] = name
    return truth


def write_digits(directory: Path) -> dict[str, str]:
    """Write scikit-learn's digits as PNGs; return ``{id: class}``."""
    from jlabel.demo import write_digits as write

    frame = write(directory)
    return {str(i): f"digit-{int(d)}" for i, d in zip(frame["id"], frame["digit"], strict=True)}


def run_one(name: str, mode: str, *, seed: int, per_class: int = 5) -> dict[str, float | str]:
    """Write the data set to a fresh folder, label ``per_class`` per class, auto-label, score."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / name
        truth = write_textures(root) if name == "textures" else write_digits(root)
        ds = jlabel.open(str(root), user="bench")
        rng = np.random.default_rng(seed)
        for cls in sorted(set(truth.values())):
            members = sorted(i for i, c in truth.items() if c == cls)
            ds.label(list(rng.choice(members, per_class, replace=False)), cls)
        start = time.perf_counter()
        job = ds.auto_label(mode=mode, seed=seed, progress=False).wait()
        wall = time.perf_counter() - start
        frame = ds.query(tab="to_confirm")
        predicted = [str(next(iter(p))) for p in frame["proposed_labels"]]
        right = np.array([p == truth[str(i)] for p, i in zip(predicted, frame["id"], strict=True)])
        accepted = ~frame["hard"].to_numpy(bool)
        n_unlabeled = len(truth) - per_class * len(set(truth.values()))
        r = job.result
        score = np.array([min(list(p)) for p in frame["proposed_scores"]])
        strict = score >= r["threshold_fold_models"]
        return {
            "dataset": name,
            "mode": mode,
            "learner": r["learner"],
            "accepted_share": accepted.sum() / n_unlabeled,
            "precision_accepted": float(right[accepted].mean()) if accepted.any() else float("nan"),
            "top1_unlabeled": float(right.sum() / n_unlabeled),
            "strict_share": strict.sum() / n_unlabeled,
            "strict_precision": float(right[strict].mean()) if strict.any() else float("nan"),
            "estimated_precision": r["estimated_precision"],
            "threshold": r["threshold"],
            "held_out_accuracy": r["candidates"][r["learner"]]["accuracy"],
            "wall_s": wall,
            "device": r["device"],
            "backbone": r["backbone"],
            "certify_note": next((n for n in r["notes"] if n.startswith("Cannot certify")), ""),
        }


def report(row: dict[str, float | str]) -> None:
    """One line per run."""
    print(
        f"{row['dataset']:>8} {row['mode']:>7}: accepted {row['accepted_share']:.1%} at precision "
        f"{row['precision_accepted']:.1%} (estimated {row['estimated_precision']:.1%}, "
        f"threshold {row['threshold']:.3f}); top-1 on unlabeled {row['top1_unlabeled']:.1%}; "
        f"[at the fold models' own threshold: {row['strict_share']:.1%} at "
        f"{row['strict_precision']:.1%}]; learner {row['learner']} "
        f"(held-out acc {row['held_out_accuracy']:.1%}); "
        f"{row['wall_s']:.0f} s on {row['device']} ({row['backbone']})",
        flush=True,
    )
    if row["certify_note"]:
        print(f"{'':>18}note: {row['certify_note']}", flush=True)


def embedding_throughput(n: int = 128, size: int = 224) -> None:
    """Images/second of resnet18 embedding extraction (random weights: same cost) on the
    device auto-labeling would pick."""
    from jlabel.autolabel import features

    device = features.pick_device()
    bb = features.load_backbone("resnet18", None, size=size)
    images = np.random.default_rng(0).integers(0, 255, (n, size, size, 3), dtype=np.uint8)
    features.embed_arrays(bb, images[:16], device)  # warm-up
    start = time.perf_counter()
    features.embed_arrays(bb, images, device)
    seconds = time.perf_counter() - start
    print(f"embeddings: resnet18 at {size} px, {n / seconds:.1f} images/s on {device}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print every figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", default=["digits", "textures", "embed"])
    parser.add_argument("--modes", default="fast,precise")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's own)")
    args = parser.parse_args(argv or [])
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    for name in args.datasets:
        if name == "embed":
            embedding_throughput()
            continue
        for mode in args.modes.split(","):
            report(run_one(name, mode, seed=args.seed))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
