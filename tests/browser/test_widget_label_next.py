"""The "Label next" button in a real JupyterLab: the grid shows exactly the suggested images,
and a number key labels them as usual."""

from __future__ import annotations

import json

from browser.test_widget_browser import cell_ids, make_folder, open_widget, save, wait_thumbnails


def test_label_next_shows_the_suggested_ids_and_keys_label_them(open_notebook, lab_server):
    folder = make_folder(lab_server.root_dir, "ds-label-next", 30)
    setup = "ds.label([f'digit-{i:04d}.png' for i in range(6)], 'cat')\nds.add_labels('dog')"
    nb = open_widget(open_notebook, folder, setup)
    root = nb.page.locator(".jl-root")
    assert root.locator("[data-action=label-next]").count() == 0  # the All tab: not offered
    root.locator(".jl-tab[data-tab=unlabeled]").click()
    root.locator("[data-action=label-next]", has_text="Label next (20)").click()
    root.locator("[data-filter=ids]", has_text="label next: 20").wait_for()
    nb.page.wait_for_function("() => document.querySelectorAll('.jl-root .jl-cell').length === 20")
    wait_thumbnails(nb)
    expected = json.loads(
        nb.kernel_eval("import json; print(json.dumps(ds.to_label_next(n=20, tab='unlabeled')))")
    )
    assert sorted(cell_ids(nb)) == sorted(expected)
    assert nb.kernel_eval("print(w.label_next == ds.to_label_next(n=20, tab='unlabeled'))") == (
        "True"
    )
    save(nb, "widget-label-next")
    # keyboard labeling as usual: select the first image, press 2 (dog); it leaves the grid
    first = cell_ids(nb)[0]
    root.locator(".jl-cell .jl-check").nth(0).click()
    nb.page.keyboard.press("2")
    nb.page.wait_for_function("() => document.querySelectorAll('.jl-root .jl-cell').length === 19")
    assert first not in cell_ids(nb)
    assert nb.kernel_eval(f"print(list(ds.query(ids=[{first!r}])['labels'][0]))") == "['dog']"
