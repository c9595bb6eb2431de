"""Bad arguments get an InvalidArgument (a JLabelError and a ValueError) that names the argument
and what is expected, before anything is written; the dataset is unchanged afterwards."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import jlabel
from jlabel.errors import InvalidArgument, InvalidLabelName, NotFound


@pytest.fixture
def ds(image_dir: Path):
    ds = jlabel.open(image_dir)
    ds.label("img0.png", "cat")
    yield ds
    ds.close()


def _state(ds: jlabel.Dataset) -> list:
    frame = ds.to_pandas()
    return [frame["id"].tolist(), [list(v) for v in frame["labels"]], ds.labels]


CASES = [
    ("label empty ids", lambda ds: ds.label([], "x"), "ids is empty"),
    ("label None", lambda ds: ds.label(None, "x"), "ids must be a sample id"),
    ("label an int", lambda ds: ds.label(5, "x"), "ids must be a sample id"),
    ("label ints in a list", lambda ds: ds.label([5], "x"), "ids must hold sample ids"),
    ("label no names", lambda ds: ds.label("img1.png"), "at least one label name"),
    ("unlabel unknown label", lambda ds: ds.unlabel("img0.png", "dog"), "no label 'dog'"),
    ("unlabel invalid name", lambda ds: ds.unlabel("img0.png", "a b"), "invalid label name"),
    ("unlabel empty ids", lambda ds: ds.unlabel([]), "ids is empty"),
    ("delete_images None", lambda ds: ds.delete_images(None), "ids must be a sample id"),
    (
        "delete_images flag",
        lambda ds: ds.delete_images("img1.png", delete_sources="yes"),
        "True or False",
    ),
    ("create_version int", lambda ds: ds.create_version(5), "name must be a string"),
    (
        "create_version description",
        lambda ds: ds.create_version("v1", 3),
        "description must be a string",
    ),
    (
        "set_proposals scores None",
        lambda ds: ds.internal.set_proposals(["img1.png"], [["cat"]], None),
        "scores must be a list",
    ),
    (
        "set_proposals lengths",
        lambda ds: ds.internal.set_proposals(["img1.png", "img2.png"], [["cat"]], [[0.9]]),
        "labels has 1 entries for 2 ids",
    ),
    (
        "set_proposals one score per label",
        lambda ds: ds.internal.set_proposals(["img1.png"], [["cat", "dog"]], [[0.9]]),
        "1 scores for 2 labels",
    ),
    (
        "set_hard lengths",
        lambda ds: ds.internal.set_hard(["img1.png", "img2.png"], [True]),
        "hard has 1 entries for 2 ids",
    ),
    (
        "set_groups lengths",
        lambda ds: ds.internal.set_groups(["img1.png", "img2.png"], ["g"]),
        "groups has 1 entries for 2 ids",
    ),
    ("query misspelled filter", lambda ds: ds.query(filter="cat"), "no parameter 'filter'"),
    ("query unknown tab", lambda ds: ds.query(tab="done"), "unknown tab 'done'"),
    ("query labels type", lambda ds: ds.query(labels=3), "labels must be a string or a list"),
    ("query created", lambda ds: ds.query(created="yesterday"), "not a time filter"),
    ("query created dates", lambda ds: ds.query(created=("soon", None)), "ISO strings"),
    ("query offset", lambda ds: ds.query(offset=-1), "offset must be"),
    ("count unknown filter", lambda ds: ds.count(lables="cat"), "unknown filter 'lables'"),
    ("delete_label mode", lambda ds: ds.delete_label("cat", mode="all"), "mode='all'"),
    ("label positional extra", lambda ds: ds.sample_check(3), "sample_check()"),
    ("auto_label mode", lambda ds: ds.auto_label(mode="slow"), "mode must be 'fast' or 'precise'"),
    (
        "auto_label typo",
        lambda ds: ds.auto_label(targt_precision=0.9),
        "did you mean 'target_precision'",
    ),
    ("sample_proposals n", lambda ds: ds.sample_proposals(0), "at least 1"),
    (
        "open storage_options",
        lambda ds: jlabel.open(ds.root, storage_options=[1]),
        "must be a dict",
    ),
    ("open sync", lambda ds: jlabel.open(ds.root, sync="later"), "sync must be"),
]


@pytest.mark.parametrize(("call", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_arguments_are_named_and_change_nothing(ds, call, message):
    before = _state(ds)
    with pytest.raises(InvalidArgument) as caught:
        call(ds)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, jlabel.JLabelError)
    assert _state(ds) == before


def test_unknown_samples_and_labels_are_not_found(ds):
    with pytest.raises(NotFound, match=r"no sample with id .nope\.png."):
        ds.label(["img1.png", "nope.png"], "x")
    with pytest.raises(NotFound, match="no label 'dog'"):
        ds.rename_label("dog", "cat")
    with pytest.raises(InvalidLabelName):
        ds.label("img1.png", "bad name")
    assert ds.labels == ["cat"]


def test_the_public_methods_show_their_real_parameters():
    sig = inspect.signature(jlabel.Dataset.auto_label)
    assert list(sig.parameters)[:3] == ["self", "mode", "target_precision"]
    assert all(
        p.kind is inspect.Parameter.KEYWORD_ONLY for n, p in sig.parameters.items() if n != "self"
    )
    pre = inspect.signature(jlabel.Dataset.pre_label)
    assert list(pre.parameters)[:3] == ["self", "model", "classes"]
    assert "n_groups" in inspect.signature(jlabel.Dataset.auto_group).parameters
    assert "Parameters\n----------\nmode : str" in jlabel.Dataset.auto_label.__doc__
    query = inspect.signature(jlabel.Dataset.query).parameters
    assert {"tab", "labels", "hard", "created", "name", "offset", "limit"} <= set(query)


def test_the_dataset_provides_what_the_layers_rely_on(ds):
    """Every member of the LabelingDataset protocol exists on a real Dataset (the layers are
    typed against the protocol, so a missing or renamed method would break them)."""
    from jlabel.protocols import LabelingDataset

    members = [
        name for name in vars(LabelingDataset) if not name.startswith("_") or name == "__len__"
    ]
    members += list(LabelingDataset.__annotations__)
    missing = [name for name in members if not hasattr(ds, name)]
    assert missing == []
