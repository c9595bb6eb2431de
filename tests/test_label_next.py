"""What to label next (`ds.to_label_next`) and what a job says to do next (`next_step`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_autolabel import labeled_colors, make_colors, run_cnn

import jlabel
from jlabel.autolabel import label_next
from jlabel.errors import InvalidArgument


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _labeled(ds) -> set[str]:
    return set(ds.internal.query_ids(tab="labeled"))


# -- without a job ---------------------------------------------------------------------------
def test_before_any_job_a_seeded_random_draw_of_unlabeled_images(tmp_path):
    ds, truth = labeled_colors(tmp_path, per_class=10, n_labeled=5)
    first = ds.to_label_next(n=7)
    assert len(first) == 7 == len(set(first))
    assert not set(first) & _labeled(ds)
    assert first == ds.to_label_next(n=7)  # deterministic
    assert ds.to_label_next(n=7, seed=1) != first
    assert sorted(ds.to_label_next(n=100)) == sorted(set(truth) - _labeled(ds))  # all 15 left


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "at least 1"),
        ({"n": -3}, "at least 1"),
        ({"n": True}, "at least 1"),
        ({"n": 2.5}, "at least 1"),
        ({"n": "20"}, "at least 1"),
        ({"seed": -1}, "seed"),
        ({"seed": None}, "seed"),
        ({"tab": "labeled"}, "tab='labeled'"),
    ],
)
def test_bad_arguments_are_refused(tmp_path, kwargs, match):
    ds, _ = labeled_colors(tmp_path, per_class=6)
    with pytest.raises(InvalidArgument, match=match):
        ds.to_label_next(**kwargs)


def test_it_is_keyword_only(tmp_path):
    ds, _ = labeled_colors(tmp_path, per_class=6)
    with pytest.raises(InvalidArgument, match="too many positional"):
        ds.to_label_next(5)  # type: ignore[misc]


# -- after a job -----------------------------------------------------------------------------
def test_after_a_job_suggestions_are_unlabeled_uncertain_and_stable(tmp_path):
    ds, truth = labeled_colors(tmp_path, per_class=12, n_labeled=5)
    job = run_cnn(ds).wait(120)
    record = label_next.load_record(ds)
    assert record is not None and record["job_id"] == job.id
    assert len(record["ids"]) == len(truth) and record["features"].shape == (len(truth), 128)
    targets = [i for i in record["ids"] if i not in _labeled(ds)]
    unsure = {
        sid: u
        for sid, u in zip(record["ids"], record["uncertainty"], strict=True)
        if sid in targets
    }
    assert len(unsure) == 21 and all(0 <= u <= 1 for u in unsure.values())
    picks = ds.to_label_next(n=5)
    assert len(picks) == 5 == len(set(picks)) and not set(picks) & _labeled(ds)
    assert picks == ds.to_label_next(n=5)
    assert picks[0] == max(targets, key=lambda i: (unsure[i], -targets.index(i)))
    # what the user labels since the job is never suggested again
    ds.label(picks[:2], "red")
    again = ds.to_label_next(n=5)
    assert not set(again) & (set(picks[:2]) | _labeled(ds)) and len(again) == 5
    # by tab: all 19 left have proposals, none is plain unlabeled
    assert ds.to_label_next(n=3, tab="unlabeled") == []
    assert ds.to_label_next(n=3, tab="to_confirm") == again[:3]
    # images the job never saw come first
    ds.delete_images(picks[2])
    ds.internal.set_proposals([picks[3]], [["red"]], [[0.9]])  # still without labels
    assert picks[2] not in ds.to_label_next(n=30)


def test_images_added_after_the_job_come_first(tmp_path):
    ds, _truth = labeled_colors(tmp_path, per_class=8, n_labeled=5)
    run_cnn(ds).wait(120)
    from PIL import Image

    Image.new("RGB", (16, 16), (120, 120, 0)).save(tmp_path / "colors" / "new.png")
    ds.sync()
    assert ds.to_label_next(n=3)[0] == "new.png"
    assert "new.png" in ds.to_label_next(n=1, tab="unlabeled")


def _constructed(tmp_path, unsure: list[float], feats: np.ndarray, labeled: list[int]):
    """A dataset of len(unsure) images whose job record says `unsure` and `feats`."""
    truth = make_colors(tmp_path / "c", per_class=len(unsure) // 3)
    ds = jlabel.open(tmp_path / "c")
    ids = sorted(truth)
    ds.label([ids[i] for i in labeled], "red")
    targets = [i for n, i in enumerate(ids) if n not in labeled]
    label_next.save_record(
        ds,
        job_id="j",
        ids=ids,
        feats=feats,
        target_ids=targets,
        target_uncertainty=np.array([u for n, u in enumerate(unsure) if n not in labeled]),
        skipped=[],
    )
    return ds, ids


def test_uncertain_images_are_preferred_and_spread_out(tmp_path):
    rng = np.random.default_rng(0)
    centres = np.eye(4)[[0] * 6 + [1] * 4 + [2] * 2]  # clusters a: 0-5, b: 6-9, c: 10-11
    feats = centres + 0.01 * rng.normal(size=centres.shape)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    # 0-2 (a, near-duplicates) and 6 (b) are unsure; 11 (c) is labeled
    unsure = [0.9, 0.85, 0.8, 0.1, 0.1, 0.1, 0.7, 0.1, 0.1, 0.1, 0.05, 0.05]
    ds, ids = _constructed(tmp_path, unsure, feats, labeled=[11])
    assert ds.to_label_next(n=1) == [ids[0]]
    assert ds.to_label_next(n=2) == [ids[0], ids[6]]  # not 0's near-duplicate 1
    four = ds.to_label_next(n=4)
    assert four[:2] == [ids[0], ids[6]] and four == ds.to_label_next(n=4)
    # once a near-duplicate of 0 is labeled, 0 is no longer worth much: 6 comes first
    ds.label(ids[1], "red")
    assert ds.to_label_next(n=1) == [ids[6]]
    assert ids[1] not in ds.to_label_next(n=11) and len(ds.to_label_next(n=11)) == 10


def test_k_center_weighs_doubt_by_distance():
    feats = np.array([[1.0, 0], [0.999, 0.045], [0, 1.0]], np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    assert label_next.k_center(feats, np.array([0.9, 0.9, 0.5]), np.zeros((0, 2)), 2) == [0, 2]
    # a labeled image right at the most unsure one makes the far one the first pick
    assert label_next.k_center(feats, np.array([0.9, 0.9, 0.5]), feats[:1], 1) == [2]
    assert label_next.k_center(feats, np.ones(3), np.zeros((0, 2)), 10) == [0, 2, 1]


def test_uncertainty_is_one_minus_the_margin():
    probs = np.array([[0.5, 0.5, 0.0], [0.9, 0.05, 0.05], [0.2, 0.3, 0.5]])
    assert label_next.uncertainty(probs, False) == pytest.approx([1.0, 0.15, 0.8])
    multi = np.array([[0.9, 0.1], [0.6, 0.99]])
    assert label_next.uncertainty(multi, True) == pytest.approx([0.2, 0.8])


# -- what to do next -------------------------------------------------------------------------
def test_next_step_says_what_to_do_in_plain_words():
    base = {"proposed": 1747, "target_precision": 0.95, "held_out_above": 30}
    text = label_next.next_step(
        {**base, "accepted": 1612, "hard": 135, "estimated_precision": 0.978}
    )
    assert text == (
        "1,612 accepted (est. 97.8%); 135 hard — confirm the accepted, label the 20 suggested "
        "next and run again"
    )
    few = label_next.next_step({**base, "accepted": 1740, "hard": 7, "estimated_precision": 0.97})
    assert "7 hard" in few and "label the 7 hard ones" in few
    none = label_next.next_step({**base, "accepted": 1747, "hard": 0, "estimated_precision": 0.97})
    assert "none hard" in none
    uncertified = label_next.next_step({**base, "held_out_above": 0, "accepted": 0, "hard": 1747})
    assert uncertified.startswith("cannot certify 95%") and "random sample of 20" in uncertified


def test_a_job_result_carries_its_next_step(tmp_path):
    ds, _ = labeled_colors(tmp_path, per_class=12, n_labeled=5)
    r = run_cnn(ds).wait(120).result
    assert r["next_step"] == label_next.next_step(r)
    history = jlabel.open(tmp_path / "colors").job_history()
    assert history[0]["result"]["next_step"] == r["next_step"]


def test_the_next_job_calibrates_on_labels_a_person_gave(tmp_path):
    """Confirmed proposals train the next job but never certify it: held out, they only say
    how well the learner repeats its own (easy) guesses."""
    ds, _truth = labeled_colors(tmp_path, per_class=12, n_labeled=5)
    first = run_cnn(ds).wait(120).result
    assert first["held_out"] == 15
    proposed = list(ds.query(tab="to_confirm")["id"])
    sample = ds.sample_proposals(4, seed=0)  # reviewed by a person: these count
    ds.confirm(sample)
    ds.confirm([i for i in proposed if i not in sample][:10])  # confirmed unseen: these do not
    ds.label([i for i in proposed if i not in sample][10:12], "red")
    assert ds.count(tab="labeled") == 15 + 16
    second = run_cnn(ds).wait(120).result
    assert second["held_out"] == 15 + 4 + 2
    person = label_next_person(ds)
    assert sum(person.values()) == 21 and len(person) == 31


def label_next_person(ds) -> dict[str, bool]:
    from jlabel.autolabel import data

    ids = list(ds.query(tab="labeled")["id"])
    return dict(zip(ids, data.given_by_a_person(ds, ids).tolist(), strict=True))
