"""Datasets on S3, against moto's S3 server on loopback (real HTTP through s3fs, no mocks).

Includes the server going away in the middle of operations: calls fail with a clear
StorageError (quickly, not a hang), and once a server is back on the same port (moto keeps its
data in the process) nothing acknowledged is lost and the failed call can simply be retried.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import s3fs
from PIL import Image

import jlabel
from jlabel.errors import NotFound, StorageError

pytestmark = pytest.mark.s3

BUCKET = "jlabel-test"
URL = f"s3://{BUCKET}/prefix"
QUICK_FAIL = {"connect_timeout": 1, "read_timeout": 5, "retries": {"max_attempts": 1}}


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (seed * 20 % 256, 10, 200)).save(buf, "PNG")
    return buf.getvalue()


def _options(s3) -> dict:
    return {**s3.storage_options, "config_kwargs": QUICK_FAIL}


def _fs(s3) -> s3fs.S3FileSystem:
    return s3fs.S3FileSystem(**_options(s3))


@pytest.fixture
def bucket(s3) -> s3fs.S3FileSystem:
    """Five PNGs under the prefix (two in a subfolder), one with a .txt, one with a VOC .xml."""
    fs = _fs(s3)
    for i in range(3):
        fs.pipe_file(f"{BUCKET}/prefix/img{i}.png", _png(i))
    fs.pipe_file(f"{BUCKET}/prefix/sub/a.png", _png(3))
    fs.pipe_file(f"{BUCKET}/prefix/sub/b.png", _png(4))
    fs.pipe_file(f"{BUCKET}/prefix/img0.txt", b"cat\ncute\n")
    voc = (
        "<annotation><object><name>dog</name><bndbox><xmin>1</xmin><ymin>2</ymin>"
        "<xmax>8</xmax><ymax>9</ymax></bndbox></object></annotation>"
    )
    fs.pipe_file(f"{BUCKET}/prefix/sub/a.xml", voc.encode())
    fs.pipe_file(f"{BUCKET}/elsewhere/x.png", _png(9))  # outside the prefix: not a sample
    return fs


def _open(s3, **kw) -> jlabel.Dataset:
    return jlabel.open(URL, storage_options=_options(s3), **kw)


def _labels(ds: jlabel.Dataset) -> dict[str, set[str]]:
    frame = ds.to_pandas()
    return {sid: set(labels) for sid, labels in zip(frame["id"], frame["labels"], strict=True)}


def _nonempty(ds: jlabel.Dataset) -> dict[str, set[str]]:
    return {k: v for k, v in _labels(ds).items() if v}


def test_open_sync_label_and_reopen(s3, bucket) -> None:
    ds = _open(s3)
    assert ds.root == URL
    assert sorted(ds.internal.query_ids()) == [
        "img0.png",
        "img1.png",
        "img2.png",
        "sub/a.png",
        "sub/b.png",
    ]
    assert _labels(ds)["img0.png"] == {"cat", "cute"}  # from img0.txt
    frame = ds.to_pandas().set_index("id")
    assert frame.loc["sub/a.png", "boxes"][0]["label"] == "dog"  # from sub/a.xml
    ds.label(["img1.png", "sub/b.png"], "bird")
    ds.unlabel("img0.png", "cute")
    assert bucket.find(f"{BUCKET}/prefix/.jlabel/journal")  # one object per record

    again = _open(s3)  # a fresh filesystem instance (skip_instance_cache)
    assert _labels(again) == _labels(ds)
    assert again.read_bytes("img2.png") == _png(2)
    assert again.sync().unchanged  # re-sync is idempotent


def test_versions_on_s3(s3, bucket) -> None:
    ds = _open(s3)
    ds.label("img1.png", "bird")
    ds.create_version("v1", description="first")
    ds.label("img2.png", "bird")
    ds.use_version("v1")
    assert "img2.png" not in _nonempty(ds)
    names = list(_open(s3).versions()["name"])
    assert "v1" in names and any(n.startswith("autosave-") for n in names)
    reopened = _open(s3)
    assert reopened.versions().set_index("name").loc["v1", "current"]
    assert _nonempty(reopened) == _nonempty(ds)


def test_add_images_are_uploaded_under_the_prefix(s3, bucket) -> None:
    ds = _open(s3)
    added = ds.add_images([("new.png", _png(7)), ("../escape.png", _png(8)), ("img1.png", _png(6))])
    assert added[0] == "new.png" and added[1] == "escape.png"
    assert added[2] != "img1.png"  # a taken name is renamed, never overwritten
    assert bucket.cat_file(f"{BUCKET}/prefix/new.png") == _png(7)
    assert bucket.cat_file(f"{BUCKET}/prefix/img1.png") == _png(1)
    assert not bucket.exists(f"{BUCKET}/escape.png")
    assert set(added) <= set(_open(s3).internal.query_ids())


def test_delete_images_with_sources(s3, bucket) -> None:
    ds = _open(s3)
    ds.label("img2.png", "bird")
    ds.create_version("before")
    ds.delete_images(["img2.png"], delete_sources=True)
    assert not bucket.exists(f"{BUCKET}/prefix/img2.png")
    assert "img2.png" not in _open(s3).internal.query_ids()
    old = ds.version_frame("before").set_index("id")
    assert bool(old.loc["img2.png", "missing"]) and not bool(old.loc["img1.png", "missing"])


def test_two_datasets_label_compact_and_refresh(s3, bucket) -> None:
    a, b = _open(s3, user="ann"), _open(s3, user="bob")
    a.label("img1.png", "bird")
    b.label("img2.png", "fish")
    assert a.compact()
    b.label("sub/a.png", "car")
    a.label("sub/b.png", "tree")
    assert b.refresh() and a.refresh()
    expected = {
        "img0.png": {"cat", "cute"},
        "img1.png": {"bird"},
        "img2.png": {"fish"},
        "sub/a.png": {"dog", "car"},
        "sub/b.png": {"tree"},
    }
    assert _nonempty(a) == _nonempty(b) == expected
    assert _nonempty(_open(s3)) == expected


def test_both_compact_at_once_on_s3_the_loser_returns_false(s3, bucket) -> None:
    a, b = _open(s3), _open(s3)
    a.label("img1.png", "bird")
    b.label("img2.png", "fish")
    write = b._store.write_snapshot
    results = {}

    def a_wins_the_race(gen: int, data: bytes) -> bool:
        results["a"] = a.compact()
        return write(gen, data)

    b._store.write_snapshot = a_wins_the_race
    results["b"] = b.compact()
    b._store.write_snapshot = write
    assert results == {"a": True, "b": False}  # S3 conditional PUT (If-None-Match)
    b.label("img0.png", "late")
    fresh = _nonempty(_open(s3))
    assert fresh["img1.png"] == {"bird"} and fresh["img2.png"] == {"fish"}
    assert "late" in fresh["img0.png"]


# ---------------------------------------------------------------- the server goes away
@pytest.fixture
def outage(s3) -> Iterator:
    """`outage.stop()` stops the server; `outage.start()` brings one back on the same port."""
    from moto.server import ThreadedMotoServer

    host, port = s3.endpoint_url.rsplit("/", 1)[-1].split(":")

    class Outage:
        down = False

        def stop(self) -> None:
            s3.server.stop()
            self.down = True

        def start(self) -> None:
            server = ThreadedMotoServer(ip_address=host, port=int(port), verbose=False)
            server.start()
            s3.server = server  # the session fixture stops whichever is running
            self.down = False

    o = Outage()
    yield o
    if o.down:
        o.start()


def test_label_while_the_server_is_down_fails_clearly_then_retries(s3, bucket, outage) -> None:
    ds = _open(s3)
    ds.label("img1.png", "bird")
    outage.stop()
    with pytest.raises(StorageError, match=r"could not write the journal at s3://.*retry"):
        ds.label("img2.png", "fish")
    assert "img2.png" not in _nonempty(ds)  # a failed call changes nothing
    with pytest.raises(StorageError):
        ds.refresh()
    with pytest.raises((StorageError, NotFound), match="reachable"):
        _open(s3)
    outage.start()
    ds.label("img2.png", "fish")  # the same call, retried
    fresh = _nonempty(_open(s3))
    assert fresh["img1.png"] == {"bird"} and fresh["img2.png"] == {"fish"}


def _stop_before(fs, outage, needle: str) -> None:
    """Stop the server just before the first upload whose path contains `needle`."""
    pipe = fs.pipe_file
    fired = []

    def pipe_then_fail(path, *args, **kwargs):
        if needle in path and not fired:
            fired.append(path)
            outage.stop()
        return pipe(path, *args, **kwargs)

    fs.pipe_file = pipe_then_fail


def test_server_stops_during_compaction(s3, bucket, outage) -> None:
    ds = _open(s3)
    for name in ("a", "b", "c"):
        ds.label("img1.png", name)
    _stop_before(ds.internal.fs, outage, "/snapshots/")
    with pytest.raises(StorageError):
        ds.compact()
    outage.start()
    ds.label("img2.png", "after")
    assert ds.compact()  # retried
    fresh = _nonempty(_open(s3))
    assert fresh["img1.png"] == {"a", "b", "c"} and fresh["img2.png"] == {"after"}


def test_server_stops_during_add_images(s3, bucket, outage) -> None:
    ds = _open(s3)
    ds.label("img1.png", "bird")
    _stop_before(
        ds.internal.fs, outage, "/.jlabel/journal/"
    )  # the image is uploaded, the record is not
    with pytest.raises(StorageError):
        ds.add_images([("new.png", _png(5))])
    outage.start()
    assert "new.png" not in ds.internal.query_ids()
    ds.sync()  # the uploaded file is picked up like any file put there
    assert "new.png" in _open(s3).internal.query_ids()
    assert _nonempty(_open(s3))["img1.png"] == {"bird"}


def test_server_stops_during_sync(s3, bucket, outage) -> None:
    ds = _open(s3)
    ds.label("img1.png", "bird")
    bucket.pipe_file(f"{BUCKET}/prefix/later.png", _png(11))
    _stop_before(ds.internal.fs, outage, "/.jlabel/journal/")
    with pytest.raises(StorageError):
        ds.sync()
    outage.start()
    ds.sync()
    fresh = _open(s3, sync=False)
    assert "later.png" in fresh.internal.query_ids() and _nonempty(fresh)["img1.png"] == {"bird"}


def test_create_version_can_be_retried_after_the_server_stopped(s3, bucket, outage) -> None:
    ds = _open(s3)
    ds.label("img1.png", "bird")
    _stop_before(ds.internal.fs, outage, "/meta.json")
    with pytest.raises(StorageError):
        ds.create_version("v1")
    outage.start()
    ds.create_version("v1")
    assert "v1" in set(_open(s3).versions()["name"])


def test_unreachable_endpoint_is_a_clear_error() -> None:
    options = {
        "key": "k",
        "secret": "s",
        "client_kwargs": {"endpoint_url": "http://127.0.0.1:9", "region_name": "us-east-1"},
        "config_kwargs": QUICK_FAIL,
        "skip_instance_cache": True,
    }
    with pytest.raises((StorageError, NotFound), match="reachable"):
        jlabel.open(URL, storage_options=options)


@pytest.mark.slow
def test_two_kernels_in_threads_with_frequent_compaction_on_s3(
    s3, bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import jlabel.replica

    monkeypatch.setattr(jlabel.replica, "COMPACT_EVERY", 5)
    kernels = [_open(s3, user=u) for u in ("ann", "bob")]
    ids = sorted(kernels[0].internal.query_ids())
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(20):
                kernels[k].label(ids[(i + k) % len(ids)], f"k{k}-{i}")
                if i % 4 == 3:
                    kernels[k].refresh()  # reads journals that the other one is deleting
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for ds in kernels:
        ds.refresh()
    for view, labels in enumerate((*map(_labels, kernels), _labels(_open(s3, sync=False)))):
        for k in (0, 1):
            for i in range(20):
                assert f"k{k}-{i}" in labels[ids[(i + k) % len(ids)]], (view, k, i)


# ---------------------------------------------------------------- an endpoint that never answers
@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A TCP server that accepts connections and never replies."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def _silent_options(endpoint: str) -> dict:
    return {
        "key": "k",
        "secret": "s",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        "config_kwargs": {"connect_timeout": 1, "read_timeout": 1, "retries": {"max_attempts": 2}},
        "skip_instance_cache": True,
    }


def test_an_endpoint_that_never_answers_fails_within_the_timeouts(silent_endpoint) -> None:
    with pytest.raises(StorageError, match=r"could not open the dataset at s3://.*Timeout"):
        jlabel.open(URL, storage_options=_silent_options(silent_endpoint))


def test_a_journal_write_that_times_out_says_it_may_have_been_saved(
    silent_endpoint, monkeypatch
) -> None:
    import jlabel.store
    from jlabel.store import Store
    from jlabel.store.connect import connect

    # botocore's timeouts miss a PUT waiting for "100 Continue": the store's deadline catches it
    monkeypatch.setattr(jlabel.store, "WRITE_DEADLINE", 2.0)
    fs, root = connect(URL, _silent_options(silent_endpoint))
    assert fs.retries == 1  # jlabel's default: botocore retries, s3fs does not retry on top
    store = Store(fs, root, URL)
    with pytest.raises(StorageError, match=r"may or may not have been saved.*harmless"):
        store.append({"op": "add_labels", "names": ["cat"]})


def test_default_s3_timeouts_sit_under_the_users_options() -> None:
    from jlabel.store.connect import S3_DEFAULTS, connect

    fs, _ = connect(URL, {"key": "k", "secret": "s", "config_kwargs": {"read_timeout": 3}})
    assert fs.config_kwargs["read_timeout"] == 3  # the user's value wins
    assert fs.config_kwargs["connect_timeout"] == S3_DEFAULTS["config_kwargs"]["connect_timeout"]
    assert fs.config_kwargs["retries"] == {"total_max_attempts": 3, "mode": "standard"}
    fs, _ = connect(URL, {"key": "k", "secret": "s", "retries": 4, "skip_instance_cache": True})
    assert fs.retries == 4


# ---------------------------------------------------------------- journal objects and buckets
def _journal_objects(fs: s3fs.S3FileSystem) -> list[str]:
    fs.invalidate_cache()
    return sorted(fs.find(f"{BUCKET}/prefix/.jlabel/journal"))


def test_journal_objects_are_checksummed_and_a_damaged_one_is_reported(s3, bucket) -> None:
    from jlabel.errors import DataLossWarning

    ds = _open(s3)
    ds.label("img1.png", "bird")
    ds.label("img2.png", "fish")
    objects = _journal_objects(bucket)
    last = bucket.cat_file(objects[-1])
    assert last[8:9] == b" " and int(last[:8], 16) >= 0  # "<crc32> {json}"
    bucket.pipe_file(objects[-1], last.replace(b"fish", b"fash"))
    with pytest.warns(DataLossWarning, match=r"1 journal record\(s\) of .* are damaged"):
        again = _open(s3, sync=False)
    labels = _nonempty(again)
    assert labels["img1.png"] == {"bird"} and "img2.png" not in labels
    kept = [p for p in bucket.find(f"{BUCKET}/prefix/.jlabel/damaged") if "journal-" in p]
    assert len(kept) == 1 and b"fash" in bucket.cat_file(kept[0])


def test_journal_objects_written_before_checksums_still_read(s3, bucket) -> None:
    import json as _json

    _open(s3).close()
    legacy = {"t": 2e9, "w": "0000000000001-legacy", "s": 0, "op": _label_op("img2.png", "old")}
    bucket.pipe_file(
        f"{BUCKET}/prefix/.jlabel/journal/0000000000001-legacy/0000000000.json",
        _json.dumps(legacy).encode(),
    )
    assert _nonempty(_open(s3, sync=False))["img2.png"] == {"old"}


def _label_op(sid: str, name: str) -> dict:
    return {"op": "label", "ids": [sid], "names": [name], "user": "x", "t": 2e9}


def test_a_bucket_that_disappeared_is_a_clear_error(s3, bucket) -> None:
    import boto3

    ds = _open(s3)
    ds.label("img1.png", "bird")
    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=BUCKET)
    with pytest.raises(StorageError, match="is gone"):
        ds.label("img2.png", "fish")
    with pytest.raises(StorageError, match="is gone"):
        ds.refresh()
    assert _nonempty(ds)["img1.png"] == {"bird"}  # the state is as it was


def test_a_retried_add_images_adopts_the_file_the_failed_try_saved(s3, bucket, outage) -> None:
    ds = _open(s3)
    _stop_before(ds.internal.fs, outage, "/.jlabel/journal/")  # the file lands, the record not
    with pytest.raises(StorageError, match="may or may not have been saved"):
        ds.add_images([("new.png", _png(5))])
    outage.start()
    assert ds.add_images([("new.png", _png(5))]) == ["new.png"]  # not new-1.png
    assert [i for i in _open(s3).internal.query_ids() if i.startswith("new")] == ["new.png"]


@pytest.mark.slow
def test_two_processes_deleting_labeling_and_compacting_on_s3_lose_nothing(
    s3, bucket, tmp_path
) -> None:
    from soak_worker import lost_labels, run_soak

    for i in range(5, 40):
        bucket.pipe_file(f"{BUCKET}/prefix/more/img{i:02d}.png", _png(i))
    _open(s3).close()
    result = run_soak(URL, tmp_path, seconds=6, open_options={"storage_options": _options(s3)})
    fresh = _nonempty(_open(s3, sync=False))
    assert len([a for a in result["acks"] if a["op"] == "label"]) > 10
    assert lost_labels(result["acks"], fresh) == []
    finals = [{k: set(v) for k, v in f.items() if v} for f in result["finals"]]
    assert finals[0] == finals[1] == fresh
