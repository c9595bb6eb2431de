"""The sample data behind `make demo` and the tutorials: scikit-learn digits as PNG files."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from jlabel.demo import TRUTH_FILE, main, read_truth, write_digits


def test_writes_valid_pngs_of_the_requested_size(tmp_path):
    truth = write_digits(tmp_path, size=48, limit=12)
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == [f"digit-{i:04d}.png" for i in range(12)]
    for name in pngs:
        data = (tmp_path / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        with Image.open(tmp_path / name) as im:
            im.load()
            assert im.format == "PNG"
            assert im.size == (48, 48)
            assert im.mode == "L"
    assert list(truth["id"]) == pngs


def test_truth_matches_scikit_learn_and_the_pixels(tmp_path):
    truth = write_digits(tmp_path, limit=30)
    digits = load_digits()
    assert list(truth.columns) == ["id", "digit"]
    assert truth["digit"].tolist() == digits.target[:30].tolist()
    assert read_truth(tmp_path).equals(truth)
    # The image really is that digit: downscaled back to 8x8 it matches the source pixels.
    with Image.open(tmp_path / "digit-0007.png") as im:
        small = np.asarray(im.resize((8, 8), Image.Resampling.BOX), dtype=float)
    ink = 1.0 - small / 255.0
    corr = np.corrcoef(ink.ravel(), digits.images[7].ravel())[0, 1]
    assert corr > 0.9


def test_second_call_does_not_rewrite(tmp_path):
    write_digits(tmp_path, limit=5)
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    (tmp_path / "digit-0002.png").write_bytes(b"user changed this")
    truth = write_digits(tmp_path, limit=5)
    after = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert (tmp_path / "digit-0002.png").read_bytes() == b"user changed this"
    assert {k: v for k, v in after.items() if k != "digit-0002.png"} == {
        k: v for k, v in before.items() if k != "digit-0002.png"
    }
    assert len(truth) == 5
    assert not list(tmp_path.glob("*.tmp"))


def test_all_digits_by_default(tmp_path):
    truth = write_digits(tmp_path, size=8)
    assert len(truth) == 1797
    assert len(list(tmp_path.glob("digit-*.png"))) == 1797
    assert sorted(truth["digit"].unique().tolist()) == list(range(10))


@pytest.mark.parametrize(("kwargs", "message"), [({"size": 4}, "size"), ({"limit": -1}, "limit")])
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        write_digits(tmp_path, **kwargs)


def test_cli_writes_only_into_a_folder_without_images(tmp_path, capsys):
    target = tmp_path / "data"
    assert main([str(target), "--limit", "3", "--size", "16"]) == 0
    assert "wrote 3 PNG files" in capsys.readouterr().out
    assert (target / TRUTH_FILE).exists()
    mtime = (target / "digit-0000.png").stat().st_mtime_ns
    assert main([str(target), "--limit", "10"]) == 0
    assert "already holds 3 images; nothing written" in capsys.readouterr().out
    assert len(list(target.glob("*.png"))) == 3
    assert (target / "digit-0000.png").stat().st_mtime_ns == mtime


def test_python_dash_m(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "jlabel.demo", str(tmp_path / "d"), "--limit", "2"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "wrote 2 PNG files" in result.stdout
    assert sorted(p.name for p in (tmp_path / "d").glob("*.png")) == [
        "digit-0000.png",
        "digit-0001.png",
    ]
