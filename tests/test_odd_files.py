"""Files that must cost only themselves: links leading outside the root, FIFOs, huge
non-images, names that are not UTF-8 or look like Windows paths (issue 8, items 3, 6, 7)."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest

import jlabel
from jlabel.errors import ImageRejected, UnsafePath
from jlabel.thumbs_cache import ThumbnailCache
from jlabel.widget import _thumbs
from tests.conftest import write_png

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX links, FIFOs and names")
pytestmark = posix_only


def _page(ds: jlabel.Dataset, ids: list[str], cache_dir: Path):
    cache = ThumbnailCache(cache_dir)
    try:
        return cache.get_many(list(_thumbs._cache_items(ds, ids)), 64)
    finally:
        cache.close()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder next to the dataset root, holding a file that must never be read or deleted."""
    folder = tmp_path / "outside"
    write_png(folder / "a.png", seed=99)
    (folder / "secret.png").write_bytes(b"\x89PNG\r\n\x1a\n top secret")
    return folder


# -- item 3: links leading outside the root ------------------------------------------------
def test_delete_through_a_folder_swapped_for_a_link_is_refused(image_dir, outside):
    write_png(image_dir / "later" / "a.png", seed=1)
    ds = jlabel.open(image_dir)
    assert "later/a.png" in set(ds.to_pandas()["id"])
    shutil.rmtree(image_dir / "later")
    (image_dir / "later").symlink_to(outside, target_is_directory=True)

    with pytest.raises(UnsafePath, match=r"outside the dataset root.*Nothing was deleted"):
        ds.delete_images(["later/a.png"], delete_sources=True)
    assert (outside / "a.png").is_file()
    assert "later/a.png" in set(ds.to_pandas()["id"])  # refused before any change
    with pytest.raises(UnsafePath, match="outside"):
        ds.read_bytes("later/a.png")
    ds.delete_images(["later/a.png"])  # the sample alone can go
    assert (outside / "a.png").is_file()


def test_delete_label_with_sources_refuses_a_link_outside_before_any_change(image_dir, outside):
    ds = jlabel.open(image_dir)
    ds.label(["img1.png"], "only")
    os.remove(image_dir / "img1.png")
    (image_dir / "img1.png").symlink_to(outside / "a.png")
    with pytest.raises(UnsafePath):
        ds.delete_label("only", mode="sources")
    assert (outside / "a.png").is_file() and "only" in ds.labels


def test_sync_skips_links_leading_outside_with_a_reason(image_dir, outside):
    (image_dir / "peek.png").symlink_to(outside / "secret.png")
    (image_dir / "elsewhere").symlink_to(outside, target_is_directory=True)
    (image_dir / "inner.png").symlink_to(image_dir / "img0.png")  # inside the root: fine
    ds = jlabel.open(image_dir, sync=False)
    report = ds.sync()
    ids = set(ds.to_pandas()["id"])
    assert "peek.png" not in ids and "inner.png" in ids
    assert not any(i.startswith("elsewhere/") for i in ids)
    skipped = dict(line.split(": ", 1) for line in report.skipped)
    assert "outside the dataset root" in skipped["peek.png"]
    assert "folder outside" in skipped["elsewhere"]
    assert report.to_dict()["skipped"] == report.skipped
    assert "peek.png" in str(report)
    assert ds.read_bytes("inner.png") == (image_dir / "img0.png").read_bytes()


def test_a_sample_swapped_for_a_link_outside_is_never_read_or_exported(image_dir, outside):
    ds = jlabel.open(image_dir)
    ds.label(["img1.png", "img2.png"], "cat")
    os.remove(image_dir / "img1.png")
    (image_dir / "img1.png").symlink_to(outside / "secret.png")
    with pytest.raises(UnsafePath):
        ds.read_bytes("img1.png")
    out = image_dir.parent / "export"
    with pytest.warns(UserWarning, match="img1.png"):
        ds.export(out, format="voc")
    assert not (out / "img1.png").exists() and (out / "img2.png").is_file()
    thumbs = _page(ds, ["img1.png", "img2.png"], image_dir.parent / "cache")
    assert "outside" in thumbs[0].error and thumbs[1].ok


# -- item 6: FIFOs and huge files that are not images ----------------------------------------
def test_a_fifo_named_like_an_image_is_skipped_and_never_opened(image_dir, tmp_path):
    os.mkfifo(image_dir / "fifo.png")
    ds = jlabel.open(image_dir, sync=False)
    report = ds.sync()
    assert "fifo.png" not in set(ds.to_pandas()["id"])
    assert any(line.startswith("fifo.png: not a regular file") for line in report.skipped)


def test_a_fifo_that_replaced_a_sample_costs_that_sample_only(image_dir, tmp_path):
    ds = jlabel.open(image_dir)
    ds.label(["img1.png", "img2.png"], "cat")
    os.remove(image_dir / "img1.png")
    os.mkfifo(image_dir / "img1.png")
    done: list[object] = []

    def work() -> None:  # a blocking open would hang this thread forever
        thumbs = _page(ds, ["img1.png", "img2.png"], tmp_path / "cache")
        with pytest.warns(UserWarning, match="img1.png"):
            ds.export(tmp_path / "labels.csv", format="csv")
        done.append(thumbs)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(60)
    assert done, "a FIFO blocked the thumbnail page or the CSV export"
    thumbs = done[0]
    assert "not a regular file" in thumbs[0].error and thumbs[1].ok
    with pytest.raises(UnsafePath, match="not a regular file"):
        ds.read_bytes("img1.png")
    assert "img1.png" not in (tmp_path / "labels.csv").read_text()


def test_a_large_file_that_is_not_an_image_is_flagged_from_its_header(image_dir, monkeypatch):
    with open(image_dir / "big.jpg", "wb") as f:
        f.truncate(64 * 1024 * 1024)  # sparse: 64 MiB of zeros, costs no disk
    ds = jlabel.open(image_dir)
    reads: list[int] = []
    real_pread, real_fdopen = os.pread, os.fdopen
    monkeypatch.setattr(os, "pread", lambda fd, n, at: reads.append(n) or real_pread(fd, n, at))
    monkeypatch.setattr(os, "fdopen", lambda *a, **k: reads.append(-1) or real_fdopen(*a, **k))
    with pytest.raises(ImageRejected, match="the rest was not read"):
        ds.read_bytes("big.jpg")
    assert reads == [64]  # the header only, never the whole file
    thumb = _page(ds, ["big.jpg"], image_dir.parent / "cache")[0]
    assert thumb.corrupt and "not a JPEG, PNG or BMP" in thumb.error


# -- item 7: names that are not UTF-8, or look like Windows paths ---------------------------
def test_a_name_that_is_not_utf8_is_skipped_with_a_reason(image_dir):
    data = (image_dir / "img0.png").read_bytes()
    fd = os.open(os.fsencode(image_dir) + b"/caf\xe9.png", os.O_WRONLY | os.O_CREAT)
    os.write(fd, data)
    os.close(fd)
    os.mkdir(os.fsencode(image_dir) + b"/d\xe9j\xe0")
    ds = jlabel.open(image_dir, sync=False)
    report = ds.sync()
    assert "caf\\xe9.png: the name is not valid UTF-8" in "\n".join(report.skipped)
    assert any(line.startswith("d\\xe9j\\xe0/: folder not listed") for line in report.skipped)
    json.dumps(report.to_dict())  # what the widget is sent
    assert len(ds.to_pandas()) == 10
    ds.label(["img0.png"], "x")
    assert ds.compact()
    ds.create_version("v1")
    ds.labeler()
    assert len(jlabel.open(image_dir).to_pandas()) == 10


WINDOWS_LOOKING = ["C:x.png", "a\\..\\..\\x.png"]


def test_windows_looking_posix_names_work_like_any_other(image_dir, tmp_path):
    for i, name in enumerate(WINDOWS_LOOKING):
        write_png(image_dir / name, seed=20 + i)
    ds = jlabel.open(image_dir)
    ids = sorted(ds.to_pandas()["id"])
    assert set(WINDOWS_LOOKING) <= set(ids)
    thumbs = _page(ds, ids, tmp_path / "cache")
    assert all(t.ok for t in thumbs), [t.error for t in thumbs if not t.ok]
    ds.label(WINDOWS_LOOKING, "odd")
    view = ds.to_torch(labels=["odd"])
    assert [view[i][0].shape[1:] for i in range(len(view))] == [(24, 24)] * 2
    ds.delete_images(WINDOWS_LOOKING, delete_sources=True)
    assert not any((image_dir / name).exists() for name in WINDOWS_LOOKING)
    assert not set(WINDOWS_LOOKING) & set(ds.to_pandas()["id"])
