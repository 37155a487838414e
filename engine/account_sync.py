"""Account sync: re-read a connection's account list from its source.

New accounts are added (enabled for extraction when the sync mode is `all`), vanished ones are
marked inactive with the date (never deleted), changed ones updated. Writes are proportional to
what changed. Transient source errors are retried with back-off and never touch the credentials
status; definitive auth errors feed it (engine/credentials.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from core.errors import Conflict, NotFound
from core.events import ConnectionChanged, Event
from engine.context import Context
from engine.credentials import record_auth_failure, record_auth_success
from engine.leases import SYNCS, Lease, fail_orphans
from sources.base import CheckStatus, SourceAccount, SourceError
from storage.models import Account, AccountSyncRun, Connection, CredentialsStatus, RunStatus, SyncMode
from storage.repositories import Accounts, Connections, SyncRuns

log = logging.getLogger(__name__)

TRANSIENT_ATTEMPTS = 4
# A sync still "running" after this long was interrupted by a process that died.
STALE_AFTER = timedelta(hours=1)
BACKOFF_SECONDS = (2.0, 8.0, 30.0)


@dataclass(frozen=True)
class SyncResult:
    run_id: int
    status: RunStatus
    accounts_read: int
    added: int
    removed: int
    changed: int
    error: str | None = None


def start_sync(
    ctx: Context, team_id: str, connection_id: int, *, trigger: str, user_id: str | None = None,
    scheduled_for: datetime | None = None,
) -> int:
    """Claim the connection for a sync: one running sync per connection (a unique index says so)."""
    try:
        with ctx.db.begin() as session:
            connection = Connections(session, team_id).get(connection_id)
            running = SyncRuns(session).running(connection.id)
            if running is not None and running.started_at < ctx.clock.now() - STALE_AFTER:
                # Its process died (a sync takes minutes at most): free the connection.
                _finish(running, ctx.clock.now(), RunStatus.FAILED, {"read": running.accounts_read, "added": running.added,
                        "changed": running.changed}, running.removed, "Interrupted (the process stopped).")
                session.flush()
                running = None
            if running is not None:
                raise _already_syncing(running)
            run = AccountSyncRun(
                connection_id=connection.id, trigger=trigger, triggered_by=user_id,
                scheduled_for=scheduled_for, started_at=ctx.clock.now(), status=RunStatus.RUNNING,
            )
            session.add(run)
            session.flush()
            # Held before the row is visible, so recovery never takes a live sync for a dead one.
            lease = Lease.take(ctx, SYNCS, run.id)
        if lease is not None:  # None only if a recreated database reuses an id this process still holds
            Lease.keep(ctx, SYNCS, run.id, lease)
        return run.id
    except IntegrityError:
        with ctx.db.begin() as session:
            running = SyncRuns(session).running(connection_id)
        if running is None:  # the other one was a scheduled occurrence that already ran
            raise Conflict("This sync has already run.") from None
        raise _already_syncing(running) from None


def _already_syncing(run: AccountSyncRun) -> Conflict:
    who = f"<@{run.triggered_by}>" if run.triggered_by else "the daily schedule"
    error = Conflict(f"Accounts are already syncing, started by {who} at {run.started_at:%Y-%m-%d %H:%M} UTC.")
    error.run_id = run.id
    return error


def run_sync(
    ctx: Context, team_id: str, run_id: int, *, progress: Callable[[int], None] | None = None
) -> SyncResult:
    """Carry out a claimed sync run to its end; always leaves the run finished."""
    lease = Lease.pop(ctx, SYNCS, run_id) or Lease.take(ctx, SYNCS, run_id)
    try:
        return _run_sync(ctx, team_id, run_id, progress)
    finally:
        if lease is not None:
            lease.release()


def recover_interrupted_syncs(ctx: Context) -> int:
    """Fail the running syncs whose process died (nobody holds their lease); returns how many."""
    return fail_orphans(ctx, SYNCS, AccountSyncRun, "Interrupted: the process stopped.")


def _run_sync(ctx: Context, team_id: str, run_id: int, progress: Callable[[int], None] | None) -> SyncResult:
    with ctx.db.begin() as session:
        row = session.execute(
            select(Connection.id, Connection.source, Connection.credentials, Connection.account_sync_mode)
            .join(AccountSyncRun, AccountSyncRun.connection_id == Connection.id)
            .where(AccountSyncRun.id == run_id, Connection.team_id == team_id)
        ).first()
    if row is None:
        raise NotFound(f"There is no account sync {run_id}.")
    connection_id, source_name, token, sync_mode = row
    source = ctx.source(source_name)

    counts = {"read": 0, "added": 0, "changed": 0}
    seen: set[str] = set()
    events: list[Event] = []
    try:
        if token is None:
            raise _Cancelled()
        for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
            try:
                counts = {"read": 0, "added": 0, "changed": 0}
                seen.clear()
                credentials = ctx.vault.decrypt(token)
                for page in source.list_accounts(credentials):
                    counts["read"] += len(page)
                    if not _apply_page(ctx, connection_id, run_id, sync_mode, page, seen, counts):
                        raise _Cancelled()
                    if progress:
                        progress(counts["read"])
                break
            except SourceError as error:
                if error.status is not CheckStatus.TRANSIENT or attempt == TRANSIENT_ATTEMPTS:
                    raise
                wait = error.retry_after or BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS)) - 1]
                log.info("account sync %s: transient source error (%s), retrying in %.0fs", run_id, error.code, wait)
                ctx.sleep(wait)
        with ctx.db.begin() as session:
            now = ctx.clock.now()
            removed = _mark_vanished(session, connection_id, seen, now)
            Accounts(session, connection_id).recount()
            # Credentials that were fine stay fine: one UPDATE; anything else takes the full path.
            fine = session.execute(
                update(Connection)
                .where(Connection.id == connection_id, Connection.credentials_status == CredentialsStatus.ACTIVE,
                       Connection.auth_failures == 0)
                .values(credentials_checked_at=now)
            ).rowcount
            if not fine:
                events += record_auth_success(session.get(Connection, connection_id), now)
            session.execute(
                update(AccountSyncRun).where(AccountSyncRun.id == run_id).values(
                    finished_at=now, status=RunStatus.SUCCEEDED, accounts_read=counts["read"], added=counts["added"],
                    changed=counts["changed"], removed=removed, error=None,
                )
            )
        result = SyncResult(run_id, RunStatus.SUCCEEDED, counts["read"], counts["added"], removed, counts["changed"])
    except _Cancelled:
        with ctx.db.begin() as session:
            run = session.get(AccountSyncRun, run_id)
            _finish(run, ctx.clock.now(), RunStatus.CANCELLED, counts, 0, "The connection was deleted.")
            result = _result(run)
    except SourceError as error:
        with ctx.db.begin() as session:
            now = ctx.clock.now()
            connection = session.get(Connection, connection_id)
            if error.status is not CheckStatus.TRANSIENT:
                events += record_auth_failure(connection, error, now)
            run = session.get(AccountSyncRun, run_id)
            _finish(run, now, RunStatus.FAILED, counts, 0, error.message)
            result = _result(run)
    except Exception:
        log.exception("account sync %s failed", run_id)
        with ctx.db.begin() as session:
            run = session.get(AccountSyncRun, run_id)
            _finish(run, ctx.clock.now(), RunStatus.FAILED, counts, 0, "Internal error; see the logs.")
            result = _result(run)
    for event in events + [ConnectionChanged(team_id, connection_id, "accounts")]:
        ctx.events.publish(event)
    return result


def sync_accounts(
    ctx: Context, team_id: str, connection_id: int, *, trigger: str, user_id: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> SyncResult:
    run_id = start_sync(ctx, team_id, connection_id, trigger=trigger, user_id=user_id)
    return run_sync(ctx, team_id, run_id, progress=progress)


class _Cancelled(Exception):
    pass


def _apply_page(
    ctx: Context, connection_id: int, run_id: int, sync_mode: str, page: Sequence[SourceAccount], seen: set[str],
    counts: dict,
) -> bool:
    """Writes what changed in one page; False when the connection was deleted meanwhile."""
    fresh = {a.external_id: a for a in page if a.external_id not in seen}
    seen.update(fresh)
    with ctx.db.begin() as session:
        if session.scalar(select(Connection.deleted_at).where(Connection.id == connection_id)) is not None:
            return False
        # Progress, for "Syncing accounts… 3,200 read" on the card.
        session.execute(update(AccountSyncRun).where(AccountSyncRun.id == run_id).values(accounts_read=counts["read"]))
        if not fresh:
            return True
        now = ctx.clock.now()
        # Plain rows, not ORM objects: a sync mostly finds nothing to change, and cheaply.
        existing = {
            row.external_id: row
            for row in session.execute(
                select(Account.id, Account.external_id, *_COMPARED, Account.removed_at).where(
                    Account.connection_id == connection_id, Account.external_id.in_(list(fresh))
                )
            )
        }
        new = [
            dict(
                connection_id=connection_id, external_id=external_id, name=src.name, currency=src.currency,
                timezone=src.timezone, status=src.status, active=src.active, enabled=sync_mode == SyncMode.ALL,
                added_at=now, last_seen_at=now,
            )
            for external_id, src in fresh.items()
            if external_id not in existing
        ]
        if new:  # one multi-row INSERT: the first sync of a big login writes fast
            session.execute(Account.__table__.insert(), new)
            counts["added"] += len(new)
        for external_id, row in existing.items():
            src = fresh[external_id]
            if row.removed_at is not None or tuple(row[2:-1]) != _values(src):
                session.execute(
                    update(Account).where(Account.id == row.id).values(
                        name=src.name, currency=src.currency, timezone=src.timezone, status=src.status,
                        active=src.active, removed_at=None, last_seen_at=now,
                    )
                )
                counts["changed"] += 1
    return True


_COMPARED = (Account.name, Account.currency, Account.timezone, Account.status, Account.active)


def _values(src: SourceAccount) -> tuple:
    return (src.name, src.currency, src.timezone, src.status, src.active)


def _mark_vanished(session, connection_id: int, seen: set[str], now: datetime) -> int:
    current = session.execute(
        select(Account.id, Account.external_id).where(Account.connection_id == connection_id, Account.removed_at.is_(None))
    ).all()
    gone = [account_id for account_id, external_id in current if external_id not in seen]
    for start in range(0, len(gone), 500):
        session.execute(
            update(Account).where(Account.id.in_(gone[start : start + 500])).values(removed_at=now, active=False, status="REMOVED")
        )
    return len(gone)


def _finish(run: AccountSyncRun, now: datetime, status: RunStatus, counts: dict, removed: int, error: str | None = None):
    run.finished_at = now
    run.status = status
    run.accounts_read = counts["read"]
    run.added = counts["added"]
    run.changed = counts["changed"]
    run.removed = removed
    run.error = error


def _result(run: AccountSyncRun) -> SyncResult:
    return SyncResult(run.id, RunStatus(run.status), run.accounts_read, run.added, run.removed, run.changed, run.error)
