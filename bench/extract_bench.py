"""Extraction loading benchmark: our warehouse loader against a bare DuckDB insert.

    .venv/bin/python -m bench.extract_bench [--rows 1000000] [--repeat 3] [--no-dlt] [--no-doc]

Rows come from the demo source's `extract` (template `campaign_daily`, 8 columns, Arrow batches
of 50,000), generated inside the timed section for every case, as during a real run. Each case
runs in its own subprocess on a fresh DuckDB file, so the peak memory (ru_maxrss) is its own:

- bare:        `INSERT INTO t SELECT * FROM batch` per batch (autocommit), no key: the baseline;
- bare, one transaction: the same in a single transaction, for reference (nothing committed
  until the end, which a cancellable run cannot afford);
- loader:      `engine.warehouse` into an empty table (merge on the primary key);
- loader, rerun: the same rows loaded a second time, so every row is merged over (timed run only);
- dlt:         `engine.warehouse`'s dlt path into dlt's DuckDB destination (merge disposition,
               Arrow batches, packages of 250,000 rows), for reference.

Target (docs/BENCHMARKS.md): the loader reaches >= 0.5x the bare rate, under 300 MB peak.
The results are written to the "Extraction loading" section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from bench import docs
from bench.scratch import in_own_process

ROOT = Path(__file__).resolve().parent.parent
SECTION = "Extraction loading"
BATCH_ROWS = 50_000
FIELDS = (
    "date",
    "account_id",
    "campaign_id",
    "campaign_name",
    "impressions",
    "clicks",
    "spend",
    "conversions",
)
CAMPAIGNS = 5
TARGET_RATIO, TARGET_MB = 0.5, 300
CASES = {
    "bare": "bare DuckDB insert (baseline)",
    "bare_one_tx": "bare DuckDB insert, one transaction",
    "loader": "engine.warehouse, empty table",
    "loader_rerun": "engine.warehouse, same rows again (all merged)",
    "dlt": "engine.warehouse via dlt's duckdb destination (reference)",
}


# --- the rows -------------------------------------------------------------------------------


def demo_batches(rows: int) -> Iterator[pa.Table]:
    """`rows` rows of the demo source's campaign_daily report, as its `extract` yields them."""
    from sources.base import Credentials
    from sources.demo import DemoSource

    # accounts x 5 campaigns x days = rows: up to 1000 days per account, then more accounts.
    days = min(1000, max(1, rows // CAMPAIGNS))
    accounts = max(1, -(-rows // (CAMPAIGNS * days)))
    source = DemoSource()
    source.batch_rows = BATCH_ROWS
    credentials = Credentials({"token": f"demo:accounts={accounts},campaigns={CAMPAIGNS}"})
    ids = [a.external_id for page in source.list_accounts(credentials) for a in page]
    start = dt.date(2022, 1, 1)
    end = start + dt.timedelta(days=days - 1)
    left = rows
    for batch in source.extract(credentials, ids, "campaign_daily", FIELDS, start, end):
        if left <= 0:
            break
        yield batch.slice(0, left) if batch.num_rows > left else batch
        left -= batch.num_rows


def campaign_daily_template():
    from sources.demo import TEMPLATES

    return next(t for t in TEMPLATES if t.name == "campaign_daily")


# --- the cases, each in a child process -------------------------------------------------------


def run_case(case: str, rows: int, workdir: Path) -> dict:
    import duckdb

    path = str(workdir / f"{case}.duckdb")
    template = campaign_daily_template()
    if case in ("bare", "bare_one_tx"):
        con = duckdb.connect(path)
        started = time.perf_counter()
        created = False
        if case == "bare_one_tx":
            con.begin()
        for batch in demo_batches(rows):  # noqa: B007 - DuckDB reads `batch` by name
            if not created:  # the table takes the batch's own types: nothing to convert
                con.execute("CREATE TABLE t AS SELECT * FROM batch LIMIT 0")
                created = True
            con.execute("INSERT INTO t SELECT * FROM batch")  # bare: a commit per batch
        if case == "bare_one_tx":
            con.commit()
        seconds = time.perf_counter() - started
        loaded = con.execute("SELECT count(*) FROM t").fetchone()[0]
        con.close()
    elif case in ("loader", "loader_rerun"):
        from engine.warehouse import open_warehouse

        with open_warehouse(path) as warehouse:
            if case == "loader_rerun":
                warehouse.load(source="demo", template=template, batches=demo_batches(rows), connection_id=1, run_id=1)
            started = time.perf_counter()
            result = warehouse.load(
                source="demo", template=template, batches=demo_batches(rows), connection_id=1, run_id=2
            )
            seconds = time.perf_counter() - started
        con = duckdb.connect(path)
        loaded = con.execute('SELECT count(*) FROM "demo__campaign_daily"').fetchone()[0]
        con.close()
        assert result.rows == rows, result
    elif case == "dlt":
        from engine.warehouse import open_warehouse

        url = f"dlt:duckdb?credentials={path}&pipelines_dir={workdir / 'pipelines'}"
        with open_warehouse(url) as warehouse:
            started = time.perf_counter()
            warehouse.load(source="demo", template=template, batches=demo_batches(rows), connection_id=1, run_id=1)
            seconds = time.perf_counter() - started
        con = duckdb.connect(path)
        loaded = con.execute('SELECT count(*) FROM connbot."demo__campaign_daily"').fetchone()[0]
        con.close()
    else:
        raise ValueError(case)
    assert loaded == rows, (case, loaded, rows)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"case": case, "rows": rows, "seconds": seconds, "peak_mb": peak_mb}


def measure(case: str, rows: int) -> dict:
    return in_own_process("extract_bench", case, rows)


# --- the report -------------------------------------------------------------------------------


def render(rounds: list[dict[str, dict]], rows: int) -> str:
    """The doc section: medians over the rounds; ratios taken within each round."""
    cases = list(rounds[0])

    def ratios(case: str, baseline: str) -> list[float]:
        return [r[baseline]["seconds"] / r[case]["seconds"] for r in rounds if baseline in r]

    seconds = {c: statistics.median(r[c]["seconds"] for r in rounds) for c in cases}
    peak = {c: max(r[c]["peak_mb"] for r in rounds) for c in cases}
    loader = ratios("loader", "bare")
    ratio = statistics.median(loader)
    met = ratio >= TARGET_RATIO and peak["loader"] < TARGET_MB
    lines = [
        f"## {SECTION}",
        "",
        f"Measured {dt.date.today().isoformat()} on {os.cpu_count()} cores "
        f"({platform.machine()}, Python {platform.python_version()}, "
        f"DuckDB {_version('duckdb')}, pyarrow {pa.__version__}, dlt {_version('dlt')}) with "
        f"`.venv/bin/python -m bench.extract_bench --rows {rows} --repeat {len(rounds)}`.",
        "",
        f"{rows:,} rows of the demo source's `campaign_daily` report (8 columns: date, "
        "account_id, campaign_id, campaign_name, impressions, clicks, spend decimal, "
        f"conversions) in Arrow batches of {BATCH_ROWS:,}, generated inside the timing for every "
        "case; each case in its own process on a fresh DuckDB file; peak = that process's "
        f"ru_maxrss. {len(rounds)} rounds, each running every case once; the table shows median "
        "seconds, the median of the per-round ratios and the highest peak.",
        "",
        "| case | seconds | rows/s | × bare | × bare, one transaction | peak MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in cases:
        versus_bare, versus_one_tx = ratios(c, "bare"), ratios(c, "bare_one_tx")
        lines.append(
            f"| {CASES[c]} | {seconds[c]:.2f} | {rows / seconds[c]:,.0f} | "
            f"{statistics.median(versus_bare):.2f} | "
            + (f"{statistics.median(versus_one_tx):.2f}" if versus_one_tx else "–")
            + f" | {peak[c]:.0f} |"
        )
    lines += [
        "",
        f"Target: the loader (empty table) at ≥ {TARGET_RATIO}× the bare insert, "
        f"peak < {TARGET_MB} MB. Result: {ratio:.2f}× (rounds: "
        f"{', '.join(f'{x:.2f}' for x in loader)}), {peak['loader']:.0f} MB — "
        + ("**met**." if met else "**not met**.")
        + " The baseline commits each batch (autocommit); one transaction for all rows, which a"
        " run that can be stopped cannot use, is shown for reference. Timings vary with the load"
        " other work puts on this shared 2-core machine, hence rounds.",
        "",
        "How the loader gets there (DuckDB): each merge is one transaction that deletes the "
        "rows with the staged keys for the same connection, then inserts the staged Arrow table; "
        "the table has no PRIMARY KEY. Rows of fast batches are committed one DuckDB row group "
        "(122,880 rows) at a time, a batch that was slow to come is committed at once, a stop "
        "commits what is pending. Measured while choosing, 1,000,000 rows on this machine: "
        "PRIMARY KEY + `INSERT ... ON CONFLICT DO UPDATE` ~0.35x bare and `INSERT OR REPLACE` "
        "~0.3x (maintaining the ART index); DELETE+INSERT committing each 50,000-row batch "
        "~0.55x and 250-310 MB (a commit per batch: WAL, fsync, checkpoints); committing row "
        "groups 0.7-1.0x, 240-260 MB. Columns exist for the fields a run extracts (NULL-only "
        "columns for unextracted template fields cost ~30 MB and ~15% here). The dlt path, "
        "kept for other destinations, loads packages of 250,000 rows so its memory stays flat "
        "(one package for the whole run peaked at ~680 MB per 1,000,000 rows and ~1.1 GB per "
        "2,000,000).",
        "",
    ]
    return "\n".join(lines)


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except Exception:
        return "?"


def write_section(text: str) -> None:
    docs.write_section(SECTION, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of all cases")
    parser.add_argument("--no-dlt", action="store_true", help="skip the (slower) dlt case")
    parser.add_argument("--no-doc", action="store_true", help="do not update BENCHMARKS.md")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # child process
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.case:
        print(json.dumps(run_case(args.case, args.rows, Path(args.workdir))))
        return 0

    cases = [c for c in CASES if not (args.no_dlt and c == "dlt")]
    rounds = []
    for number in range(1, args.repeat + 1):
        results = {}
        for case in cases:  # interleaved, so a busy moment hits every case alike
            results[case] = result = measure(case, args.rows)
            print(
                f"round {number}  {CASES[case]:58s} {result['seconds']:6.2f} s  "
                f"{args.rows / result['seconds']:>10,.0f} rows/s  {result['peak_mb']:5.0f} MB",
                flush=True,
            )
        rounds.append(results)
    text = render(rounds, args.rows)
    print()
    print(text)
    if not args.no_doc:
        write_section(text)
        print(f"updated {docs.DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
