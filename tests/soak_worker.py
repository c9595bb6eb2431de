"""One kernel of the two-kernel soak (tests/test_concurrency.py, bench/soak.py).

``python soak_worker.py SPEC_JSON``: opens the dataset, then until the deadline labels random
samples, deletes some, refreshes and compacts now and then. Every call that returned is
acknowledged in ``<out>.ack`` (one JSON line, fsynced); at the end it refreshes and writes its
final labels to ``<out>.final.json``.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import jlabel
import jlabel.replica


def main(spec: dict) -> None:
    jlabel.replica.COMPACT_EVERY = spec.get("compact_every", 50)
    ds = jlabel.open(spec["root"], sync=False, user=f"k{spec['k']}", **spec.get("open", {}))
    rng = random.Random(spec["k"])
    ids = sorted(ds.internal.query_ids())
    deletable = ids[spec["k"] :: 4]  # each kernel deletes its own quarter, labels all of them
    fd = os.open(spec["out"] + ".ack", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    deadline = time.time() + spec["seconds"]
    next_compact = time.time() + spec.get("compact_seconds", 2.0)
    i = 0
    while time.time() < deadline:
        i += 1
        roll = rng.random()
        if roll < 0.04 and deletable:
            sid = deletable.pop(rng.randrange(len(deletable)))
            ack = {"op": "delete", "id": sid}
            try:
                ds.delete_images([sid])
            except jlabel.NotFound:  # deleted here already; never by the other kernel
                continue
        else:
            chosen = rng.sample(ids, 2)
            name = f"k{spec['k']}-{i}"
            ack = {"op": "label", "ids": chosen, "name": name}
            try:
                ds.label(chosen, name)
            except jlabel.NotFound:  # this kernel saw one of them deleted: label the other
                live = [s for s in chosen if s in set(ds.internal.query_ids(ids=chosen))]
                if not live:
                    continue
                ack["ids"] = live
                ds.label(live, name)
        os.write(fd, (json.dumps(ack) + "\n").encode())
        os.fsync(fd)
        if roll > 0.97:
            ds.refresh()
        if time.time() > next_compact:
            ds.compact()
            next_compact = time.time() + spec.get("compact_seconds", 2.0)
    os.close(fd)
    # Barrier: the final state is read after every kernel stopped writing, else a kernel that
    # finishes first cannot hold the other's last labels and "both agree" would measure timing.
    Path(spec["out"] + ".done").touch()
    wait_until = time.time() + 240
    while not all(Path(p).exists() for p in spec.get("wait_for", [])):
        if time.time() > wait_until:
            raise SystemExit("the other soak kernel never finished")
        time.sleep(0.05)
    ds.refresh()
    frame = ds.to_pandas()
    final = {sid: sorted(labels) for sid, labels in zip(frame["id"], frame["labels"], strict=True)}
    with open(spec["out"] + ".final.json", "w") as f:
        json.dump(final, f)
    ds.close()


_SOAK = Path(__file__)


def run_soak(
    root: Path | str, out: Path, *, seconds: float, open_options: dict | None = None
) -> dict:
    """Two kernel processes label, delete, refresh and compact for `seconds`; returns what was
    acknowledged, what each kernel ended with and what a fresh open holds."""
    procs = []
    for k in (0, 1):
        spec = {
            "root": str(root),
            "k": k,
            "seconds": seconds,
            "out": str(out / f"k{k}"),
            "compact_every": 40,
            "compact_seconds": 1.5,
            "open": open_options or {},
            "wait_for": [str(out / f"k{1 - k}.done")],
        }
        procs.append(subprocess.Popen([sys.executable, str(_SOAK), json.dumps(spec)]))
    codes = [p.wait(timeout=seconds + 240) for p in procs]
    if codes != [0, 0]:
        raise RuntimeError(f"a soak kernel failed: exit codes {codes}")
    acks = [
        json.loads(line)
        for k in (0, 1)
        for line in (out / f"k{k}.ack").read_text().split("\n")
        if line
    ]
    finals = [json.loads((out / f"k{k}.final.json").read_text()) for k in (0, 1)]
    return {"acks": acks, "finals": finals}


def lost_labels(acks: list[dict], fresh: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Acknowledged labels on samples nobody deleted that a fresh open lacks."""
    deleted = {a["id"] for a in acks if a["op"] == "delete"}
    return [
        (sid, a["name"])
        for a in acks
        if a["op"] == "label"
        for sid in a["ids"]
        if sid not in deleted and a["name"] not in fresh.get(sid, set())
    ]


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
