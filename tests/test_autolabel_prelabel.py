"""pre_label with each model kind (tiny models built here), class mapping, hard examples;
auto grouping by k-means."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_autolabel import _one_torch_thread, labeled_colors, make_colors  # noqa: F401
from torch import nn

import jlabel
from jlabel.autolabel.group import kmeans
from jlabel.errors import PreconditionError


class ChannelMeans(nn.Module):
    """Logits = 20 x mean of each (normalised) channel: classes R, G, B."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3)) * 20


CLASSES = ["R", "G", "B"]
MAPPING = {"R": "red", "B": "blue"}  # G is dropped


def proposals(ds) -> dict[str, list[str]]:
    frame = ds.query(tab="to_confirm")
    return {i: list(p) for i, p in zip(frame["id"], frame["proposed_labels"], strict=True)}


def check_mapped(ds, job, truth) -> None:
    got = proposals(ds)
    unlabeled = [i for i in truth if i.endswith(("05.png", "06.png", "07.png"))]
    assert set(got) == {i for i in unlabeled if truth[i] != "green"}
    assert all(got[i] == [truth[i]] for i in got)
    assert job.result["unmapped"] == 3 and job.result["skipped"] == {}


@pytest.fixture
def ds_truth(tmp_path):
    return labeled_colors(tmp_path, per_class=8)


def test_module_with_classes_and_mapping(ds_truth):
    ds, truth = ds_truth
    job = ds.pre_label(
        ChannelMeans(), classes=CLASSES, mapping=MAPPING, input_size=16, progress=False
    ).wait(60)
    check_mapped(ds, job, truth)
    assert job.result["model"] == "module:ChannelMeans"
    assert job.result["calibrated"] is True and job.result["held_out"] == 10


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_torchscript_file(ds_truth, tmp_path):
    ds, truth = ds_truth
    path = tmp_path / "model.pt"
    torch.jit.script(ChannelMeans()).save(str(path))
    job = ds.pre_label(
        str(path), classes=CLASSES, mapping=MAPPING, input_size=16, progress=False
    ).wait(60)
    check_mapped(ds, job, truth)
    assert job.result["model"] == "torchscript:model.pt"


def test_torchvision_name_without_weights(ds_truth):
    ds, _truth = ds_truth
    classes = [f"c{n}" for n in range(1000)]
    mapping = {f"c{n}": ("red" if n % 2 else "blue") for n in range(1000)}
    job = ds.pre_label(
        "resnet18", weights=None, classes=classes, mapping=mapping, input_size=32, progress=False
    ).wait(60)
    assert job.result["model"] == "torchvision:resnet18:None"
    assert job.result["proposed"] == 9 and job.result["unmapped"] == 0
    assert all(p in (["red"], ["blue"]) for p in proposals(ds).values())


def test_callable_returning_labels_and_scores_on_a_new_dataset(tmp_path):
    truth = make_colors(tmp_path / "fresh", per_class=4, classes=("red", "blue"))
    ds = jlabel.open(tmp_path / "fresh")

    def model(images):
        reds = [np.asarray(im)[..., 0].mean() > 120 for im in images]
        return [(["red"], [0.97]) if r else (["blue"], [0.6]) for r in reds]

    job = ds.pre_label(model, progress=False).wait(60)
    assert sorted(ds.labels) == ["blue", "red"]  # a dataset without labels takes the model's
    frame = ds.query(tab="to_confirm")
    hard = dict(zip(frame["id"], frame["hard"].astype(bool), strict=True))
    assert len(hard) == 8 and job.result["calibrated"] is False
    assert all(hard[i] == (truth[i] == "blue") for i in hard)  # 0.6 < 0.95: hard
    assert list(frame["id"][:4]) == sorted(i for i in truth if truth[i] == "red")  # surest first


def test_callable_returning_probabilities(ds_truth):
    ds, truth = ds_truth

    def model(images):
        means = np.stack([np.asarray(im, float).mean(axis=(0, 1)) for im in images])
        e = np.exp((means - means.max(axis=1, keepdims=True)) / 10)
        return e / e.sum(axis=1, keepdims=True)

    job = ds.pre_label(model, classes=CLASSES, mapping=MAPPING, progress=False).wait(60)
    check_mapped(ds, job, truth)


def test_bad_models_are_refused(ds_truth):
    ds, _ = ds_truth
    with pytest.raises(PreconditionError, match="classes"):
        ds.pre_label(ChannelMeans(), progress=False)
    with pytest.raises(PreconditionError, match="model must be"):
        ds.pre_label(42, progress=False)
    assert ds.job_history() == []
    job = ds.pre_label(lambda images: np.ones((len(images), 2)), classes=CLASSES, progress=False)
    with pytest.raises(jlabel.JobError, match="scores per image"):
        job.wait(30)


def test_kmeans_finds_obvious_clusters():
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0], [10, 0], [0, 10]], float)
    x = np.concatenate([c + rng.normal(0, 0.5, (30, 2)) for c in centers])
    labels = kmeans(x, 3)
    assert len(set(labels)) == 3
    assert all(len(set(labels[k * 30 : (k + 1) * 30])) == 1 for k in range(3))


def test_auto_group_sets_groups(tmp_path):
    truth = make_colors(tmp_path / "g", per_class=6)
    ds = jlabel.open(tmp_path / "g")
    job = ds.auto_group(n_groups=3, backbone="pixels", progress=False).wait(60)
    assert sum(job.result["groups"].values()) == 18
    frame = ds.to_pandas()
    assert sorted(ds.groups()) == ["group-0", "group-1", "group-2"]
    by_color = frame.groupby(frame["id"].map(truth))["group"].nunique()
    assert (by_color == 1).all()
    assert set(ds.query(group="group-0")["id"]) <= set(truth)
