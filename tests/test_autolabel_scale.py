"""Auto-labeling at scale: the memory-mapped array cache, chunked decoding (threads and
DataLoader workers), approximate kNN graphs, views computed in blocks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import jlabel
from jlabel.autolabel import cache, decoding, features, heads, views


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _rows(n: int, start: int = 0) -> np.ndarray:
    return (np.arange(start, start + n, dtype=np.int64)[:, None] * [1, 7]).astype(np.int32)


def test_cache_rows_are_kept_by_id_and_file_version(tmp_path):
    c = cache.ArrayCache(str(tmp_path / "c"), "test")
    ids = [f"id{n}" for n in range(10)]
    c.append(ids, ["v1"] * 10, _rows(10))
    again = cache.ArrayCache(str(tmp_path / "c"), "test")  # as a new kernel sees it
    rows = again.rows_of([*ids, "other"], ["v1"] * 9 + ["v2", "v1"])
    assert list(rows[:9]) == list(range(9)) and rows[9] == -1 and rows[10] == -1
    np.testing.assert_array_equal(again.read(rows[[8, 0, 3]]), _rows(10)[[8, 0, 3]])
    assert cache.ArrayCache(str(tmp_path / "c"), "another name").entries == {}
    assert isinstance(again._map, np.memmap)  # read through a memory map, not loaded whole


def test_cache_survives_a_writer_killed_after_its_rows(tmp_path):
    folder = tmp_path / "c"
    c = cache.ArrayCache(str(folder), "test")
    c.append(["a", "b"], ["1", "1"], _rows(2))
    (data,) = [p for p in folder.iterdir() if p.suffix == ".bin"]
    with open(data, "ab") as f:  # rows a killed writer wrote but never committed, half a row
        f.write(b"\xff" * 12)
    c = cache.ArrayCache(str(folder), "test")
    assert set(c.entries) == {"a", "b"}
    c.append(["c"], ["1"], _rows(1, 5))
    c = cache.ArrayCache(str(folder), "test")
    np.testing.assert_array_equal(
        c.read(c.rows_of(["a", "b", "c"], ["1"] * 3)),
        _rows(3)[[0, 1]].tolist() + _rows(1, 5).tolist(),
    )


def test_cache_compacts_when_most_rows_are_stale(tmp_path):
    folder = tmp_path / "c"
    c = cache.ArrayCache(str(folder), "test")
    for version in range(4):  # the same 600 files changed three times
        c.append([f"id{n}" for n in range(600)], [str(version)] * 600, _rows(600, version))
    c = cache.ArrayCache(str(folder), "test")
    assert c.rows == 600 and len(list(folder.glob("*.bin"))) == 1
    got = c.read(c.rows_of(["id0", "id599"], ["3", "3"]))
    np.testing.assert_array_equal(got, _rows(600, 3)[[0, 599]])


def test_a_damaged_index_means_recompute(tmp_path):
    folder = tmp_path / "c"
    cache.ArrayCache(str(folder), "test").append(["a"], ["1"], _rows(1))
    (folder / cache.INDEX).write_bytes(b"not an index")
    assert cache.ArrayCache(str(folder), "test").entries == {}


def _images(root: Path, n: int) -> list[str]:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = []
    for k in range(n):
        name = f"im{k:03d}.png"
        Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(root / name)
        names.append(name)
    (root / "broken.png").write_bytes(b"not a png")
    return [*names, "broken.png"]


@pytest.mark.slow
def test_dataloader_workers_decode_what_threads_decode(tmp_path):
    _images(tmp_path / "d", 7)
    ds = jlabel.open(tmp_path / "d")
    ids = [str(i) for i in ds.query(tab="all")["id"]]
    threads = list(decoding.chunks(ds, ids, 16, workers=0, chunk=3))
    procs = list(decoding.chunks(ds, ids, 16, workers=1, chunk=3))
    assert len(threads) == len(procs) == 3
    for (ok_t, im_t, bad_t), (ok_p, im_p, bad_p) in zip(threads, procs, strict=True):
        assert ok_t == ok_p and bad_t.keys() == bad_p.keys()
        assert im_p.dtype == torch.uint8 and torch.equal(im_t, im_p)
    assert {k for _, _, bad in procs for k in bad} == {"broken.png"}


def test_pixels_are_cached_in_a_memory_mapped_file_under_the_dataset(tmp_path):
    _images(tmp_path / "d", 5)
    ds = jlabel.open(tmp_path / "d")
    ids = [str(i) for i in ds.query(tab="all")["id"]]
    ok, arrays, skipped, computed = features.pixels(ds, ids, 8)
    assert computed == 6 and list(skipped) == ["broken.png"] and arrays.shape == (5, 8, 8, 3)
    (folder,) = (tmp_path / "d" / ".jlabel" / "cache").iterdir()
    (data,) = folder.glob("*.bin")
    assert os.path.getsize(data) == 5 * 8 * 8 * 3
    ok2, arrays2, _, computed2 = features.pixels(ds, ids, 8)
    assert computed2 == 1 and ok2 == ok and np.array_equal(arrays, arrays2)  # only the broken


def _clusters(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((8, d)) * 3
    y = rng.integers(0, 8, n)
    return (centers[y] + rng.standard_normal((n, d))).astype(np.float32), y


def test_approximate_neighbours_match_exact_ones():
    pytest.importorskip("faiss")  # a dependency; without it the graph is exact
    x, _ = _clusters(3000, 32)
    sim_a, idx_a = heads.neighbours(x, k=10, exact=False)
    sim_e, idx_e = heads.neighbours(x, k=10, exact=True)
    assert idx_a.shape == idx_e.shape == (3000, 10)
    assert not (idx_a == torch.arange(3000)[:, None]).any()  # never a point's own match
    pairs = zip(idx_a.tolist(), idx_e.tolist(), strict=True)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in pairs])
    assert recall > 0.95
    assert torch.allclose(sim_a.sort(dim=1).values, sim_e.sort(dim=1).values, atol=0.05)


def test_spreading_over_an_approximate_graph_agrees_with_the_exact_one():
    x, y = _clusters(2000, 16, seed=1)
    seeds = np.concatenate([np.flatnonzero(y == c)[:3] for c in range(8)])
    exact = heads.spread(heads.knn_graph(x, exact=True), seeds, y[seeds], 8, False)
    approx = heads.spread(heads.knn_graph(x, exact=False), seeds, y[seeds], 8, False)
    assert (approx.argmax(1) == exact.argmax(1)).mean() > 0.99
    assert (approx.argmax(1) == y).mean() > 0.95


def test_views_in_blocks_equal_views_at_once(monkeypatch):
    x = torch.randn(50, 3, 12, 12)
    whole_g, whole_p = views.gradient_view(x, dims=20), views.pixel_view(x, 64)
    monkeypatch.setattr(views, "BLOCK", 16)
    assert torch.allclose(views.gradient_view(x, dims=20), whole_g, atol=1e-5)
    assert torch.allclose(views.pixel_view(x, 64), whole_p, atol=1e-4)
