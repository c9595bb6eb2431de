"""Thumbnails of one page of 48 12-megapixel JPEGs, cold (empty cache) and warm.

`python -m bench.thumbnails`. The JPEGs (4000x3000, upscaled scikit-image photos plus noise,
about 5 MB each) are made once into `bench/output/jpeg12mp/`. Also prints the decode floor:
the summed time of a draft-mode decode of every image, divided by the number of cores. A cold
page is timed until `get_many` returns; the cache files it writes after that are flushed
before the next measurement.
"""

from __future__ import annotations

import io
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

from bench._util import OUTPUT, median_time, report
from jlabel.images import ThumbnailCache

COUNT = 48
WIDTH, HEIGHT = 4000, 3000
SIZE = 256
DATA = Path(skimage.data.__file__).parent
PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "retina.jpg",
    "motorcycle_left.png",
    "ihc.png",
    "hubble_deep_field.jpg",
)  # colour photos shipped inside scikit-image (no download)


def make_jpegs(folder: Path) -> list[Path]:
    """Write COUNT 4000x3000 JPEGs into `folder` (skipped when they already exist)."""
    paths = [folder / f"photo{i:02d}.jpg" for i in range(COUNT)]
    if all(p.exists() for p in paths):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 12, (HEIGHT, WIDTH, 3)).astype(np.int16)
    for i, path in enumerate(paths):
        photo = np.asarray(Image.open(DATA / PHOTOS[i % len(PHOTOS)]).convert("RGB"))
        h, w = photo.shape[:2]
        # a different crop of each photo, so no two files are alike
        ch, cw = int(h * rng.uniform(0.6, 1)), int(w * rng.uniform(0.6, 1))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        big = Image.fromarray(photo[y : y + ch, x : x + cw]).resize((WIDTH, HEIGHT))
        shift = int(rng.integers(0, HEIGHT))
        pixels = np.asarray(big, np.int16) + np.roll(noise, shift, axis=0)
        out = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        out.save(path, "JPEG", quality=90)
    return paths


def draft_decode(data: bytes) -> None:
    """The least work a thumbnail needs: a JPEG decode at reduced (draft) scale."""
    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (SIZE, SIZE))
        im.load()


def main() -> None:
    """Print cold and warm page times and the decode floor."""
    paths = make_jpegs(OUTPUT / "jpeg12mp")
    cores = os.cpu_count() or 1
    sizes = [p.stat().st_size for p in paths]
    report(f"{COUNT} JPEGs {WIDTH}x{HEIGHT}, mean size", statistics.mean(sizes) / 1e6, "MB")
    items = [("bench", p.name, "v1", p.read_bytes) for p in paths]

    blobs = [p.read_bytes() for p in paths]
    cache_root = OUTPUT / "thumbcache"
    shutil.rmtree(cache_root, ignore_errors=True)
    cache_root.mkdir(parents=True)
    colds, serials, warms, floors = [], [], [], []
    workers = 0
    for _ in range(3):  # rounds interleave the variants, so load changes hit all alike
        cache = ThumbnailCache(tempfile.mkdtemp(dir=cache_root))
        workers = cache.workers
        colds.append(_timed(lambda c=cache: c.get_many(items, SIZE)))
        cache.flush()  # cache files are written after get_many returns: not during the next
        warms.append(median_time(lambda c=cache: c.get_many(items, SIZE), repeat=5))
        cache.close()
        one = ThumbnailCache(tempfile.mkdtemp(dir=cache_root))
        serials.append(_timed(lambda c=one: c.get_many(items, SIZE, workers=1)))
        one.flush()
        floors.append(sum(_timed(lambda d=data: draft_decode(d)) for data in blobs))
    shutil.rmtree(cache_root, ignore_errors=True)
    cold, serial, warm, floor = map(statistics.median, (colds, serials, warms, floors))

    report(f"cold page of {COUNT} (workers={workers}, cores={cores})", cold * 1000, "ms")
    report("cold", COUNT / cold, "images/s")
    report("cold page, 1 worker", serial * 1000, "ms")
    report("warm page (cache hits)", warm * 1000, "ms")
    report("warm", COUNT / warm, "images/s")
    report("decode floor: sum of draft decodes / cores", floor / cores * 1000, "ms")
    report("one draft decode (mean)", floor / COUNT * 1000, "ms")
    report("cold / decode floor", cold / (floor / cores), "x")


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
