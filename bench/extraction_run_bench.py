"""Extraction run benchmark: a whole run (`engine.extraction.run_order`) against the loader alone.

    .venv/bin/python -m bench.extraction_run_bench [--rows 1000000] [--repeat 3]

The baseline is the plainest way to do a run's work: the demo source's `extract` streamed
straight into `engine.warehouse` (DuckDB file), with nothing recorded. A run adds the claim, the
lease, decrypting the credentials, one SELECT per batch (should_stop) and the bookkeeping, with
SQLite as the system of record; it should cost a few percent at most. Each case runs in its own
process on fresh files, so its peak memory (ru_maxrss) is its own; the run is also measured at a
fifth of the rows, to show that memory does not grow with the rows (batches are streamed).

Rows: `campaign_daily` (date, account_id, campaign_id, campaign_name, impressions, clicks,
spend, conversions), 5 campaigns per account, up to 1000 days, in Arrow batches of 50,000.
Results are printed and written to the "Extraction runs" section of docs/BENCHMARKS.md
(`--no-doc` to skip); the loader against a bare DuckDB insert is the "Extraction loading" section.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

from bench import docs
from bench.scratch import in_own_process, sqlite_context

SECTION = "Extraction runs"
CAMPAIGNS = 5
FIELDS = ["campaign_name", "impressions", "clicks", "spend", "conversions"]
CASES = {"loader": "demo extract -> warehouse.load (baseline)", "run": "run_order (created run)"}


def run_case(case: str, rows: int, workdir: Path) -> dict:
    import duckdb
    from sqlalchemy import select

    from engine.account_sync import sync_accounts
    from engine.extraction import run_order
    from engine.warehouse import open_warehouse
    from operations.auth import Actor
    from operations.connections import make_connection
    from storage.models import Account, Connection, ExtractionOrder, OrderAccount

    days = min(1000, max(1, rows // CAMPAIGNS))
    accounts = -(-rows // (CAMPAIGNS * days))
    ctx = sqlite_context(workdir)
    warehouse = Path(ctx.settings.warehouse)
    # Some demo accounts are inactive: ask for more, order only `accounts` active ones.
    token = f"demo:accounts={accounts + accounts // 4 + 20},campaigns={CAMPAIGNS}"
    cid = make_connection(ctx, Actor.system("T1"), "demo", {"token": token})
    sync_accounts(ctx, "T1", cid, trigger="connect")
    with ctx.db.begin() as session:
        chosen = session.execute(
            select(Account.id, Account.external_id)
            .where(Account.connection_id == cid, Account.active.is_(True))
            .order_by(Account.id)
            .limit(accounts)
        ).all()
        order = ExtractionOrder(
            team_id="T1",
            connection_id=cid,
            name="bench",
            template="campaign_daily",
            fields=FIELDS,
            history_days=days - 1,
            schedule={"kind": "daily", "at": "06:00"},
            timezone="UTC",
            created_by="bench",
            created_at=ctx.clock.now(),
        )
        session.add(order)
        session.flush()
        session.add_all(OrderAccount(order_id=order.id, account_id=account_id) for account_id, _ in chosen)
        order_id, sealed = order.id, session.get(Connection, cid).credentials
    expected = len(chosen) * CAMPAIGNS * days

    started = time.perf_counter()
    if case == "run":
        result = run_order(ctx, "T1", order_id, trigger="created")
        assert result.rows == expected, result
    else:
        source = ctx.source("demo")
        template = next(t for t in source.templates() if t.name == "campaign_daily")
        today = ctx.clock.now().date()
        batches = source.extract(
            ctx.vault.decrypt(sealed),
            [external for _, external in chosen],
            template.name,
            FIELDS,
            today - timedelta(days=days - 1),
            today,
        )
        with open_warehouse(str(warehouse)) as loader:
            assert (
                loader.load(source="demo", template=template, batches=batches, connection_id=cid, run_id=1).rows
                == expected
            )
    seconds = time.perf_counter() - started
    con = duckdb.connect(str(warehouse), read_only=True)
    loaded = con.execute('SELECT count(*) FROM "demo__campaign_daily"').fetchone()[0]
    con.close()
    assert loaded == expected, (loaded, expected)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"case": case, "rows": expected, "seconds": seconds, "peak_mb": peak_mb}


def measure(case: str, rows: int) -> dict:
    return in_own_process("extraction_run_bench", case, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of both cases")
    parser.add_argument("--no-doc", action="store_true", help="do not update BENCHMARKS.md")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # child process
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.case, args.rows, Path(args.workdir))))
        return 0

    ratios, peaks = [], {"loader": 0.0, "run": 0.0}
    for number in range(1, args.repeat + 1):
        results = {case: measure(case, args.rows) for case in CASES}  # interleaved rounds
        for case, r in results.items():
            peaks[case] = max(peaks[case], r["peak_mb"])
            print(
                f"round {number}  {CASES[case]:45s} {r['rows']:>9,} rows {r['seconds']:6.2f} s "
                f"{r['rows'] / r['seconds']:>10,.0f} rows/s {r['peak_mb']:5.0f} MB",
                flush=True,
            )
        ratios.append(results["loader"]["seconds"] / results["run"]["seconds"])
    small = measure("run", args.rows // 5)
    print()
    print(
        f"run speed / loader speed: median {statistics.median(ratios):.2f}x "
        f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})"
    )
    print(
        f"peak memory: loader {peaks['loader']:.0f} MB, run {peaks['run']:.0f} MB at {args.rows:,} rows; "
        f"run {small['peak_mb']:.0f} MB at {small['rows']:,} rows"
    )
    if not args.no_doc:
        docs.write_section(SECTION, _section(args, ratios, peaks, small))
    return 0


def _section(args, ratios: list[float], peaks: dict, small: dict) -> str:
    return (
        f"## {SECTION}\n\n"
        f"Measured {dt.date.today()} on {os.cpu_count()} cores with "
        f"`.venv/bin/python -m bench.extraction_run_bench --rows {args.rows} --repeat {args.repeat}`.\n\n"
        "A whole run (`engine.extraction.run_order`: claim, lease, credentials, a stop check per batch, "
        "bookkeeping in SQLite) against the loader fed straight from the demo source, same rows, each "
        "in its own process.\n\n"
        "| measure | value |\n| --- | ---: |\n"
        f"| run speed ÷ loader speed (median of {len(ratios)}) | {statistics.median(ratios):.2f}× |\n"
        f"| peak memory, loader, {args.rows:,} rows | {peaks['loader']:.0f} MB |\n"
        f"| peak memory, run, {args.rows:,} rows | {peaks['run']:.0f} MB |\n"
        f"| peak memory, run, {small['rows']:,} rows | {small['peak_mb']:.0f} MB |\n\n"
        "With the loader at the ratio to a bare DuckDB insert shown under *Extraction loading*, a run "
        "reaches that ratio times the one above; memory does not grow with the rows (batches stream).\n"
    )


if __name__ == "__main__":
    sys.exit(main())
