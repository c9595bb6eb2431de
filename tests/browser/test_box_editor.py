"""The box editor in a real JupyterLab: every edit made with the mouse or a key is what the
kernel's `ds.boxes(id)` holds, in original-image pixels, also after zooming; proposed boxes
are accepted, edited, dropped and confirmed from the editor; thumbnails draw their boxes."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from browser.harness import NotebookPage
from browser.test_widget_browser import open_widget, save

W, H = 1200, 800  # the originals; the editor shows a smaller display copy


def make_photos(root: Path, name: str, n: int = 3) -> str:
    """`n` JPEGs of W x H (smooth colour fields, so the screenshots read as photos)."""
    folder = root / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    for i in range(n):
        r = 128 + 100 * np.sin(xx / (90 + 20 * i))
        g = 128 + 100 * np.cos(yy / (70 + 15 * i))
        b = 128 + 90 * np.sin((xx + yy) / 150)
        arr = np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / f"photo-{i}.jpg", quality=90)
    return name


def open_editor(nb: NotebookPage, index: int = 0, sample: str | None = None) -> str:
    """Click thumbnail `index` (or of `sample`); wait until the editor drew its image; return
    the sample id."""
    root = nb.page.locator(".jl-root")
    cell = (
        root.locator(f".jl-cell[data-id='{sample}']")
        if sample
        else root.locator(".jl-cell").nth(index)
    )
    sample = cell.get_attribute("data-id")
    cell.locator(".jl-thumb").click()
    wait_drawn(nb, sample)
    return sample


def wait_drawn(nb: NotebookPage, sample: str) -> None:
    nb.page.wait_for_function(
        "(id) => { const e = document.querySelector('.jl-be');"
        " return e && e.dataset.drawn === id; }",
        arg=sample,
    )


def settle(nb: NotebookPage) -> None:
    """Wait until every edit the editor sent was acknowledged (then it shows the kernel's)."""
    nb.page.wait_for_function(
        "() => { const e = document.querySelector('.jl-be');"
        " return e && e.dataset.pending === '0' && !e.querySelector('.jl-be-pending'); }"
    )


def to_screen(nb: NotebookPage, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of original-image point (x, y) under the editor's current view."""
    return tuple(
        nb.page.evaluate(
            """([x, y]) => {
              const svg = document.querySelector('.jl-be-svg');
              const [vx, vy, vw] = svg.getAttribute('viewBox').split(' ').map(Number);
              const r = svg.getBoundingClientRect();
              const k = r.width / vw;
              return [r.left + (x - vx) * k, r.top + (y - vy) * k];
            }""",
            [x, y],
        )
    )


def to_image(nb: NotebookPage, sx: float, sy: float) -> tuple[float, float]:
    """Original-image point under page point (sx, sy)."""
    return tuple(
        nb.page.evaluate(
            """([sx, sy]) => {
              const svg = document.querySelector('.jl-be-svg');
              const [vx, vy, vw] = svg.getAttribute('viewBox').split(' ').map(Number);
              const r = svg.getBoundingClientRect();
              const k = r.width / vw;
              return [vx + (sx - r.left) / k, vy + (sy - r.top) / k];
            }""",
            [sx, sy],
        )
    )


def drag(nb: NotebookPage, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press at page point `start`, move in steps to `end`, release (whole CSS pixels)."""
    mouse = nb.page.mouse
    mouse.move(round(start[0]), round(start[1]))
    mouse.down()
    mouse.move(round(end[0]), round(end[1]), steps=6)
    mouse.up()


def drag_image(nb: NotebookPage, a: tuple[float, float], b: tuple[float, float]) -> tuple:
    """Drag between two image points; returns the image points really pressed and released."""
    sa, sb = to_screen(nb, *a), to_screen(nb, *b)
    sa, sb = (round(sa[0]), round(sa[1])), (round(sb[0]), round(sb[1]))
    pressed, released = to_image(nb, *sa), to_image(nb, *sb)
    drag(nb, sa, sb)
    return pressed, released


def kernel_boxes(nb: NotebookPage, sample: str, kind: str = "boxes") -> list[dict]:
    out = nb.kernel_eval(
        f"print([{{k: b[k] for k in ('box_id', 'label', 'xmin', 'ymin', 'xmax', 'ymax')}}"
        f" for b in ds.{kind}({sample!r})])"
    )
    focus_widget(nb)
    return ast.literal_eval(out)


def screen_boxes(nb: NotebookPage) -> list[dict]:
    """What the editor draws: per box its id, label text and rectangle (image pixels)."""
    return nb.page.evaluate(
        """() => [...document.querySelectorAll('.jl-be-box')].map(g => {
             const r = g.querySelector('rect');
             const n = (a) => Number(r.getAttribute(a));
             return {box_id: g.dataset.boxId, label: g.dataset.label,
                     xmin: n('x'), ymin: n('y'), xmax: n('x') + n('width'),
                     ymax: n('y') + n('height'), proposed: g.classList.contains('jl-be-proposed')};
           })"""
    )


def agree(nb: NotebookPage, sample: str) -> list[dict]:
    """The kernel's boxes of `sample` are exactly the ones on screen; returns them."""
    settle(nb)
    kernel = kernel_boxes(nb, sample)
    shown = [{k: v for k, v in b.items() if k != "proposed"} for b in screen_boxes(nb)]
    key = lambda b: b["box_id"]  # noqa: E731
    assert sorted(shown, key=key) == sorted(kernel, key=key)
    focus_widget(nb)
    return kernel


def focus_widget(nb: NotebookPage) -> None:
    """Give the keyboard back to the widget (running a cell focused the notebook), as a click
    into it would."""
    nb.page.evaluate("() => document.querySelector('.jl-root').focus({preventScroll: true})")
    stage = nb.page.locator(".jl-be-stage")
    if stage.count():
        stage.scroll_into_view_if_needed()


def near(box: dict, expected: tuple[float, float, float, float], tol: float = 1.0) -> bool:
    got = (box["xmin"], box["ymin"], box["xmax"], box["ymax"])
    return all(abs(g - e) <= tol for g, e in zip(got, expected, strict=True))


def test_draw_resize_move_relabel_delete_undo_and_zoom_agree_with_the_kernel(
    open_notebook, lab_server
):
    folder = make_photos(lab_server.root_dir, "ds-boxes")
    nb = open_widget(open_notebook, folder, "ds.add_labels('cat', 'dog')")
    sample = open_editor(nb)
    editor = nb.page.locator(".jl-be")
    assert (editor.get_attribute("data-width"), editor.get_attribute("data-height")) == (
        str(W),
        str(H),
    )
    # the display copy is smaller than the original; coordinates are still original pixels
    natural = nb.page.evaluate("() => document.querySelector('.jl-be-img').naturalWidth")
    assert natural < W

    # draw: a drag with the current label (the first one, cat)
    a, b = drag_image(nb, (200, 150), (500, 420))
    (box,) = agree(nb, sample)
    assert box["label"] == "cat" and near(box, (a[0], a[1], b[0], b[1]))
    box_id = box["box_id"]
    assert editor.get_attribute("data-selected") == box_id  # a new box is selected

    # resize by the bottom-right handle
    handle = nb.page.locator(".jl-be-h-se").bounding_box()
    start = (handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    end = to_screen(nb, 650, 600)
    end = (round(end[0]), round(end[1]))
    target = to_image(nb, *end)
    drag(nb, start, end)
    (box,) = agree(nb, sample)
    assert near(box, (a[0], a[1], target[0], target[1]))
    size = (box["xmax"] - box["xmin"], box["ymax"] - box["ymin"])

    # move: drag inside; the size is kept exactly
    before = box
    p, q = drag_image(nb, (400, 300), (480, 250))
    (box,) = agree(nb, sample)
    assert (box["xmax"] - box["xmin"], box["ymax"] - box["ymin"]) == size
    assert abs(box["xmin"] - before["xmin"] - (q[0] - p[0])) <= 1
    assert abs(box["ymin"] - before["ymin"] - (q[1] - p[1])) <= 1

    # arrow keys nudge (a burst is one edit); a digit sets the label
    nb.page.keyboard.press("ArrowRight")
    nb.page.keyboard.press("Shift+ArrowDown")
    (nudged,) = agree(nb, sample)
    assert (nudged["xmin"], nudged["ymin"]) == (box["xmin"] + 1, box["ymin"] + 10)
    nb.page.keyboard.press("2")
    (box,) = agree(nb, sample)
    assert box["label"] == "dog" and box["box_id"] == box_id
    assert nb.page.locator(".jl-be-box .jl-be-text").text_content() == "dog"

    # Tab cycles (one box: stays selected); Delete deletes; Ctrl+Z brings it back
    nb.page.keyboard.press("Tab")
    assert editor.get_attribute("data-selected") == box_id
    nb.page.keyboard.press("Delete")
    assert agree(nb, sample) == []
    nb.page.keyboard.press("Control+z")
    (back,) = agree(nb, sample)
    assert back == box
    # keys stay in the widget: in command mode JupyterLab would insert cells for A and B
    cells = len(nb.cells_state())
    for key in ("b", "a", "Tab", "b", "a"):
        nb.page.keyboard.press(key)
    assert editor.get_attribute("data-mode") == "boxes"  # B toggled twice
    assert len(nb.cells_state()) == cells

    # zoom in around a point with the wheel, then draw: coordinates are still right
    k0 = nb.page.evaluate("() => document.querySelector('.jl-be').dataset.k || ''")
    cx, cy = to_screen(nb, 900, 650)
    nb.page.mouse.move(round(cx), round(cy))
    anchor = to_image(nb, round(cx), round(cy))
    nb.page.mouse.wheel(0, -800)
    nb.page.wait_for_function(
        "(k) => (document.querySelector('.jl-be').dataset.k || '') !== k", arg=k0
    )
    # the point under the cursor stayed where it was
    again = to_image(nb, round(cx), round(cy))
    assert abs(again[0] - anchor[0]) < 1 and abs(again[1] - anchor[1]) < 1
    zoom = float(editor.get_attribute("data-k"))
    assert zoom > 1.5  # more than one screen pixel per original pixel now
    nb.page.keyboard.press("Escape")  # a box is selected (Tab): Esc unselects it
    assert editor.get_attribute("data-selected") == ""
    nb.page.keyboard.press("1")  # the label for the next box: cat
    a, b = drag_image(nb, (860, 620), (940, 690))
    boxes = agree(nb, sample)
    assert len(boxes) == 2
    new = next(x for x in boxes if x["box_id"] != box_id)
    assert near(new, (a[0], a[1], b[0], b[1]), tol=0.5)
    assert new["label"] == "cat"
    save(nb, "box-editor-zoomed")
    nb.page.keyboard.press("f")
    nb.page.wait_for_function("(k) => document.querySelector('.jl-be').dataset.k === k", arg=k0)

    # the grid's thumbnail draws the image's boxes
    nb.page.keyboard.press("Escape")
    nb.page.keyboard.press("Escape")
    nb.page.locator(".jl-preview").wait_for(state="detached")
    thumb = nb.page.locator(f".jl-cell[data-id='{sample}'] .jl-ovl path")
    thumb.first.wait_for()
    assert nb.page.locator(f".jl-cell[data-id='{sample}'] .jl-badge-boxes").inner_text() == "▭ 2"


def test_proposed_boxes_accept_edit_drop_add_and_confirm(open_notebook, lab_server):
    folder = make_photos(lab_server.root_dir, "ds-proposed", 2)
    setup = (
        "ds.add_labels('cat', 'dog')\n"
        "B = lambda label, x0, y0, x1, y1, score: dict(label=label, xmin=x0, ymin=y0, xmax=x1,"
        " ymax=y1, score=score)\n"
        "props = [B('cat', 100, 100, 400, 380, 0.91), B('dog', 600, 200, 900, 500, 0.72),"
        " B('cat', 300, 550, 520, 760, 0.35)]\n"
        "ds.internal.set_proposals(['photo-0.jpg', 'photo-1.jpg'], [[], []], [[], []],"
        " boxes=[props, props[:1]])"
    )
    nb = open_widget(open_notebook, folder, setup)
    root = nb.page.locator(".jl-root")
    root.locator(".jl-tab[data-tab=to_confirm]").click()
    nb.page.wait_for_function("() => document.querySelectorAll('.jl-root .jl-cell').length === 2")
    # thumbnails: proposed boxes dashed, with scores
    cell = root.locator(".jl-cell[data-id='photo-0.jpg']")
    cell.locator(".jl-ovl .jl-ovl-proposed").first.wait_for()
    assert cell.locator(".jl-ovl-score").all_text_contents() == ["91%", "72%", "35%"]
    save(nb, "box-thumbnails-to-confirm")

    order = nb.page.evaluate(
        "() => [...document.querySelectorAll('.jl-root .jl-cell')].map(c => c.dataset.id)"
    )
    sample = open_editor(nb, sample="photo-0.jpg")
    shown = screen_boxes(nb)
    assert len(shown) == 3 and all(b["proposed"] for b in shown)
    texts = nb.page.locator(".jl-be-text").all_text_contents()
    assert sorted(texts) == ["cat 35%", "cat 91%", "dog 72%"]
    save(nb, "box-editor-proposed")
    first, second, third = (
        next(b["box_id"] for b in shown if b["xmin"] == x) for x in (100, 600, 300)
    )

    # accept the first (click it, A)
    nb.page.mouse.click(*[round(v) for v in to_screen(nb, 250, 240)])
    assert nb.page.locator(".jl-be").get_attribute("data-selected") == first
    nb.page.keyboard.press("a")
    # edit the second: move it; it becomes a confirmed box
    drag_image(nb, (750, 350), (780, 330))
    # drop the third
    nb.page.mouse.click(*[round(v) for v in to_screen(nb, 410, 650)])
    assert nb.page.locator(".jl-be").get_attribute("data-selected") == third
    nb.page.keyboard.press("Delete")
    nb.page.keyboard.press("Escape")
    # add a missed one
    nb.page.keyboard.press("2")
    drag_image(nb, (950, 600), (1150, 780))
    settle(nb)
    boxes = {b["box_id"]: b for b in agree(nb, sample)}
    assert set(boxes) >= {first, second} and len(boxes) == 3
    assert kernel_boxes(nb, sample, "proposed_boxes") == []
    assert boxes[second]["xmin"] != 600  # moved
    added = next(b for k, b in boxes.items() if k not in (first, second))
    assert added["label"] == "dog"
    sources = nb.kernel_eval("print(sorted(b['source'] for b in ds.boxes('photo-0.jpg')))")
    assert sources == "['auto', 'manual', 'manual']"
    focus_widget(nb)

    # confirm the other image from the editor: it leaves To Be Confirmed
    # photo-0 left the tab (nothing proposed is left); ] / [ still reach its neighbour
    nb.page.keyboard.press("]" if order.index("photo-1.jpg") > order.index("photo-0.jpg") else "[")
    wait_drawn(nb, "photo-1.jpg")
    nb.page.locator("[data-action=confirm-image]").click()
    nb.page.wait_for_function(
        "() => document.querySelector('.jl-root .jl-tab[data-tab=to_confirm] .jl-count')"
        ".textContent === '0'"
    )
    assert [b["label"] for b in kernel_boxes(nb, "photo-1.jpg")] == ["cat"]
    assert nb.kernel_eval("print(ds.count(tab='to_confirm'))") == "0"
    nb.page.locator(".jl-preview").wait_for(state="detached")  # nothing left to review


def test_screenshots_at_two_widths(open_notebook, lab_server):
    folder = make_photos(lab_server.root_dir, "ds-shots", 6)
    setup = (
        "ds.add_labels('cat', 'dog', 'bird')\n"
        "import random\n"
        "rng = random.Random(1)\n"
        "for i in range(5):\n"
        "    bs = []\n"
        "    for j in range(3 + 40 * (i == 0)):\n"
        "        x, y = rng.uniform(0, 1000), rng.uniform(0, 650)\n"
        "        bs.append({'label': ['cat', 'dog', 'bird'][j % 3], 'xmin': x, 'ymin': y,"
        " 'xmax': x + rng.uniform(30, 200), 'ymax': y + rng.uniform(30, 150)})\n"
        "    ds.add_boxes(f'photo-{i}.jpg', bs)\n"
        "ds.internal.set_proposals(['photo-5.jpg'], [[]], [[]], boxes=[[{'label': 'dog',"
        " 'xmin': 500, 'ymin': 300, 'xmax': 800, 'ymax': 600, 'score': 0.66}]])"
    )
    nb = open_widget(open_notebook, folder, setup)
    nb.page.set_viewport_size({"width": 1150, "height": 950})
    nb.page.wait_for_function("() => document.querySelector('.jl-root').clientWidth < 1000")
    width = nb.page.evaluate("() => document.querySelector('.jl-root').clientWidth")
    assert 900 < width < 1000, width
    save(nb, "box-grid-970")
    open_editor(nb, 0)
    nb.page.mouse.click(*[round(v) for v in to_screen(nb, 5, 5)])  # deselect
    nb.page.keyboard.press("Tab")
    save(nb, "box-editor-970")
    nb.page.keyboard.press("Escape")
    nb.page.keyboard.press("Escape")
    nb.page.set_viewport_size({"width": 1580, "height": 1100})
    nb.page.wait_for_function("() => document.querySelector('.jl-root').clientWidth > 1350")
    save(nb, "box-grid-1400")
    open_editor(nb, 5)
    texts = nb.page.locator(".jl-be-proposed .jl-be-text").all_text_contents()
    assert texts == ["dog 66%"]
    save(nb, "box-editor-1400")
