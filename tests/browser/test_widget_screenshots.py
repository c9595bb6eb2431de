"""Screenshots of the widget in realistic states (copied into docs/screenshots/ for the README)."""

from __future__ import annotations

from browser.test_widget_browser import make_folder, open_widget, save, wait_thumbnails

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

SETUP = f"""
import pandas as pd
import torch
names = {NAMES!r}
truth = pd.read_csv(ds.root + '/_truth.csv')
ds.add_labels(*names)
for digit in range(10):
    ds.label(list(truth[truth.digit == digit].id)[:5], names[digit])
torch.set_num_threads(1)  # tiny convolutions: one thread is fastest on a shared box
job = ds.auto_label(mode="fast", backbone="cnn", progress=False).wait()  # a real job
"""


def test_readme_screenshots(open_notebook, lab_server):
    folder = make_folder(lab_server.root_dir, "ds-readme", 120)
    nb = open_widget(open_notebook, folder, SETUP)
    root = nb.page.locator(".jl-root")
    root.locator(".jl-pagebar select").select_option("24")
    nb.page.wait_for_function("() => document.querySelectorAll('.jl-root .jl-cell').length === 24")
    wait_thumbnails(nb)
    boxes = root.locator(".jl-cell .jl-check")
    boxes.nth(4).click()
    boxes.nth(6).click(modifiers=["Shift"])
    nb.page.wait_for_function(
        "() => document.querySelector('.jl-root .jl-counter').textContent === '3 selected'"
    )
    assert root.locator(".jl-sel-labels .jl-label-row").count() >= 1
    save(nb, "readme-grid")
    root.locator(".jl-tab[data-tab=to_confirm]").click()
    nb.page.wait_for_function(
        "() => document.querySelector('.jl-root .jl-tab-on').dataset.tab === 'to_confirm'"
    )
    wait_thumbnails(nb)
    root.locator(".jl-cell .jl-check").nth(0).click()
    root.locator(".jl-cell .jl-check").nth(1).click()
    root.locator(".jl-precision", has_text="Estimated precision of the proposals").wait_for()
    save(nb, "readme-to-confirm")
    root.locator(".jl-tab[data-tab=labeled]").click()
    root.locator(".jl-all-labels [aria-label='delete three']").click()
    dialog = root.locator(".jl-dialog")
    dialog.locator(".jl-radio").first.wait_for()
    assert "5 image(s)" in dialog.inner_text()
    save(nb, "readme-delete-label")
