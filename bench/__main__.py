"""Run every benchmark of bench/ in turn (`make bench`); each rewrites its own section of
docs/BENCHMARKS.md.

    .venv/bin/python -m bench [--only NAME ...] [--no-doc]

Each benchmark runs in its own process, one after the other (never two at once: they would time
each other), with defaults chosen so that the whole run stays around 20 minutes on 2 cores. Run a
benchmark module directly for more rounds or samples. The exit status is 0 when every benchmark
exited 0; a benchmark exits non-zero when it failed to measure (see its output). Whether a
target is met is written in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (module, arguments, writes docs/BENCHMARKS.md)
BENCHMARKS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("extract_bench", ("--rows", "1000000", "--repeat", "3"), True),
    ("extraction_run_bench", ("--rows", "1000000", "--repeat", "3"), True),
    ("sync_bench", ("--database", "both", "--rounds", "3"), True),
    ("slack_latency_bench", ("--samples", "1000", "--database", "both"), True),
    ("queue_bench", ("--orders", "40", "--rounds", "2", "--passes", "50"), True),
    ("airbyte_bench", ("--rows", "100000", "--repeat", "3"), True),
    ("http_bench", ("--rounds", "3"), True),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [name for name, *_ in BENCHMARKS]
    parser.add_argument("--only", nargs="+", choices=names, metavar="NAME", help=f"run only these: {', '.join(names)}")
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/BENCHMARKS.md")
    args = parser.parse_args(argv)

    results = []
    started = time.perf_counter()
    for name, arguments, writes_doc in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        command = [sys.executable, "-m", f"bench.{name}", *arguments]
        if args.no_doc and writes_doc:
            command.append("--no-doc")
        print(f"\n=== {' '.join(['python', *command[1:]])}", flush=True)
        began = time.perf_counter()
        code = subprocess.run(command, cwd=ROOT).returncode
        results.append((name, code, time.perf_counter() - began))

    print("\n=== summary")
    for name, code, seconds in results:
        outcome = "measured (targets in docs/BENCHMARKS.md)" if code == 0 else f"failed (exit {code})"
        print(f"{name:22s} {seconds:7.1f} s  {outcome}")
    print(f"{'total':22s} {time.perf_counter() - started:7.1f} s")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
