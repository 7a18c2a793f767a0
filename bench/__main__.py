"""Run every benchmark module in this folder (or the ones named: `python -m bench events gateway`)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    names = argv or sorted(
        m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name not in ("stats", "wrk", "__main__")
    )
    failed = []
    for name in names:
        sys.stdout.write(f"\n=== bench {name} ===\n")
        sys.stdout.flush()
        started = time.perf_counter()
        try:
            importlib.import_module(f"bench.{name}").main()
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others' figures
            failed.append(name)
            sys.stdout.write(f"bench {name} FAILED: {exc!r}\n")
        sys.stdout.write(f"(bench {name} took {time.perf_counter() - started:.1f} s)\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
