"""A process-wide bound on the pixels being decoded at once (memory, not CPU).

Decoding threads (a thumbnail page, a preview, auto-labeling) each hold the pixels they decode
until their result is small again. Twelve 10,000 x 10,000 PNGs decoded by twelve threads would
need 3.6 GB at once; under the budget they take turns, so a page's decode memory stays near
`PIXELS_IN_FLIGHT` x 3 bytes (plus one image, when a single one is larger than the budget).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

PIXELS_IN_FLIGHT = 120_000_000
"""Decoded pixels (weighted, see `pixel_cost`) all threads of the process may hold at once:
about 360 MB of RGB. One image larger than this still decodes, alone."""

_WEIGHT = {"I;16": 4, "I;16B": 4, "I;16L": 4, "I": 4, "F": 4, "RGBA": 2, "LA": 2, "PA": 2}


def pixel_cost(width: int, height: int, mode: str) -> int:
    """What decoding a `width` x `height` image of Pillow `mode` to 8-bit RGB holds, in RGB
    pixels: 16/32-bit modes go through a float64 array (x4), alpha through RGBA (x2)."""
    return max(1, width * height * _WEIGHT.get(mode, 1))


class PixelBudget:
    """A weighted semaphore, first come first served (a large image is not starved by a
    stream of small ones)."""

    def __init__(self, limit: int = PIXELS_IN_FLIGHT) -> None:
        self.limit = limit
        self._used = 0
        self._queue: deque[object] = deque()
        self._cond = threading.Condition()

    @property
    def used(self) -> int:
        """Pixels held now."""
        return self._used

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        """Wait until `pixels` (at most the whole budget) fit, hold them inside the block."""
        need = min(max(int(pixels), 1), self.limit)
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            try:
                self._cond.wait_for(
                    lambda: self._queue[0] is ticket and self._used + need <= self.limit
                )
            finally:
                self._queue.remove(ticket)
                self._cond.notify_all()
            self._used += need
        try:
            yield
        finally:
            with self._cond:
                self._used -= need
                self._cond.notify_all()


DECODE_BUDGET = PixelBudget()
"""The budget every decode in jlabel holds (`jlabel.images.decode_rgb`, thumbnails)."""
