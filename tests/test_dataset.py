"""The dataset model: every public call of DESIGN.md's contract, on a local folder."""

from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import write_png
from PIL import Image

import jlabel
from jlabel.errors import ImageRejected, InvalidLabelName, JLabelError, NotFound, VersionError

VOC = b"""<annotation><filename>b.jpg</filename>
<object><name>car</name><difficult>0</difficult>
<bndbox><xmin>1</xmin><ymin>2</ymin><xmax>10</xmax><ymax>12</ymax></bndbox></object>
</annotation>"""


def png_bytes(color=(10, 20, 30), size=(16, 16), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


def test_open_syncs_images_in_subfolders_and_ignores_other_files(image_dir: Path):
    write_png(image_dir / "sub" / "deeper" / "x.JPG".lower().replace("jpg", "png"), seed=99)
    (image_dir / "notes.md").write_text("not an image")
    Image.new("RGB", (8, 8)).save(image_dir / "pic.bmp")
    Image.new("RGB", (8, 8)).save(image_dir / "photo.JPEG", "JPEG")
    ds = jlabel.open(image_dir)
    ids = set(ds.to_pandas()["id"])
    assert {"img0.png", "sub/deeper/x.png", "pic.bmp", "photo.JPEG"} <= ids
    assert "notes.md" not in ids
    assert len(ds) == 13
    assert (image_dir / ".jlabel").is_dir()


def test_open_missing_folder_says_what_to_do(tmp_path: Path):
    with pytest.raises(NotFound, match="does not exist"):
        jlabel.open(tmp_path / "nope")


def test_sync_reads_txt_and_voc_labels_and_never_overwrites_jlabel_labels(image_dir: Path):
    (image_dir / "img0.txt").write_text("cat\ndog\n")
    (image_dir / "img1.txt").write_text("cat, bird")
    (image_dir / "img2.xml").write_bytes(VOC)
    ds = jlabel.open(image_dir)
    df = ds.to_pandas().set_index("id")
    assert df.loc["img0.png", "labels"] == ["cat", "dog"]
    assert df.loc["img1.png", "labels"] == ["cat", "bird"]
    assert df.loc["img2.png", "labels"] == ["car"]
    assert df.loc["img2.png", "boxes"][0]["xmin"] == 1
    assert df.loc["img0.png", "source"] == "imported"
    # a label made in jlabel survives a changed .txt and a re-sync
    ds.unlabel("img0.png")
    ds.label("img0.png", "fox")
    (image_dir / "img0.txt").write_text("wolf\n")
    os.utime(image_dir / "img0.txt", (1e9, 1e9))
    report = ds.sync()
    assert ds.to_pandas().set_index("id").loc["img0.png", "labels"] == ["fox"]
    assert report.added == []
    # an edited label file of an imported sample is picked up
    (image_dir / "img1.txt").write_text("owl\n")
    os.utime(image_dir / "img1.txt", (2e9, 2e9))
    ds.sync()
    assert ds.to_pandas().set_index("id").loc["img1.png", "labels"] == ["owl"]


def test_resync_is_idempotent_and_reports_new_and_missing(image_dir: Path):
    ds = jlabel.open(image_dir)
    before = ds.to_pandas()
    report = ds.sync()
    assert report.unchanged
    pd.testing.assert_frame_equal(before, ds.to_pandas())
    write_png(image_dir / "new.png", seed=50)
    ds.label("img3.png", "cat")
    (image_dir / "img3.png").unlink()
    report = ds.sync()
    assert report.added == ["new.png"]
    assert report.missing == ["img3.png"]
    row = ds.to_pandas().set_index("id").loc["img3.png"]
    assert bool(row["missing"]) and row["labels"] == ["cat"]  # flagged, labels kept
    write_png(image_dir / "img3.png", seed=3)
    assert ds.sync().restored == ["img3.png"]
    (image_dir / "img4.png").unlink()
    assert ds.sync(prune=True).pruned == ["img4.png"]
    assert "img4.png" not in set(ds.to_pandas()["id"])


@pytest.mark.parametrize("bad", ["", "a b", "x" * 33, "ça", "a/b", "<b>", 5, None, "tab\t"])
def test_invalid_label_names_are_refused_with_the_rule(image_dir: Path, bad):
    ds = jlabel.open(image_dir)
    with pytest.raises(InvalidLabelName, match="1-32 characters"):
        ds.label("img0.png", bad)
    with pytest.raises(InvalidLabelName):
        ds.add_labels(bad)
    assert ds.labels == []


def test_label_in_batches_records_who_and_when(image_dir: Path):
    ds = jlabel.open(image_dir, user="alice")
    before = pd.Timestamp.now(tz="UTC")
    ds.label([f"img{i}.png" for i in range(5)], "cat", "cute")
    ds.label(["img4.png", "img5.png"], "dog")
    df = ds.to_pandas().set_index("id")
    assert df.loc["img4.png", "labels"] == ["cat", "cute", "dog"]
    assert df.loc["img0.png", "labeled_by"] == "alice"
    assert df.loc["img0.png", "source"] == "manual"
    assert df.loc["img0.png", "labeled_at"] >= before
    assert ds.label_counts() == {"cat": 5, "cute": 5, "dog": 2}
    ds.unlabel(["img4.png"], "cat")
    assert ds.to_pandas().set_index("id").loc["img4.png", "labels"] == ["cute", "dog"]
    ds.unlabel(["img4.png", "img0.png"])
    df = ds.to_pandas().set_index("id")
    assert df.loc["img4.png", "labels"] == [] and pd.isna(df.loc["img4.png", "labeled_by"])
    assert ds.counts() == {"all": 10, "unlabeled": 6, "labeled": 4, "to_confirm": 0}
    with pytest.raises(NotFound, match=r"nope\.png"):
        ds.label(["img1.png", "nope.png"], "cat")
    assert ds.label_counts()["cat"] == 3  # the failed call changed nothing


def test_user_defaults_to_env_then_os(image_dir: Path, monkeypatch):
    monkeypatch.setenv("JLABEL_USER", "bob")
    assert jlabel.open(image_dir).user == "bob"
    monkeypatch.delenv("JLABEL_USER")
    assert jlabel.open(image_dir).user


def test_rename_label_and_merge(image_dir: Path):
    ds = jlabel.open(image_dir)
    ds.label(["img0.png", "img1.png"], "kitty")
    ds.label(["img1.png", "img2.png"], "cat")
    ds.add_labels("zebra")
    ds.rename_label("zebra", "horse")
    assert ds.labels == ["kitty", "cat", "horse"]
    ds.rename_label("kitty", "cat")
    assert ds.labels == ["cat", "horse"]
    assert ds.label_counts() == {"cat": 3, "horse": 0}
    assert ds.to_pandas().set_index("id").loc["img1.png", "labels"] == ["cat"]
    with pytest.raises(NotFound):
        ds.rename_label("nope", "x")
    with pytest.raises(InvalidLabelName):
        ds.rename_label("cat", "bad name")


@pytest.mark.parametrize("mode", ["label", "samples", "sources"])
def test_delete_label_modes(image_dir: Path, mode: str):
    ds = jlabel.open(image_dir)
    ds.label(["img0.png", "img1.png"], "cat")
    ds.label(["img1.png"], "dog")
    removed = ds.delete_label("cat", mode=mode)
    df = ds.to_pandas().set_index("id")
    assert "cat" not in ds.labels
    assert df.loc["img1.png", "labels"] == ["dog"]
    if mode == "label":
        assert removed == 0 and df.loc["img0.png", "labels"] == []
    else:
        assert removed == 1 and "img0.png" not in df.index
    assert (image_dir / "img0.png").exists() == (mode != "sources")
    assert (image_dir / "img1.png").exists()
    with pytest.raises(JLabelError, match="mode"):
        ds.delete_label("dog", mode="everything")


def test_add_images_checks_format_size_and_names(image_dir: Path, tmp_path: Path):
    ds = jlabel.open(image_dir)
    outside = tmp_path / "outside.png"
    outside.write_bytes(png_bytes())
    ids = ds.add_images([outside, ("../evil.png", png_bytes()), ("img0.png", png_bytes())])
    assert ids == ["outside.png", "evil.png", "img0-1.png"]
    assert not (tmp_path / "evil.png").exists()
    assert (image_dir / "evil.png").exists() and (image_dir / "img0-1.png").exists()
    assert ds.count(tab="unlabeled") == 13
    gif = io.BytesIO()
    Image.new("RGB", (4, 4)).save(gif, "GIF")
    with pytest.raises(ImageRejected):
        ds.add_images([("fake.png", gif.getvalue())])
    with pytest.raises(ImageRejected):
        ds.add_images([("doc.txt", b"hello")])
    ds.max_image_bytes = 100
    with pytest.raises(ImageRejected, match="MB"):
        ds.add_images([("big.png", png_bytes(size=(64, 64)))])
    ds.max_image_bytes, ds.max_batch_bytes = 5 << 20, 1000
    with pytest.raises(ImageRejected, match="smaller batches"):
        ds.add_images([(f"p{i}.png", png_bytes(size=(64, 64))) for i in range(20)])
    assert not (image_dir / "p0.png").exists()  # a refused batch writes nothing
    assert len(ds) == 13


def test_delete_images_and_versions_show_missing_sources(image_dir: Path):
    ds = jlabel.open(image_dir)
    ds.label(["img0.png", "img1.png"], "cat")
    ds.create_version("before", description="two cats")
    ds.delete_images(["img0.png"], delete_sources=True)
    ds.delete_images("img1.png")
    assert not (image_dir / "img0.png").exists() and (image_dir / "img1.png").exists()
    assert len(ds) == 8
    old = ds.version_frame("before").set_index("id")
    assert bool(old.loc["img0.png", "missing"]) and not bool(old.loc["img1.png", "missing"])
    ds.use_version("before")
    df = ds.to_pandas().set_index("id")
    assert len(df) == 10 and bool(df.loc["img0.png", "missing"])
    assert df.loc["img0.png", "labels"] == ["cat"]


def test_query_tabs_and_filters(image_dir: Path):
    ds = jlabel.open(image_dir, user="alice")
    ds.label(["img0.png", "img1.png"], "cat")
    other = jlabel.open(image_dir, user="bob", sync=False)
    other.label(["img2.png"], "dog")
    ds.refresh()
    ds.internal.set_proposals(
        ["img5.png", "img6.png"],
        [["cat"], ["dog"]],
        [[0.6], [0.99]],
        hard=[True, False],
        hardness=[0.8, 0.1],
    )
    ds.internal.set_groups(["img7.png", "img8.png"], ["g1", "g2"])
    assert ds.counts() == {"all": 10, "unlabeled": 5, "labeled": 3, "to_confirm": 2}
    assert list(ds.query(tab="to_confirm")["id"]) == ["img6.png", "img5.png"]  # surest first
    assert list(ds.query(labels=["dog"])["id"]) == ["img2.png"]
    assert list(ds.query(labels=["dog", "cat"])["id"]) == ["img0.png", "img1.png", "img2.png"]
    assert list(ds.query(hard=True)["id"]) == ["img5.png"]
    assert len(ds.query(hard=False)) == 9
    assert list(ds.query(labeled_by="bob")["id"]) == ["img2.png"]
    assert list(ds.query(group="g2")["id"]) == ["img8.png"]
    assert list(ds.query(name="IMG1")["id"]) == ["img1.png"]
    assert len(ds.query(created="day")) == 10
    assert len(ds.query(created="month")) == 10
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    assert len(ds.query(created=(future, None))) == 0
    assert len(ds.query(created=(None, future.isoformat()))) == 10
    assert list(ds.query(tab="labeled", labels="cat", name="1")["id"]) == ["img1.png"]
    page = ds.query(offset=2, limit=3)
    assert list(page["id"]) == ["img2.png", "img3.png", "img4.png"]
    assert sorted(ds.users()) == ["alice", "bob"] and ds.groups() == ["g1", "g2"]
    with pytest.raises(JLabelError, match="tab"):
        ds.query(tab="done")
    with pytest.raises(JLabelError, match="created"):
        ds.query(created="yesterday")


def test_to_pandas_columns_and_types(image_dir: Path):
    ds = jlabel.open(image_dir)
    ds.label("img0.png", "cat")
    df = ds.to_pandas()
    for col in (
        "id",
        "labels",
        "source",
        "labeled_by",
        "labeled_at",
        "created_at",
        "hard",
        "hardness",
        "group",
        "proposed_labels",
        "proposed_scores",
        "width",
        "height",
    ):
        assert col in df.columns
    row = df.iloc[0]
    assert isinstance(row["labels"], list) and row["labels"] == ["cat"]
    assert pd.isna(row["width"])  # sync does not decode images
    assert str(df["created_at"].dt.tz) == "UTC"
    assert np.isnan(row["hardness"])
    ds.internal.record_image_info(["img0.png"], [24], [24], [False])
    assert ds.to_pandas().iloc[0]["width"] == 24


def test_proposals_confirm_reject_and_edit(image_dir: Path):
    ds = jlabel.open(image_dir, user="carol")
    ds.internal.set_proposals(
        [f"img{i}.png" for i in range(4)],
        [["cat"], ["dog"], ["cat"], ["dog"]],
        [[0.9], [0.8], [0.7], [0.6]],
    )
    assert ds.count(tab="unlabeled") == 6 and ds.count(tab="to_confirm") == 4
    ds.set_proposal("img1.png", "cat")
    assert ds.confirm(["img0.png", "img1.png"]) == 2
    ds.reject(["img2.png"])
    df = ds.to_pandas().set_index("id")
    assert df.loc["img1.png", "labels"] == ["cat"] and df.loc["img1.png", "source"] == "auto"
    assert df.loc["img1.png", "labeled_by"] == "carol"
    assert df.loc["img2.png", "proposed_labels"] == [] and df.loc["img2.png", "labels"] == []
    assert ds.confirm() == 1
    assert ds.counts()["to_confirm"] == 0 and ds.counts()["labeled"] == 3


def test_a_checked_random_sample_of_proposals_estimates_their_precision(image_dir: Path):
    ds = jlabel.open(image_dir)
    assert ds.sample_check() is None
    with pytest.raises(JLabelError, match="no proposals to check"):
        ds.sample_proposals()
    ids = [f"img{i}.png" for i in range(8)]
    ds.internal.set_proposals(ids, [["cat"]] * 8, [[0.9]] * 8)
    sample = ds.sample_proposals(4, seed=1)
    assert len(set(sample)) == 4 and set(sample) <= set(ids)
    assert ds.sample_proposals(4, seed=1) == sample  # a seed repeats the draw
    assert list(ds.query(tab="to_confirm", ids=sample)["id"]) == sorted(sample)
    assert ds.count(tab="to_confirm", ids=[*sample, "no-such.png"]) == 4
    check = ds.sample_check()
    assert (check["size"], check["reviewed"], check["pending"]) == (4, 0, 4)
    assert check["estimated_precision"] is None
    a, b, c, d = sample
    ds.confirm([a])  # right as proposed
    ds.set_proposal(b, "dog")  # edited, then confirmed: the proposal was wrong
    ds.confirm([b])
    ds.reject([c])  # wrong
    check = jlabel.open(image_dir).sample_check()  # kept with the dataset
    assert (check["reviewed"], check["right"], check["pending"]) == (3, 1, 1)
    assert check["estimated_precision"] == pytest.approx(2 / 5)
    ds.internal.set_proposals([d], [["dog"]], [[0.8]])  # a new job re-proposes a sampled image
    assert ds.sample_check() is None  # answers about old proposals would not count
    other = jlabel.open(image_dir, sync=False)  # another kernel draws a sample
    assert other.sample_proposals(1) and ds.sample_check() is None
    ds.refresh()
    assert ds.sample_check()["size"] == 1
    (e,) = ds.sample_proposals(1)
    ds.delete_images([e])
    assert ds.sample_check()["size"] == 0
    with pytest.raises(JLabelError, match="at least 1"):
        ds.sample_proposals(0)


def test_versions_create_list_use_never_lose_working_state(image_dir: Path):
    ds = jlabel.open(image_dir)
    ds.label(["img0.png"], "cat")
    meta = ds.create_version(description="one cat")
    assert meta["name"] == "v1" and meta["labeled"] == 1
    ds.label(["img1.png", "img2.png"], "dog")
    ds.create_version("two-dogs")
    with pytest.raises(VersionError):
        ds.create_version("two-dogs")
    with pytest.raises(VersionError):
        ds.create_version("../x")
    ds.label(["img3.png"], "bird")  # working state not in any version yet
    ds.use_version("v1")
    assert ds.label_counts().get("dog", 0) == 0 and ds.counts()["labeled"] == 1
    versions = ds.versions()
    assert list(versions["name"])[:2] == ["v1", "two-dogs"]
    assert versions.set_index("name").loc["v1", "current"]
    autosave = [n for n in versions["name"] if n.startswith("autosave-")]
    assert len(autosave) == 1
    ds.use_version(autosave[0])
    assert ds.counts()["labeled"] == 4 and ds.label_counts()["bird"] == 1
    reopened = jlabel.open(image_dir)
    assert reopened.counts()["labeled"] == 4
    with pytest.raises(NotFound):
        ds.use_version("v9")


def test_undo_survives_a_restart(image_dir: Path):
    ds = jlabel.open(image_dir)
    ds.label(["img0.png", "img1.png"], "cat")
    ds.rename_label("cat", "feline")
    ds.delete_images(["img5.png"])
    ds.close()
    again = jlabel.open(image_dir)
    assert again.undo() == "remove_samples"
    assert "img5.png" in set(again.to_pandas()["id"])
    assert again.undo() == "rename_label"
    assert again.labels == ["cat"] and again.label_counts() == {"cat": 2}
    assert again.undo() == "label"
    assert again.counts()["labeled"] == 0
    assert again.undo() is None
    third = jlabel.open(image_dir)
    assert third.counts()["labeled"] == 0 and len(third) == 10


def test_replace_label_is_one_operation_and_one_undo(image_dir: Path):
    ds = jlabel.open(image_dir)
    ds.label(["img0.png", "img1.png"], "cat")
    ds.label(["img2.png"], "dog")
    assert ds.replace_label(["img0.png", "img2.png"], "cat", "lynx") == 1
    labels = ds.to_pandas().set_index("id")["labels"]
    assert list(labels["img0.png"]) == ["lynx"] and list(labels["img2.png"]) == ["dog"]
    assert list(labels["img1.png"]) == ["cat"]
    assert ds.undo() == "replace_label"  # one Ctrl+Z puts the old label back, alone
    labels = ds.to_pandas().set_index("id")["labels"]
    assert list(labels["img0.png"]) == ["cat"]
    assert "lynx" not in ds.labels
    assert ds.label_impact("cat") == {"images": 2, "only": 2}


def test_undo_add_images_removes_the_uploaded_file(image_dir: Path):
    ds = jlabel.open(image_dir)
    [sid] = ds.add_images([("new.png", png_bytes())])
    assert ds.undo() == "add_samples_manual"
    assert sid not in set(ds.to_pandas()["id"]) and not (image_dir / sid).exists()
    assert ds.sync().added == []


def test_subscribers_hear_changes(image_dir: Path):
    ds = jlabel.open(image_dir)
    events: list[str] = []
    unsubscribe = ds.internal.subscribe(events.append)
    ds.label("img0.png", "cat")
    ds.undo()
    unsubscribe()
    ds.label("img0.png", "cat")
    assert events == ["change", "undo"]


def test_odd_file_names(tmp_path: Path):
    root = tmp_path / "odd"
    names = [
        "<img src=x onerror=alert(1)>.png",
        "spaces and #hash%.png",
        "ünïcødé.png",
        "a'b\".png",
    ]
    for i, name in enumerate(names):
        write_png(root / name, seed=i)
    ds = jlabel.open(root)
    assert sorted(ds.to_pandas()["id"]) == sorted(names)
    ds.label(names, "odd")
    assert jlabel.open(root).label_counts() == {"odd": 4}
    for name in names:
        assert ds.read_bytes(name)[:4] == b"\x89PNG"


def test_paths_outside_the_root_are_refused(image_dir: Path):
    ds = jlabel.open(image_dir)
    with pytest.raises(JLabelError):
        ds.read_bytes("../secret.png")
    with pytest.raises(JLabelError):
        ds.internal.source_path("/etc/passwd")
