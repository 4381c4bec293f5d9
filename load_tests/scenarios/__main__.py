"""Smoke-run every scenario at its smallest settings (`SMOKE_ARGS`), one after another, at the lowest CPU
priority (nice 19), each in its own process with a time limit; results and plots go to a temporary directory
(NETTLEGE_BENCH_RESULTS), not to load_tests/results/: a smoke run is not a measurement.

    python -m load_tests.scenarios [name ...]    # default: all of them

Prints one line per scenario (ok or failed, seconds, the last lines of its error output on failure); exits 1 if
any failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from load_tests.scenarios import SMOKE_ARGS

LIMIT_S = 150


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="name",
                        help=f"scenarios to run (default all: {', '.join(SMOKE_ARGS)})")
    names = parser.parse_args().names or list(SMOKE_ARGS)
    if unknown := [n for n in names if n not in SMOKE_ARGS]:
        parser.error(f"unknown scenario {', '.join(unknown)} (known: {', '.join(SMOKE_ARGS)})")
    failed = 0
    with tempfile.TemporaryDirectory(prefix="nettlege-smoke-") as results:
        env = {**os.environ, "NETTLEGE_BENCH_RESULTS": results}
        for name in names:
            command = ["nice", "-n", "19", sys.executable, "-m", f"load_tests.scenarios.{name}", *SMOKE_ARGS[name]]
            t0 = time.monotonic()
            try:
                run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=LIMIT_S)
                ok, tail = run.returncode == 0, run.stderr.splitlines()[-5:]
            except subprocess.TimeoutExpired:
                ok, tail = False, [f"over {LIMIT_S} s"]
            print(f"{name}: {'ok' if ok else 'FAILED'} in {time.monotonic() - t0:.0f} s", flush=True)
            if not ok:
                failed += 1
                print("\n".join("    " + line for line in tail), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
