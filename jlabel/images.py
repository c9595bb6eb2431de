"""Decode images: validate uploads, open as 8-bit RGB, thumbnails and their on-disk cache."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import struct
import tempfile
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from jlabel.errors import ImageRejected, NotFound
from jlabel.files import IMAGE_EXTENSIONS

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
"""Default size limit of one uploaded image."""

MAX_PIXELS = 100_000_000
"""Images with more pixels than this are refused (decompression-bomb guard)."""

THUMB_QUALITY = 80
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


def sniff_format(data: bytes) -> str | None:
    """`"jpeg"`, `"png"` or `"bmp"` from the magic bytes at the start of `data`, else None."""
    for magic, fmt in _MAGIC:
        if data.startswith(magic):
            return fmt if fmt != "bmp" or len(data) >= 26 else None
    return None


def _describe(data: bytes) -> str:
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
            f"{name!r} is {_describe(data)}, not a {expected.upper()} image despite its name; "
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


def _check_pixels(im: Image.Image) -> None:
    w, h = im.size
    if w * h > MAX_PIXELS:
        raise ImageRejected(
            f"image is {w}×{h} ({w * h / 1e6:.0f} megapixels), above the limit of "
            f"{MAX_PIXELS / 1e6:.0f} megapixels; downscale it"
        )


def _decode(data: bytes, draft_size: int | None) -> tuple[Image.Image, int, int]:
    """Decode to 8-bit RGB; return the image and the original size after EXIF rotation."""
    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageRejected(f"image is too large to decode safely ({exc}); downscale it") from None
    except UnidentifiedImageError:
        raise ImageRejected(f"{_describe(data)}, or corrupt" if data else "empty file") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageRejected(f"not a decodable image ({_reason(exc)})") from None
    try:
        _check_pixels(im)
        orig_w, orig_h = im.size
        try:
            orientation = im.getexif().get(0x0112, 1)
        except Exception:  # a broken EXIF block only loses the rotation
            orientation = 1
        if orientation in _TRANSPOSED:
            orig_w, orig_h = orig_h, orig_w
        if draft_size and im.format in _DRAFTABLE:
            im.draft("RGB", (draft_size, draft_size))
        im.load()
        if orientation != 1:
            with contextlib.suppress(Exception):  # a broken EXIF block only loses the rotation
                im = ImageOps.exif_transpose(im)
        return _to_rgb8(im), orig_w, orig_h
    except ImageRejected:
        raise
    except Exception as exc:  # Pillow raises many types for bad pixel data
        raise ImageRejected(f"image data is corrupt or truncated ({_reason(exc)})") from None


def open_rgb(data: bytes, *, draft_size: int | None = None) -> Image.Image:
    """Decode image bytes to an 8-bit RGB Pillow image, EXIF orientation applied.

    With `draft_size`, JPEGs are decoded at a reduced scale that is still at least
    `draft_size` on each side (much faster). Transparent images are composited on white;
    palette, CMYK, 1-bit, grayscale and 16/32-bit images are converted (16-bit scaled to
    8-bit, not clipped). Raises `ImageRejected` for undecodable data or more than
    `MAX_PIXELS` pixels.
    """
    return _decode(data, draft_size)[0]


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


def make_thumbnail(data: bytes, size: int = 256) -> Thumb:
    """A JPEG thumbnail fitting in a `size` by `size` square; never raises for bad image data.

    Corrupt, truncated or empty data gives a placeholder tile with `corrupt=True`. Truncated
    JPEGs count as corrupt: jlabel never sets Pillow's global `LOAD_TRUNCATED_IMAGES`.
    """
    try:
        im, orig_w, orig_h = _decode(data, draft_size=size)
    except ImageRejected as exc:
        return placeholder(size, corrupt=True, error=f"corrupt: {exc}")
    im.thumbnail((size, size), Image.Resampling.BICUBIC)  # box-reduces big PNGs first
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=THUMB_QUALITY)
    return Thumb(buf.getvalue(), im.width, im.height, orig_w, orig_h)


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
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=THUMB_QUALITY)
    return buf.getvalue()


def default_cache_dir() -> str:
    """`$JLABEL_CACHE_DIR/thumbs`, else `$XDG_CACHE_HOME/jlabel/thumbs`, else `~/.cache/...`."""
    if os.environ.get("JLABEL_CACHE_DIR"):
        return os.path.join(os.environ["JLABEL_CACHE_DIR"], "thumbs")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jlabel", "thumbs")


ReadBytes = Callable[[], bytes]
CacheItem = tuple[str, str, str, ReadBytes]
"""`(ds_key, sample_id, file_version, read_bytes)` for `ThumbnailCache.get_many`."""

# cached file: header, UTF-8 error text, JPEG bytes
_HEADER = struct.Struct("<4sIIHHBH")  # magic, orig w, orig h, w, h, flags, error length
_MAGIC_V1 = b"JLT1"
_CORRUPT = 1
_MISSING_ERRORS = (FileNotFoundError, NotFound)


class ThumbnailCache:
    """Thumbnails cached as files in a local folder, keyed by (dataset, id, file version, size).

    A changed file gets a new `file_version` and so a new entry; an unchanged one is never
    decoded again (corrupt ones included). Writes are atomic (temp file + `os.replace`), a
    damaged entry is recomputed, and when the folder grows beyond `max_bytes` the oldest
    entries are removed. Files that cannot be read (`read_bytes` raised) give a placeholder
    with `missing=True` (file not found) or only `error` set, and are not cached.
    """

    def __init__(
        self,
        directory: str | os.PathLike | None = None,
        *,
        max_bytes: int = 2 * 1024**3,
        workers: int | None = None,
    ) -> None:
        self.directory = os.fspath(directory) if directory is not None else default_cache_dir()
        self.max_bytes = max_bytes
        self.workers = workers or min(8, (os.cpu_count() or 1) + 2)
        self._written = 0
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def path_for(self, ds_key: str, sample_id: str, file_version: str, size: int) -> str:
        """The cache file of one thumbnail (which may not exist yet)."""
        key = "\x1f".join((str(ds_key), str(sample_id), str(file_version), str(size)))
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        return os.path.join(self.directory, digest[:2], digest[2:] + ".thumb")

    def get(
        self,
        ds_key: str,
        sample_id: str,
        file_version: str,
        read_bytes: ReadBytes,
        size: int = 256,
    ) -> Thumb:
        """The cached thumbnail, or compute it from `read_bytes()` and store it. Never raises
        for bad or unreadable image files."""
        if callable(size) and not callable(read_bytes):  # tolerate (…, size, read_bytes)
            read_bytes, size = size, read_bytes
        path = self.path_for(ds_key, sample_id, file_version, size)
        return self._load(path) or self._compute(path, read_bytes, size)

    def get_many(
        self, items: Iterable[CacheItem], size: int = 256, *, workers: int | None = None
    ) -> list[Thumb]:
        """Thumbnails for `(ds_key, sample_id, file_version, read_bytes)` items, in order.

        Hits are read directly; misses are decoded in a thread pool (Pillow releases the GIL
        while decoding, and reads from S3 overlap): the cache's own pool of `self.workers`
        threads, or a pool for this call when `workers` differs.
        """
        out: list[Thumb | None] = []
        misses: list[tuple[int, str, ReadBytes]] = []
        for ds_key, sample_id, file_version, read_bytes in items:
            path = self.path_for(ds_key, sample_id, file_version, size)
            thumb = self._load(path)
            if thumb is None:
                misses.append((len(out), path, read_bytes))
            out.append(thumb)
        if len(misses) == 1:
            i, path, read_bytes = misses[0]
            out[i] = self._compute(path, read_bytes, size)
        elif misses and workers is not None and workers != self.workers:
            with ThreadPoolExecutor(workers, thread_name_prefix="jlabel-thumb") as pool:
                self._run(pool, misses, size, out)
        elif misses:
            self._run(self._executor(), misses, size, out)
        return out  # type: ignore[return-value]  # every slot is filled above

    def prune(self, max_bytes: int | None = None) -> int:
        """Delete the oldest entries until the cache holds at most 80% of `max_bytes`;
        return the number of bytes removed."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        entries = []
        try:
            for sub in os.scandir(self.directory):
                if sub.is_dir(follow_symlinks=False):
                    for entry in os.scandir(sub.path):
                        st = entry.stat(follow_symlinks=False)
                        entries.append((st.st_mtime, st.st_size, entry.path))
        except OSError:
            return 0
        total = sum(e[1] for e in entries)
        removed = 0
        if total <= limit:
            return 0
        for _, nbytes, path in sorted(entries):
            if total - removed <= 0.8 * limit:
                break
            with contextlib.suppress(OSError):
                os.remove(path)
                removed += nbytes
        return removed

    def close(self) -> None:
        """Stop the worker threads (the cache stays usable; a new pool starts on demand)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _run(self, pool: ThreadPoolExecutor, misses: list, size: int, out: list) -> None:
        futures = [(i, pool.submit(self._compute, p, rb, size)) for i, p, rb in misses]
        for i, future in futures:
            out[i] = future.result()

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="jlabel-thumb")
            return self._pool

    def _load(self, path: str) -> Thumb | None:
        try:
            with open(path, "rb") as f:
                blob = f.read()
        except OSError:
            return None
        n = _HEADER.size
        if len(blob) < n:
            return None
        magic, ow, oh, w, h, flags, elen = _HEADER.unpack_from(blob)
        jpeg = blob[n + elen :]
        if magic != _MAGIC_V1 or not jpeg.endswith(b"\xff\xd9"):
            return None  # damaged or foreign file: recompute
        error = blob[n : n + elen].decode("utf-8", "replace") if elen else None
        return Thumb(jpeg, w, h, ow or None, oh or None, bool(flags & _CORRUPT), False, error)

    def _compute(self, path: str, read_bytes: ReadBytes, size: int) -> Thumb:
        try:
            data = read_bytes()
        except _MISSING_ERRORS as exc:
            return placeholder(size, missing=True, error=f"missing: {_reason(exc)}")
        except Exception as exc:  # e.g. S3 unreachable: show it, try again next time
            return placeholder(size, error=f"unreadable: {_reason(exc)}")
        thumb = make_thumbnail(data, size)
        self._store(path, thumb)
        return thumb

    def _store(self, path: str, thumb: Thumb) -> None:
        error = (thumb.error or "").encode("utf-8", "replace")[:4000]
        header = _HEADER.pack(
            _MAGIC_V1,
            thumb.orig_width or 0,
            thumb.orig_height or 0,
            thumb.width,
            thumb.height,
            _CORRUPT if thumb.corrupt else 0,
            len(error),
        )
        folder = os.path.dirname(path)
        try:
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(header + error + thumb.data)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.remove(tmp)
                raise
        except OSError:  # the cache is an optimisation: a full or read-only disk is not fatal
            return
        with self._lock:
            self._written += len(header) + len(error) + len(thumb.data)
            due = self._written > max(self.max_bytes // 20, 1 << 20)
            if due:
                self._written = 0
        if due:
            self.prune()
