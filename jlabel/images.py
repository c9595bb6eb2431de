"""Decode images: validate uploads, open as 8-bit RGB.

Thumbnails live in `jlabel.thumbs_make` (one thumbnail) and `jlabel.thumbs_cache` (the on-disk
cache); their names are also importable from here.
"""

from __future__ import annotations

import contextlib
import importlib
import io
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from jlabel.errors import ImageRejected
from jlabel.files import IMAGE_EXTENSIONS
from jlabel.pixel_budget import DECODE_BUDGET, pixel_cost

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
"""Default size limit of one uploaded image."""

MAX_PIXELS = 100_000_000
"""Images with more pixels than this are refused (decompression-bomb guard)."""

_MB = 1024 * 1024

_MAGIC = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"BM", "bmp"),
)
_OTHER_MAGIC = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "PDF"),
)
_EXT_FORMAT = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".bmp": "bmp"}
_DRAFTABLE = ("JPEG", "MPO")  # MPO: multi-picture JPEGs from cameras
_TRANSPOSED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def sniff_format(data: bytes) -> str | None:
    """`"jpeg"`, `"png"` or `"bmp"` from the magic bytes at the start of `data`, else None."""
    for magic, fmt in _MAGIC:
        if data.startswith(magic):
            return fmt if fmt != "bmp" or len(data) >= 26 else None
    return None


def describe_bytes(data: bytes) -> str:
    """What the first bytes of a file that is not a JPEG, PNG or BMP look like, in words."""
    for magic, name in _OTHER_MAGIC:
        if data.startswith(magic):
            return f"a {name} file"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "a WebP file"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "a HEIC/AVIF file"
    return "not a JPEG, PNG or BMP image"


def validate_upload(name: str, data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES) -> str:
    """Check an uploaded image; return its format (`jpeg`/`png`/`bmp`) or raise `ImageRejected`.

    Refuses, with a message saying what to do: a name without a JPG/JPEG/PNG/BMP extension,
    empty data, data above `max_bytes`, bytes of another format than the extension says (a GIF
    renamed `.png`), and images Pillow cannot decode (corrupt or truncated) or that are
    larger than `MAX_PIXELS`.
    """
    dot = name.rfind(".")
    ext = name[dot:].lower() if dot >= 0 else ""
    if ext not in IMAGE_EXTENSIONS:
        raise ImageRejected(
            f"{name!r} is not an image jlabel accepts: the name must end with "
            f"{', '.join(IMAGE_EXTENSIONS)}; convert the image to JPEG or PNG"
        )
    if not data:
        raise ImageRejected(f"{name!r} is empty (0 bytes); choose the image file again")
    if len(data) > max_bytes:
        raise ImageRejected(
            f"{name!r} is {len(data) / _MB:.1f} MB, above the limit of {max_bytes / _MB:.1f} MB "
            "per image; resize or recompress it, or raise the limit"
        )
    fmt = sniff_format(data)
    expected = _EXT_FORMAT[ext]
    if fmt is None:
        raise ImageRejected(
            f"{name!r} is {describe_bytes(data)}, not a {expected.upper()} image despite its name; "
            "convert it to JPEG or PNG"
        )
    if fmt != expected:
        good = ".jpg" if fmt == "jpeg" else f".{fmt}"
        raise ImageRejected(
            f"{name!r} holds {fmt.upper()} data, not {expected.upper()}; rename it to end "
            f"with {good}"
        )
    try:
        with Image.open(io.BytesIO(data)) as im:
            _check_pixels(im)
            im.verify()
        with Image.open(io.BytesIO(data)) as im:  # verify() misses truncated pixel data
            if im.format in _DRAFTABLE:
                im.draft("RGB", (64, 64))
            im.load()
    except ImageRejected as exc:
        raise ImageRejected(f"{name!r}: {exc}") from None
    except Exception as exc:
        raise ImageRejected(
            f"{name!r} cannot be decoded as {fmt.upper()} ({_reason(exc)}); the file is "
            "corrupt or truncated: export it again"
        ) from None
    return fmt


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _too_large(exc: Exception) -> ImageRejected:
    """Pillow's decompression-bomb error (its header says too many pixels), in jlabel's words."""
    return ImageRejected(
        f"image is above the limit of {MAX_PIXELS / 1e6:.0f} megapixels ({exc}); downscale it"
    )


def _check_pixels(im: Image.Image) -> None:
    w, h = im.size
    if w * h > MAX_PIXELS:
        raise ImageRejected(
            f"image is {w}×{h} ({w * h / 1e6:.0f} megapixels), above the limit of "
            f"{MAX_PIXELS / 1e6:.0f} megapixels; downscale it"
        )


def check_image(data: bytes, *, decode: bool = False) -> tuple[int, int]:
    """The (width, height) of an image, as displayed (EXIF rotation applied), checked cheaply.

    Checks the magic bytes (JPEG, PNG or BMP), the header, the `MAX_PIXELS` limit, a PNG's
    chunk checksums (which also catch truncation) and a JPEG's end marker; a JPEG without one
    (truncated?), a BMP, or any image with ``decode=True`` is also decoded (JPEGs at reduced
    scale). Raises `ImageRejected` saying what is wrong, never Pillow's own errors.
    """
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageRejected(f"{describe_bytes(data)}" if data else "empty file")
    try:
        with Image.open(io.BytesIO(data), formats=[fmt.upper()]) as im:
            _check_pixels(im)
            width, height = im.size
            try:
                orientation = im.getexif().get(0x0112, 1)
            except Exception:  # a broken EXIF block only loses the rotation
                orientation = 1
        if fmt == "png":
            with Image.open(io.BytesIO(data), formats=["PNG"]) as im:
                im.verify()  # must come right after open
    except ImageRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise _too_large(exc) from None
    except Exception as exc:  # Pillow raises many types for broken headers and chunks
        reason = _reason(exc)
        raise ImageRejected(f"{fmt.upper()} data is corrupt or truncated ({reason})") from None
    if decode or fmt == "bmp" or (fmt == "jpeg" and b"\xff\xd9" not in data[-_JPEG_TAIL:]):
        decode_rgb(data, 64)
    return (height, width) if orientation in _TRANSPOSED else (width, height)


_JPEG_TAIL = 64 * 1024  # where a JPEG's end marker is looked for (trailers follow some)


DraftSize = int | Callable[[int, int], tuple[int, int]] | None
"""A JPEG draft target: a square side, or a function of the upright size giving the box."""


def decode_rgb(data: bytes, draft: DraftSize = None) -> tuple[Image.Image, int, int]:
    """Decode to 8-bit RGB, EXIF orientation applied; return the image and its full upright size.

    With `draft`, JPEGs are decoded at the smallest DCT scale that still covers the box
    (`draft` x `draft`, or `draft(width, height)` of the upright original). Raises
    `ImageRejected` for undecodable data or more than `MAX_PIXELS` pixels. The decode holds
    its pixels in `DECODE_BUDGET` (waiting while other threads hold too many).
    """
    opened = open_image(data, draft)
    with DECODE_BUDGET.hold(opened.cost):
        return opened.decode(), opened.width, opened.height


class OpenedImage:
    """An image whose header is read (and JPEG draft scale chosen), not yet decoded."""

    def __init__(self, im: Image.Image, width: int, height: int, orientation: int) -> None:
        self._im = im
        self.width, self.height = width, height
        """The full upright size of the original."""
        self.orientation = orientation
        self.cost = pixel_cost(*im.size, im.mode)
        """Pixels the decode holds (see `jlabel.pixel_budget`)."""

    def decode(self) -> Image.Image:
        """The 8-bit RGB image, EXIF orientation applied (hold `cost` in the budget around
        this and what is done with the result). Raises `ImageRejected` for bad pixel data."""
        im = self._im
        try:
            im.load()
            if self.orientation != 1:
                with contextlib.suppress(Exception):  # a broken EXIF block only loses rotation
                    im = ImageOps.exif_transpose(im)
            return _to_rgb8(im)
        except Exception as exc:  # Pillow raises many types for bad pixel data
            raise ImageRejected(f"image data is corrupt or truncated ({_reason(exc)})") from None


def open_image(data: bytes, draft: DraftSize = None) -> OpenedImage:
    """Read the header (format, size, EXIF orientation) and set the JPEG draft scale; raises
    `ImageRejected` for data that is not a decodable image or more than `MAX_PIXELS`."""
    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise _too_large(exc) from None
    except UnidentifiedImageError:
        what = f"{describe_bytes(data)}, or corrupt" if data else "empty file"
        raise ImageRejected(what) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageRejected(f"not a decodable image ({_reason(exc)})") from None
    try:
        _check_pixels(im)
        orig_w, orig_h = im.size
        try:
            orientation = im.getexif().get(0x0112, 1)
        except Exception:  # a broken EXIF block only loses the rotation
            orientation = 1
        turned = orientation in _TRANSPOSED
        if turned:
            orig_w, orig_h = orig_h, orig_w
        if im.format in _DRAFTABLE:
            if draft:
                box = (draft, draft) if isinstance(draft, int) else draft(orig_w, orig_h)
                im.draft("RGB", box[::-1] if turned else box)  # draft works on stored pixels
            # one decode call for the whole file, not one per 64 KiB: the GIL is released
            # once, so decoding threads do not queue for it behind other Python threads
            im.decodermaxblock = max(im.decodermaxblock, len(data))
        return OpenedImage(im, orig_w, orig_h, orientation)
    except ImageRejected:
        raise
    except Exception as exc:  # Pillow raises many types for bad headers
        raise ImageRejected(f"image data is corrupt or truncated ({_reason(exc)})") from None


def open_rgb(data: bytes, *, draft_size: int | None = None) -> Image.Image:
    """Decode image bytes to an 8-bit RGB Pillow image, EXIF orientation applied.

    With `draft_size`, JPEGs are decoded at a reduced scale that is still at least
    `draft_size` on each side (much faster). Transparent images are composited on white;
    palette, CMYK, 1-bit, grayscale and 16/32-bit images are converted (16-bit scaled to
    8-bit, not clipped). Raises `ImageRejected` for undecodable data or more than
    `MAX_PIXELS` pixels.
    """
    return decode_rgb(data, draft_size)[0]


def _to_rgb8(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB") and "transparency" in im.info
    ):
        rgba = im.convert("RGBA")
        out = Image.new("RGB", im.size, (255, 255, 255))
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out
    if mode.startswith("I;16") or mode in ("I", "F"):
        return Image.fromarray(_scale_to_uint8(np.asarray(im), mode)).convert("RGB")
    return im.convert("RGB")


def _scale_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    """Map 16-bit, 32-bit integer or float pixels to 0..255 without clipping."""
    a = arr.astype(np.float64)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if mode.startswith("I;16") or (mode == "I" and lo >= 0 and hi <= 65535):
        scaled = a / 257.0  # full 16-bit range onto 0..255
    elif mode == "F" and lo >= 0 and hi <= 1:
        scaled = a * 255.0
    else:
        scaled = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


_MOVED = {
    "Thumb": "jlabel.thumbs_make",
    "THUMB_QUALITY": "jlabel.thumbs_make",
    "make_thumbnail": "jlabel.thumbs_make",
    "placeholder": "jlabel.thumbs_make",
    "ThumbnailCache": "jlabel.thumbs_cache",
    "default_cache_dir": "jlabel.thumbs_cache",
}


def __getattr__(name: str) -> Any:
    """The thumbnail names, from the modules that now hold them (imported on first use)."""
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
