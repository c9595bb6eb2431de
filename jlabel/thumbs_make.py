"""Make one thumbnail: decode at the smallest JPEG scale that covers it, resample, encode."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from functools import lru_cache

from PIL import Image, ImageDraw

from jlabel.errors import ImageRejected
from jlabel.images import open_image
from jlabel.pixel_budget import DECODE_BUDGET

THUMB_QUALITY = 80
"""JPEG quality of thumbnails (baseline, no `optimize`: it costs 3x the encode for ~5% bytes)."""

THUMB_RESAMPLE = Image.Resampling.HAMMING
"""Filter of the last resize step when it shrinks by `SHORT_STEP` or more (typically ~2x after
a reduced-scale JPEG decode): there it is 0.3 dB PSNR from bicubic (against a Lanczos resize
of the full image, after JPEG encoding) at 60% of the cost."""
SHORT_STEP = 1.4
"""Shorter steps use bicubic: it costs little there, and Hamming loses 0.6-0.9 dB."""


@dataclass(frozen=True)
class Thumb:
    """A thumbnail as JPEG bytes, plus what is known about the original image.

    `orig_width`/`orig_height` are the original size after EXIF rotation (None when the
    image could not be decoded). `corrupt` is true when the bytes are not a decodable image;
    `missing` is true when the file could not be found; other read failures (S3 unreachable)
    set only `error`. In all three cases `data` is a placeholder tile and `error` says what
    happened (`corrupt: ...`, `missing: ...`, `unreadable: ...`).
    """

    data: bytes = field(repr=False)
    width: int
    height: int
    orig_width: int | None
    orig_height: int | None
    corrupt: bool = False
    missing: bool = False
    error: str | None = None

    @property
    def jpeg(self) -> bytes:
        """Alias of `data` (the JPEG bytes)."""
        return self.data

    @property
    def ok(self) -> bool:
        """True for a real thumbnail (not a placeholder)."""
        return self.error is None


def fit_size(width: int, height: int, size: int) -> tuple[int, int]:
    """The size of a `width` x `height` image shrunk to fit `size` x `size` (never enlarged),
    rounded as Pillow's `Image.thumbnail` rounds it."""
    if width <= size and height <= size:
        return width, height
    aspect = width / height
    if aspect <= 1:
        h = size
        w = _round_aspect(h * aspect, lambda n: abs(aspect - n / h))
    else:
        w = size
        h = _round_aspect(w / aspect, lambda n: 0 if n == 0 else abs(aspect - w / n))
    return min(w, width), min(h, height)


def _round_aspect(number: float, key) -> int:
    return max(min(math.floor(number), math.ceil(number), key=key), 1)


def draft_box(width: int, height: int, size: int) -> tuple[int, int]:
    """The box a JPEG of this (upright) size is draft-decoded to for a `size` thumbnail.

    The `size` x `size` square, unless a box twice the thumbnail (Pillow's own reducing gap)
    allows a smaller DCT scale (long panoramas): never a larger decode than the square, and
    never less than 2x margin where the square is not used, so the resize that follows still
    has pixels to average (a 1/8 decode just above the target loses ~3 dB).
    """
    tw, th = fit_size(width, height, size)
    square, gap = (size, size), (2 * tw, 2 * th)
    return max(square, gap, key=lambda box: min(width // box[0], height // box[1]))


def make_thumbnail(data: bytes, size: int = 256) -> Thumb:
    """A JPEG thumbnail fitting in a `size` by `size` square; never raises for bad image data.

    JPEGs are decoded at a reduced DCT scale (1/2, 1/4, 1/8; see `draft_box`), then resized
    with `THUMB_RESAMPLE` (other formats are first reduced by an integer factor). Corrupt,
    truncated or empty data gives a placeholder tile with `corrupt=True`. Truncated JPEGs
    count as corrupt: jlabel never sets Pillow's global `LOAD_TRUNCATED_IMAGES`. The decode and
    resize hold the decoded pixels in `DECODE_BUDGET`, so a page of huge images takes turns.
    """
    try:
        opened = open_image(data, lambda w, h: draft_box(w, h, size))
        with DECODE_BUDGET.hold(opened.cost):  # the full-size pixels live until the resize
            im = opened.decode()
            orig_w, orig_h = opened.width, opened.height
            target = fit_size(orig_w, orig_h, size)
            if im.size != target:
                long_step = im.width >= SHORT_STEP * target[0]
                filt = THUMB_RESAMPLE if long_step else Image.Resampling.BICUBIC
                im = im.resize(target, filt, reducing_gap=2.0)
    except ImageRejected as exc:
        return placeholder(size, corrupt=True, error=f"corrupt: {exc}")
    return Thumb(encode_jpeg(im), im.width, im.height, orig_w, orig_h)


def encode_jpeg(im: Image.Image, quality: int = THUMB_QUALITY) -> bytes:
    """`im` as baseline JPEG bytes."""
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def placeholder(size: int, *, corrupt: bool = False, missing: bool = False, error: str) -> Thumb:
    """A grey placeholder tile with a broken-image mark (corrupt) or a cross (missing)."""
    return Thumb(_placeholder_jpeg(size, missing), size, size, None, None, corrupt, missing, error)


@lru_cache(maxsize=16)
def _placeholder_jpeg(size: int, missing: bool) -> bytes:
    im = Image.new("RGB", (size, size), (200, 200, 200))
    draw = ImageDraw.Draw(im)
    s = size / 8
    width = max(1, round(size / 64))
    ink = (110, 110, 110)
    draw.rectangle([2 * s, 2 * s, 6 * s, 6 * s], outline=ink, width=width)
    if missing:
        draw.line([2 * s, 2 * s, 6 * s, 6 * s], fill=ink, width=width)
        draw.line([2 * s, 6 * s, 6 * s, 2 * s], fill=ink, width=width)
    else:  # torn picture: a mountain and a jagged tear across it
        draw.line(
            [2 * s, 5.5 * s, 3.3 * s, 4 * s, 4.2 * s, 5 * s, 6 * s, 3.5 * s], fill=ink, width=width
        )
        tear = [(1.8 * s, 4.4 * s), (3 * s, 3.6 * s), (3.8 * s, 4.5 * s), (4.8 * s, 3.4 * s)]
        draw.line([*tear, (6.2 * s, 4.2 * s)], fill=(200, 200, 200), width=max(3, size // 20))
        draw.ellipse([4.8 * s, 2.4 * s, 5.4 * s, 3.0 * s], outline=ink, width=width)
    return encode_jpeg(im)
