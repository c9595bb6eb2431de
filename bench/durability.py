"""Durability under stress: what is acknowledged is what a fresh open holds.

`python -m bench.durability [--seconds 30] [--trials 50]`. Three parts, figures printed:
1. Two kernel processes on one dataset (local, then S3 on moto) label, delete images, refresh
   and compact every 1.5 s for `--seconds`: acknowledged labels vs what a fresh open holds (on
   samples nobody deleted), and whether both kernels and the fresh open agree.
2. `--trials` SIGKILLs spread over labeling, box edits, add_images and compaction (the worker of
   tests/durability_child.py): acknowledged changes lost after each kill.
3. Seconds until a call against an S3 endpoint that accepts connections and never answers
   fails with a StorageError, with jlabel's default timeouts.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from conftest import write_png  # noqa: E402
from soak_worker import lost_labels, run_soak  # noqa: E402

import jlabel  # noqa: E402


def _labels(ds: jlabel.Dataset) -> dict[str, set[str]]:
    frame = ds.to_pandas()
    return {s: set(v) for s, v in zip(frame["id"], frame["labels"], strict=True) if len(v)}


def _soak_report(where: str, result: dict, fresh: dict[str, set[str]]) -> None:
    acks = result["acks"]
    labels = sum(len(a["ids"]) for a in acks if a["op"] == "label")
    deletes = sum(a["op"] == "delete" for a in acks)
    lost = lost_labels(acks, fresh)
    finals = [{k: set(v) for k, v in f.items() if v} for f in result["finals"]]
    agree = finals[0] == finals[1] == fresh
    print(
        f"  soak {where}: {labels} acknowledged sample labels, {deletes} deletes; lost {len(lost)}"
        f"; kernel A, kernel B and a fresh open agree: {agree}"
    )


def soak_local(seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        for i in range(60):
            write_png(root / f"img{i:02d}.png", seed=i, size=8)
        jlabel.open(root).close()
        result = run_soak(root, Path(tmp), seconds=seconds)
        ds = jlabel.open(root, sync=False)
        _soak_report("local", result, _labels(ds))
        ds.close()


def soak_s3(seconds: float) -> None:
    import logging
    import os

    import boto3
    from moto.server import ThreadedMotoServer

    for var, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        os.environ.setdefault(var, value)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        client.create_bucket(Bucket="soak")
        import io

        from PIL import Image

        for i in range(60):
            buf = io.BytesIO()
            Image.new("RGB", (8, 8), (i * 4, 0, 0)).save(buf, "PNG")
            client.put_object(Bucket="soak", Key=f"data/img{i:02d}.png", Body=buf.getvalue())
        options = {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
            "skip_instance_cache": True,
        }
        jlabel.open("s3://soak/data", storage_options=options).close()
        with tempfile.TemporaryDirectory() as tmp:
            result = run_soak(
                "s3://soak/data",
                Path(tmp),
                seconds=seconds,
                open_options={"storage_options": options},
            )
        ds = jlabel.open("s3://soak/data", storage_options=options, sync=False)
        _soak_report("S3 (moto)", result, _labels(ds))
        ds.close()
    finally:
        server.stop()


def sigkills(trials: int) -> None:
    import random

    from test_durability import Zygote, check_acked

    modes = ["label", "box", "add", "compact"]
    lost_trials = 0
    acked_total = 0
    zygote = Zygote()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for mode in modes:
                root = Path(tmp) / mode
                for i in range(10):
                    write_png(root / f"img{i}.png", seed=i)
                jlabel.open(root).close()
                rng = random.Random(mode)
                acked: list[str] = []
                extra = {"compact_every": 5} if mode == "compact" else {}
                for seed in range(trials // len(modes) + (mode == "label") * (trials % len(modes))):
                    acked += zygote.trial(Path(tmp), root, mode, seed, rng.uniform(0, 0.4), **extra)
                    try:
                        check_acked(root, acked)
                    except AssertionError as exc:
                        lost_trials += 1
                        print(f"    LOST after a kill ({mode}): {exc}")
                acked_total += len(acked)
    finally:
        zygote.close()
    print(
        f"  SIGKILL: {trials} trials over {', '.join(modes)}; {acked_total} acknowledged "
        f"changes; trials that lost an acknowledged change: {lost_trials}"
    )


def silent_s3() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held = []
    threading.Thread(
        target=lambda: [held.append(server.accept()) for _ in range(999)], daemon=True
    ).start()
    options = {
        "key": "k",
        "secret": "s",
        "client_kwargs": {
            "endpoint_url": f"http://127.0.0.1:{server.getsockname()[1]}",
            "region_name": "us-east-1",
        },
        "skip_instance_cache": True,
    }
    start = time.perf_counter()
    try:
        jlabel.open("s3://silent/x", storage_options=options)
        outcome = "opened (unexpected)"
    except jlabel.StorageError as exc:
        outcome = f"StorageError ({str(exc)[:70]}...)"
    print(
        f"  S3 endpoint that never answers: open fails after "
        f"{time.perf_counter() - start:.1f} s: {outcome}"
    )
    from jlabel.store import Store
    from jlabel.store.connect import connect

    fs, root = connect("s3://silent/x", options)
    store = Store(fs, root, "s3://silent/x")
    start = time.perf_counter()
    try:
        store.append({"op": "add_labels", "names": ["cat"]})
        outcome = "written (unexpected)"
    except jlabel.StorageError as exc:
        outcome = f"StorageError ({str(exc)[:70]}...)"
    print(
        f"  ... a journal write (label) fails after {time.perf_counter() - start:.1f} s: {outcome}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--trials", type=int, default=50)
    parsed = parser.parse_args(sys.argv[1:])
    soak_local(parsed.seconds)
    soak_s3(parsed.seconds)
    sigkills(parsed.trials)
    silent_s3()


if __name__ == "__main__":
    main()
