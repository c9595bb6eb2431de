"""The browser harness itself: JupyterLab runs cells, renders widgets, and reports errors."""

from __future__ import annotations

import pytest
from harness import KernelError


def test_printed_text_is_seen(open_notebook):
    nb = open_notebook(['print("hello from " + "the kernel")', "x = 6 * 7"])
    nb.run_all()
    nb.wait_for_output(0, "hello from the kernel")
    assert nb.kernel_eval("print(x)") == "42"
    assert nb.kernel_eval("x + 1") == "43"
    state = nb.cells_state()
    assert len(state) == 4  # two cells, plus one per kernel_eval
    assert all(c["count"] is not None for c in state)


def test_ipywidgets_slider_renders_and_syncs(open_notebook):
    nb = open_notebook(
        ["import ipywidgets as w\ns = w.IntSlider(value=3, min=0, max=10, description='n')\ns"]
    )
    nb.run_cell(0)
    slider = nb.wait_for_output(0, selector=".widget-slider")
    assert "n" in nb.output(0).inner_text()
    readout = nb.output(0).locator(".widget-readout")
    assert readout.inner_text().strip() == "3"
    # Browser -> kernel: move the slider with the keyboard, read the value in the kernel.
    slider.locator(".noUi-handle").focus()
    nb.page.keyboard.press("ArrowRight")
    nb.page.keyboard.press("ArrowRight")
    assert nb.kernel_eval("print(s.value)") == "5"
    # Kernel -> browser.
    nb.kernel_eval("s.value = 9")
    nb.page.wait_for_function(
        "el => el.textContent.trim() === '9'", arg=readout.element_handle(), timeout=10_000
    )
    nb.screenshot("harness-int-slider", selector=".jp-OutputArea-output")


def test_kernel_errors_are_raised_with_the_traceback(open_notebook):
    nb = open_notebook(["1 / 0", "print('never')"])
    with pytest.raises(KernelError, match="ZeroDivisionError"):
        nb.run_all(timeout=60)
    with pytest.raises(KernelError, match="NameError: name 'nope' is not defined"):
        nb.kernel_eval("nope")
