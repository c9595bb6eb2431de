"""Run every `bench/*.py` module that defines `main()`, in turn (alphabetical order).

Usage: `python -m bench [NAME ...]` (names without `.py`; none means all).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path


def _modules() -> list[str]:
    here = Path(__file__).parent
    return sorted(
        info.name
        for info in pkgutil.iter_modules([str(here)])
        if not info.name.startswith("_") and not info.ispkg
    )


def main(argv: list[str]) -> int:
    """Run the named benchmarks (all when `argv` is empty); return the process exit code."""
    if any(arg.startswith("-") for arg in argv):
        print(__doc__.strip(), "\nBenchmarks:", " ".join(_modules()))
        return 0
    names = argv or _modules()
    failed = []
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        entry = getattr(module, "main", None)
        if entry is None:
            continue
        print(f"== bench.{name}", flush=True)
        start = time.perf_counter()
        try:
            sys.argv = [f"bench.{name}"]  # modules that read their own arguments get none
            entry()
        except Exception:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
        print(f"   ({time.perf_counter() - start:.1f} s)", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
