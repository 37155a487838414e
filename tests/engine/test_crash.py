"""Crash safety: a process killed (SIGKILL) in the middle of an account sync."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.errors import Conflict
from engine.account_sync import recover_interrupted_syncs, start_sync, sync_accounts
from operations.auth import Actor
from operations.connections import make_connection
from sources.base import Credentials
from storage.models import Account, AccountSyncRun, Connection

WORKER = Path(__file__).with_name("crash_sync_worker.py")


def _counts(ctx, cid):
    with ctx.db.begin() as session:
        total = session.scalar(select(func.count()).select_from(Account).where(Account.connection_id == cid))
        distinct = session.scalar(
            select(func.count(func.distinct(Account.external_id))).where(Account.connection_id == cid)
        )
        return total, distinct


@pytest.mark.slow
def test_sigkill_mid_sync_loses_and_duplicates_nothing_and_the_schedule_continues(ctx, tmp_path):
    cid = make_connection(ctx, Actor.system("T1"), "demo", {"token": "demo:accounts=5"})
    with ctx.db.begin() as session:
        session.get(Connection, cid).credentials = ctx.vault.encrypt(
            Credentials({"token": "demo:accounts=20000,latency=150"})  # 40 pages of 500, 150 ms each
        )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), str(Path(__file__).parent.parent)])}
    child = subprocess.Popen(
        [
            sys.executable,
            str(WORKER),
            str(ctx.db.url.render_as_string(hide_password=False)),
            str(ctx.settings.data_dir),
            ctx.test_key,
            str(cid),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while _counts(ctx, cid)[0] < 2000:
            assert time.monotonic() < deadline, "the child made no progress"
            assert child.poll() is None, "the child ended early"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    assert not (ctx.settings.data_dir / "finished").exists()

    total, distinct = _counts(ctx, cid)
    assert total == distinct and total % 500 == 0 and 2000 <= total < 20000  # whole pages, no duplicates
    with pytest.raises(Conflict):
        start_sync(ctx, "T1", cid, trigger="manual")  # the dead run still looks running...
    assert recover_interrupted_syncs(ctx) == 1  # ...until recovery at start-up finds nobody holds it
    with ctx.db.begin() as session:
        run = session.scalars(select(AccountSyncRun).order_by(AccountSyncRun.id.desc())).first()
        assert (run.status, run.error) == ("failed", "Interrupted: the process stopped.")
    with ctx.db.begin() as session:
        session.get(Connection, cid).credentials = ctx.vault.encrypt(Credentials({"token": "demo:accounts=20000"}))
    result = sync_accounts(ctx, "T1", cid, trigger="schedule")
    assert result.status == "succeeded" and result.added == 20000 - total
    assert _counts(ctx, cid) == (20000, 20000)


def test_recovery_leaves_a_live_sync_alone(ctx):
    cid = make_connection(ctx, Actor.system("T1"), "demo", {"token": "demo:accounts=5"})
    start_sync(ctx, "T1", cid, trigger="manual")  # claimed by this live process
    assert recover_interrupted_syncs(ctx) == 0
