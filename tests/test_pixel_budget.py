"""The process-wide decode budget: decodes take turns when their pixels do not fit at once
(issue 8, item 6: a page of huge PNGs must not hold every one of them decoded)."""

from __future__ import annotations

import threading
import time

import numpy as np
from PIL import Image

from jlabel import images
from jlabel.pixel_budget import PixelBudget, pixel_cost


def test_pixel_cost_weighs_wide_modes():
    assert pixel_cost(10, 10, "RGB") == 100
    assert pixel_cost(10, 10, "RGBA") == 200
    assert pixel_cost(10, 10, "I;16") == 400
    assert pixel_cost(0, 0, "RGB") == 1


def _run_holders(budget: PixelBudget, needs: list[int], hold_s: float = 0.05) -> list[int]:
    """Start one thread per need; return the largest total held at any moment."""
    peak = [0]
    lock = threading.Lock()

    def work(need: int) -> None:
        with budget.hold(need):
            with lock:
                peak[0] = max(peak[0], budget.used)
            time.sleep(hold_s)

    threads = [threading.Thread(target=work, args=(n,)) for n in needs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads), "a holder never got its turn"
    return peak[0]


def test_holders_never_exceed_the_budget_together():
    budget = PixelBudget(limit=100)
    peak = _run_holders(budget, [40] * 6)
    assert peak <= 100
    assert peak == 80  # two fit at once, a third waits
    assert budget.used == 0


def test_one_image_larger_than_the_budget_still_decodes_alone():
    budget = PixelBudget(limit=100)
    peak = _run_holders(budget, [500, 10, 10])
    assert peak == 100  # held as the whole budget, nothing beside it
    assert budget.used == 0


def test_a_large_request_is_not_starved_by_a_stream_of_small_ones():
    budget = PixelBudget(limit=100)
    order: list[str] = []
    small_held = threading.Event()

    def small(k: int) -> None:
        with budget.hold(30):
            small_held.set()
            order.append(f"s{k}")
            time.sleep(0.05)

    def large() -> None:
        with budget.hold(100):
            order.append("L")

    first = threading.Thread(target=small, args=(0,))
    first.start()
    small_held.wait(5)
    big = threading.Thread(target=large)
    big.start()
    deadline = time.monotonic() + 5
    while not budget._queue:  # the large request is queued before the next small ones
        assert time.monotonic() < deadline
        time.sleep(0.001)
    rest = [threading.Thread(target=small, args=(k,)) for k in (1, 2)]
    for t in rest:
        t.start()
    for t in [first, big, *rest]:
        t.join(10)
    assert order[:2] == ["s0", "L"]


def test_decodes_hold_their_pixels_in_the_shared_budget(monkeypatch):
    budget = PixelBudget(limit=10_000)
    monkeypatch.setattr(images, "DECODE_BUDGET", budget)
    seen: list[int] = []
    opened = images.OpenedImage.decode

    def spy(self):
        seen.append(budget.used)
        return opened(self)

    monkeypatch.setattr(images.OpenedImage, "decode", spy)
    import io

    buf = io.BytesIO()
    Image.fromarray(np.zeros((50, 60, 3), np.uint8)).save(buf, format="PNG")
    rgb, w, h = images.decode_rgb(buf.getvalue())
    assert (w, h) == (60, 50) and rgb.mode == "RGB"
    assert seen == [3000]
    assert budget.used == 0
