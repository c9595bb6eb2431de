"""Auto-labeling boxes (``auto_label(task="detection")``): preconditions, the per-image
calibration, and the job's proposals as the user confirms, edits and rejects them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import jlabel
from jlabel.autolabel.detect import DetectConfig, calibrate
from jlabel.autolabel.detect.augment import Augment
from jlabel.errors import InvalidArgument, PreconditionError

SIDE = 32


def _square_set(root: Path, n: int, seed: int = 0) -> dict[str, tuple[list[float], str]]:
    """``n`` 32 px grey images with one square each: red ("red") or blue ("blue")."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    truth = {}
    for i in range(n):
        img = rng.normal(128, 6, (SIDE, SIDE, 3)).clip(0, 255).astype(np.uint8)
        size = int(rng.integers(8, 13))
        x, y = (int(v) for v in rng.integers(0, SIDE - size, 2))
        name = ("red", "blue")[i % 2]
        img[y : y + size, x : x + size] = (220, 30, 30) if name == "red" else (30, 30, 220)
        Image.fromarray(img).save(root / f"s{i:03d}.png")
        truth[f"s{i:03d}.png"] = ([x, y, x + size, y + size], name)
    return truth


def _box(coords: list[float], label: str) -> dict:
    return dict(zip(("xmin", "ymin", "xmax", "ymax"), map(float, coords), strict=True)) | {
        "label": label
    }


@pytest.fixture
def squares(tmp_path: Path):
    truth = _square_set(tmp_path / "sq", 60)
    ds = jlabel.open(tmp_path / "sq", user="ann")
    yield ds, truth
    ds.close()


def _box_first(ds, truth, n: int) -> list[str]:
    ids = sorted(truth)[:n]
    for sid in ids:
        ds.add_boxes(sid, [_box(*truth[sid])])
    return ids


# ------------------------------------------------------------------------- preconditions
def test_detection_needs_two_box_labels_on_five_images_each(squares):
    ds, truth = squares
    with pytest.raises(PreconditionError, match="at least 2 box labels, each on at least 5"):
        ds.auto_label(task="detection", progress=False)
    _box_first(ds, truth, 9)  # 5 red, 4 blue
    with pytest.raises(PreconditionError, match=r"red: 5, blue: 4 images"):
        ds.auto_label(task="detection", progress=False)
    ds.label(sorted(truth)[20], "red")  # an image label is not a box
    with pytest.raises(PreconditionError, match="blue: 4 images"):
        ds.auto_label(task="detection", progress=False)


def test_detection_needs_an_image_without_boxes_or_proposals(tmp_path: Path):
    truth = _square_set(tmp_path / "sq", 10)
    ds = jlabel.open(tmp_path / "sq")
    _box_first(ds, truth, 10)
    with pytest.raises(PreconditionError, match="at least one image without boxes or proposals"):
        ds.auto_label(task="detection", progress=False)
    ds.close()


def test_bad_detection_options_are_refused(squares):
    ds, truth = squares
    _box_first(ds, truth, 12)
    with pytest.raises(InvalidArgument, match="task must be 'classification' or 'detection'"):
        ds.auto_label(task="boxes", progress=False)
    with pytest.raises(InvalidArgument, match="DetectConfig for task='detection'"):
        ds.auto_label(task="detection", train={"steps": 3}, progress=False)
    assert ds.jobs.busy is False


# ------------------------------------------------------------------------- calibration
def _cands(boxes, labels, scores):
    return (
        np.array(boxes, np.float32).reshape(-1, 4),
        np.array(labels, np.int64),
        np.array(scores, np.float32),
    )


def test_an_image_is_as_sure_as_its_least_sure_box_kept_or_dropped():
    sure = calibrate.decide(_cands([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 1], [0.95, 0.9]), 0.5)
    assert len(sure.boxes) == 2 and sure.confidence == pytest.approx(0.8)
    missing = calibrate.decide(_cands([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 1], [0.95, 0.4]), 0.5)
    assert len(missing.boxes) == 1 and missing.confidence == pytest.approx(0.2)
    clash = calibrate.decide(_cands([[0, 0, 10, 10], [1, 0, 11, 10]], [0, 1], [0.95, 0.45]), 0.5)
    assert len(clash.boxes) == 1 and clash.conflict and clash.confidence == pytest.approx(0.1)
    duplicate = calibrate.decide(
        _cands([[0, 0, 10, 10], [1, 0, 11, 10]], [0, 0], [0.95, 0.45]), 0.5
    )
    assert len(duplicate.boxes) == 1 and not duplicate.conflict
    assert duplicate.confidence == pytest.approx(0.9)


def test_exactly_right_needs_every_box_with_its_label_and_nothing_extra():
    truth_b, truth_l = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32), np.array([0, 1])
    assert calibrate.exactly_right(truth_b + 1, truth_l, truth_b, truth_l)
    assert not calibrate.exactly_right(truth_b, truth_l[::-1], truth_b, truth_l)
    assert not calibrate.exactly_right(truth_b[:1], truth_l[:1], truth_b, truth_l)
    assert not calibrate.exactly_right(truth_b + 6, truth_l, truth_b, truth_l)  # IoU < 0.5


def test_the_fitted_cut_keeps_held_out_images_exactly_right_at_the_target():
    """Simulated held-out images whose second box is missed more often the lower it scores:
    the images over the cut are exactly right at the target rate, and so are new ones."""
    rng = np.random.default_rng(0)

    def images(n):
        cands, truth = [], []
        for _ in range(n):
            s = rng.uniform(0.05, 1.0)
            found = rng.random() < 1.6 * s - 0.2  # low scores are often wrong, 0.75+ never
            boxes = [[0, 0, 10, 10], [20, 20, 30, 30] if found else [40, 40, 50, 50]]
            cands.append(_cands(boxes, [0, 1], [0.97, s]))
            truth.append(
                (np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32), np.array([0, 1]))
            )
        return cands, truth

    cands, truth = images(400)
    fitted = calibrate.fit(cands, truth, 0.95)
    assert fitted.certified
    over = fitted.confidence >= fitted.threshold.value
    assert fitted.right[over].mean() >= 0.95 and over.mean() > 0.2
    new_c, new_t = images(2000)
    decided = [calibrate.decide(c, fitted.t) for c in new_c]
    took = [d for d in decided if d.confidence >= fitted.threshold.value]
    right = [
        calibrate.exactly_right(d.boxes, d.labels, *t)
        for d, t in zip(decided, new_t, strict=True)
        if d.confidence >= fitted.threshold.value
    ]
    assert len(took) > 400 and np.mean(right) >= 0.93


def test_fusion_averages_models_and_an_image_needs_most_fold_models_to_vouch():
    a = _cands([[0, 0, 10, 10]], [0], [0.9])
    b = _cands([[1, 0, 11, 10]], [0], [0.7])
    fused = calibrate.fuse([a, b, _cands([], [], [])])
    assert len(fused[2]) == 1 and fused[2][0] == pytest.approx((0.9 + 0.7) / 3)
    final = calibrate.decide(calibrate.fuse([a, a, b]), 0.3)
    folds = [calibrate.decide(c, 0.3) for c in (a, a, b)]
    ok, share = calibrate.accept(final, folds, cut=0.5)
    assert ok and share == 1.0
    ok, _ = calibrate.accept(final, folds, cut=0.65)  # only two of three are that sure
    assert ok
    ok, _ = calibrate.accept(final, folds, cut=0.8)
    assert not ok
    other = calibrate.decide(_cands([[0, 0, 10, 10]], [1], [0.9]), 0.3)
    ok, share = calibrate.accept(final, [folds[0], other, other], cut=0.5)
    assert not ok and share == pytest.approx(1 / 3)
    assert calibrate.hardness(final, share) == pytest.approx(2 / 3)


def test_labels_that_cannot_certify_say_so():
    cands = [_cands([[0, 0, 10, 10]], [0], [0.9])] * 10
    truth = [(np.array([[0, 0, 10, 10]], np.float32), np.array([0]))] * 10
    fitted = calibrate.fit(cands, truth, 0.95)
    assert not fitted.certified
    note = calibrate.uncertified_note(fitted, 0.95)
    assert "only 10 boxed images could be held out" in note and "18+" in note


# ------------------------------------------------------------------------- the job
FAST = DetectConfig(side=SIDE, steps=150, folds=3, batch=16, width=16, augment=Augment(paste=0.3))


@pytest.mark.slow
def test_detection_job_proposes_boxes_sure_ones_right_and_they_confirm_and_reject(squares):
    ds, truth = squares
    boxed = _box_first(ds, truth, 36)
    job = ds.auto_label(task="detection", train=FAST, weights=None, progress=False).wait(600)
    r = job.result
    assert job.status == "done" and r["task"] == "detection" and r["labeled"] == 36
    assert "from scratch" in " ".join(r["notes"]) and r["pretrained"] is False
    targets = sorted(set(truth) - set(boxed))
    frame = ds.to_pandas().set_index("id")
    sure = [i for i in targets if frame.at[i, "proposed_boxes"] and not frame.at[i, "hard"]]
    hard = [i for i in targets if frame.at[i, "hard"]]
    assert len(sure) + len(hard) == len(targets) == r["proposed"] + r["no_boxes_found"]
    assert len(sure) == r["accepted"] >= 12  # separable: most are sure
    for sid in sure:  # accepted images are exactly right
        (b,) = ds.proposed_boxes(sid)
        coords, label = truth[sid]
        got = np.array([[b["xmin"], b["ymin"], b["xmax"], b["ymax"]]])
        assert calibrate.exactly_right(
            got, np.array([b["label"]]), np.array([coords]), np.array([label])
        )
        assert 0 <= b["score"] <= 1
    assert all(frame.at[i, "hardness"] <= 1 - r["threshold"] + 1e-6 for i in sure)
    assert r["estimated_precision"] >= 0.95 and r["held_out_above"] >= 18

    # confirm a sure image whole, edit then confirm another, reject a third
    first, second, third = sure[:3]
    assert ds.confirm([first]) == 1
    assert [b["source"] for b in ds.boxes(first)] == ["auto"] and ds.proposed_boxes(first) == []
    (box,) = ds.proposed_boxes(second)
    ds.update_box(second, box["box_id"], label="blue" if box["label"] == "red" else "red")
    assert [b["source"] for b in ds.boxes(second)] == ["manual"]
    ds.reject([third])
    assert ds.proposed_boxes(third) == [] and third in set(ds.query(tab="unlabeled")["id"])
    assert first in set(ds.query(tab="labeled")["id"])

    # a second run proposes again for the rejected image and never touches the boxed ones
    before = ds.boxes(first)
    ds.auto_label(task="detection", train=FAST, weights=None, progress=False).wait(600)
    assert ds.proposed_boxes(third) and ds.boxes(first) == before


@pytest.mark.slow
def test_precise_self_trains_and_keeps_fast_unless_held_out_images_say_it_helps(squares):
    ds, truth = squares
    _box_first(ds, truth, 24)
    cfg = DetectConfig(side=SIDE, steps=50, semi_steps=50, folds=3, batch=8, width=16)
    r = ds.auto_label(task="detection", mode="precise", train=cfg, weights=None, progress=False)
    r = r.wait(600).result
    assert set(r["candidates"]) == {"fast", "precise"}
    fast, semi = r["candidates"]["fast"], r["candidates"]["precise"]
    better = (semi["held_out_accepted"], semi["held_out_exactly_right"]) > (
        fast["held_out_accepted"],
        fast["held_out_exactly_right"],
    )
    assert r["learner"] == ("precise" if better else "fast")
    assert better or any("Self-training did not help" in n for n in r["notes"])
