"""Auto-labeling boxes: 10% of the images boxed, the rest proposed by ``auto_label(task=
"detection")`` and checked against the truth.

Sets (see :mod:`bench.detection_data`): ``digits`` (scikit-learn digits scattered over
textured backgrounds) and ``shapes`` (scikit-image random shapes over textured backgrounds),
64 px images with 1-3 objects each, written as PNGs and opened as a real dataset.

Per set and mode: the share of the other images auto-accepted (proposals not hard), the share
of those exactly right (every true box found with IoU >= 0.5 and its label, nothing extra),
box precision and recall over all proposals, the job's estimate, wall time, device.

Usage: ``python -m bench.detection [digits|shapes ...] [--modes fast,precise] [--n 800]
[--labeled 0.1] [--steps N] [--folds N] [--threads N] [--seed N]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import jlabel
from bench import detection_data
from jlabel.autolabel.detect import DetectConfig
from jlabel.autolabel.detect.calibrate import exactly_right, matches


def build(root: Path, items: list, n_labeled: int) -> tuple[jlabel.Dataset, dict]:
    """Write the images, box the first ``n_labeled``; returns the dataset and the truth."""
    root.mkdir(parents=True, exist_ok=True)
    truth = {}
    for n, (img, boxes, names) in enumerate(items):
        sid = f"img{n:05d}.png"
        Image.fromarray(img).save(root / sid)
        truth[sid] = (boxes, names)
    ds = jlabel.open(root, user="bench")
    for sid in list(truth)[:n_labeled]:
        boxes, names = truth[sid]
        ds.add_boxes(
            sid,
            [
                {
                    "label": c,
                    "xmin": float(b[0]),
                    "ymin": float(b[1]),
                    "xmax": float(b[2]),
                    "ymax": float(b[3]),
                }
                for b, c in zip(boxes, names, strict=True)
            ],
        )
    return ds, truth


def evaluate(ds: jlabel.Dataset, truth: dict, targets: list[str]) -> dict:
    frame = ds.to_pandas().set_index("id")
    accepted = right_accepted = tp = n_pred = n_true = 0
    for sid in targets:
        boxes, names = truth[sid]
        prop = frame.at[sid, "proposed_boxes"] or []
        pb = np.array([[b["xmin"], b["ymin"], b["xmax"], b["ymax"]] for b in prop]).reshape(-1, 4)
        pl = np.array([b["label"] for b in prop])
        ok = exactly_right(pb, pl, boxes, np.array(names))
        tp += matches(pb, pl, boxes, np.array(names))
        n_pred += len(prop)
        n_true += len(boxes)
        if prop and not bool(frame.at[sid, "hard"]):
            accepted += 1
            right_accepted += int(ok)
    return {
        "accepted_share": accepted / len(targets),
        "accepted_exactly_right": right_accepted / accepted if accepted else float("nan"),
        "box_precision": tp / n_pred if n_pred else float("nan"),
        "box_recall": tp / n_true if n_true else float("nan"),
        "accepted": accepted,
        "targets": len(targets),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", default=["digits", "shapes"])
    parser.add_argument("--modes", default="fast")
    parser.add_argument("--n", type=int, default=800)
    parser.add_argument("--labeled", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--folds", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    a = parser.parse_args()
    cfg = DetectConfig(threads=a.threads)
    if a.steps:
        cfg.steps = a.steps
    if a.folds:
        cfg.folds = a.folds
    n_lab = round(a.n * a.labeled)
    for name in a.sets:
        if name == "digits":
            items = detection_data.digits(a.n, classes=(0, 1, 2, 3, 4), labeled=n_lab, seed=a.seed)
        else:
            items = detection_data.shapes(a.n, seed=a.seed)
        for mode in a.modes.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                ds, truth = build(Path(tmp) / name, items, n_lab)
                targets = sorted(set(truth) - set(list(truth)[:n_lab]))
                start = time.perf_counter()
                job = ds.auto_label(
                    task="detection",
                    mode=mode,
                    train=cfg,
                    progress=False,
                    device=a.device,
                    seed=a.seed,
                )
                job.wait()
                wall = time.perf_counter() - start
                r = job.result
                m = evaluate(ds, truth, targets)
                print(
                    f"{name:7s} {mode:8s} labeled={n_lab} others={m['targets']} "
                    f"accepted={m['accepted_share']:.1%} exactly_right="
                    f"{m['accepted_exactly_right']:.1%} box_precision={m['box_precision']:.1%} "
                    f"box_recall={m['box_recall']:.1%} estimated={r['estimated_precision']:.1%} "
                    f"held_out_accepted={r['held_out_above']}/{r['held_out']} "
                    f"learner={r['learner']} wall={wall:.0f}s device={r['device']} "
                    f"threads={torch.get_num_threads() if a.threads is None else a.threads}",
                    flush=True,
                )
                for note in r["notes"]:
                    print("   note:", note[:300])
                ds.close()


if __name__ == "__main__":
    main()
