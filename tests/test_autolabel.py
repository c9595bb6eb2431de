"""Auto-labeling jobs on a real Dataset: preconditions, queue, cancel, history, calibration,
odd image modes, unreadable files, multi-label, embeddings cache, fallback."""

from __future__ import annotations

import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import jlabel
from jlabel.autolabel import calibrate, features, heads, views
from jlabel.autolabel.cnn import TrainConfig
from jlabel.errors import JobError, PreconditionError

TINY = TrainConfig(steps=40, fm_steps=10, width=8, batch=32)
COLORS = {"red": (200, 40, 40), "blue": (40, 40, 200), "green": (40, 190, 40)}


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models run faster on one thread, and a shared CI box does not thrash."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _image(color: tuple[int, int, int], rng: np.random.Generator, size: int = 16) -> np.ndarray:
    noise = rng.integers(-30, 30, (size, size, 3))
    return np.clip(np.array(color)[None, None, :] + noise, 0, 255).astype(np.uint8)


def make_colors(root: Path, per_class: int = 12, classes=("red", "blue", "green")) -> dict:
    """PNGs of noisy solid colors: ``{id: class}`` (a separable set)."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    truth = {}
    for cls in classes:
        for n in range(per_class):
            sid = f"{cls}{n:02d}.png"
            Image.fromarray(_image(COLORS[cls], rng)).save(root / sid)
            truth[sid] = cls
    return truth


def labeled_colors(tmp_path: Path, per_class: int = 12, n_labeled: int = 5, **kw):
    truth = make_colors(tmp_path / "colors", per_class, **kw)
    ds = jlabel.open(tmp_path / "colors")
    for cls in sorted(set(truth.values())):
        ds.label([i for i, c in truth.items() if c == cls][:n_labeled], cls)
    return ds, truth


def run_cnn(ds, **kw):
    kw = {"backbone": "cnn", "image_size": 16, "train": TINY, "progress": False, **kw}
    return ds.auto_label(**kw)


# -- preconditions ---------------------------------------------------------------------------
def test_preconditions_need_two_labels_with_five_images(tmp_path):
    truth = make_colors(tmp_path / "c", 8)
    ds = jlabel.open(tmp_path / "c")
    with pytest.raises(PreconditionError, match="at least 2 labels"):
        run_cnn(ds)
    ds.label([i for i in truth if i.startswith("red")][:5], "red")
    ds.label([i for i in truth if i.startswith("blue")][:4], "blue")
    with pytest.raises(PreconditionError, match="blue: 4"):
        run_cnn(ds)
    assert ds.jobs.current is None and ds.jobs.queued == [] and ds.job_history() == []


def test_preconditions_need_an_unlabeled_image(tmp_path):
    ds, _truth = labeled_colors(tmp_path, per_class=5, classes=("red", "blue"))
    with pytest.raises(PreconditionError, match="unlabeled"):
        run_cnn(ds)
    with pytest.raises(PreconditionError, match="unlabeled"):
        ds.pre_label(lambda images: [(["red"], [0.9])] * len(images), progress=False)


def test_bad_arguments_are_refused(tmp_path):
    ds, _ = labeled_colors(tmp_path)
    with pytest.raises(ValueError, match="mode"):
        run_cnn(ds, mode="slow")
    with pytest.raises(ValueError, match="target_precision"):
        run_cnn(ds, target_precision=1.5)


# -- jobs: queue, cancel, history ------------------------------------------------------------
class Gate:
    """A pre_label callable that blocks inside its first batch until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, images):
        self.calls += 1
        self.entered.set()
        assert self.release.wait(30)
        return [(["red"], [0.99])] * len(images)


def test_second_job_is_queued_then_runs(tmp_path):
    ds, truth = labeled_colors(tmp_path)
    gate = Gate()
    first = ds.pre_label(gate, progress=False)
    assert gate.entered.wait(30)
    second = run_cnn(ds)
    assert first.status == "running" and second.status == "queued"
    assert ds.jobs.current is first and ds.jobs.queued == [second]
    with pytest.raises(PreconditionError, match="still running"):
        run_cnn(ds, queue=False)
    with pytest.raises(JobError, match="still running after"):
        first.wait(0.01)
    gate.release.set()
    second.wait(60)
    assert first.status == "done" and second.status == "done"
    assert second.started_at >= first.finished_at
    assert ds.jobs.current is None
    assert len(ds.query(tab="to_confirm")) == len(truth) - 15


def test_cancel_running_and_queued_jobs(tmp_path):
    ds, _ = labeled_colors(tmp_path)
    gate = Gate()
    running = ds.pre_label(gate, progress=False, input_size=16)
    assert gate.entered.wait(30)
    queued = run_cnn(ds)
    queued.cancel()
    running.cancel()
    gate.release.set()
    running.wait(30)
    queued.wait(30)
    assert running.status == "cancelled" and queued.status == "cancelled"
    assert queued.started_at is None
    assert len(ds.query(tab="to_confirm")) == 0  # nothing written by either
    statuses = {r["id"]: r["status"] for r in ds.job_history()}
    assert statuses == {running.id: "cancelled", queued.id: "cancelled"}


_EXIT_WHILE_A_JOB_RUNS = """
import sys, time
import jlabel
from jlabel.autolabel.cnn import TrainConfig
ds = jlabel.open(sys.argv[1])
job = ds.auto_label(backbone="cnn", image_size=16, progress=False,
                    train=TrainConfig(steps=1_000_000, width=8, batch=32))
while job.status == "queued":
    time.sleep(0.05)
time.sleep(1)
"""  # the kernel ends with the job mid-training


def test_a_kernel_that_exits_mid_job_cancels_it_and_exits_cleanly(tmp_path):
    ds, _ = labeled_colors(tmp_path)
    ds.close()
    run = subprocess.run(
        [sys.executable, "-c", _EXIT_WHILE_A_JOB_RUNS, str(tmp_path / "colors")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    (record,) = jlabel.open(tmp_path / "colors").job_history()
    assert record["status"] == "cancelled", record


def test_progress_bar_reaches_the_end(tmp_path, capsys):
    ds, _ = labeled_colors(tmp_path)
    job = run_cnn(ds, progress=True).wait(60)
    assert job.progress == 1.0
    err = capsys.readouterr().err
    assert "100/100" in err and "auto_label" in err


def test_history_is_persisted_and_reloaded(tmp_path):
    ds, _ = labeled_colors(tmp_path)
    events = []
    job = run_cnn(ds)
    job.subscribe(lambda j: events.append(j.status))
    job.wait(60)
    assert "done" in events
    failed = ds.pre_label(lambda images: 1 / 0, progress=False)
    with pytest.raises(JobError, match="ZeroDivisionError"):
        failed.wait(30)
    again = jlabel.open(tmp_path / "colors")
    history = again.job_history()
    assert [r["id"] for r in history] == [failed.id, job.id]
    assert history[0]["status"] == "failed" and "ZeroDivisionError" in history[0]["error"]
    assert history[1]["status"] == "done"
    assert history[1]["result"]["proposed"] == job.result["proposed"] == 21
    assert history[1]["params"]["mode"] == "fast"
    stale = {**history[1], "id": "stale", "status": "running", "created_at": "2000-01-01"}
    again.internal.write_store_json("jobs/stale.json", stale)  # its kernel died mid-job
    last = again.job_history()[-1]
    assert last["id"] == "stale" and last["status"] == "failed" and "interrupted" in last["error"]


# -- results -----------------------------------------------------------------------------------
def test_calibrated_proposals_meet_the_target_on_a_separable_set(tmp_path):
    ds, truth = labeled_colors(tmp_path, per_class=30, n_labeled=6)
    job = run_cnn(ds, target_precision=0.95).wait(120)
    r = job.result
    assert r["estimated_precision"] >= 0.95 and r["held_out"] == 18
    assert r["learner"] == "cnn+knn" and set(r["candidates"]) == {"cnn", "cnn+knn"}
    frame = ds.query(tab="to_confirm")
    assert len(frame) == r["proposed"] == 72
    accepted = frame[~frame["hard"].astype(bool)]
    assert len(accepted) == r["accepted"] > 0
    right = [
        next(iter(p)) == truth[i]
        for p, i in zip(accepted["proposed_labels"], accepted["id"], strict=True)
    ]
    assert np.mean(right) >= 0.95
    hard = frame[frame["hard"].astype(bool)]
    assert all(next(iter(s)) < r["threshold"] for s in hard["proposed_scores"])
    assert frame["hardness"].between(0, 1).all()


def test_fit_threshold_is_smoothed_and_honest():
    conf = np.linspace(1.0, 0.5, 10)
    th = calibrate.fit_threshold(conf, np.ones(10, bool), 0.95)
    assert th.value > 1 and th.held_out_above == 0  # 11/12 < 0.95: cannot certify
    conf = np.linspace(1.0, 0.5, 40)
    right = np.ones(40, bool)
    right[30:] = False
    th = calibrate.fit_threshold(conf, right, 0.95)
    assert th.held_out_above == 30 and th.value == pytest.approx(conf[29])
    assert th.estimated_precision == pytest.approx(31 / 32)


def test_uncertified_note_says_why_and_what_to_do():
    assert calibrate.needed_run(0.95) == 18 and calibrate.needed_run(0.9) == 8
    conf = np.linspace(1.0, 0.5, 25)
    right = np.ones(25, bool)
    right[4] = False  # the 5th surest held-out label is wrong
    assert calibrate.first_miss(conf, right) == 4
    assert calibrate.fit_threshold(conf, right, 0.95).held_out_above == 0
    y = np.zeros(25, np.int64)
    oof = np.tile([0.9, 0.1], (25, 1))
    oof[4] = [0.1, 0.9]
    note = calibrate.uncertified_note(conf, right, oof, y, ["cat", "dog"], False, 0.95)
    assert "25 labeled images" in note and "18" in note and "5th surest" in note
    assert "cat taken for dog" in note and "sample_proposals(20)" in note
    all_right = calibrate.uncertified_note(
        conf[:4], right[:4], oof[:4], y[:4], ["cat", "dog"], False, 0.95
    )
    assert "only 4 labeled images" in all_right and "all proposed right" in all_right


def test_label_spreading_follows_the_graph():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.1, (40, 2)) + np.array([1, 0])
    b = rng.normal(0, 0.1, (40, 2)) + np.array([0, 1])
    x = np.concatenate([a, b]).astype(np.float32)
    y = np.r_[np.zeros(40, np.int64), np.ones(40, np.int64)]
    graph = heads.knn_graph(x, k=5)
    probs = heads.spread(graph, np.array([0, 40]), y[[0, 40]], 2, False)
    assert probs.shape == (80, 2) and (probs.argmax(1) == y).all()


def test_vote_depends_on_the_labels_and_the_query_only():
    rng = np.random.default_rng(0)
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    lab = np.concatenate([rng.normal(0, 0.1, (4, 2)) + a, rng.normal(0, 0.1, (4, 2)) + b])
    y = np.r_[np.zeros(4, np.int64), np.ones(4, np.int64)]
    truth = np.r_[np.zeros(15, np.int64), np.ones(15, np.int64)]
    query = np.concatenate([rng.normal(0, 0.2, (15, 2)) + a, rng.normal(0, 0.2, (15, 2)) + b])
    lab, query = lab.astype(np.float32), query.astype(np.float32)
    probs = heads.vote(lab, y, query, 2, False)
    assert probs.shape == (30, 2) and np.allclose(probs.sum(1), 1)
    assert (probs.argmax(1) == truth).mean() >= 0.9
    alone = heads.vote(lab, y, query[:3], 2, False)
    assert np.allclose(alone, probs[:3], atol=1e-6)  # the other queries change nothing
    multi = heads.vote(lab, np.eye(2)[y], query, 2, True)
    assert np.allclose(multi, probs, atol=1e-6)


def test_fast_proposals_ignore_the_other_unlabeled_images(tmp_path):
    """fast is inductive: an image's proposal depends on the labels and the image alone."""
    frames = []
    for extra in (0, 20):
        labeled_colors(tmp_path / f"n{extra}")
        root = tmp_path / f"n{extra}" / "colors"
        rng = np.random.default_rng(1)
        for n in range(extra):  # unlabeled images between the classes and beyond them
            color = (120 + n, 40, 120) if n % 2 else (200, 200, 40 + n)
            Image.fromarray(_image(color, rng)).save(root / f"z{n:02d}.png")
        ds = jlabel.open(root)
        job = run_cnn(ds, seed=3).wait(120)
        assert job.result["learner"] == "cnn+knn"
        frames.append(ds.query(tab="to_confirm"))
    alone, crowded = (f.set_index("id") for f in frames)
    assert len(crowded) == len(alone) + 20
    crowded = crowded.loc[alone.index]
    assert [list(v) for v in alone["proposed_labels"]] == [
        list(v) for v in crowded["proposed_labels"]
    ]
    a = np.array([list(v) for v in alone["proposed_scores"]], float)
    b = np.array([list(v) for v in crowded["proposed_scores"]], float)
    assert np.allclose(a, b, atol=1e-4)
    assert (alone["hard"].to_numpy(bool) == crowded["hard"].to_numpy(bool)).all()


def test_accepted_by_folds_is_a_per_image_majority():
    folds = np.array([[0.99, 0.9, 0.8, 0.5], [0.99, 0.95, 0.7, 0.4], [0.97, 0.6, 0.9, 0.3]])
    assert calibrate.accepted_by_folds(0.85, folds).tolist() == [True, True, False, False]
    assert not calibrate.accepted_by_folds(1.5, folds).any()  # nothing certified
    assert calibrate.accepted_by_folds(0.85, folds[:, :2]).tolist() == [True, True]


def test_gradient_view_sees_orientation():
    stripes = torch.zeros(2, 3, 24, 24)
    stripes[0, :, :, ::4] = 1.0  # vertical stripes: horizontal gradients
    stripes[1, :, ::4, :] = 1.0  # horizontal stripes: vertical gradients
    v = views.gradient_view(stripes)
    assert v.shape == (2, 4 * 9 * 9) and torch.isfinite(v).all()
    assert float(F.cosine_similarity(v[0:1], v[1:2])) < 0.5
    assert views.pixel_view(stripes).shape == (2, 256)
    assert views.pixel_view(stripes[:, :, :8, :8]).shape == (2, 3 * 8 * 8)
    assert views.gradient_view(stripes, dims=100).shape == (2, 100)


def test_transfer_keeps_the_single_model_coverage():
    folds = np.array([[0.99, 0.9, 0.8, 0.5], [0.99, 0.95, 0.7, 0.4]])  # 2 of 4 above 0.85
    final = np.array([0.9, 0.8, 0.6, 0.45])  # averaged: less confident
    assert calibrate.transfer(0.85, folds, final) == pytest.approx(0.8)
    assert calibrate.transfer(0.5, folds, final) == 0.5  # never above the fitted threshold
    assert calibrate.transfer(1.5, folds, final) == 1.5  # nothing certified: nothing accepted


def test_odd_image_modes_are_converted(tmp_path):
    ds, _truth = labeled_colors(tmp_path)
    root = tmp_path / "colors"
    rgb = Image.fromarray(_image(COLORS["red"], np.random.default_rng(5)))
    rgb.convert("RGBA").save(root / "x-rgba.png")
    rgb.convert("L").save(root / "x-gray.png")
    rgb.convert("P").save(root / "x-palette.png")
    rgb.convert("CMYK").save(root / "x-cmyk.jpg")
    Image.fromarray(np.asarray(rgb.convert("L"), np.uint16) * 257).save(root / "x-16bit.png")
    ds.sync()
    job = run_cnn(ds).wait(60)
    assert job.result["skipped"] == {}
    proposed = set(ds.query(tab="to_confirm")["id"])
    assert {"x-rgba.png", "x-gray.png", "x-palette.png", "x-cmyk.jpg", "x-16bit.png"} <= proposed


def test_unreadable_image_is_skipped_and_reported(tmp_path):
    ds, truth = labeled_colors(tmp_path)
    (tmp_path / "colors" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    ds.sync()
    job = run_cnn(ds).wait(60)
    assert job.status == "done"
    assert list(job.result["skipped"]) == ["broken.png"]
    assert "broken.png" not in set(ds.query(tab="to_confirm")["id"])
    assert job.result["proposed"] == len(truth) - 15


class MeanHalves(nn.Module):
    """A fixed 'backbone': mean color of the left and right halves (6 features)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.shape[-1] // 2
        return torch.cat([x[..., :w].mean((2, 3)), x[..., w:].mean((2, 3))], dim=1)


def test_multi_label_gives_independent_decisions(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "multi"
    root.mkdir()
    kinds = {"r": ("red", "red"), "b": ("blue", "blue"), "rb": ("red", "blue")}
    for kind, (left, right) in kinds.items():
        for n in range(14):
            img = np.concatenate(
                [_image(COLORS[left], rng)[:, :8], _image(COLORS[right], rng)[:, :8]], axis=1
            )
            Image.fromarray(img).save(root / f"{kind}{n:02d}.png")
    ds = jlabel.open(root)
    ds.label([f"r{n:02d}.png" for n in range(6)], "red")
    ds.label([f"b{n:02d}.png" for n in range(6)], "blue")
    ds.label([f"rb{n:02d}.png" for n in range(6)], "red", "blue")
    job = ds.auto_label(backbone=MeanHalves(), input_size=16, progress=False).wait(60)
    assert job.result["multi_label"] is True
    frame = ds.query(tab="to_confirm")
    proposals = {i: sorted(p) for i, p in zip(frame["id"], frame["proposed_labels"], strict=True)}
    assert proposals["rb10.png"] == ["blue", "red"]
    assert proposals["r10.png"] == ["red"] and proposals["b10.png"] == ["blue"]
    cnn = run_cnn(ds).wait(60)  # the small CNN learns per-label sigmoids too
    assert cnn.result["multi_label"] is True and cnn.result["proposed"] == 24
    assert cnn.result["candidates"]["cnn"]["accuracy"] > 0


def test_embeddings_are_cached_per_file_version(tmp_path, monkeypatch):
    ds, _ = labeled_colors(tmp_path)
    calls = []
    real = features.embed_arrays
    monkeypatch.setattr(
        features,
        "embed_arrays",
        lambda bb, images, *a, **k: calls.append(len(images)) or real(bb, images, *a, **k),
    )
    kw = {"backbone": "resnet18", "weights": None, "input_size": 32, "progress": False}
    first = ds.auto_label(**kw).wait(120)
    assert first.result["computed"] == 36 and calls == [36]
    second = ds.auto_label(mode="precise", **kw).wait(120)
    assert second.result["computed"] == 0 and calls == [36]
    assert second.result["backbone"] == "resnet18:random" and second.result["pretrained"] is False
    Image.new("RGB", (16, 16), "red").save(tmp_path / "colors" / "red11.png")  # file changes
    ds.sync()
    third = ds.auto_label(**kw).wait(120)
    assert third.result["computed"] == 1 and calls == [36, 1]


def test_missing_weights_fall_back_to_the_small_cnn(tmp_path, monkeypatch):
    ds, _ = labeled_colors(tmp_path)

    def offline(*a, **k):
        raise features.WeightsUnavailable("Pretrained weights for resnet18 could not be loaded")

    monkeypatch.setattr(features, "load_backbone", offline)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        job = ds.auto_label(image_size=16, train=TINY, progress=False).wait(60)
    assert any("Falling back to a small CNN" in str(w.message) for w in caught)
    assert job.result["backbone"] == "cnn:16px" and job.result["notes"]


def test_precise_skips_semi_supervision_on_few_unlabeled(tmp_path):
    ds, _ = labeled_colors(tmp_path)
    job = run_cnn(ds, mode="precise").wait(60)
    assert job.result["learner"] == "cnn+knn" and "skipped" in job.result["notes"][0]
    assert set(job.result["candidates"]) == {"cnn", "cnn+knn"}
    job = run_cnn(ds, mode="precise", min_unlabeled_for_semi=10).wait(120)
    assert set(job.result["candidates"]) == {
        "cnn",
        "cnn+knn",
        "cnn+fixmatch",
        "cnn+fixmatch+views",
    }
    assert job.result["learner"] in ("cnn+knn", "cnn+fixmatch+views")
