"""Exports never write onto what the dataset reads, and skip images they cannot decode,
saying which and why (issue 8, items 4 and 8)."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import jlabel
from jlabel.errors import JLabelError
from tests.conftest import write_png


@pytest.fixture
def ds(image_dir: Path) -> jlabel.Dataset:
    write_png(image_dir / "sub" / "b.png", seed=50)
    dataset = jlabel.open(image_dir)
    dataset.label(["img1.png", "img2.png", "sub/b.png"], "cat")
    return dataset


# -- item 4: never onto a source image, a label file or the store ------------------------------
@pytest.mark.parametrize(
    ("rel", "fmt"),
    [
        ("img1.png", "csv"),
        ("sub/b.png", "coco"),
        ("new.jpg", "csv"),  # an image name the next sync would add
        ("img1.txt", "csv"),  # img1.png's label file
        ("sub/b.xml", "coco"),
        ("classes.txt", "csv"),
        (".jlabel/labels.csv", "csv"),
    ],
)
def test_file_exports_never_overwrite_what_the_dataset_reads(ds, rel, fmt):
    root = Path(ds.root)
    target = root / rel
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"keep me")
    before = target.read_bytes()
    for overwrite in (False, True):
        with pytest.raises(JLabelError, match=r"cannot export (to|into)"):
            ds.export(target, format=fmt, overwrite=overwrite)
    assert target.read_bytes() == before


def test_a_file_export_through_a_link_onto_a_source_is_refused(ds, tmp_path):
    link = tmp_path / "labels.csv"
    link.symlink_to(Path(ds.root) / "img1.png")
    before = (Path(ds.root) / "img1.png").read_bytes()
    with pytest.raises(JLabelError, match="source image"):
        ds.export(link, format="csv", overwrite=True)
    assert (Path(ds.root) / "img1.png").read_bytes() == before


def test_other_files_inside_the_root_are_still_fine(ds):
    out = ds.export(Path(ds.root) / "labels.csv", format="csv")
    assert Path(out).read_text().startswith("id,labels")
    assert out.skipped == {}


# -- item 8: undecodable images are skipped with a reason --------------------------------------
def _huge_png(path: Path) -> None:
    """A real 20,000 x 20,000 PNG (1-bit, so it is small to write): 400 megapixels."""
    Image.new("1", (20_000, 20_000)).save(path, optimize=False)


def test_an_image_above_the_pixel_limit_is_skipped_by_csv_and_coco(ds, tmp_path):
    _huge_png(Path(ds.root) / "huge.png")
    ds.sync()
    ds.label(["huge.png"], "cat")
    for fmt, name in (("csv", "l.csv"), ("coco", "c.json")):
        with pytest.warns(UserWarning, match="huge.png.*megapixels"):
            out = ds.export(tmp_path / name, format=fmt)
        assert "megapixels" in out.skipped["huge.png"]
        assert list(out.skipped) == ["huge.png"]
    assert "huge.png" not in (tmp_path / "l.csv").read_text()
    coco = json.loads((tmp_path / "c.json").read_text())
    assert {im["file_name"] for im in coco["images"]} == {"img1.png", "img2.png", "sub/b.png"}


def _jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["imagefolder", "voc"])
def test_folder_exports_skip_undecodable_images_and_say_why(ds, tmp_path, fmt):
    root = Path(ds.root)
    png = (root / "img3.png").read_bytes()
    (root / "cut.png").write_bytes(png[: len(png) // 2])  # truncated PNG
    (root / "cut.jpg").write_bytes(_jpeg(1)[:-600])  # truncated JPEG: no end marker
    (root / "text.png").write_bytes(b"hello, not an image")
    _huge_png(root / "huge.png")
    bad = ["cut.png", "cut.jpg", "text.png", "huge.png"]
    ds.sync()
    ds.label(bad, "cat")
    with pytest.warns(UserWarning, match="skipped 4 of 7"):
        out = ds.export(tmp_path / fmt, format=fmt)
    assert set(out.skipped) == set(bad)
    assert "not a JPEG, PNG or BMP" in out.skipped["text.png"]
    assert "megapixels" in out.skipped["huge.png"]
    assert "truncated" in out.skipped["cut.png"]
    copied = {p.name for p in (tmp_path / fmt).rglob("*") if p.suffix in (".png", ".jpg")}
    assert copied == {"img1.png", "img2.png", "b.png"}


def test_a_jpeg_with_a_trailer_after_its_end_marker_is_still_exported(ds, tmp_path):
    (Path(ds.root) / "trailer.jpg").write_bytes(_jpeg(2) + b"\0" * 100_000)
    ds.sync()
    ds.label(["trailer.jpg"], "cat")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = ds.export(tmp_path / "out", format="imagefolder")
    assert out.skipped == {} and (tmp_path / "out" / "cat" / "trailer.jpg").is_file()


def test_to_torch_skips_flagged_images_and_survives_undecodable_ones(ds):
    torch = pytest.importorskip("torch")
    root = Path(ds.root)
    (root / "flagged.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (root / "later.png").write_bytes((root / "img4.png").read_bytes())
    ds.sync()
    ds.label(["flagged.png", "later.png"], "cat")
    ds.internal.record_image_info(["flagged.png"], [None], [None], [True])
    with pytest.warns(UserWarning, match="flagged.png"):
        view = ds.to_torch(image_size=24)
    assert "flagged.png" not in view.ids and "corrupt" in view.skipped["flagged.png"]
    (root / "later.png").write_bytes(b"\x89PNG\r\n\x1a\n broken since")  # goes bad after
    with pytest.warns(UserWarning, match="skipping 'later.png'"):
        batches = list(torch.utils.data.DataLoader(view, batch_size=2))
    assert sum(len(b[0]) for b in batches) == len(view.ids) == 4
    with pytest.raises(IndexError):
        view[len(view)]
