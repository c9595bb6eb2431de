"""The browser harness itself: JupyterLab runs cells, renders widgets, and reports errors."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from browser.harness import KernelError


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
    # the slider syncs the value once it has drawn it; ask the kernel after that, and again
    # while the last update may still be on its way (the readout can be ahead of the kernel)
    expect(readout).to_have_text("5", timeout=10_000)
    deadline = time.monotonic() + 10
    while (value := nb.kernel_eval("print(s.value)")) != "5" and time.monotonic() < deadline:
        nb.page.wait_for_timeout(200)
    assert value == "5"
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


ANYWIDGET_CELL = '''
import anywidget, traitlets

class Counter(anywidget.AnyWidget):
    _esm = """
    export default { render({ model, el }) {
      const b = document.createElement("button");
      b.className = "smoke-counter";
      const show = () => { b.textContent = `count ${model.get("value")}`; };
      b.onclick = () => { model.set("value", model.get("value") + 1); model.save_changes(); };
      model.on("change:value", show); show(); el.appendChild(b);
    } };
    """
    value = traitlets.Int(0).tag(sync=True)

c = Counter(value=1)
c
'''


def test_anywidget_renders_and_syncs_both_ways(open_notebook):
    nb = open_notebook([ANYWIDGET_CELL])
    nb.run_cell(0)
    button = nb.wait_for_output(0, "count 1", selector="button.smoke-counter")
    button.click()
    button.click()
    nb.page.wait_for_function(
        "() => document.querySelector('button.smoke-counter')?.textContent === 'count 3'"
    )
    assert nb.kernel_eval("print(c.value)") == "3"
    nb.kernel_eval("c.value = 10")
    nb.wait_for_output(0, "count 10")
