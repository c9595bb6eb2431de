"""Real-browser harness: JupyterLab (one server per test session) driven in headless Chromium.

Fixtures for tests in this folder (all marked ``browser`` automatically):

- ``lab_server`` (session): a JupyterLab server on loopback with temp ``JUPYTER_*`` dirs.
  Its root folder is ``lab_server.root_dir``; put datasets there (or under a subfolder).
- ``browser`` (session): Playwright's Chromium, the system one at /usr/bin/chromium.
- ``open_notebook`` (function): ``open_notebook(cells, name=None) -> NotebookPage`` writes an
  .ipynb into the server root, opens it in a new browser page and waits until the kernel is idle.
  After the test its kernel session is deleted; on failure a screenshot, the browser console log
  and the cells' HTML are saved under ``tests/output/failures/<test>/``.

Timeouts in this module are in seconds.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from browser import harness
from browser.harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    FAILURE_DIR,
    OUTPUT_DIR,
    LabServer,
    NotebookPage,
    slug,
    start_lab,
    stop_process,
    wait_lab_ready,
    write_notebook,
)

_HERE = Path(__file__).resolve().parent
# Transitional alias: tests written as `from harness import ...` get this same module (one
# KernelError class). New tests: `from browser.harness import ...`.
sys.modules.setdefault("harness", harness)


# -- pytest wiring ---------------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/browser/ with ``browser``."""
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Keep each phase's report on the item so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"_report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """One JupyterLab server for the whole test session."""
    base = tmp_path_factory.mktemp("jupyter")
    root_dir = tmp_path_factory.mktemp("lab-root")
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    log_path = OUTPUT_DIR / "jupyter-server.log"
    log_path.unlink(missing_ok=True)
    shutil.rmtree(FAILURE_DIR, ignore_errors=True)  # evidence from an earlier run misleads
    server = start_lab(base, root_dir, log_path)
    yield server
    try:
        server.delete_sessions()
    finally:
        stop_process(server.process)


# -- the browser -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium (the Debian package) driven by Playwright."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium. "
            "Run `make chromium` (as root), or `make test`, which does it for you.",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_notebook(
    request: pytest.FixtureRequest, lab_server: LabServer, browser: Any
) -> Iterator[Callable[..., NotebookPage]]:
    """Factory: ``open_notebook(cells, name=None, *, timeout=90) -> NotebookPage``."""
    opened: list[tuple[Any, NotebookPage]] = []

    def _open(cells: list[str], name: str | None = None, *, timeout: float = 90) -> NotebookPage:
        rel = name or f"{slug(request.node.name)}-{len(opened)}.ipynb"
        write_notebook(lab_server.root_dir / rel, cells)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(timeout * 1000)
        nb = NotebookPage(page=page, path=rel, server=lab_server)
        page.on("console", lambda msg: nb.console.append(f"[{msg.type}] {msg.text}"))
        page.on("pageerror", lambda err: nb.console.append(f"[pageerror] {err}"))
        opened.append((context, nb))
        page.goto(f"{lab_server.url}/lab/tree/{rel}?token={lab_server.token}&reset")
        wait_lab_ready(page, timeout)
        return nb

    yield _open

    failed = any(
        getattr(getattr(request.node, f"_report_{when}", None), "failed", False)
        for when in ("setup", "call")
    )
    for k, (context, nb) in enumerate(opened):
        if failed:
            nb.save_failure_evidence(FAILURE_DIR / slug(request.node.nodeid) / str(k))
        context.close()
    lab_server.delete_sessions({nb.path for _, nb in opened})
