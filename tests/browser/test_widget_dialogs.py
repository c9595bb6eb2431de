"""Widget dialogs in a real JupyterLab: add images, delete images, versions, dark theme."""

from __future__ import annotations

import io

from PIL import Image

from browser.test_widget_browser import make_folder, open_widget, save, tab_counts, wait_thumbnails


def png(color: str, size: tuple[int, int] = (40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def test_add_images_shows_previews_checks_limits_and_adds(open_notebook, lab_server):
    folder = make_folder(lab_server.root_dir, "ds-add", 6)
    nb = open_widget(open_notebook, folder)
    root = nb.page.locator(".jl-root")
    root.locator("button", has_text="Add images").click()
    dialog = root.locator(".jl-dialog")
    picker = dialog.locator("input[type=file]")
    big = b"\xff\xd8\xff" + b"\0" * (6 * 1024 * 1024)
    picker.set_input_files([{"name": "huge.jpg", "mimeType": "image/jpeg", "buffer": big}])
    assert "over the 5.00 MB limit" in dialog.locator(".jl-problems").inner_text()
    ok = dialog.locator("button", has_text="OK")
    assert ok.is_disabled()
    dialog.locator("button", has_text="Clear the list").click()
    picker.set_input_files(
        [
            {"name": "red.png", "mimeType": "image/png", "buffer": png("red")},
            {"name": "blue <b>.png", "mimeType": "image/png", "buffer": png("blue")},
        ]
    )
    nb.page.wait_for_function(
        "() => [...document.querySelectorAll('.jl-upload img')]"
        ".filter(i => i.complete && i.naturalWidth > 0).length === 2"
    )
    assert dialog.locator(".jl-upload .jl-name").all_inner_texts() == ["red.png", "blue <b>.png"]
    assert "2 file(s)" in dialog.inner_text()
    save(nb, "widget-add-images")
    ok.click()
    dialog.wait_for(state="detached")
    nb.page.wait_for_function(
        "() => document.querySelector('.jl-root .jl-tab[data-tab=unlabeled] .jl-count')"
        ".textContent === '8'"
    )
    out = nb.kernel_eval("print(len(ds), 'red.png' in set(ds.query(tab='unlabeled')['id']))")
    assert out == "8 True"


def test_delete_images_dialog_and_versions(open_notebook, lab_server):
    folder = make_folder(lab_server.root_dir, "ds-delete", 10)
    nb = open_widget(open_notebook, folder, "ds.label(['digit-0000.png'], 'zero')")
    root = nb.page.locator(".jl-root")
    # a version before deleting
    root.locator("button", has_text="Versions").click()
    dialog = root.locator(".jl-dialog")
    dialog.locator("[aria-label='version name']").fill("before-delete")
    dialog.locator("button", has_text="Create version").click()
    dialog.wait_for(state="detached")
    assert "before-delete" in nb.kernel_eval("print(list(ds.versions()['name']))")
    boxes = root.locator(".jl-cell .jl-check")
    boxes.nth(1).click()
    boxes.nth(2).click()
    root.locator(".jl-pagebar button", has_text="Delete").click()
    dialog = root.locator(".jl-dialog")
    assert "2 image(s)" in dialog.locator(".jl-dialog-title").inner_text()
    dialog.locator("input[type=checkbox]").check()
    assert "other versions" in dialog.locator(".jl-warn").inner_text()
    dialog.locator("button", has_text="Delete").click()
    dialog.wait_for(state="detached")
    nb.page.wait_for_function(
        "() => document.querySelector('.jl-root .jl-tab[data-tab=all] .jl-count')"
        ".textContent === '8'"
    )
    out = nb.kernel_eval(
        "import os\nprint(os.path.exists(ds.internal.source_path('digit-0001.png')), len(ds))"
    )
    assert out == "False 8"
    # the versions dialog lists the version and can make it current again
    root.locator("button", has_text="Versions").click()
    dialog = root.locator(".jl-dialog")
    assert "before-delete" in dialog.inner_text()


def test_dark_theme(open_notebook, lab_server):
    folder = make_folder(lab_server.root_dir, "ds-dark", 18)
    nb = open_widget(
        open_notebook, folder, "ds.label(['digit-0000.png', 'digit-0003.png'], 'zero')"
    )
    nb.page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme',"
        " {theme: 'JupyterLab Dark'})"
    )
    nb.page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    nb.page.wait_for_timeout(500)
    wait_thumbnails(nb)
    bg = nb.page.evaluate(
        "() => getComputedStyle(document.querySelector('.jl-root')).backgroundColor"
    )
    r, g, b = (int(x) for x in bg[bg.index("(") + 1 : bg.index(")")].split(",")[:3])
    assert max(r, g, b) < 80, bg  # the widget follows the dark theme
    assert tab_counts(nb)["labeled"] == 2
    save(nb, "widget-dark")
    nb.page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme',"
        " {theme: 'JupyterLab Light'})"
    )
