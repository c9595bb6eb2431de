"""Hatch build hook: make sure the widget's JS bundle exists before a wheel is built."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

BUNDLE = Path("jlabel/widget/static/widget.js")


class JSBundleHook(BuildHookInterface):
    """Run `npm ci` + `npm run build` when the bundle is missing (standard wheels only)."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        if self.target_name != "wheel" or version == "editable":
            return  # editable installs: `make env` / `npm run build` builds the bundle
        if (root / BUNDLE).exists():
            return
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(
                f"{BUNDLE} is missing and npm is not installed: install Node.js (20+) "
                "or run `npm ci && npm run build` before building the wheel."
            )
        if not (root / "node_modules").exists():
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=root, check=True)
        subprocess.run([npm, "run", "build"], cwd=root, check=True)
        if not (root / BUNDLE).exists():
            raise RuntimeError(f"`npm run build` did not produce {BUNDLE}")
