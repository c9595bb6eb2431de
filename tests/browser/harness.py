"""Helpers behind the browser fixtures: the JupyterLab server and an open notebook page.

Tests use them through the fixtures in conftest.py; import names from here for type hints
and for `KernelError`: ``from browser.harness import KernelError, NotebookPage``.
Timeouts are in seconds.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
OUTPUT_DIR = Path(__file__).resolve().parents[1] / "output"
SCREENSHOT_DIR = OUTPUT_DIR / "screenshots"
FAILURE_DIR = OUTPUT_DIR / "failures"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# -- the JupyterLab server -------------------------------------------------------------------


@dataclass
class LabServer:
    """A running JupyterLab server."""

    url: str
    token: str
    root_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call the server's REST API (``path`` like ``/api/sessions``); returns parsed JSON."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def delete_sessions(self, paths: set[str] | None = None) -> None:
        """Delete the kernel sessions of notebooks at ``paths`` (all when None)."""
        for session in self.api("GET", "/api/sessions"):
            if paths is None or session.get("path") in paths:
                try:
                    self.api("DELETE", f"/api/sessions/{session['id']}")
                except urllib.error.HTTPError as exc:
                    if exc.code != 404:  # already gone is fine
                        raise

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def start_lab(base: Path, root_dir: Path, log_path: Path, timeout: float = 90) -> LabServer:
    dirs = {
        name: base / name.lower()
        for name in (
            "JUPYTER_CONFIG_DIR",
            "JUPYTER_RUNTIME_DIR",
            "JUPYTER_DATA_DIR",
            "JUPYTERLAB_WORKSPACES_DIR",
            "JUPYTERLAB_SETTINGS_DIR",
        )
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    settings = dirs["JUPYTERLAB_SETTINGS_DIR"]
    # The news toast covers the bottom-right corner of the page.
    _write_json(
        settings / "@jupyterlab/apputils-extension/notification.jupyterlab-settings",
        {"fetchNews": "false", "checkForUpdates": False},
    )
    # Keep every cell in the DOM, so the n-th `.jp-Cell` is cell n.
    _write_json(
        settings / "@jupyterlab/notebook-extension/tracker.jupyterlab-settings",
        {"windowingMode": "none"},
    )
    env = {
        **os.environ,
        **{k: str(v) for k, v in dirs.items()},
        "JUPYTER_PLATFORM_DIRS": "1",
        "JLABEL_CACHE_DIR": str(base / "jlabel-cache"),
        "JLABEL_USER": "browser-tester",
        "PYTHONUNBUFFERED": "1",
    }
    token = secrets.token_hex(16)
    last_error = ""
    for _attempt in range(3):  # the free port can be taken between probe and bind
        port = _free_port()
        log = log_path.open("ab")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter",
                "lab",
                "--no-browser",
                f"--port={port}",
                "--ServerApp.ip=127.0.0.1",
                "--allow-root",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root_dir}",
                "--ServerApp.port_retries=0",
                "--LabApp.expose_app_in_browser=True",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        server = LabServer(f"http://127.0.0.1:{port}", token, root_dir, process, log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                server.api("GET", "/api/status")
                return server
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)
        last_error = server.log_tail()
        stop_process(process)
    raise RuntimeError(f"JupyterLab did not start; its log ends with:\n{last_error}")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


# -- notebooks -------------------------------------------------------------------------------

_JS_PANEL = """
function jlPanel(path) {
  const app = window.jupyterapp;
  return Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === path);
}
"""

_JS_CELLS = (
    "(path) => {"
    + _JS_PANEL
    + """
  const panel = jlPanel(path);
  if (!panel) return null;
  return panel.content.widgets.map(cell => {
    const m = cell.model;
    if (m.type !== 'code') return {type: m.type, count: null, state: null, outputs: []};
    return {type: 'code', count: m.executionCount, state: m.executionState,
            outputs: m.outputs.toJSON()};
  });
}"""
)

_JS_RUN = (
    "([path, indexes]) => {"
    + _JS_PANEL
    + """
  const app = window.jupyterapp;
  const panel = jlPanel(path);
  app.shell.activateById(panel.id);
  const nb = panel.content;
  nb.deselectAll();
  nb.activeCellIndex = indexes[0];
  for (const i of indexes) nb.select(nb.widgets[i]);
  app.commands.execute('notebook:run-cell');
  return null;
}"""
)

_JS_APPEND = (
    "([path, source]) => {"
    + _JS_PANEL
    + """
  const model = jlPanel(path).content.model;
  const n = model.cells.length;
  model.sharedModel.insertCell(n, {cell_type: 'code', source: source});
  return n;
}"""
)


class KernelError(AssertionError):
    """A cell raised an exception in the kernel."""


def _output_text(outputs: list[dict[str, Any]], *, stderr: bool = False) -> str:
    parts: list[str] = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream" and (out.get("name") == "stdout" or stderr):
            text = out.get("text", "")
            parts.append("".join(text) if isinstance(text, list) else text)
        elif kind in ("execute_result", "display_data"):
            text = out.get("data", {}).get("text/plain", "")
            parts.append(("".join(text) if isinstance(text, list) else text) + "\n")
    return "".join(parts)


def _raise_if_error(index: int, cell: dict[str, Any]) -> None:
    for out in cell["outputs"]:
        if out.get("output_type") == "error":
            tb = _ANSI.sub("", "\n".join(out.get("traceback", [])))
            raise KernelError(f"cell {index} raised {out.get('ename')}: {out.get('evalue')}\n{tb}")


@dataclass
class NotebookPage:
    """An open notebook in the browser; cells are 0-based indexes."""

    page: Any
    path: str
    server: LabServer
    console: list[str] = field(default_factory=list)

    # -- state from the notebook model --------------------------------------------------------
    def cells_state(self) -> list[dict[str, Any]]:
        """Per cell: type, execution count, execution state, outputs (nbformat JSON)."""
        state = self.page.evaluate(_JS_CELLS, self.path)
        if state is None:
            raise AssertionError(f"notebook {self.path} is not open in the page")
        return state

    def cell(self, i: int) -> Any:
        """Locator of cell ``i`` (the whole cell: input and outputs)."""
        return self.page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell").nth(i)

    def output(self, i: int) -> Any:
        """Locator of cell ``i``'s output area."""
        return self.cell(i).locator(".jp-OutputArea")

    # -- running ------------------------------------------------------------------------------
    def _wait_executed(self, before: dict[int, int | None], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            state = self.cells_state()
            pending = []
            for i, old in before.items():
                _raise_if_error(i, state[i])
                count = state[i]["count"]
                if count is None or count == old or state[i]["state"] == "running":
                    pending.append(i)
            if not pending:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"cells {pending} of {self.path} did not finish in {timeout}s")
            self.page.wait_for_timeout(100)

    def run_cell(self, i: int, *, wait: bool = True, timeout: float = 120) -> None:
        """Run cell ``i``; with ``wait``, until it finished (raises KernelError if it raised)."""
        before = {i: self.cells_state()[i]["count"]}
        self.page.evaluate(_JS_RUN, [self.path, [i]])
        if wait:
            self._wait_executed(before, timeout)

    def run_all(self, *, wait: bool = True, timeout: float = 300) -> None:
        """Run every cell; with ``wait``, until all code cells finished (KernelError on error)."""
        state = self.cells_state()
        before = {i: c["count"] for i, c in enumerate(state) if c["type"] == "code"}
        self.page.evaluate(
            "() => window.jupyterapp.commands.execute('notebook:run-all-cells') && null"
        )
        if wait:
            self._wait_executed(before, timeout)

    def wait_for_output(
        self,
        i: int,
        text: str | None = None,
        *,
        selector: str | None = None,
        timeout: float = 60,
    ) -> Any:
        """Wait until cell ``i``'s rendered output contains ``text`` and/or ``selector``.

        Returns a locator: the first ``selector`` match, else the output area. Raises
        KernelError at once if the cell raised, TimeoutError after ``timeout`` seconds.
        """
        if text is None and selector is None:
            raise ValueError("give text or selector")
        area = self.output(i)
        target = area.locator(selector).first if selector else area
        deadline = time.monotonic() + timeout
        while True:
            _raise_if_error(i, self.cells_state()[i])
            ok = True
            if selector is not None:
                ok = target.count() > 0 and target.is_visible()
            if ok and text is not None:
                ok = area.count() > 0 and text in area.inner_text()
            if ok:
                return target
            if time.monotonic() > deadline:
                shown = area.inner_text() if area.count() else "(no output area)"
                raise TimeoutError(
                    f"cell {i}: no output with text={text!r} selector={selector!r} "
                    f"after {timeout}s; output is:\n{shown[:2000]}"
                )
            self.page.wait_for_timeout(100)

    def kernel_eval(self, code: str, *, timeout: float = 60) -> str:
        """Append a cell with ``code``, run it, return its stdout + text results (stripped).

        Raises KernelError (with the traceback) if the code raised.
        """
        n = self.page.evaluate(_JS_APPEND, [self.path, code])
        self.page.wait_for_function(
            "([p, n]) => {" + _JS_PANEL + "return jlPanel(p).content.widgets.length > n; }",
            arg=[self.path, n],
            timeout=timeout * 1000,
        )
        self.run_cell(n, timeout=timeout)
        return _output_text(self.cells_state()[n]["outputs"]).strip()

    # -- evidence -----------------------------------------------------------------------------
    def screenshot(self, name: str, *, selector: str | None = None) -> Path:
        """Save the page (or ``selector``) as tests/output/screenshots/NAME.png."""
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOT_DIR / f"{name}.png"
        if selector is None:
            self.page.screenshot(path=str(path))
        else:
            self.page.locator(selector).first.screenshot(path=str(path))
        return path

    def save_failure_evidence(self, directory: Path) -> None:
        """Screenshot, browser console log and the cells' HTML, into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "console.log").write_text("\n".join(self.console) + "\n")
        try:
            self.page.screenshot(path=str(directory / "screenshot.png"), full_page=True)
            html = self.page.locator(".jp-NotebookPanel:visible .jp-Notebook").first.inner_html(
                timeout=5000
            )
            (directory / "cells.html").write_text(html)
            (directory / "cells.json").write_text(json.dumps(self.cells_state(), indent=1))
        except Exception as exc:  # evidence is best effort; the test already failed
            (directory / "evidence-error.txt").write_text(repr(exc))


def wait_lab_ready(page: Any, timeout: float) -> None:
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=timeout * 1000)
    # The toolbar's execution indicator says idle too early (cells sent then are dropped);
    # the status bar's kernel status is reliable.
    page.wait_for_function(
        "() => (document.querySelector('#jp-main-statusbar')?.textContent || '').includes('Idle')",
        timeout=timeout * 1000,
    )
    # More room for widgets: close the file browser and the right side bar.
    page.evaluate(
        "() => { window.jupyterapp.shell.collapseLeft(); window.jupyterapp.shell.collapseRight(); }"
    )


def write_notebook(path: Path, cells: list[str]) -> None:
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(src) for src in cells],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:80] or "test"
