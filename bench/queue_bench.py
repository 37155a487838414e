"""Queue execution benchmark: throughput of `connbot worker` processes, and the Slack path while
workers run heavy extractions, side by side in one run.

    .venv/bin/python -m bench.queue_bench [--orders 40] [--rounds 2] [--passes 25] [--no-doc]
                                          [--slack-only]

One PostgreSQL database holds connbot's tables, the task queue and the warehouse (a schema of
its own). Workers are separate `connbot worker`-like processes (engine.queue.run_workers, as
`connbot worker` runs them); this process defers the runs, as `connbot serve` or the scheduler
leader would, and plays Slack.

1. Throughput, 40 orders (one per connection) deferred at once, from the first deferral to the
   last run recorded, workers already up:
   - source-latency-bound: the demo source with a pause per batch (many small batches), 2 workers
     against 1, each with the same concurrency: target >= 1.8x;
   - CPU-bound: no pause, larger runs, 2 worker processes against 1 on this machine: reported.
   Cases alternate over `--rounds`; the median of each is compared.
2. The Slack path: the tab switches of slack_latency_bench (Accounts, Next, Settings, Orders;
   what the person waits for: the response_url post) against one `connbot serve`-like process,
   in states that alternate over the rounds:
   - idle;
   - inline: heavy extractions executed by threads of that same process, as every run was
     before queue execution;
   - queue: the same extractions executed by 2 worker processes (kept busy by a feeding process
     that defers each order's next run when its last is over); the serving process only answers
     Slack; all of them on the same CPUs;
   - queue with the workers at a lower CPU priority (`nice 10`);
   - split: the workers on hosts of their own beside one PostgreSQL, the deployment the queue is
     for, stood for by splitting the machine's CPUs in two halves (`Split`): idle, then queue,
     each measured with the Slack side on its half.
   Target: p99 <= 1.3x idle while the workers run; each state is compared with idle on the same
   CPUs. `--slack-only` measures only the Slack path and prints it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.scratch import create_pg_database, drop_pg_database
from bench.slack_latency_bench import (
    BOT_TOKEN,
    CLICKS,
    SECRET,
    TEAM,
    Player,
    Samples,
    _fake,
    percentile,
)

ROOT = Path(__file__).resolve().parent.parent
SECTION = "Queue execution"
COMMAND_LINE = ".venv/bin/python -m bench.queue_bench"
TARGET_SCALE, TARGET_SLACK = 1.8, 1.3
CONCURRENCY = 4  # runs at once per worker, in both throughput cases
LATENCY = {"token": "demo-slow:accounts=3,latency=200", "days": 10, "batch_rows": 15}  # 150 rows, 10 batches
CPU = {"token": "demo:accounts=5,campaigns=50", "days": 100, "batch_rows": 5_000}  # 20,000 rows
HEAVY = {"token": "demo:accounts=10,campaigns=100", "days": 200, "orders": 4}  # ~180,000 rows a run
SLACK_SIDE, WORKER_SIDE = "bench-slack", "bench-worker"  # application_name of each side's sessions


def _env(url: str, key: str, workdir: Path, **extra: str) -> dict:
    return {
        "PGAPPNAME": SLACK_SIDE,  # libpq's default application_name: how `Split` finds the sessions
        **os.environ,
        "CONNBOT_DATABASE_URL": url,
        "CONNBOT_WAREHOUSE": url.replace("postgresql+psycopg://", "postgresql://") + "?schema=warehouse",
        "CONNBOT_SECRET_KEYS": key,
        "CONNBOT_DATA_DIR": str(workdir),
        "CONNBOT_EXECUTION": "queue",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        **extra,
    }


def _context():
    from connbot.runtime import build_context, start_executor
    from core.settings import load_settings

    ctx = build_context(load_settings(dict(os.environ), dotenv=False))
    start_executor(ctx)
    return ctx


# --- child processes ---------------------------------------------------------------------------


def worker(batch_rows: int, concurrency: int) -> int:
    """A worker process: the queue's workers, until SIGTERM."""
    import logging

    from engine.queue import WorkerOptions, run_workers
    from sources.demo import DemoSource

    logging.basicConfig(level=logging.WARNING)
    DemoSource.batch_rows = batch_rows
    ctx = _context()
    run_workers(ctx, WorkerOptions(queues=("run",), concurrency=concurrency, grace=5.0, polling=0.5))
    return 0


def feed(heavy: str) -> int:
    """Defers the run of each `heavy` order again once its last one is over, until SIGTERM, as the
    scheduler or Run now would, and in a process of its own: not in the process that measures."""
    from sqlalchemy import select

    from engine.extraction import start_run
    from storage.models import ExtractionRun

    ctx = _context()
    orders = {int(o) for o in heavy.split(",")}
    print("ready", flush=True)
    while True:
        with ctx.db.begin() as session:
            busy = set(
                session.scalars(select(ExtractionRun.order_id).where(ExtractionRun.status.in_(("queued", "running"))))
            )
        for order_id in orders - busy:
            start_run(ctx, TEAM, order_id, trigger="manual")
        time.sleep(0.5)


def serve(heavy: str) -> int:
    """The Slack-serving process; POST /bench/inline?on=1|0 starts or stops heavy extractions
    run by threads of this process (inline), one per order of `heavy`."""
    import logging

    import waitress

    from bot.app import create_app
    from connbot.server import settle_start_up, wsgi_app
    from engine.executor import InlineExecutor
    from engine.extraction import run_order

    logging.basicConfig(level=logging.WARNING)
    ctx = _context()
    app, _ = create_app(ctx)
    slack = wsgi_app(app)
    inline_ctx = _context()
    inline_ctx.executor = InlineExecutor()  # runs claimed and executed here, as before the queue
    orders = [int(o) for o in heavy.split(",")]
    loading = threading.Event()
    threads: list[threading.Thread] = []

    def load(order_id: int) -> None:
        while loading.is_set():
            run_order(inline_ctx, TEAM, order_id, trigger="manual")

    def application(environ, start_response):
        if environ.get("PATH_INFO") == "/bench/inline":
            if "on=1" in environ.get("QUERY_STRING", ""):
                loading.set()
                threads[:] = [threading.Thread(target=load, args=(o,), daemon=True) for o in orders]
                for thread in threads:
                    thread.start()
            else:
                loading.clear()
                for thread in threads:
                    thread.join()
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        return slack(environ, start_response)

    settle_start_up()
    server = waitress.create_server(application, host="127.0.0.1", port=0, threads=8, ident="connbot")
    print(json.dumps({"port": server.effective_port}), flush=True)
    server.run()
    return 0


def _spawn(args: list[str], env: dict, *, stdout=None, nice: int = 0, cpus: set[int] | None = None) -> subprocess.Popen:
    def prepare() -> None:
        if nice:
            os.nice(nice)
        if cpus:
            os.sched_setaffinity(0, cpus)

    return subprocess.Popen(
        [sys.executable, "-m", "bench.queue_bench", *args],
        cwd=ROOT,
        env=env,
        stdout=stdout,
        preexec_fn=prepare if nice or cpus else None,
    )


def _pin(pid: int, cpus: set[int]) -> None:
    """Every thread of `pid` on `cpus` (affinity is a thread's, and the threads already exist)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except ProcessLookupError:
            pass  # the thread ended meanwhile


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


class Split:
    """The machine's CPUs in two halves, as if the workers ran on a host of their own beside one
    PostgreSQL: the Slack side (`processes`, and the sessions named SLACK_SIDE) on the first half;
    the workers (spawned there) and the rest of PostgreSQL (its postmaster, so every new session
    starts there, its background processes and the other sessions) on the second. Sessions are
    moved as they appear, until `stop`, which gives everything every CPU again. PostgreSQL must run
    on this machine."""

    def __init__(self, ctx, processes: list[int]):
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            raise SystemExit("splitting the CPUs needs at least 2")
        self.all, self.slack, self.workers = set(cpus), set(cpus[: len(cpus) // 2]), set(cpus[len(cpus) // 2 :])
        self.ctx, self.processes = ctx, processes
        self.on = threading.Event()
        self.thread: threading.Thread | None = None
        self.postmaster = 0

    def start(self) -> None:
        from sqlalchemy import text

        with self.ctx.db.engine.connect() as conn:
            backend = conn.scalar(text("SELECT pg_backend_pid()"))
        try:
            self.postmaster = _parent(backend)
        except FileNotFoundError:
            raise SystemExit("splitting the CPUs needs PostgreSQL on this machine") from None
        for pid in self.processes:
            _pin(pid, self.slack)
        self.on.set()
        self._place(split=True)
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while self.on.wait(0.1) and self.on.is_set():
            self._place(split=True)

    def _place(self, *, split: bool) -> None:
        from sqlalchemy import text

        with self.ctx.db.engine.connect() as conn:
            slack = set(
                conn.scalars(text("SELECT pid FROM pg_stat_activity WHERE application_name = :s"), {"s": SLACK_SIDE})
            )
        children = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and _parent(int(entry.name)) == self.postmaster:
                    children.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                pass  # ended meanwhile
        for pid in (self.postmaster, *children):
            cpus = (self.slack if pid in slack else self.workers) if split else self.all
            try:
                if os.sched_getaffinity(pid) != cpus:
                    os.sched_setaffinity(pid, cpus)
            except ProcessLookupError:
                pass  # the session ended meanwhile

    def stop(self) -> None:
        """Everything on every CPU again; also after a failed start (PostgreSQL is the machine's)."""
        self.on.clear()
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.postmaster:
            self._place(split=False)
        for pid in self.processes:
            if Path(f"/proc/{pid}").exists():
                _pin(pid, self.all)


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- set-up ------------------------------------------------------------------------------------


def seed(env: dict, orders: int) -> dict:
    from sqlalchemy import select

    from engine.account_sync import sync_accounts
    from engine.executor import InlineExecutor
    from operations.auth import Actor
    from operations.connections import make_connection
    from storage.models import Account, ExtractionOrder, OrderAccount

    os.environ.update(env)
    ctx = _context()
    queued, ctx.executor = ctx.executor, InlineExecutor()  # first syncs here: set-up, not measured
    fields = ["campaign_name", "impressions", "clicks", "spend"]

    def connection_with_order(token: str, days: int) -> tuple[int, int]:
        cid = make_connection(ctx, Actor.system(TEAM), "demo", {"token": token})
        sync_accounts(ctx, TEAM, cid, trigger="connect")
        with ctx.db.begin() as session:
            order = ExtractionOrder(
                team_id=TEAM,
                connection_id=cid,
                name=f"{token} {days}d",
                template="campaign_daily",
                fields=fields,
                history_days=days - 1,
                schedule={"kind": "daily", "at": "06:00"},
                timezone="UTC",
                created_by="UBENCH",
                created_at=ctx.clock.now(),
            )
            session.add(order)
            session.flush()
            for account_id in session.scalars(select(Account.id).where(Account.connection_id == cid)):
                session.add(OrderAccount(order_id=order.id, account_id=account_id))
            return cid, order.id

    made = {
        "latency": [connection_with_order(LATENCY["token"], LATENCY["days"])[1] for _ in range(orders)],
        "cpu": [connection_with_order(CPU["token"], CPU["days"])[1] for _ in range(orders)],
        "heavy": [connection_with_order(HEAVY["token"], HEAVY["days"])[1] for _ in range(HEAVY["orders"])],
    }
    made["card"] = connection_with_order("demo:accounts=30,business=acme", 30)[0]
    ctx.executor = queued
    return made


def _reset_runs(ctx) -> None:
    from sqlalchemy import text

    with ctx.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM extraction_runs"))
        conn.execute(text("TRUNCATE procrastinate_jobs, procrastinate_events RESTART IDENTITY CASCADE"))
        conn.execute(text("DROP SCHEMA IF EXISTS warehouse CASCADE"))


def _workers_up(ctx, count: int, timeout: float = 60) -> None:
    from sqlalchemy import text

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with ctx.db.engine.connect() as conn:
            alive = conn.scalar(text("SELECT count(*) FROM procrastinate_workers"))
        if alive >= count:
            return
        time.sleep(0.1)
    raise SystemExit(f"{count} workers did not start in {timeout:.0f} s")


# --- 1. throughput -----------------------------------------------------------------------------


def throughput(ctx, env: dict, orders: list[int], kind: dict, workers: int) -> dict:
    """Seconds from the first deferral to the last run recorded, with `workers` processes."""
    from sqlalchemy import func, select

    from engine.extraction import start_run
    from storage.models import ExtractionRun

    _reset_runs(ctx)
    processes = [_spawn(["--worker", str(kind["batch_rows"]), str(CONCURRENCY)], env) for _ in range(workers)]
    try:
        _workers_up(ctx, workers)
        started = time.perf_counter()
        for order_id in orders:
            start_run(ctx, TEAM, order_id, trigger="manual")
        while True:
            with ctx.db.begin() as session:
                left, rows, failed = session.execute(
                    select(
                        func.count().filter(ExtractionRun.status.in_(("queued", "running"))),
                        func.coalesce(func.sum(ExtractionRun.rows), 0),
                        func.count().filter(ExtractionRun.status != "succeeded"),
                    )
                ).one()
            if not left:
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - started
    finally:
        _stop(processes)
    if failed:
        raise SystemExit(f"{failed} run(s) did not succeed")
    return {"workers": workers, "seconds": seconds, "rows": rows}


# --- 2. the Slack path -------------------------------------------------------------------------


class QueueLoad:
    """2 worker processes kept busy with the heavy orders by a feeding process, as long as it is on."""

    def __init__(self, ctx, env: dict, orders: list[int], nice: int = 0, split: Split | None = None):
        self.ctx, self.env, self.orders, self.nice, self.split = ctx, env, orders, nice, split
        self.processes: list[subprocess.Popen] = []

    def start(self) -> None:
        workers = self.split.workers if self.split else None
        if self.split:
            self.split.start()
        worker_env = {**self.env, "PGAPPNAME": WORKER_SIDE}
        self.processes = [
            _spawn(["--worker", "50000", "1"], worker_env, nice=self.nice, cpus=workers) for _ in range(2)
        ]
        feeder_cpus = self.split.slack if self.split else None
        feeder = _spawn(["--feed", ",".join(map(str, self.orders))], self.env, stdout=subprocess.PIPE, cpus=feeder_cpus)
        self.processes.append(feeder)
        feeder.stdout.readline()  # "ready": its start-up is not measured
        _workers_up(self.ctx, 2)

    def stop(self) -> None:
        _stop(self.processes)  # the workers drain: the runs under way are queued again, then cancelled below
        if self.split:
            self.split.stop()
        from sqlalchemy import text

        with self.ctx.db.engine.begin() as conn:
            conn.execute(text("UPDATE extraction_runs SET status = 'cancelled' WHERE status IN ('queued', 'running')"))
            conn.execute(text("UPDATE procrastinate_jobs SET status = 'cancelled' WHERE status = 'todo'"))


class Idle:
    """No load; with a `split`, the Slack side on its half of the CPUs."""

    def __init__(self, split: Split | None = None):
        self.split = split

    def start(self) -> None:
        if self.split:
            self.split.start()

    def stop(self) -> None:
        if self.split:
            self.split.stop()


def slack_path(ctx, env: dict, made: dict, rounds: int, passes: int) -> dict[str, Samples]:
    import urllib.request

    fake = _fake()
    fake.__enter__()
    env = {**env, "SLACK_API_URL": fake.base_url}
    server = _spawn(["--serve", ",".join(map(str, made["heavy"]))], env, stdout=subprocess.PIPE)
    url = f"http://127.0.0.1:{json.loads(server.stdout.readline())['port']}"
    player = Player(fake, url)
    split = Split(ctx, [os.getpid(), server.pid])
    loads = {
        "queue": QueueLoad(ctx, env, made["heavy"]),
        "queue-nice": QueueLoad(ctx, env, made["heavy"], nice=10),
        "idle-split": Idle(split),
        "queue-split": QueueLoad(ctx, env, made["heavy"], split=split),
    }
    samples = {state: Samples() for state in ("idle", "inline", *loads)}

    def measure(state: str, count: int) -> None:
        for _ in range(count):
            passed = Samples()
            player.one_pass(made["card"], "acme", passed)
            for step in CLICKS:
                samples[state].visible[step] += passed.visible[step]
                samples[state].ack[step] += passed.ack[step]

    def inline(on: bool) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{url}/bench/inline?on={int(on)}", method="POST")).read()

    try:
        measure("idle", 5)  # warm-up
        samples["idle"] = Samples()
        for _ in range(rounds):
            measure("idle", passes)
            inline(True)
            time.sleep(2)  # the extractions under way
            measure("inline", passes)
            inline(False)
            for state, load in loads.items():
                try:
                    load.start()
                    time.sleep(2 if isinstance(load, QueueLoad) else 0.5)  # the extractions under way
                    measure(state, passes)
                finally:
                    load.stop()
    finally:
        split.stop()
        _stop([server])
        fake.__exit__(None, None, None)
    return samples


# --- report ------------------------------------------------------------------------------------


def _clicks(s: Samples) -> list[float]:
    return [v for step in CLICKS for v in s.visible[step]]


def render(results: dict, args) -> tuple[str, bool]:
    lat = {w: statistics.median(r["seconds"] for r in results["latency"] if r["workers"] == w) for w in (1, 2)}
    cpu = {w: statistics.median(r["seconds"] for r in results["cpu"] if r["workers"] == w) for w in (1, 2)}
    lat_ratio, cpu_ratio = lat[1] / lat[2], cpu[1] / cpu[2]
    rows = {k: results[k][0]["rows"] for k in ("latency", "cpu")}
    slack = {state: _clicks(s) for state, s in results["slack"].items()}
    # Each state against the idle state on the same CPUs: the split states against idle on the half.
    base = {state: "idle-split" if state.endswith("-split") else "idle" for state in slack}
    ratio = {state: percentile(v, 0.99) / percentile(slack[base[state]], 0.99) for state, v in slack.items()}
    p50_ratio = {state: percentile(v, 0.5) / percentile(slack[base[state]], 0.5) for state, v in slack.items()}
    met_scale, met_slack = lat_ratio >= TARGET_SCALE, ratio["queue-split"] <= TARGET_SLACK
    lines = [
        f"## {SECTION}",
        "",
        f"`{COMMAND_LINE} --orders {args.orders} --rounds {args.rounds} --passes {args.passes}` on "
        f"{dt.date.today().isoformat()}, {os.cpu_count()} cores ({platform.machine()}), PostgreSQL on loopback "
        "for connbot's tables, the task queue and the warehouse (a schema of the same database). Workers are "
        "processes of their own running `engine.queue.run_workers`, as `connbot worker` does; the machine was "
        "shared with other work while this ran.",
        "",
        f"### Throughput: {args.orders} orders deferred at once",
        "",
        f"Each case starts its workers, waits until they are registered, then times from the first deferral to the "
        f"last run recorded; cases alternate over {args.rounds} rounds, medians compared. {CONCURRENCY} runs at "
        "once per worker in both cases.",
        "",
        "| case | rows | 1 worker | 2 workers | 2 vs 1 | target |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
        f"| source-latency-bound (`{LATENCY['token']}`, {LATENCY['batch_rows']}-row batches, {LATENCY['days']} days) "
        f"| {rows['latency']:,} | {lat[1]:.2f} s | {lat[2]:.2f} s | {lat_ratio:.2f}x | >= {TARGET_SCALE}x: "
        f"{'met' if met_scale else 'NOT met'} |",
        f"| CPU-bound (`{CPU['token']}`, {CPU['days']} days, no pause) | {rows['cpu']:,} | {cpu[1]:.2f} s | "
        f"{cpu[2]:.2f} s | {cpu_ratio:.2f}x | reported |",
        "",
        "Every round: "
        + "; ".join(f"{k} {r['workers']}w {r['seconds']:.2f} s" for k in ("latency", "cpu") for r in results[k])
        + ".",
        "",
        "### The Slack path while workers run heavy extractions",
        "",
        f"Tab switches (Accounts, Next, Settings, Orders; the time until the response_url post lands) against one "
        f"serving process, {len(slack['idle']):,} samples per state. Heavy extractions: {HEAVY['orders']} orders of "
        f"`{HEAVY['token']}` over {HEAVY['days']} days, loaded into PostgreSQL again and again: by 4 threads of the "
        "serving process itself (inline, as before queue execution), or by 2 worker processes (queue).",
        "",
        "| state | CPUs of the Slack side | p50 | p99 | p50 vs idle | p99 vs idle |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    cores, half = os.cpu_count(), os.cpu_count() // 2
    for state, label, cpus in (
        ("idle", "idle", f"all {cores}"),
        ("inline", "inline: extractions in the serving process", f"all {cores}"),
        ("queue", "queue: extractions on 2 workers on the same CPUs", f"all {cores}"),
        ("queue-nice", "queue: the same, workers at `nice 10`", f"all {cores}"),
        ("idle-split", "idle, the Slack side on its half of the CPUs", f"{half} of {cores}"),
        ("queue-split", "queue: extractions on 2 workers on the other half", f"{half} of {cores}"),
    ):
        lines.append(
            f"| {label} | {cpus} | {percentile(slack[state], 0.5) * 1000:.1f} ms "
            f"| {percentile(slack[state], 0.99) * 1000:.1f} ms | {p50_ratio[state]:.2f}x | {ratio[state]:.2f}x |"
        )
    lines += [
        "",
        "The split states stand for the deployment docs/DEPLOYMENT.md describes, `connbot worker` on hosts of its "
        "own beside one PostgreSQL: the Slack side (the serving process, this process that plays Slack and "
        "defers the runs, and their PostgreSQL sessions) on one half of the CPUs; the workers, their sessions and "
        "the rest of PostgreSQL (its background processes; new sessions start there) on the other. Each is "
        "compared with idle on the same CPUs. Disk, memory and PostgreSQL's locks and buffers stay shared.",
        "",
        f"Target: p99 <= {TARGET_SLACK}x idle while 2 workers run heavy extractions. With the workers on CPUs of "
        f"their own: {ratio['queue-split']:.2f}x, {'met' if met_slack else 'NOT met'}. With the workers on the "
        f"serving process's CPUs: {ratio['queue']:.2f}x (at `nice 10`: {ratio['queue-nice']:.2f}x), "
        f"{'within' if ratio['queue'] <= TARGET_SLACK else 'NOT within'} the target: the worker processes and "
        "PostgreSQL loading the warehouse take the CPUs the serving process needs. Moving the extractions to "
        "workers takes away the shared interpreter (inline: "
        f"{ratio['inline']:.2f}x), and a separate host takes away the shared CPUs: that is what `connbot worker` "
        "is for. Run workers on the serving hosts only at a lower priority (`Nice=` in systemd), and expect "
        "slower clicks while they work.",
        "",
    ]
    return "\n".join(lines), met_scale and met_slack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--passes", type=int, default=25, help="Slack passes per state and round (4 tab switches each)")
    parser.add_argument("--no-doc", action="store_true")
    parser.add_argument("--slack-only", action="store_true", help="only the Slack path, printed (implies --no-doc)")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--feed", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(int(args.worker[0]), int(args.worker[1]))
    if args.serve:
        return serve(args.serve)
    if args.feed:
        return feed(args.feed)

    from engine.queue import upgrade_schema
    from storage.db import Database
    from storage.vault import generate_key

    url = create_pg_database()
    workdir = Path(tempfile.mkdtemp(prefix="connbot-queue-bench-"))
    try:
        db = Database(url)
        db.upgrade()
        upgrade_schema(db.engine)
        db.dispose()
        env = _env(url, generate_key(), workdir)
        made = seed(env, args.orders)
        ctx = _context()
        results: dict = {"latency": [], "cpu": []}
        for _ in range(0 if args.slack_only else args.rounds):
            for name, kind in (("latency", LATENCY), ("cpu", CPU)):
                for workers in (1, 2):
                    result = throughput(ctx, env, made[name], kind, workers)
                    print(f"{name} {workers} worker(s): {result['seconds']:.2f} s, {result['rows']:,} rows", flush=True)
                    results[name].append(result)
        _reset_runs(ctx)
        results["slack"] = slack_path(ctx, env, made, args.rounds, args.passes)
        ctx.db.dispose()
    finally:
        drop_pg_database(url)
    if args.slack_only:
        for state, samples in results["slack"].items():
            clicks = _clicks(samples)
            print(f"{state}: p50 {percentile(clicks, 0.5) * 1000:.1f} ms, p99 {percentile(clicks, 0.99) * 1000:.1f} ms")
        return 0
    text, met = render(results, args)
    print(text)
    if not args.no_doc:
        from bench.docs import write_section

        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
