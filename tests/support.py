"""Helpers shared by tests (importable as `support`: pytest puts tests/ on the path)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from core.clock import FrozenClock
from core.settings import load_settings
from engine.context import Context
from storage.db import Database
from storage.vault import Vault, generate_key

PG_ADMIN_URL = os.environ.get("CONNBOT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def pg_reachable() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}"


def create_pg_database(admin_url: str) -> str:
    name = f"connbot_test_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(admin_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def make_context(url: str, tmp_path: Path, clock: FrozenClock, **env: str) -> Context:
    settings = load_settings(
        {
            "CONNBOT_DATABASE_URL": url,
            "CONNBOT_DATA_DIR": str(tmp_path),
            "CONNBOT_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
            "SLACK_BOT_TOKEN": "xoxb-test-token",
            "SLACK_SIGNING_SECRET": "test-signing-secret",
            **env,
        },
        dotenv=False,
    )
    waits: list[float] = []
    key = generate_key()
    ctx = Context(settings=settings, db=Database(settings.database_url), vault=Vault([key]), clock=clock)
    ctx.test_key = key
    ctx.sleep = waits.append  # back-off waits are recorded, not slept
    ctx.waits = waits
    return ctx


# -- what Slack shows, for the Slack-flow tests ----------------------------------------------------


def texts(x) -> str:
    """Anything sent to or by Slack as one searchable string (non-ASCII kept as is)."""
    return json.dumps(x, ensure_ascii=False)


def text_objects(node, out: list | None = None) -> list[dict]:
    """Every text object (plain_text, mrkdwn) in blocks, a view, a message or the arguments of a
    Slack call (whose blocks may be JSON text), at any depth."""
    out = [] if out is None else out
    if isinstance(node, dict):
        if node.get("type") in ("plain_text", "mrkdwn") and isinstance(node.get("text"), str):
            out.append(node)
        for value in node.values():
            text_objects(value, out)
    elif isinstance(node, list):
        for value in node:
            text_objects(value, out)
    elif isinstance(node, str) and node.startswith("[{"):
        try:
            text_objects(json.loads(node), out)
        except ValueError:
            pass
    return out


def shown(view) -> str:
    """What the person sees in a modal: its blocks and the errors on its fields."""
    return texts(view.blocks) + texts(view.errors)


def open_accounts(fake, user, cid):
    """The card's Accounts tab, opened with `/connections <id>` then its tab button."""
    user.command("/connections", str(cid), channel="C0DATA")
    user.click(fake.ephemerals(user.id)[-1], "connection.tab.accounts")
    return fake.wait_for(
        lambda: "Sync accounts" in texts(fake.ephemerals(user.id)[-1].blocks) and fake.ephemerals(user.id)[-1]
    )


def wait_modal_text(fake, user_id: str, needle: str):
    """The user's modal once it shows `needle`; says what it shows instead when it never does."""
    try:
        return fake.wait_for(
            lambda: fake.modal(user_id) and needle in shown(fake.modal(user_id)) and fake.modal(user_id)
        )
    except TimeoutError:
        modal = fake.modal(user_id)
        raise AssertionError(f"{needle!r} not in the modal: {modal and shown(modal)}") from None


def assert_not_stored(ctx: Context, secret: str) -> None:
    """`secret` is in no column of any row, in clear text."""
    from storage.models import Base

    with ctx.db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(table.select()):
                assert secret not in repr(tuple(row)), table.name


# -- queue execution (engine/queue.py) -------------------------------------------------------------


@contextmanager
def serving_http(application, *, threads: int = 4):
    """`application` (WSGI) served by waitress, as `connbot serve` serves connbot; yields its base
    URL. Its loop stops when its socket is closed under its select() at the end: not an error."""
    import threading

    import waitress

    server = waitress.create_server(application, host="127.0.0.1", port=0, threads=threads)

    def serve() -> None:
        try:
            server.run()
        except OSError:
            pass

    serving = threading.Thread(target=serve, daemon=True)
    serving.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        serving.join(5)


@contextmanager
def inline_execution(ctx: Context):
    """Set-up work (a connection's first sync) done in this process, as without the task queue."""
    from engine.executor import InlineExecutor

    queued, ctx.executor = ctx.executor, InlineExecutor()
    try:
        yield
    finally:
        ctx.executor = queued


def demo_order(ctx: Context, team_id: str, connection_id: int, *, history_days: int = 2) -> int:
    """An order of every account of the connection, daily."""
    return order_of_every_account(
        ctx,
        team_id,
        connection_id,
        template="campaign_daily",
        fields=["campaign_name", "impressions", "clicks", "spend"],
        name="Campaigns",
        history_days=history_days,
    )


def order_of_every_account(
    ctx: Context,
    team_id: str,
    connection_id: int,
    *,
    template: str,
    fields: Sequence[str],
    name: str | None = None,
    history_days: int = 2,
    schedule: dict | None = None,
    timezone: str = "UTC",
    load_since=None,
    created_by: str = "UADMIN",
) -> int:
    """An order's rows as Extract's last step stores them, of every account of the connection
    (inactive ones included: runs skip them), daily at 06:00 unless `schedule` says otherwise."""
    from sqlalchemy import select

    from storage.models import Account, ExtractionOrder, OrderAccount

    with ctx.db.begin() as session:
        row = ExtractionOrder(
            team_id=team_id,
            connection_id=connection_id,
            name=name or template,
            template=template,
            fields=list(fields),
            history_days=history_days,
            load_since=load_since,
            schedule=schedule or {"kind": "daily", "at": "06:00"},
            timezone=timezone,
            created_by=created_by,
            created_at=ctx.clock.now(),
        )
        session.add(row)
        session.flush()
        for account_id in session.scalars(select(Account.id).where(Account.connection_id == connection_id)):
            session.add(OrderAccount(order_id=row.id, account_id=account_id))
        return row.id


def run_workers_in_thread(ctx: Context, options=None):
    """Procrastinate's workers for `ctx`, in a thread of this process: a context manager."""
    import threading

    from engine.queue import WorkerOptions, run_workers

    options = options or WorkerOptions(
        concurrency=2, grace=1.0, heartbeat=0.5, stalled_after=2.0, stalled_check=0.5, polling=0.2
    )

    @contextmanager
    def running():
        stop = threading.Event()
        thread = threading.Thread(target=run_workers, args=(ctx, options, stop), daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(30)
            assert not thread.is_alive(), "the workers did not stop"

    return running()


def compare_golden(path: Path, value) -> None:
    """`value` is the whole output stored at `path` (written when missing or UPDATE_GOLDEN=1)."""
    text = json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1" or not path.exists():
        path.write_text(text)
    assert text == path.read_text(), f"{path.name} changed; review and run with UPDATE_GOLDEN=1"


# -- alerts (tests/bot): the channel the `alerting` fixture posts them to ---------------------------

ALERT_CHANNEL = "C0ALERT"
SLACK_TEAM = "T0FAKE001"


def alerts_in(fake):
    """The alert messages (not their thread replies), oldest first."""
    return [m for m in fake.messages(ALERT_CHANNEL) if not m.is_reply]


def break_credentials(ctx: Context, cid: int, times: int = 2) -> None:
    """The platform refuses the connection's token from now on; `times` daily syncs notice it."""
    from engine.account_sync import sync_accounts
    from sources.base import Credentials
    from storage.models import Connection

    with ctx.db.begin() as session:
        session.get(Connection, cid).credentials = ctx.vault.encrypt(Credentials({"token": "demo-expired"}))
    for _ in range(times):
        sync_accounts(ctx, SLACK_TEAM, cid, trigger="schedule")


def fix(ctx: Context, cid: int, token: str = "demo:accounts=30") -> None:
    """An admin re-connects with working credentials."""
    from operations.auth import Actor, Role
    from operations.connections import reconnect

    reconnect(ctx, Actor(SLACK_TEAM, "UADMIN", Role.ADMIN), cid, {"token": token})
