"""Effort saved by the labeling loop, measured as a user spends it.

A simulated user (the ground truth plays the human) follows the product's loop through the
public API the widget uses:

1. label 5 images per class (drawn at random);
2. up to ``--rounds`` rounds of: ``auto_label`` -> confirm the accepted proposals (those not
   marked hard; bulk "Confirm all", nobody looks at them) -> when the labels cannot certify a cut,
   check a random sample of 20 (``sample_proposals``: each reviewed, confirmed when right, else
   relabeled; all proposals are confirmed when the sample certifies the target) -> label
   ``to_label_next(20)``;
3. label the rest by hand (the images still without labels, hard proposals among them).

A touch is an image a human labeled, edited or reviewed. Effort saved = 1 - touches / images;
accuracy = share of all images whose labels equal the truth at the end.

Per round the figures are those of a user who stops there and labels the rest by hand; so
``round 1`` is the one-round baseline. A second strategy, ``random``, continues from the same
round-1 state but labels 20 random images without labels instead of ``to_label_next(20)``.

Data: scikit-learn's digits (1,797 images, 10 classes) and textures (720 patches of five
scikit-image photos, 5 classes), written as PNG files and opened as real datasets.

Usage: ``python -m bench.effort [digits|textures ...] [--modes fast,precise] [--rounds 3]
[--seed 0] [--strategies next,random] [--threads 1] [--limit N]``. The default (fast, digits and
textures, both strategies) runs 10 auto-label jobs; ``--modes fast,precise`` doubles that and
precise jobs take minutes each.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import jlabel
from bench.autolabel import write_digits, write_textures
from jlabel.autolabel.cnn import TrainConfig

PER_CLASS = 5
SAMPLE = 20
NEXT = 20
STEPS = [0]
"""Training steps of the small CNN when set (``--steps``, for a quick check); 0: the default."""


@dataclass
class User:
    """The simulated user: the truth, and every image they touched."""

    truth: dict[str, str]
    touched: set[str] = field(default_factory=set)

    def label(self, ds: Any, ids: Iterable[str]) -> None:
        """Label ``ids`` with their true class (one call per class, as with keys in the grid)."""
        by_class: dict[str, list[str]] = {}
        for sid in ids:
            by_class.setdefault(self.truth[sid], []).append(sid)
            self.touched.add(sid)
        for cls, members in sorted(by_class.items()):
            ds.label(members, cls)

    def review_sample(self, ds: Any, n: int, seed: int) -> dict[str, Any] | None:
        """Check a random sample of proposals: confirm the right ones, relabel the others."""
        ids = ds.sample_proposals(n, seed=seed)
        frame = ds.query(tab="to_confirm", ids=ids)
        right = [
            sid
            for sid, names in zip(frame["id"], frame["proposed_labels"], strict=True)
            if list(names) == [self.truth[sid]]
        ]
        self.touched.update(ids)
        if right:
            ds.confirm(right)
        wrong = [sid for sid in ids if sid not in set(right)]
        if wrong:
            self.label(ds, wrong)
        return ds.sample_check()


def without_labels(ds: Any) -> list[str]:
    """Images without labels now (plain unlabeled ones and unconfirmed proposals)."""
    return sorted(
        set(ds.internal.query_ids(tab="unlabeled")) | set(ds.internal.query_ids(tab="to_confirm"))
    )


def accuracy(ds: Any, truth: dict[str, str], rest_by_hand: bool = True) -> float:
    """Share of images whose labels equal the truth (the rest labeled by hand when asked)."""
    frame = ds.query(tab="all")
    right = 0
    for sid, names in zip(frame["id"], frame["labels"], strict=True):
        names = list(names) if names is not None else []
        right += names == [truth[sid]] or (rest_by_hand and not names)
    return right / len(truth)


def round_row(
    ds: Any, user: User, *, strategy: str, rnd: int, job: Any, sample: Any, auto: int
) -> dict[str, Any]:
    """Figures of a user who stops after this round and labels the rest by hand."""
    rest = without_labels(ds)
    touches = len(user.touched | set(rest))
    r = job.result
    return {
        "strategy": strategy,
        "round": rnd,
        "accepted": r["accepted"],
        "hard": r["hard"],
        "certified": bool(r["held_out_above"]),
        "estimated_precision": r["estimated_precision"],
        "sample": sample,
        "confirmed_auto": auto,
        "touches": touches,
        "effort_saved": 1 - touches / len(user.truth),
        "accuracy": accuracy(ds, user.truth),
        "job_s": r["seconds"],
        "computed": r["computed"],
        "next_step": r.get("next_step", ""),
    }


def one_round(
    ds: Any, user: User, *, mode: str, seed: int, rnd: int, target: float = 0.95
) -> tuple[Any, Any, int]:
    """Auto-label, confirm the accepted, check a sample when not certified."""
    options = {"train": TrainConfig(steps=STEPS[0])} if STEPS[0] else {}
    job = ds.auto_label(
        mode=mode, seed=seed, target_precision=target, progress=False, **options
    ).wait()
    frame = ds.query(tab="to_confirm", hard=False)
    accepted = [str(i) for i in frame["id"]]
    if accepted:
        ds.confirm(accepted)
    sample = None
    confirmed = len(accepted)
    if not job.result["held_out_above"] and ds.count(tab="to_confirm"):
        check = user.review_sample(ds, SAMPLE, seed=seed + rnd)
        sample = f"{check['right']}/{check['reviewed']} right" if check else None
        if check and (check["estimated_precision"] or 0) >= target:
            left = ds.count(tab="to_confirm")
            ds.confirm(None)  # the sample certifies the rest: "Confirm all"
            confirmed += left
            sample += ", confirmed all"
    return job, sample, confirmed


def pick_next(ds: Any, strategy: str, seed: int, rnd: int) -> list[str]:
    """What the user labels at the end of a round."""
    if strategy == "next":
        return ds.to_label_next(n=NEXT)
    pool = without_labels(ds)
    rng = np.random.default_rng(1000 * seed + rnd)
    return [pool[i] for i in rng.choice(len(pool), size=min(NEXT, len(pool)), replace=False)]


def continue_loop(
    root: Path,
    user: User,
    *,
    strategy: str,
    mode: str,
    seed: int,
    start: int,
    rounds: int,
    rows: list[dict[str, Any]],
) -> dict[str, Any]:
    """From the state after round ``start - 1``'s review: label next, run again, ...; then the
    rest by hand. Appends one row per round; returns the final figures."""
    ds = jlabel.open(str(root), user="bench")
    for rnd in range(start, rounds + 1):
        if not without_labels(ds):
            break
        user.label(ds, pick_next(ds, strategy, seed, rnd - 1))
        if not without_labels(ds):
            break
        job, sample, auto = one_round(ds, user, mode=mode, seed=seed, rnd=rnd)
        row = round_row(ds, user, strategy=strategy, rnd=rnd, job=job, sample=sample, auto=auto)
        rows.append(row)
        report_round(row)
    user.label(ds, without_labels(ds))
    final = {
        "strategy": strategy,
        "touches": len(user.touched),
        "effort_saved": 1 - len(user.touched) / len(user.truth),
        "accuracy": accuracy(ds, user.truth, rest_by_hand=False),
    }
    ds.close()
    return final


def write_set(name: str, root: Path, limit: int | None, seed: int) -> dict[str, str]:
    """Write the data set (``limit`` images at most, drawn at random); return the truth."""
    truth = write_textures(root) if name == "textures" else write_digits(root)
    if limit is not None and limit < len(truth):
        ids = sorted(truth)
        keep = set(np.random.default_rng(seed).choice(ids, limit, replace=False).tolist())
        for sid in ids:
            if sid not in keep:
                (root / sid).unlink()
                del truth[sid]
    return truth


def run_set(
    name: str, mode: str, *, seed: int, rounds: int, strategies: list[str], limit: int | None
) -> None:
    """One data set and mode: round 1 once, then each strategy from a copy of that state."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / name
        truth = write_set(name, root, limit, seed)
        ds = jlabel.open(str(root), user="bench")
        user = User(truth)
        rng = np.random.default_rng(seed)
        for cls in sorted(set(truth.values())):
            members = sorted(i for i, c in truth.items() if c == cls)
            user.label(ds, rng.choice(members, PER_CLASS, replace=False).tolist())
        start = time.perf_counter()
        job, sample, auto = one_round(ds, user, mode=mode, seed=seed, rnd=1)
        row = round_row(ds, user, strategy="(both)", rnd=1, job=job, sample=sample, auto=auto)
        report_round(row, header=f"{name} {mode} ({len(truth)} images)")
        ds.close()
        finals = []
        for strategy in strategies:
            copy = Path(tmp) / f"{name}-{strategy}"
            shutil.copytree(root, copy)
            branch = User(truth, set(user.touched))
            finals.append(
                continue_loop(
                    copy,
                    branch,
                    strategy=strategy,
                    mode=mode,
                    seed=seed,
                    start=2,
                    rounds=rounds,
                    rows=[],
                )
            )
        one = {"strategy": "one round", "touches": row["touches"]}
        one |= {"effort_saved": row["effort_saved"], "accuracy": row["accuracy"]}
        for final in [one, *finals]:
            print(
                f"  final {final['strategy']:>10}: effort saved {final['effort_saved']:.1%} "
                f"({final['touches']} touches of {len(truth)}), accuracy {final['accuracy']:.1%}",
                flush=True,
            )
        print(f"  wall {time.perf_counter() - start:.0f} s", flush=True)


def report_round(row: dict[str, Any], header: str | None = None) -> None:
    """One line per round."""
    if header:
        print(header, flush=True)
    cert = (
        f"est. {row['estimated_precision']:.1%}"
        if row["certified"]
        else f"not certified, sample {row['sample']}"
    )
    print(
        f"  {row['strategy']:>7} round {row['round']}: {row['accepted']} accepted, {row['hard']} "
        f"hard ({cert}); {row['confirmed_auto']} confirmed unseen; stop here -> "
        f"{row['touches']} touches, effort saved {row['effort_saved']:.1%}, accuracy "
        f"{row['accuracy']:.1%}; job {row['job_s']:.0f} s ({row['computed']} decoded)",
        flush=True,
    )
    print(f"{'':>18}next step: {row['next_step']}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Run the simulation and print every figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", default=["digits", "textures"])
    parser.add_argument("--modes", default="fast")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strategies", default="next,random")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's own)")
    parser.add_argument("--limit", type=int, default=None, help="images per set (a random draw)")
    parser.add_argument("--steps", type=int, default=0, help="CNN steps (0: the default)")
    args = parser.parse_args(argv or [])
    STEPS[0] = args.steps
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}; seed {args.seed}, {args.rounds} rounds",
        flush=True,
    )
    for name in args.datasets:
        for mode in args.modes.split(","):
            run_set(
                name,
                mode,
                seed=args.seed,
                rounds=args.rounds,
                strategies=args.strategies.split(","),
                limit=args.limit,
            )


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
