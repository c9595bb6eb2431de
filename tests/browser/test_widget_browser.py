"""The labeling widget in a real JupyterLab: thumbnails, selection, keys, tabs, dialogs."""

from __future__ import annotations

import shutil
from pathlib import Path

from browser.harness import NotebookPage
from jlabel.demo import write_digits

HOSTILE = "<img src=x onerror=alert(1)>.png"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "output" / "screenshots"


def make_folder(root: Path, name: str, n: int = 30, *, hostile: bool = False) -> str:
    """Write `n` digit PNGs under `root/name` (plus a hostile file name); return `name`."""
    folder = root / name
    if folder.exists():
        shutil.rmtree(folder)
    write_digits(folder, limit=n)
    if hostile:
        shutil.copy(folder / "digit-0001.png", folder / HOSTILE)
    return name


def open_widget(open_notebook, folder: str, setup: str = "") -> NotebookPage:
    """Open a notebook that opens the dataset, runs `setup`, and shows the widget in cell 1."""
    nb = open_notebook(
        [f"import jlabel\nds = jlabel.open({folder!r})\n{setup}", "w = ds.labeler()\nw"]
    )
    nb.run_all()
    nb.wait_for_output(1, selector=".jl-root")
    wait_thumbnails(nb)
    return nb


def wait_thumbnails(nb: NotebookPage) -> None:
    """Wait until every thumbnail of the page has really decoded (naturalWidth > 0)."""
    nb.page.wait_for_function(
        """() => {
          const imgs = [...document.querySelectorAll('.jl-root .jl-img')];
          return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0);
        }""",
        timeout=60_000,
    )


def tab_counts(nb: NotebookPage) -> dict[str, int]:
    return nb.page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.jl-root .jl-tab')]
             .map(t => [t.dataset.tab, Number(t.querySelector('.jl-count').textContent)]))"""
    )


def cell_ids(nb: NotebookPage) -> list[str]:
    return nb.page.evaluate(
        "() => [...document.querySelectorAll('.jl-root .jl-cell')].map(c => c.dataset.id)"
    )


def save(nb: NotebookPage, name: str) -> None:
    nb.page.locator(".jl-root").first.scroll_into_view_if_needed()
    nb.screenshot(name, selector=".jl-root")


def test_thumbnails_decode_and_a_hostile_name_is_text(open_notebook, lab_server):
    folder = make_folder(lab_server.root_dir, "ds-grid", 30, hostile=True)
    dialogs: list[str] = []
    nb = open_widget(
        open_notebook,
        folder,
        "ds.add_labels('zero', 'one', 'two')\nds.label(['digit-0000.png'], 'zero')",
    )
    nb.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sizes = nb.page.evaluate(
        "() => [...document.querySelectorAll('.jl-root .jl-img')].map(i => i.naturalWidth)"
    )
    assert len(sizes) == 31 and min(sizes) > 0
    names = nb.page.locator(".jl-root .jl-name").all_inner_texts()
    assert HOSTILE in names
    assert nb.page.locator("img[src='x']").count() == 0
    assert dialogs == []
    assert tab_counts(nb) == {"all": 31, "unlabeled": 30, "labeled": 1, "to_confirm": 0}
    save(nb, "widget-grid")


def test_click_shift_click_and_a_number_key_label_three_images(open_notebook, lab_server):
    folder = make_folder(lab_server.root_dir, "ds-keys", 20)
    nb = open_widget(open_notebook, folder, "ds.add_labels('cat', 'dog')")
    root = nb.page.locator(".jl-root")
    boxes = root.locator(".jl-cell .jl-check")
    boxes.nth(2).click()
    boxes.nth(4).click(modifiers=["Shift"])
    nb.page.wait_for_function(
        "() => document.querySelector('.jl-root .jl-counter').textContent === '3 selected'"
    )
    nb.page.keyboard.press("2")  # the second label: dog
    nb.page.wait_for_function(
        "() => document.querySelector('.jl-root .jl-tab[data-tab=labeled] .jl-count')"
        ".textContent === '3'"
    )
    out = nb.kernel_eval(
        "f = ds.to_pandas().set_index('id')\n"
        "print([list(f.loc[i, 'labels']) for i in "
        "['digit-0002.png', 'digit-0003.png', 'digit-0004.png', 'digit-0005.png']])"
    )
    assert out == "[['dog'], ['dog'], ['dog'], []]"
    assert tab_counts(nb) == {"all": 20, "unlabeled": 17, "labeled": 3, "to_confirm": 0}
    # switch tabs: the grid shows what the tab holds
    root.locator(".jl-tab[data-tab=labeled]").click()
    nb.page.wait_for_function("() => document.querySelectorAll('.jl-root .jl-cell').length === 3")
    assert cell_ids(nb) == ["digit-0002.png", "digit-0003.png", "digit-0004.png"]
    assert nb.kernel_eval("print(w.tab)") == "labeled"
    # a label applied from notebook code shows up in the widget
    nb.kernel_eval("ds.label(['digit-0010.png'], 'cat')")
    nb.page.wait_for_function("() => document.querySelectorAll('.jl-root .jl-cell').length === 4")
    # Ctrl+Z undoes it (the widget calls ds.undo())
    root.locator(".jl-tab[data-tab=labeled]").focus()
    nb.page.keyboard.press("Control+z")
    nb.page.wait_for_function("() => document.querySelectorAll('.jl-root .jl-cell').length === 3")
    assert nb.kernel_eval("print(ds.count(tab='labeled'))") == "3"


def test_rename_a_label_through_the_dialog(open_notebook, lab_server):
    folder = make_folder(lab_server.root_dir, "ds-rename", 12)
    nb = open_widget(
        open_notebook,
        folder,
        "ds.label(['digit-0000.png', 'digit-0001.png'], 'kat')\n"
        "ds.label(['digit-0002.png'], 'dog')",
    )
    root = nb.page.locator(".jl-root")
    root.locator(".jl-all-labels [aria-label='rename kat']").click()
    dialog = root.locator(".jl-dialog")
    field = dialog.locator("input")
    field.fill("dog")
    assert "merged into" in dialog.locator(".jl-hint").inner_text()
    field.fill("cat")
    save(nb, "widget-rename-dialog")
    dialog.locator("button", has_text="Rename").click()
    root.locator(".jl-dialog").wait_for(state="detached")
    assert (
        nb.kernel_eval("print(ds.labels, ds.label_counts())")
        == "['cat', 'dog'] {'cat': 2, 'dog': 1}"
    )
    names = root.locator(".jl-all-labels .jl-label-name").all_inner_texts()
    assert names == ["cat", "dog"]


def test_to_be_confirmed_tab_confirm_selected(open_notebook, lab_server):
    folder = make_folder(lab_server.root_dir, "ds-confirm", 24)
    setup = (
        "ids = [f'digit-{i:04d}.png' for i in range(12)]\n"
        "ds.internal.set_proposals(ids, [[f'd{i % 10}'] for i in range(12)],"
        " [[0.99 - i * 0.03] for i in range(12)], hard=[i > 8 for i in range(12)])"
    )
    nb = open_widget(open_notebook, folder, setup)
    root = nb.page.locator(".jl-root")
    assert tab_counts(nb)["to_confirm"] == 12
    root.locator(".jl-tab[data-tab=to_confirm]").click()
    nb.page.wait_for_function("() => document.querySelectorAll('.jl-root .jl-cell').length === 12")
    wait_thumbnails(nb)
    assert root.locator(".jl-cell .jl-chip-proposed").first.inner_text().startswith("d0")
    assert root.locator(".jl-badge-hard").count() == 3
    boxes = root.locator(".jl-cell .jl-check")
    boxes.nth(0).click()
    boxes.nth(1).click()
    save(nb, "widget-to-confirm")
    root.locator("[data-action=confirm-selected]").click()
    nb.page.wait_for_function("() => document.querySelectorAll('.jl-root .jl-cell').length === 10")
    out = nb.kernel_eval(
        "f = ds.to_pandas().set_index('id')\n"
        "print(list(f.loc['digit-0000.png', 'labels']), f.loc['digit-0000.png', 'source'])"
    )
    assert out == "['d0'] auto"
    # check a random sample of the 10 left: the grid shows only it; confirm it as proposed
    root.locator("[data-action=check-sample]").click()
    root.locator("[data-filter=ids]", has_text="random sample of 10").wait_for()
    root.locator(".jl-cell .jl-check").nth(2).click()
    root.locator("[data-action=confirm-selected]").click()
    root.locator(".jl-sample-check", has_text="1 of 10 reviewed, 1 confirmed").wait_for()
    save(nb, "widget-sample-check")
    assert nb.kernel_eval("print(ds.sample_check()['right'])") == "1"


def test_preview_opens_moves_and_closes_with_keys(open_notebook, lab_server):
    folder = make_folder(lab_server.root_dir, "ds-preview", 8)
    nb = open_widget(open_notebook, folder)
    root = nb.page.locator(".jl-root")
    root.locator(".jl-cell .jl-thumb").nth(0).click()
    preview = root.locator(".jl-preview")
    preview.locator(".jl-preview-info .jl-name", has_text="digit-0000.png").wait_for()
    nb.page.wait_for_function(
        "() => { const i = document.querySelector('.jl-preview-img');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    nb.page.keyboard.press("ArrowRight")
    preview.locator(".jl-preview-info .jl-name", has_text="digit-0001.png").wait_for()
    nb.page.keyboard.press("Escape")
    preview.wait_for(state="detached")


def test_errors_show_in_the_widget(open_notebook, lab_server):
    folder = make_folder(lab_server.root_dir, "ds-errors", 6)
    nb = open_widget(open_notebook, folder, "ds.add_labels('cat')")
    root = nb.page.locator(".jl-root")
    root.locator(".jl-cell .jl-check").nth(0).click()
    field = root.locator(".jl-typeahead input:visible").first
    field.fill("bad name")
    field.press("Enter")
    assert "no spaces" in root.locator(".jl-inline-error:visible").first.inner_text()
    # the selected image is deleted behind the widget's back: the kernel refuses to label it,
    # and the widget says so instead of hanging
    nb.kernel_eval("ds.delete_images(['digit-0000.png'])")
    root.locator(".jl-tab[data-tab=all]").focus()
    nb.page.keyboard.press("1")
    error = root.locator(".jl-notice-error")
    error.wait_for()
    assert "digit-0000.png" in error.inner_text()
    nb.page.keyboard.press("?")
    assert "Keyboard shortcuts" in root.locator(".jl-dialog-title").inner_text()
    save(nb, "widget-help")
    nb.page.keyboard.press("Escape")
    root.locator(".jl-dialog").wait_for(state="detached")
