"""Airbyte bridge benchmark: a whole connbot run reading a connector, against the connector alone.

    .venv/bin/python -m bench.airbyte_bench [--rows 100000] [--repeat 3]

The same read of `airbyte-source-faker` (stream `users`, a fixed seed, its default parallelism),
measured side by side in one run, rounds interleaved, each case in a process of its own:

- connector alone: `source-faker read` with its output going to /dev/null — the fastest the
  records can be produced;
- connbot: `engine.extraction.run_order` of an order of every field of `users`, from the
  connector's process through parsing, typing into Arrow, loading into a DuckDB file, saving the
  state, with SQLite as the system of record.

Targets: connbot's wall time at most 1.15x the connector's alone; connbot's own process at most
250 MB at its peak (the connector's processes are reported beside it, from RUSAGE_CHILDREN: the
largest of them). The connector is the one the tests use, installed once into .cache/ (the first
run installs it, about a minute). Results go to the "Airbyte connector runs" section of
docs/BENCHMARKS.md (`--no-doc` to skip).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import docs
from bench.scratch import in_own_process, sqlite_context

ROOT = Path(__file__).resolve().parent.parent
SECTION = "Airbyte connector runs"
SEED = 42
CASES = {"connector": "source-faker read > /dev/null (baseline)", "connbot": "run_order into DuckDB"}


def _faker():
    sys.path.insert(0, str(ROOT / "tests"))
    from faker_connector import faker_executable, faker_spec

    executable = faker_executable()
    return executable, faker_spec(executable)


def _config(users: int) -> dict:
    return {"count": users, "seed": SEED, "records_per_slice": 1000, "always_updated": False}


def run_case(case: str, users: int, workdir: Path) -> dict:
    executable, spec = _faker()
    if case == "connector":
        from sources.airbyte.protocol import Stream, configured_catalog

        (workdir / "config.json").write_text(json.dumps(_config(users)))
        streams = subprocess.run(
            [str(executable), "discover", "--config", str(workdir / "config.json")],
            capture_output=True,
            text=True,
            check=True,
        )
        catalog = next(json.loads(line)["catalog"] for line in streams.stdout.splitlines() if '"CATALOG"' in line)
        users_stream = Stream.of(next(s for s in catalog["streams"] if s["name"] == "users"))
        (workdir / "catalog.json").write_text(
            json.dumps(
                configured_catalog(users_stream, list(users_stream.properties), incremental=True, primary_key=("id",))
            )
        )
        started = time.perf_counter()
        with open(os.devnull, "wb") as sink:
            subprocess.run(
                [
                    str(executable),
                    "read",
                    "--config",
                    str(workdir / "config.json"),
                    "--catalog",
                    str(workdir / "catalog.json"),
                ],
                stdout=sink,
                check=True,
            )
        seconds = time.perf_counter() - started
        rows = users
    else:
        import duckdb

        from engine.catalogs import connection_templates
        from engine.extraction import run_order
        from faker_connector import connect_airbyte, register_faker
        from support import order_of_every_account

        ctx = sqlite_context(workdir)
        warehouse = ctx.settings.warehouse
        source = register_faker(ctx, executable, spec)
        cid = connect_airbyte(ctx, source, _config(users), title="Bench", team="T1")
        users_template = next(t for t in connection_templates(ctx, ctx.source(source), cid) if t.name == "users")
        order_id = order_of_every_account(
            ctx,
            "T1",
            cid,
            template="users",
            fields=[f.name for f in users_template.fields],
            name="bench",
            history_days=30,
        )
        started = time.perf_counter()
        result = run_order(ctx, "T1", order_id, trigger="created")
        seconds = time.perf_counter() - started
        assert result.rows == users, result
        with duckdb.connect(str(warehouse), read_only=True) as con:
            rows = con.execute('SELECT count(DISTINCT id) FROM "airbyte:faker__users"').fetchone()[0]
        assert rows == users, rows
    return {
        "case": case,
        "rows": rows,
        "seconds": seconds,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "connector_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="users to read")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of both cases")
    parser.add_argument("--no-doc", action="store_true", help="do not update BENCHMARKS.md")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # child process
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.case, args.rows, Path(args.workdir))))
        return 0

    _faker()  # installed before anything is timed
    rounds = []
    for number in range(1, args.repeat + 1):
        results = {case: in_own_process("airbyte_bench", case, args.rows) for case in CASES}
        rounds.append(results)
        for case, r in results.items():
            print(
                f"round {number}  {CASES[case]:42s} {r['rows']:>9,} users {r['seconds']:6.2f} s "
                f"{r['rows'] / r['seconds']:>9,.0f} users/s  own {r['peak_mb']:4.0f} MB, connector {r['connector_mb']:4.0f} MB",
                flush=True,
            )
    ratios = [r["connbot"]["seconds"] / r["connector"]["seconds"] for r in rounds]
    own = max(r["connbot"]["peak_mb"] for r in rounds)
    connector = max(r["connbot"]["connector_mb"] for r in rounds)
    alone = max(r["connector"]["connector_mb"] for r in rounds)
    print()
    print(
        f"connbot wall time / connector alone: median {statistics.median(ratios):.2f}x (rounds: {', '.join(f'{x:.2f}' for x in ratios)})"
    )
    print(
        f"peak memory: connbot's own process {own:.0f} MB; the connector {connector:.0f} MB under connbot, {alone:.0f} MB alone"
    )
    if not args.no_doc:
        docs.write_section(SECTION, _section(args, rounds, ratios, own, connector, alone))
    return 0


def _section(args, rounds, ratios, own, connector, alone) -> str:
    median = statistics.median(ratios)
    seconds = {case: statistics.median(r[case]["seconds"] for r in rounds) for case in CASES}
    return (
        f"## {SECTION}\n\n"
        f"Measured {dt.date.today()} on {os.cpu_count()} cores with "
        f"`.venv/bin/python -m bench.airbyte_bench --rows {args.rows} --repeat {args.repeat}`.\n\n"
        f"`airbyte-source-faker`, stream `users` ({args.rows:,} records, seed {SEED}, its default parallelism), "
        "read by the connector alone into /dev/null, and by a whole connbot run (`run_order`: the "
        "connector's process, parsing, Arrow, the DuckDB loader, the saved state), rounds interleaved, "
        "each case in a process of its own.\n\n"
        "| measure | value | target |\n| --- | ---: | ---: |\n"
        f"| connector alone, median wall time | {seconds['connector']:.1f} s | |\n"
        f"| connbot run, median wall time | {seconds['connbot']:.1f} s | |\n"
        f"| connbot ÷ connector alone (median of {len(ratios)}) | {median:.2f}× | ≤ 1.15× {'met' if median <= 1.15 else 'NOT met'} |\n"
        f"| peak memory, connbot's own process | {own:.0f} MB | ≤ 250 MB {'met' if own <= 250 else 'NOT met'} |\n"
        f"| peak memory, the connector under connbot (largest process) | {connector:.0f} MB | |\n"
        f"| peak memory, the connector alone (largest process) | {alone:.0f} MB | |\n\n"
        f"Ratios by round: {', '.join(f'{x:.2f}×' for x in ratios)}. The connector itself sets the pace "
        "(connbot reads its output as it comes, in another process), so the ratio holds while the "
        "machine's load moves both.\n\n"
        "Where connbot's memory goes: about 135 MB is the process before the run (Python, pyarrow, "
        "DuckDB, SQLAlchemy, the migrations; neither structlog nor jsonschema, which only JSON logs "
        "and configuration forms load); the reading path (lines, parsed records, a batch of at "
        "most 20,000 of them) peaks at a few MB of Python objects (tracemalloc); the rest is the "
        "DuckDB loader: inserting 100,000 rows of 17 columns of text grows DuckDB's process memory "
        "by about 100 MB, bounded by committing wide rows (~330 bytes a row here) every 4 MB. "
        "Committed every 16 MB as narrow rows are, the same run peaked at 270-300 MB; every 8 MB, "
        "~268 MB; every row group, ~300 MB.\n\n"
    )


if __name__ == "__main__":
    sys.exit(main())
