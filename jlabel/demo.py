"""Sample data for demos, tutorials and tests: scikit-learn's handwritten digits as PNG files.

`python -m jlabel.demo DIR` writes them into DIR unless it already holds images.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

TRUTH_FILE = "_truth.csv"
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


def digit_filename(index: int) -> str:
    """File name of digit number `index` (0-based, as in `load_digits()`)."""
    return f"digit-{index:04d}.png"


def write_digits(
    directory: str | os.PathLike[str], *, size: int = 64, limit: int | None = None
) -> pd.DataFrame:
    """Write scikit-learn's 1,797 digits as `size` x `size` grayscale PNGs into `directory`.

    Dark ink on white, upscaled from 8x8 with bicubic filtering so thumbnails are legible.
    Files are named ``digit-0000.png`` … (the `load_digits()` index); files that already
    exist are left untouched. The ground truth is written to ``<directory>/_truth.csv``
    (not an image: sync ignores it).

    Parameters
    ----------
    directory
        Folder to write into (created if missing).
    size
        Side of each image in pixels (8 or more).
    limit
        Write only the first `limit` digits (all when None).

    Returns
    -------
    pandas.DataFrame
        Columns ``id`` (file name, the sample id in a dataset rooted at `directory`) and
        ``digit`` (int, 0-9), one row per written or already present image.
    """
    from sklearn.datasets import load_digits  # heavy import, only needed here

    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    digits = load_digits()
    images = digits.images if limit is None else digits.images[:limit]
    targets = digits.target[: len(images)]
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for index, pixels in enumerate(images):
        path = out / digit_filename(index)
        if path.exists():
            continue
        ink = np.clip(pixels / 16.0, 0.0, 1.0)  # load_digits values are 0..16
        gray = Image.fromarray(np.round(255 * (1.0 - ink)).astype(np.uint8))
        tmp = path.with_name(path.name + ".tmp")
        gray.resize((size, size), Image.Resampling.BICUBIC).save(tmp, format="PNG")
        os.replace(tmp, path)  # a killed run never leaves a half-written PNG
    truth = pd.DataFrame(
        {
            "id": [digit_filename(i) for i in range(len(images))],
            "digit": targets.astype("int64"),
        }
    )
    text = truth.to_csv(index=False)
    truth_path = out / TRUTH_FILE
    if not truth_path.exists() or truth_path.read_text() != text:
        truth_path.write_text(text)
    return truth


def read_truth(directory: str | os.PathLike[str]) -> pd.DataFrame:
    """Read the ground truth `write_digits` wrote into `directory` (columns id, digit)."""
    return pd.read_csv(Path(directory) / TRUTH_FILE, dtype={"id": str, "digit": "int64"})


def count_images(directory: str | os.PathLike[str]) -> int:
    """Number of image files (PNG/JPG/JPEG/BMP) directly in `directory` (0 if it is missing)."""
    path = Path(directory)
    if not path.is_dir():
        return 0
    return sum(1 for p in path.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file())


def main(argv: list[str] | None = None) -> int:
    """Command line: write the digits into a folder unless it already holds images."""
    parser = argparse.ArgumentParser(
        prog="python -m jlabel.demo",
        description="Write scikit-learn's handwritten digits as PNG files (sample data).",
    )
    parser.add_argument("directory", help="folder to write into (created if missing)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (64)")
    parser.add_argument("--limit", type=int, default=None, help="write only the first N digits")
    args = parser.parse_args(argv)
    present = count_images(args.directory)
    if present:
        print(f"{args.directory}: already holds {present} images; nothing written.")
        return 0
    truth = write_digits(args.directory, size=args.size, limit=args.limit)
    print(
        f"{args.directory}: wrote {len(truth)} PNG files ({args.size}x{args.size}, "
        f"scikit-learn digits); ground truth in {Path(args.directory) / TRUTH_FILE}."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
