"""The wheel carries the widget's JS bundle, built by hatch_build.py when it is missing."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".git", ".venv", "node_modules", "dist", "build", "demo-data", "output"}


def _copy_sources(dest: Path) -> None:
    """Copy the checkout without environments, outputs and the built bundle."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n in SKIP_DIRS or n.startswith(".jlabel")}
        skipped |= {n for n in names if n.endswith((".pyc", ".egg-info"))}
        if Path(folder).resolve() == REPO / "jlabel" / "widget" / "static":
            skipped |= {n for n in names if n.startswith("widget.")}
        return skipped

    shutil.copytree(REPO, dest, ignore=ignore)


def test_wheel_contains_the_bundle_built_by_the_hook(tmp_path):
    if shutil.which("npm") is None:
        pytest.fail("npm is not installed: the wheel build needs Node.js 20+ and npm")
    src = tmp_path / "src"
    _copy_sources(src)
    assert not (src / "jlabel/widget/static/widget.js").exists()
    if (REPO / "node_modules").is_dir():  # reuse the installed esbuild instead of `npm ci`
        (src / "node_modules").symlink_to(REPO / "node_modules", target_is_directory=True)
    out = tmp_path / "dist"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    result = subprocess.run([*pip_wheel, "-w", str(out), str(src)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = out.glob("jlabel-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        bundle = zf.read("jlabel/widget/static/widget.js")
    assert {"jlabel/__init__.py", "jlabel/demo.py", "jlabel/widget/static/widget.js"} <= names
    assert bundle == (src / "jlabel/widget/static/widget.js").read_bytes()
    assert b"export" in bundle and len(bundle) > 1000
    if (src / "js/styles.css").exists():
        assert "jlabel/widget/static/widget.css" in names
    assert not any(n.startswith(("tests/", "js/", "bench/")) for n in names)
