"""Slack latency benchmark: what a person waits for in Slack, connbot against a no-op bolt app.

    .venv/bin/python -m bench.slack_latency_bench [--samples 200] [--database sqlite|postgresql|both]
                                                  [--rounds 4] [--warmup 10] [--no-doc]

Both apps run as separate processes served by waitress (8 threads), as `connbot serve` serves
connbot, on loopback. This process plays Slack: `fakeslack.FakeSlack` is the Web API and
the response_urls, `AppDriver`/`SlackUser` send signed requests of Slack's real shapes.

One database holds three demo connections (100, 10,000 and 100,000 accounts: the demo source's
accounts bulk-inserted, then synced by the real account sync; each with 1,000 extraction orders
that have 1-5 accounts and a last run; PostgreSQL ANALYZEd, as autovacuum would). One pass
over a connection is seven interactions, each timed twice:

    list      `/connections <business>`: the list, searched down to that connection (ack = message)
    card      `/connections <id>`: the card, Extraction orders tab (ack = message)
    accounts  click the Accounts tab        (ack, then the card replaced via response_url)
    next      click Next on the Accounts tab (ack, then response_url)
    settings  click the Settings tab        (ack, then response_url)
    orders    click the Extraction orders tab (ack, then response_url)
    extract   click Extract                 (ack, then views.open of step 1 of the modal)

- ack: the HTTP round trip of the request (`Interaction.elapsed`);
- visible: from sending the request to the moment the fake received the update the person sees
  (the ack itself for commands; the response_url post or views.open otherwise). The fake stamps
  each call on arrival with a clock that is `time.perf_counter` shifted to the epoch, so both ends
  of the interval come from the same clock.

The baseline is a bolt app with the same signing secret and `process_before_response=False`
that answers every interaction with a fixed message: commands ack with a fixed card (the one
connbot renders for the 100-account connection, so it carries the same buttons), clicks ack()
then replace the card with it through the response_url, Extract acks then views.open's a fixed
step-1 modal. Rounds interleave the baseline and the three connections so that a busy moment on
the machine hits all of them alike; the first `--warmup` passes of each are not counted.

Targets (the issue's, on acknowledgement times): the ack's p99 at 100,000 accounts <= 1.5x the
no-op app's, and the 100,000-account p99 within 1.2x the 100-account one, for every interaction.
The visible update is held to the second (it must not grow with the data) and its ratio to the
no-op app, which does no work at all, is reported beside them. Results go to the "Slack latency"
section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench.scratch import create_pg_database, drop_pg_database

ROOT = Path(__file__).resolve().parent.parent
SECTION = "Slack latency"
CARD = "(building the card)"  # the SQL timer's key for card building
COMMAND_LINE = ".venv/bin/python -m bench.slack_latency_bench"

TEAM, USER, CHANNEL = "T0BENCH01", "UOPS", "C0DATA"
BOT_TOKEN = "xoxb-bench-token"
SECRET = "bench-signing-secret"
SIZES = (100, 10_000, 100_000)
BUSINESS = {100: "acme", 10_000: "globex", 100_000: "initech"}  # searchable: `/connections globex`
ORDERS = 1_000
STEPS = {
    "list": "`/connections <name>`: list (ack carries it)",
    "card": "`/connections <id>`: card (ack carries it)",
    "accounts": "Accounts tab (response_url)",
    "next": "Next page of accounts (response_url)",
    "settings": "Settings tab (response_url)",
    "orders": "Extraction orders tab, 1,000 orders (response_url)",
    "extract": "Extract: step 1 of the modal (views.open)",
}
CLICKS = {
    "accounts": "connection.tab.accounts",
    "next": "connection.tab.next",
    "settings": "connection.tab.settings",
    "orders": "connection.tab.orders",
}
TARGET_NOOP, TARGET_SCALE = 1.5, 1.2

# The fake stamps calls with this clock: perf_counter on the epoch scale (monotonic, fine-grained).
EPOCH = time.time() - time.perf_counter()


def wall() -> float:
    return EPOCH + time.perf_counter()


# --- the served apps (child processes) -------------------------------------------------------


def _settings():
    from core.settings import load_settings

    return load_settings(dict(os.environ), dotenv=False)


def _fixed_app(settings, fixed: dict):
    """The baseline: a bolt app that acks and answers with a fixed message."""
    from slack_bolt import App

    from bot.app import make_client

    app = App(
        client=make_client(settings.slack_bot_token, settings.slack_api_url),
        signing_secret=settings.slack_signing_secret,
        process_before_response=False,
        token_verification_enabled=False,
    )

    @app.command("/connections")
    def command(ack):
        ack(blocks=fixed["blocks"], text=fixed["text"])

    @app.action("connection.extract")
    def extract(ack, body, client):
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=fixed["view"])

    @app.action(re.compile(r".*"))
    def click(ack, respond):
        ack()
        respond(replace_original=True, text=fixed["text"], blocks=fixed["blocks"])

    return app


class _SqlTimer:
    """Time spent in SQL statements (driver round trips), per statement text; for the breakdown."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.lock = threading.Lock()
        self.by_statement: dict[str, list] = {}
        self.local = threading.local()
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        self.local.started = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        self.add(statement, time.perf_counter() - self.local.started)

    def add(self, key: str, took: float) -> None:
        with self.lock:
            entry = self.by_statement.setdefault(key, [0, 0.0])
            entry[0] += 1
            entry[1] += took

    def time_card_building(self) -> None:
        """Times `bot.cards.card_message` (read the card, build its blocks) wherever it is used,
        under the key CARD."""
        import bot.cards

        original = bot.cards.card_message

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.add(CARD, time.perf_counter() - started)

        for module in list(sys.modules.values()):
            if getattr(module, "card_message", None) is original:
                module.card_message = timed

    def take(self) -> dict:
        with self.lock:
            out, self.by_statement = self.by_statement, {}
        return out


def serve(kind: str, fixed_file: str | None, sql_stats: bool) -> int:
    """Child process: build the app, serve it with waitress on an ephemeral port, print the port."""
    import logging

    import waitress

    from connbot.server import settle_start_up, wsgi_app

    logging.basicConfig(level=logging.WARNING, format=f"[{kind}] %(levelname)s %(name)s: %(message)s")
    settings = _settings()
    timer = None
    if kind == "connbot":
        from bot.app import create_app
        from connbot.runtime import build_context

        ctx = build_context(settings)
        app, _ = create_app(ctx)
        if sql_stats:
            timer = _SqlTimer(ctx.db.engine)
            timer.time_card_building()
    else:
        app = _fixed_app(settings, json.loads(Path(fixed_file).read_text()))
    slack = wsgi_app(app)

    def application(environ, start_response):
        if environ.get("PATH_INFO") == "/bench/sql" and timer is not None:  # the benchmark's own route
            body = json.dumps(timer.take()).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        return slack(environ, start_response)

    if kind == "connbot":
        settle_start_up()  # as `connbot serve` does; the no-op app is left as bolt's examples write it
    server = waitress.create_server(application, host="127.0.0.1", port=0, threads=8, ident="connbot")
    print(json.dumps({"port": server.effective_port}), flush=True)
    server.run()
    return 0


@dataclass
class Served:
    process: subprocess.Popen
    url: str

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_app(kind: str, env: dict, *, fixed_file: Path | None = None, sql_stats: bool = False) -> Served:
    args = [sys.executable, "-m", "bench.slack_latency_bench", "--serve", kind]
    if fixed_file:
        args += ["--fixed", str(fixed_file)]
    if sql_stats:
        args.append("--sql-stats")
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    if not line:
        process.wait()
        raise SystemExit(f"the {kind} app did not start (exit code {process.returncode})")
    port = json.loads(line)["port"]
    return Served(process, f"http://127.0.0.1:{port}")


# --- data --------------------------------------------------------------------------------------


def seed(env: dict) -> dict[int, int]:
    """Three demo connections with 1,000 orders each; returns {size: connection id}.

    Connections are made by `make_connection` (credentials checked and encrypted, audited). Their
    accounts, the demo source's own, are bulk-inserted first and then synced by the real
    `sync_accounts`, which finds them all unchanged and records the sync as the app does after a
    first sync. (A first sync into an empty table took about 3 minutes for 100,000 accounts on
    PostgreSQL when this was written; on a table with statistics it takes seconds.) PostgreSQL is
    ANALYZEd after the bulk insert and at the end, as autovacuum would do.
    """
    from sqlalchemy import insert, select

    from connbot.runtime import build_context
    from engine.account_sync import sync_accounts
    from operations.auth import Actor
    from operations.connections import make_connection
    from sources.base import Credentials
    from storage.db import Database
    from storage.models import Account, ExtractionOrder, ExtractionRun, OrderAccount

    settings = _settings_from(env)
    Database(settings.database_url).upgrade()
    ctx = build_context(settings)
    source = ctx.source("demo")
    template = next(t for t in source.templates() if t.name == "campaign_daily")
    fields = [f.name for f in template.fields if f.default]
    ids = {}
    for size in SIZES:
        token = f"demo:accounts={size},business={BUSINESS[size]}"
        ids[size] = cid = make_connection(ctx, Actor.system(TEAM), "demo", {"token": token})
        now = ctx.clock.now()
        with ctx.db.begin() as session:
            for page in source.list_accounts(Credentials({"token": token})):
                session.execute(
                    insert(Account),
                    [
                        dict(
                            connection_id=cid,
                            external_id=a.external_id,
                            name=a.name,
                            currency=a.currency,
                            timezone=a.timezone,
                            status=a.status,
                            active=a.active,
                            enabled=True,
                            added_at=now,
                            last_seen_at=now,
                        )
                        for a in page
                    ],
                )
    _analyze(ctx)
    for size, cid in ids.items():
        result = sync_accounts(ctx, TEAM, cid, trigger="connect")
        if result.status != "succeeded":
            raise SystemExit(f"seeding: the account sync of {size:,} accounts failed: {result}")
        now = ctx.clock.now()
        with ctx.db.begin() as session:
            accounts = list(
                session.scalars(
                    select(Account.id)
                    .where(Account.connection_id == cid, Account.active.is_(True))
                    .order_by(Account.id)
                    .limit(200)
                )
            )
            session.execute(
                insert(ExtractionOrder),
                [
                    dict(
                        team_id=TEAM,
                        connection_id=cid,
                        name=f"{template.title} · order {i + 1}",
                        template=template.name,
                        fields=fields,
                        history_days=30,
                        schedule={"kind": "daily", "at": f"{i % 24:02d}:00"},
                        timezone="UTC",
                        status="paused" if i % 20 == 0 else "active",
                        created_by=USER,
                        created_at=now - dt.timedelta(minutes=i),
                        idempotency_key=uuid.uuid4().hex,
                    )
                    for i in range(ORDERS)
                ],
            )
            orders = list(
                session.scalars(
                    select(ExtractionOrder.id).where(ExtractionOrder.connection_id == cid).order_by(ExtractionOrder.id)
                )
            )
            session.execute(
                insert(OrderAccount),
                [
                    dict(order_id=oid, account_id=accounts[(i + k) % len(accounts)])
                    for i, oid in enumerate(orders)
                    for k in range(1 + i % 5)
                ],
            )
            session.execute(
                insert(ExtractionRun),
                [
                    dict(
                        order_id=oid,
                        connection_id=cid,
                        trigger="schedule",
                        scheduled_for=now - dt.timedelta(hours=1, minutes=i),
                        started_at=now - dt.timedelta(hours=1, minutes=i),
                        finished_at=now - dt.timedelta(minutes=50 + i),
                        rows=1_000 + i,
                        status="failed" if i % 50 == 0 else "succeeded",
                        error="demo: the platform timed out" if i % 50 == 0 else None,
                    )
                    for i, oid in enumerate(orders)
                ],
            )
    _analyze(ctx)
    ctx.db.dispose()
    return ids


def _analyze(ctx) -> None:
    if ctx.db.dialect == "postgresql":
        from sqlalchemy import text

        with ctx.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))


def _settings_from(env: dict):
    from core.settings import load_settings

    return load_settings(env, dotenv=False)


# --- Slack's side ------------------------------------------------------------------------------


class _Target:
    """An HTTP target that remembers when the last request left (perf_counter)."""

    def __init__(self, url: str):
        from fakeslack.client import http_target

        self._send = http_target(url + "/slack/events")
        self.sent = 0.0

    def __call__(self, body: bytes, headers: dict):
        self.sent = time.perf_counter()
        return self._send(body, headers)


@dataclass
class Samples:
    ack: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    visible: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


class Player:
    """One app as seen from Slack: a signed-request driver and the person who clicks."""

    def __init__(self, fake, url: str):
        from fakeslack.client import AppDriver

        self.fake = fake
        self.url = url
        self.target = _Target(url)
        self.user = AppDriver(fake, self.target, signing_secret=SECRET).user(USER)

    def one_pass(self, cid: int, search: str, samples: Samples | None, on_step=None) -> None:
        """The seven interactions on connection `cid`; `on_step(step)` after each has landed."""
        fake, user = self.fake, self.user

        def record(step: str, result, visible: float | None) -> None:
            if not result.ok:
                raise RuntimeError(f"{step}: {result.failure}")
            if samples is not None:
                samples.ack[step].append(result.elapsed)
                samples.visible[step].append(result.elapsed if visible is None else visible)
            if on_step is not None:
                on_step(step)

        result = user.command("/connections", search, channel=CHANNEL)
        record("list", result, None)
        result = user.command("/connections", str(cid), channel=CHANNEL)
        record("card", result, None)
        card = result.message
        if card is None:
            raise RuntimeError(f"card: no message in the ack: {result.text[:200]}")
        for step, action_id in CLICKS.items():
            result = user.click(card, action_id)
            call = self._arrived(lambda c, url=result.response_url: c.method == "response_url" and c.url == url, step)
            record(step, result, call.time - EPOCH - self.target.sent)
        result = user.click(card, "connection.extract")
        call = self._arrived(
            lambda c, tid=result.trigger_id: c.method == "views.open" and c.args.get("trigger_id") == tid, "extract"
        )
        record("extract", result, call.time - EPOCH - self.target.sent)
        fake.close_views(user.id)
        fake.clear_records()  # keeps the call list short; every call of this pass has arrived

    def _arrived(self, match, step: str):
        call = self.fake.wait_for(
            lambda: next((c for c in self.fake.calls() if match(c)), None), timeout=10, message=step
        )
        if call.status != 200 or not call.response.get("ok", False):
            raise RuntimeError(f"{step}: Slack refused the update: {call.response}")
        return call


def _fake():
    from fakeslack.server import FakeSlack

    fake = FakeSlack(team_id=TEAM, bot_token=BOT_TOKEN, wall=wall)
    fake.add_user(USER, "otto", tz="Europe/Paris")
    fake.add_channel(CHANNEL, "data-team")
    return fake


def _fixed_payloads(fake, player: Player, cid: int) -> dict:
    """What connbot sends for the 100-account card (Accounts tab) and step 1 of Extract."""
    fake.clear_records()
    card = player.user.command("/connections", str(cid), channel=CHANNEL).message
    result = player.user.click(card, CLICKS["accounts"])
    posted = player._arrived(lambda c: c.method == "response_url" and c.url == result.response_url, "fixed card")
    result = player.user.click(card, "connection.extract")
    opened = player._arrived(
        lambda c: c.method == "views.open" and c.args.get("trigger_id") == result.trigger_id, "fixed view"
    )
    fake.close_views(USER)
    fake.clear_records()
    return {"blocks": posted.args["blocks"], "text": posted.args.get("text", ""), "view": opened.args["view"]}


# --- statistics and the report -------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def run_database(database: str, args, workdir: Path) -> dict:
    from storage.vault import generate_key

    fake = _fake().start()
    served: list[Served] = []
    url = None
    try:
        url = create_pg_database() if database == "postgresql" else f"sqlite:///{workdir}/connbot.db"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("CONNBOT_", "SLACK_"))},
            "CONNBOT_DATABASE_URL": url,
            "CONNBOT_DATA_DIR": str(workdir),
            "CONNBOT_WAREHOUSE": str(workdir / "warehouse.duckdb"),
            "CONNBOT_SECRET_KEYS": generate_key(),
            "SLACK_API_URL": fake.base_url,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
        }
        started = time.perf_counter()
        ids = seed(env)
        seeded = time.perf_counter() - started
        print(
            f"{database}: seeded {', '.join(f'{s:,}' for s in SIZES)} accounts x {ORDERS:,} orders in {seeded:.1f} s",
            flush=True,
        )

        connbot = start_app("connbot", env)
        served.append(connbot)
        bot = Player(fake, connbot.url)
        fixed_file = workdir / "fixed.json"
        fixed_file.write_text(json.dumps(_fixed_payloads(fake, bot, ids[SIZES[0]])))
        noop = start_app("no-op", env, fixed_file=fixed_file)
        served.append(noop)
        base = Player(fake, noop.url)

        plan = [("no-op", base, ids[SIZES[0]], BUSINESS[SIZES[0]])]
        plan += [(size, bot, ids[size], BUSINESS[size]) for size in SIZES]
        results = {name: Samples() for name, *_ in plan}
        for _name, player, cid, search in plan:
            for _ in range(args.warmup):
                player.one_pass(cid, search, None)
        per_round = [
            args.samples // args.rounds + (1 if r < args.samples % args.rounds else 0) for r in range(args.rounds)
        ]
        started = time.perf_counter()
        for number, count in enumerate(per_round, 1):
            for name, player, cid, search in plan:  # interleaved: a busy moment hits every case alike
                for _ in range(count):
                    player.one_pass(cid, search, results[name])
            print(f"{database}: round {number}/{args.rounds} done ({time.perf_counter() - started:.0f} s)", flush=True)
        measured = time.perf_counter() - started
        problems = fake.problems()
        if problems:
            raise SystemExit(f"{database}: the fake Slack saw problems: {problems[:5]}")

        breakdown = _sql_breakdown(env, fake, ids, served, args.breakdown) if args.breakdown else {}
        return {"samples": results, "seconds": measured, "seeded": seeded, "breakdown": breakdown}
    finally:
        for app in served:
            app.stop()
        fake.stop()
        if database == "postgresql" and url:
            drop_pg_database(url)


def _sql_breakdown(env: dict, fake, ids: dict[int, int], served: list[Served], passes: int) -> dict:
    """A separate connbot process that times its SQL statements (at the driver): per interaction,
    the SQL time beside the visible time, at 100 and 100,000 accounts. Not part of the timed rounds."""
    app = start_app("connbot", env, sql_stats=True)
    served.append(app)
    player = Player(fake, app.url)
    out = {}
    for size in (SIZES[0], SIZES[-1]):
        sql: dict[str, list[float]] = defaultdict(list)
        cards: dict[str, list[float]] = defaultdict(list)
        statements: dict[str, list] = defaultdict(lambda: [0, 0.0])
        samples = Samples()

        def on_step(step: str, counting: bool, sql=sql, cards=cards, statements=statements) -> None:
            stats = _fetch_sql(app.url)
            card = stats.pop(CARD, (0, 0.0))
            if counting:
                sql[step].append(sum(t for _, t in stats.values()))
                cards[step].append(card[1])
                for statement, (count, took) in stats.items():
                    statements[statement][0] += count
                    statements[statement][1] += took

        for n in range(passes + 3):  # 3 warm-up passes
            _fetch_sql(app.url)
            counting = n >= 3
            player.one_pass(
                ids[size],
                BUSINESS[size],
                samples if counting else None,
                on_step=lambda step, counting=counting: on_step(step, counting),
            )
        out[size] = {
            "steps": {
                step: (percentile(samples.visible[step], 0.5), percentile(sql[step], 0.5), percentile(cards[step], 0.5))
                for step in STEPS
            },
            "top": sorted(
                ((took / passes, count / passes, s) for s, (count, took) in statements.items()), reverse=True
            )[:4],
        }
    app.stop()
    served.remove(app)
    return out


def _fetch_sql(url: str) -> dict:
    import urllib.request

    with urllib.request.urlopen(url + "/bench/sql", timeout=10) as resp:
        return json.loads(resp.read())


def _ms(x: float) -> str:
    return f"{x * 1000:.1f}"


def _table(samples: dict[object, Samples], kind: str) -> tuple[str, list[tuple[str, float, float]]]:
    """Markdown table of p50 / p99 (ms) per step and app; and the (step, ×no-op, ×100) ratios."""
    header = (
        "| interaction | no-op p50 / p99 | "
        + " | ".join(f"{s:,} accts p50 / p99" for s in SIZES)
        + f" | p99 {SIZES[-1]:,} ÷ no-op | p99 {SIZES[-1]:,} ÷ {SIZES[0]:,} |\n"
        + "| --- | ---: |"
        + " ---: |" * len(SIZES)
        + " ---: | ---: |\n"
    )
    rows, ratios = [], []
    for step, label in STEPS.items():
        cells = []
        p99 = {}
        for name in ("no-op", *SIZES):
            values = getattr(samples[name], kind)[step]
            p99[name] = percentile(values, 0.99)
            cells.append(f"{_ms(percentile(values, 0.5))} / {_ms(p99[name])}")
        vs_noop, vs_small = p99[SIZES[-1]] / p99["no-op"], p99[SIZES[-1]] / p99[SIZES[0]]
        ratios.append((step, vs_noop, vs_small))
        mark = lambda r, t: f"**{r:.2f}**" if r > t else f"{r:.2f}"  # noqa: E731
        rows.append(
            f"| {label} | " + " | ".join(cells) + f" | {mark(vs_noop, TARGET_NOOP)} | {mark(vs_small, TARGET_SCALE)} |"
        )
    return header + "\n".join(rows) + "\n", ratios


def _verdict(ratios: list[tuple[str, float, float]]) -> tuple[bool, bool, str]:
    noop_fail = [s for s, r, _ in ratios if r > TARGET_NOOP]
    worst_noop = max(ratios, key=lambda x: x[1])
    scale_met, scale_text = _scaling(ratios)
    text = (
        f"p99 at {SIZES[-1]:,} accounts ≤ {TARGET_NOOP}× the no-op app — "
        + (
            f"**met** (worst: {worst_noop[0]}, {worst_noop[1]:.2f}×)"
            if not noop_fail
            else f"**not met** for {', '.join(noop_fail)} (worst: {worst_noop[0]}, {worst_noop[1]:.2f}×)"
        )
        + f"; {scale_text}"
    )
    return not noop_fail, scale_met, text


def _scaling(ratios: list[tuple[str, float, float]]) -> tuple[bool, str]:
    fail = [s for s, _, r in ratios if r > TARGET_SCALE]
    worst = max(ratios, key=lambda x: x[2])
    return not fail, (
        f"p99 at {SIZES[-1]:,} ≤ {TARGET_SCALE}× p99 at {SIZES[0]:,} — "
        + (
            f"**met** (worst: {worst[0]}, {worst[2]:.2f}×)"
            if not fail
            else f"**not met** for {', '.join(fail)} (worst: {worst[0]}, {worst[2]:.2f}×)"
        )
    )


def render(runs: dict[str, dict], args, command: str) -> tuple[str, bool]:
    import slack_bolt
    import sqlalchemy

    met_all = True
    parts = [
        f"## {SECTION}\n\n"
        f"Measured {dt.date.today()} on {os.cpu_count()} cores ({platform.machine()}, "
        f"Python {platform.python_version()}, slack-bolt {slack_bolt.version.__version__}, "
        f"waitress {_dist('waitress')}, SQLAlchemy {sqlalchemy.__version__}), app at {_app_revision()}, "
        f"with `{command}`.\n\n"
        "connbot and a no-op bolt app, each in its own process served by waitress (8 threads) on loopback, both "
        "`process_before_response=False`; this process plays Slack (`fakeslack`: signed requests of Slack's "
        "shapes, the Web API and response_urls). One database holds three demo connections with "
        f"{', '.join(f'{s:,}' for s in SIZES)} accounts (the demo source's accounts, bulk-inserted, then synced "
        "by the real account sync, which finds them unchanged; PostgreSQL ANALYZEd), each with "
        f"{ORDERS:,} extraction orders (1–5 accounts and a last run each). The no-op app answers every interaction "
        "with a fixed message: commands ack with connbot's 100-account card as fixed blocks, clicks `ack()` then "
        "replace the card with it through the response_url, Extract `ack()`s then `views.open`s a fixed "
        "step-1 modal.\n\n"
        "*Visible* is what the person waits for: from sending the request to the fake's receipt of the update "
        "(the ack body for commands, the response_url post for tabs and paging, `views.open` for Extract). *Ack* is "
        f"the HTTP round trip. {args.samples} passes over each connection and the no-op app "
        f"({args.warmup} warm-up pass{'es' if args.warmup != 1 else ''} not counted), "
        f"interleaved in {args.rounds} rounds; milliseconds. {_p99_note(args.samples)}\n"
    ]
    for database, run in runs.items():
        samples = run["samples"]
        visible, v_ratios = _table(samples, "visible")
        ack, a_ratios = _table(samples, "ack")
        a_noop, a_scale, a_text = _verdict(a_ratios)
        v_scale, v_text = _scaling(v_ratios)
        met_all &= a_noop and a_scale and v_scale
        worst = max(v_ratios, key=lambda x: x[1])
        parts.append(
            f"\n### {database}\n\n"
            f"Seeded in {run['seeded']:.0f} s; timed rounds {run['seconds']:.0f} s.\n\n"
            f"Ack (HTTP round trip), ms:\n\n{ack}\n"
            f"Visible update (what the person waits for), ms:\n\n{visible}\n"
            f"Targets, ack: {a_text}.\n\n"
            f"Visible update: {v_text}. Its p99 at {SIZES[-1]:,} accounts is "
            f"{min(r for _, r, _ in v_ratios):.2f}–{worst[1]:.2f}× the no-op app's (worst: {worst[0]}); this is reported, "
            "not a target: the no-op app reads no database and renders nothing, so the ratio is connbot's whole work "
            "per click (a few milliseconds), whatever the data size.\n"
        )
        parts.append(
            "\nCommands (list, card) ack with the message; bolt notices an ack on a 10 ms poll, so work under about "
            "10 ms does not show in them.\n"
        )
        if run["breakdown"]:
            parts.append(_render_breakdown(run["breakdown"], samples["no-op"], args.breakdown))
    return "".join(parts), met_all


# What the slow statements are, in the app's words (matched on the shortened statement text).
STATEMENTS = (
    (
        r"^SELECT … FROM accounts WHERE .*ORDER BY accounts\.active DESC, lower\(accounts\.name\), accounts\.id LIMIT",
        "`Accounts.page`: a page of 15 accounts, in the order of the `ix_accounts_listing` index",
    ),
)


def _describe(statement: str) -> str:
    text = _short(statement, limit=None)
    for pattern, label in STATEMENTS:
        if re.search(pattern, text):
            return label
    return f"`{_short(statement)}`"


def _render_breakdown(breakdown: dict, noop: Samples, passes: int) -> str:
    small, large = SIZES[0], SIZES[-1]
    rows = []
    for step, label in STEPS.items():
        (v_small, q_small, c_small), (v_large, q_large, c_large) = (
            breakdown[small]["steps"][step],
            breakdown[large]["steps"][step],
        )
        rows.append(
            f"| {label} | {_ms(percentile(noop.visible[step], 0.5))} | {_ms(v_small)} / {_ms(c_small)} / {_ms(q_small)} "
            f"| {_ms(v_large)} / {_ms(c_large)} / {_ms(q_large)} |"
        )
    top = "\n".join(
        f"- {_ms(took)} ms in {count:.0f} execution{'s' if round(count) != 1 else ''}: {_describe(statement)}"
        for took, count, statement in breakdown[large]["top"]
    )
    return (
        f"\nWhere the time goes: a separate connbot process times the building of each card (`bot.cards.card_message`: "
        f"read it from the database, build its blocks) and, within it, its SQL statements at the driver ({passes} passes, "
        "medians, ms; the visible time includes bolt's 10 ms ack poll for commands; the Extract modal and the list are "
        "not cards):\n\n"
        f"| interaction | no-op visible | {small:,} accts visible / card / SQL | {large:,} accts visible / card / SQL |\n"
        "| --- | ---: | ---: | ---: |\n" + "\n".join(rows) + "\n\n"
        f"The statements that take the most time per pass at {large:,} accounts:\n\n{top}\n"
    )


def _short(statement: str, limit: int | None = 220) -> str:
    """The statement with plain column lists elided and PostgreSQL's casts dropped."""
    text = " ".join(statement.split())
    text = re.sub(r"::(?:TIMESTAMP WITH(?:OUT)? TIME ZONE|[A-Z]+)\b", "", text)
    text = re.sub(r"%\(\w+\)s", "?", text)
    column = r"\w+\.\w+(?: AS \w+)?"
    text = re.sub(rf"SELECT (?:{column}, )*{column} FROM", "SELECT … FROM", text)
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def _p99_note(samples: int) -> str:
    """Which samples a p99 rests on: with few samples one stall of the machine moves it."""
    slowest = samples - int((samples - 1) * 0.99)  # p99 lies between this slowest sample and the next
    if slowest <= 1:
        return "With so few samples, p99 is the slowest sample."
    return (
        f"A p99 of {samples} samples lies between the {_nth_slowest(slowest)} and the "
        f"{_nth_slowest(slowest - 1)} sample, so a single stall of this shared machine moves it."
    )


def _nth_slowest(n: int) -> str:
    if n == 1:
        return "slowest"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix} slowest"


def _app_revision() -> str:
    """The commit the measured app is at, and whether its files differ from it (bench/ and docs/ aside)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "the working tree (not a git checkout)"
    changed = [line[3:] for line in status if not line[3:].startswith(("bench/", "docs/"))]
    return f"commit {head}" + (f" with uncommitted changes to {len(changed)} files" if changed else "")


def _dist(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200, help="timed passes per connection and for the no-op app")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds the passes are split into")
    parser.add_argument("--warmup", type=int, default=10, help="passes per app and connection not counted")
    parser.add_argument("--breakdown", type=int, default=20, help="passes of the SQL-timing run (0: skip it)")
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/BENCHMARKS.md")
    parser.add_argument("--serve", choices=("connbot", "no-op"), help=argparse.SUPPRESS)  # child process
    parser.add_argument("--fixed", help=argparse.SUPPRESS)
    parser.add_argument("--sql-stats", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.serve, args.fixed, args.sql_stats)
    args.rounds = max(1, min(args.rounds, args.samples))

    databases = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    runs = {}
    for database in databases:
        with tempfile.TemporaryDirectory(prefix="connbot-latency-") as tmp:
            runs[database] = run_database(database, args, Path(tmp))
    shown = ("samples", "database", "rounds", "warmup", "breakdown")
    command = COMMAND_LINE + "".join(
        f" --{name} {getattr(args, name)}" for name in shown if getattr(args, name) != parser.get_default(name)
    )
    text, met = render(runs, args, command)
    print()
    print(text)
    if not args.no_doc:
        from bench import docs

        docs.write_section(SECTION, text)
        print(f"updated {docs.DOC.relative_to(ROOT)}")
    return 0  # targets are reported in the doc; only a failure to measure is an error


if __name__ == "__main__":
    sys.exit(main())
