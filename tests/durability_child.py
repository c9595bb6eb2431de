"""A "kernel" that changes a dataset in a loop, for tests/test_durability.py to SIGKILL.

Run as a script: it imports jlabel once, then reads one JSON command per stdin line
(``{"root", "mode", "seed", "acks", "errors", "compact_every"}``), forks a worker for it,
prints the worker's pid, waits for it and prints ``exit <status>``. Forking from this
single-threaded process makes each trial start in milliseconds instead of re-importing.

The worker appends ``ready`` to the acks file once the dataset is open, then after each call
that returned one line saying what is now durable:
``label <name> <id>[,<id>...]`` / ``version <name>`` / ``sync <id>`` / ``compact`` /
``add <id>``. Modes: ``label`` (labels only), ``compact`` (compacts every few records, in the
background and explicitly), ``version`` (labels and versions), ``sync`` (new image files +
sync), ``add`` (uploads through add_images, then labels them), ``box`` (adds, relabels and
deletes boxes: ``box <id> <box_id> <label>`` present, ``unbox <id> <box_id>`` gone).
"""

from __future__ import annotations

import json
import os
import random
import sys
import traceback

import jlabel
import jlabel.replica

NAMES = ("cat", "dog", "bird", "fish", "car", "tree")


def _ack(fd: int, line: str) -> None:
    os.write(fd, (line + "\n").encode())  # one write: a line is whole or absent


def work(cmd: dict) -> None:
    rng = random.Random(cmd["seed"])
    acks = os.open(cmd["acks"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    mode = cmd["mode"]
    if cmd.get("compact_every"):
        jlabel.replica.COMPACT_EVERY = cmd["compact_every"]
    ds = jlabel.open(cmd["root"], sync=mode == "sync")
    ids = ds.internal.query_ids()
    _ack(acks, "ready")
    png = ds.read_bytes(ids[0])
    for k in range(100_000):
        if mode == "version" and k % 4 == 3:
            name = f"t{cmd['seed']}-{k}"
            ds.create_version(name)
            _ack(acks, f"version {name}")
        elif mode == "compact" and k % 7 == 6:
            ds.compact()
            _ack(acks, "compact")
        elif mode == "sync" and k % 3 == 2:
            sid = f"new/s{cmd['seed']}-{k}.png"
            path = os.path.join(cmd["root"], sid)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(png)
            ds.sync()
            _ack(acks, f"sync {sid}")
        elif mode == "add" and k % 3 == 2:
            (sid,) = ds.add_images([(f"up-{cmd['seed']}-{k}.png", png)])
            _ack(acks, f"add {sid}")
            ds.label(sid, f"up-{k}")
            _ack(acks, f"label up-{k} {sid}")
        elif mode == "box":
            sid = rng.choice(ids)
            boxes = ds.boxes(sid)
            roll = rng.random()
            # "try" lines come before the call: a kill between the call and its ack leaves a
            # change that is durable but not acknowledged, which the check must allow
            if boxes and roll < 0.3:
                box = rng.choice(boxes)
                _ack(acks, f"try box {sid} {box['box_id']} r{cmd['seed']}-{k}")
                ds.update_box(sid, box["box_id"], label=f"r{cmd['seed']}-{k}")
                _ack(acks, f"box {sid} {box['box_id']} r{cmd['seed']}-{k}")
            elif boxes and roll < 0.5:
                box = rng.choice(boxes)
                _ack(acks, f"try unbox {sid} {box['box_id']}")
                ds.delete_boxes(sid, [box["box_id"]])
                _ack(acks, f"unbox {sid} {box['box_id']}")
            else:
                x = rng.uniform(0, 10)
                box = {"label": f"b{k}", "xmin": x, "ymin": 1, "xmax": x + 5, "ymax": 9}
                (box_id,) = ds.add_boxes(sid, [box])
                _ack(acks, f"box {sid} {box_id} b{k}")
        else:
            batch = rng.sample(ids, rng.choice([1, 1, 1, 3, len(ids)]))
            name = f"{rng.choice(NAMES)}-{cmd['seed']}-{k}"  # new each time: a lost ack shows
            ds.label(batch, name)
            _ack(acks, f"label {name} {','.join(batch)}")


def main() -> None:
    for line in sys.stdin:
        cmd = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                err = os.open(cmd["errors"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(err, 2)
                work(cmd)
            except BaseException:
                traceback.print_exc()
                sys.stderr.flush()
                code = 3
            os._exit(code)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {status}", flush=True)


if __name__ == "__main__":
    main()
