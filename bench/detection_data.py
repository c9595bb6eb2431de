"""Synthetic detection sets from pixels that ship in packages (for ``bench.detection``).

- ``digits``: scikit-learn's handwritten digits (8x8, upscaled to 12-28 px) scattered at random
  places over textured backgrounds, 1-3 per 64 px image; the digit instances of the labeled
  images and of the others are disjoint (no memorised instance to find again).
- ``shapes``: scikit-image's ``random_shapes`` (circle, rectangle, triangle; images with an
  ellipse are skipped, as near-round ellipses cannot be told from circles) in random
  colours, 1-3 per 64 px image, composited over textured backgrounds.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

Item = tuple[np.ndarray, np.ndarray, list[str]]
"""``(image [S, S, 3] uint8, boxes [N, 4] xmin ymin xmax ymax, labels)``."""


def background(rng: np.random.Generator, side: int) -> np.ndarray:
    """A textured background: a base colour, low-frequency blotches, stripes, fine noise."""
    base = rng.uniform(40, 215, 3)
    coarse = rng.normal(0, 1, (6, 6, 3)).astype(np.float32)
    blotch = np.asarray(
        Image.fromarray(((coarse + 3) * 40).clip(0, 255).astype(np.uint8)).resize(
            (side, side), Image.Resampling.BICUBIC
        ),
        np.float32,
    )
    img = base + (blotch - 120) * rng.uniform(0.2, 0.6)
    if rng.random() < 0.5:
        yy, xx = np.mgrid[0:side, 0:side]
        angle, period = rng.uniform(0, np.pi), rng.uniform(4, 14)
        stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
        img = img + stripes[..., None] * rng.uniform(5, 25)
    img = img + rng.normal(0, rng.uniform(2, 10), img.shape)
    return img.clip(0, 255).astype(np.float32)


def _place(rng: np.random.Generator, side: int, w: int, h: int, taken: list) -> tuple | None:
    for _ in range(30):
        x, y = int(rng.integers(0, side - w + 1)), int(rng.integers(0, side - h + 1))
        if all(
            x + w + 2 <= a or a2 + 2 <= x or y + h + 2 <= b or b2 + 2 <= y for a, b, a2, b2 in taken
        ):
            return x, y
    return None


def digits(
    n: int,
    *,
    side: int = 64,
    classes: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    labeled: int = 0,
    seed: int = 0,
) -> list[Item]:
    """``n`` images; the first ``labeled`` draw digit instances from one half of the source
    digits, the others from the other half."""
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    d = load_digits()
    pool = [np.flatnonzero(d.target == c) for c in classes]
    halves = [(p[::2], p[1::2]) for p in pool]
    out: list[Item] = []
    for i in range(n):
        img = background(rng, side)
        taken: list = []
        names: list[str] = []
        for _ in range(int(rng.integers(1, 4))):
            k = int(rng.integers(len(classes)))
            src = halves[k][0 if i < labeled else 1]
            digit = d.images[int(rng.choice(src))] / 16.0
            size = int(rng.integers(12, 29))
            mask = (
                np.asarray(
                    Image.fromarray((digit * 255).astype(np.uint8)).resize(
                        (size, size), Image.Resampling.BILINEAR
                    ),
                    np.float32,
                )
                / 255.0
            )
            ys, xs = np.nonzero(mask > 0.25)
            if len(xs) == 0:
                continue
            x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
            mask = mask[y0:y1, x0:x1]
            h, w = mask.shape
            spot = _place(rng, side, w, h, taken)
            if spot is None:
                continue
            x, y = spot
            region = img[y : y + h, x : x + w]
            lum = region.mean()
            ink = np.clip(lum + (-1 if lum > 128 else 1) * rng.uniform(70, 130), 0, 255)
            ink = ink + rng.normal(0, 20, 3)
            img[y : y + h, x : x + w] = region * (1 - mask[..., None]) + ink * mask[..., None]
            taken.append((x, y, x + w, y + h))
            names.append(str(classes[k]))
        out.append(
            (img.clip(0, 255).astype(np.uint8), np.array(taken, np.float32).reshape(-1, 4), names)
        )
    return out


def shapes(n: int, *, side: int = 64, seed: int = 0) -> list[Item]:
    """``n`` images of 1-3 non-overlapping random shapes over textured backgrounds."""
    from skimage.draw import random_shapes

    rng = np.random.default_rng(seed)
    out: list[Item] = []
    while len(out) < n:
        img, found = random_shapes(
            (side, side),
            max_shapes=3,
            min_shapes=1,
            min_size=12,
            max_size=28,
            allow_overlap=False,
            rng=int(rng.integers(1 << 31)),
            num_trials=200,
        )
        if not found or any(name == "ellipse" for name, _ in found):
            continue  # ellipses include near-circles: a label no one could tell
        painted = np.any(img != 255, axis=2)
        bg = background(rng, side)
        fg = img.astype(np.float32)
        comp = np.where(painted[..., None], fg, bg)
        boxes, names = [], []
        for name, ((r0, r1), (c0, c1)) in found:
            boxes.append((max(0, c0), max(0, r0), min(side, c1 + 1), min(side, r1 + 1)))
            names.append(name)
        out.append((comp.clip(0, 255).astype(np.uint8), np.array(boxes, np.float32), names))
    return out
