"""Training batches for a detector learning from few boxes: copy-paste of labeled objects onto
other images, multi-scale crops, flips and photometric noise (weak and strong views)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from jlabel.autolabel.detect.data import PAD


@dataclass
class Augment:
    """How strongly training images are varied."""

    paste: float = 0.6
    """Chance an image gets 1-2 labeled objects pasted onto it (from other images)."""
    scale: tuple[float, float] = (0.6, 1.5)
    """Range of the random zoom (multi-scale training)."""
    flip: bool = True
    """Mirror images left-right at random (turn off for mirror-sensitive classes)."""
    color: float = 1.0
    """Strength of the brightness/contrast/colour/noise jitter (0: none)."""


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


class Batches:
    """Random augmented batches from letterboxed images ``[N, S, S, 3]`` and their boxes
    (input pixels) with class indices."""

    def __init__(
        self,
        images: np.ndarray,
        boxes: list[np.ndarray],
        labels: list[np.ndarray],
        aug: Augment,
        seed: int,
    ) -> None:
        self.images, self.boxes, self.labels, self.aug = images, boxes, labels, aug
        self.side = images.shape[1]
        self.rng = np.random.default_rng(seed)
        self.bank = [(i, j) for i, bx in enumerate(boxes) for j in range(len(bx))]

    def sample(self, n: int) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """``n`` strongly augmented training images with their boxes and labels."""
        idx = self.rng.integers(0, len(self.images), n)
        out, bxs, lbs = [], [], []
        for i in idx:
            img, bx, lb = self.images[i].copy(), self.boxes[i].copy(), self.labels[i].copy()
            if self.bank and self.rng.random() < self.aug.paste:
                img, bx, lb = self._paste(img, bx, lb, int(self.rng.integers(1, 3)))
            img, bx, lb = geometric(img, bx, lb, self.aug, self.rng)
            out.append(photometric(img, self.aug.color, self.rng))
            bxs.append(bx)
            lbs.append(lb)
        return np.stack(out), bxs, lbs

    def _paste(
        self, img: np.ndarray, bx: np.ndarray, lb: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Paste ``k`` objects of the bank (feathered edges) where they overlap no box."""
        s = self.side
        for _ in range(k):
            i, j = self.bank[int(self.rng.integers(len(self.bank)))]
            x0, y0, x1, y1 = self.boxes[i][j]
            m = 2
            cx0, cy0 = int(max(0, np.floor(x0) - m)), int(max(0, np.floor(y0) - m))
            cx1, cy1 = int(min(s, np.ceil(x1) + m)), int(min(s, np.ceil(y1) + m))
            if cx1 - cx0 < 3 or cy1 - cy0 < 3:
                continue
            r = float(np.exp(self.rng.uniform(np.log(0.75), np.log(1.33))))
            pw, ph = max(3, round((cx1 - cx0) * r)), max(3, round((cy1 - cy0) * r))
            if pw >= s or ph >= s:
                continue
            patch = Image.fromarray(self.images[i][cy0:cy1, cx0:cx1])
            patch = np.asarray(patch.resize((pw, ph), Image.Resampling.BILINEAR), np.float32)
            for _try in range(8):
                px, py = (
                    int(self.rng.integers(0, s - pw + 1)),
                    int(self.rng.integers(0, s - ph + 1)),
                )
                new = np.array(
                    [
                        [
                            px + (x0 - cx0) * r,
                            py + (y0 - cy0) * r,
                            px + (x1 - cx0) * r,
                            py + (y1 - cy0) * r,
                        ]
                    ],
                    np.float32,
                )
                if len(bx) == 0 or _box_iou(new, bx).max() == 0:
                    break
            else:
                continue
            alpha = _feather(pw, ph, max(1, round(m * r)))
            region = img[py : py + ph, px : px + pw].astype(np.float32)
            img[py : py + ph, px : px + pw] = (alpha * patch + (1 - alpha) * region).astype(
                np.uint8
            )
            bx = np.concatenate([bx, new]) if len(bx) else new
            lb = np.concatenate([lb, self.labels[i][j : j + 1]])
        return img, bx, lb


def _feather(w: int, h: int, margin: int) -> np.ndarray:
    ramp_x = np.clip(np.minimum(np.arange(w) + 0.5, w - np.arange(w) - 0.5) / margin, 0, 1)
    ramp_y = np.clip(np.minimum(np.arange(h) + 0.5, h - np.arange(h) - 0.5) / margin, 0, 1)
    return (ramp_y[:, None] * ramp_x[None, :])[..., None]


def geometric(
    img: np.ndarray, bx: np.ndarray, lb: np.ndarray, aug: Augment, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random zoom, then a crop (or pad) back to the side keeping the boxes inside where it
    can, then a flip; boxes cut to less than 60% of their area are dropped."""
    s = img.shape[0]
    z = float(np.exp(rng.uniform(np.log(aug.scale[0]), np.log(aug.scale[1]))))
    n = max(8, round(s * z))
    z = n / s
    big = np.asarray(Image.fromarray(img).resize((n, n), Image.Resampling.BILINEAR))
    bx = bx * z
    out = np.full((s, s, 3), PAD, np.uint8)
    if n >= s:  # crop window [ox, ox + s) of the zoomed image
        lo_x, hi_x, lo_y, hi_y = 0, n - s, 0, n - s
        if len(bx):
            lo_x, hi_x = max(lo_x, int(np.ceil(bx[:, 2].max())) - s), min(hi_x, int(bx[:, 0].min()))
            lo_y, hi_y = max(lo_y, int(np.ceil(bx[:, 3].max())) - s), min(hi_y, int(bx[:, 1].min()))
            if lo_x > hi_x:
                lo_x, hi_x = 0, n - s
            if lo_y > hi_y:
                lo_y, hi_y = 0, n - s
        ox, oy = int(rng.integers(lo_x, hi_x + 1)), int(rng.integers(lo_y, hi_y + 1))
        out[:] = big[oy : oy + s, ox : ox + s]
        shift = np.array([-ox, -oy, -ox, -oy], np.float32)
    else:  # paste the zoomed image at a random place
        ox, oy = int(rng.integers(0, s - n + 1)), int(rng.integers(0, s - n + 1))
        out[oy : oy + n, ox : ox + n] = big
        shift = np.array([ox, oy, ox, oy], np.float32)
    if len(bx):
        moved = bx + shift
        clipped = np.clip(moved, 0, s)
        area = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
        kept = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
        ok = kept >= 0.6 * np.maximum(area, 1e-9)
        bx, lb = clipped[ok], lb[ok]
    if aug.flip and rng.random() < 0.5:
        out = out[:, ::-1].copy()
        if len(bx):
            bx = np.stack([s - bx[:, 2], bx[:, 1], s - bx[:, 0], bx[:, 3]], axis=1)
    return out, bx.astype(np.float32), lb


def photometric(img: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast, per-channel gain, sometimes grey, Gaussian noise."""
    if strength <= 0:
        return img
    x = img.astype(np.float32)
    mean = x.mean()
    x = (x - mean) * rng.uniform(1 - 0.4 * strength, 1 + 0.4 * strength) + mean
    x = x * rng.uniform(1 - 0.2 * strength, 1 + 0.2 * strength, size=3)
    x = x + rng.uniform(-30, 30) * strength
    if rng.random() < 0.2 * strength:
        x = np.repeat(x.mean(axis=2, keepdims=True), 3, axis=2)
    x = x + rng.normal(0, rng.uniform(0, 8 * strength), size=x.shape)
    return np.clip(x, 0, 255).astype(np.uint8)


def cutout(
    img: np.ndarray, rng: np.random.Generator, holes: int = 2, frac: float = 0.15
) -> np.ndarray:
    """Grey squares at random places (part of the strong view of semi-supervision)."""
    out = img.copy()
    s = img.shape[0]
    k = max(2, round(s * frac))
    for _ in range(holes):
        x, y = int(rng.integers(0, s - k + 1)), int(rng.integers(0, s - k + 1))
        out[y : y + k, x : x + k] = PAD
    return out
