"""Workspaces: installs through Slack's OAuth flow, uninstalls and how long their data is kept,
and the settings their admins choose in the App Home.

- An install (bot/installations.py hands over what Slack's `oauth.v2.access` returned) stores
  the bot token encrypted with the vault's keys and marks the workspace installed; a reinstall
  replaces the token and finds the workspace's connections, orders and settings as they were.
- Token rotation (an app setting in Slack): the bot token expires after 12 hours and comes with
  a refresh token, both kept encrypted. `with_fresh_token` renews it once it has less than
  RENEW_BEFORE left, under the installation's row lock, so that of several processes one renews
  and the others read the new token (each refresh token works once).
- `app_uninstalled` / `tokens_revoked`: the workspace is marked uninstalled and its bot token
  deleted (Slack revoked it); its queued runs and syncs are cancelled and the scheduler drops
  its jobs. Its data is kept CONNBOT_UNINSTALLED_RETENTION_DAYS, then `purge_uninstalled` (a
  scheduled job) deletes it with its credentials. The audit trail is kept.
- Settings: alert channel, escalation channel, CSM user group, admins and operators, per
  workspace. The environment variables (CONNBOT_ALERT_CHANNEL, ...) apply to a workspace whose
  admins never saved them; once saved, the workspace's own apply, without a restart.

Enterprise Grid: a workspace of an organization installs as any other (its installation carries
the organization's id). An org-wide install (`is_enterprise_install`) is one installation for
the organization, with no team: each of its workspaces is recorded the first time a request
comes from it (`note_workspace`) or when an organization admin grants it the app
(`team_access_granted`), and its jobs use the organization's token from then on. An admin
removing a workspace from the org-wide app (`team_access_revoked`) uninstalls that workspace as
an uninstall would (jobs stop, data kept for the retention period); reinstalling the org-wide app
does not bring such a workspace back, granting it again does.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.errors import InvalidInput, NotInstalled
from core.events import WorkspaceChanged
from core.settings import CHANNEL_ID, SLACK_ID, USER_GROUP_ID, Settings
from engine.context import Context
from engine.executor import UNINSTALLED, cancel_unfinished
from operations.audit import audit
from operations.auth import Actor, Role
from storage.models import Installation, InstallState, Workspace
from storage.repositories import purge_team

log = logging.getLogger(__name__)

UNINSTALLED_REASONS = ("app_uninstalled", "tokens_revoked", "team_access_revoked")
ACCESS_REVOKED = "team_access_revoked"


# ---- settings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkspaceSettings:
    """What a workspace's admins chose, or the environment's defaults (`saved_at` None)."""

    alert_channel: str | None = None
    escalation_channel: str | None = None
    csm_group: str | None = None
    admins: tuple[str, ...] = ()  # user and user-group ids; none: the workspace's admins and owners
    operators: tuple[str, ...] = ()  # none: every member but guests
    saved_at: datetime | None = None
    saved_by: str | None = None

    @classmethod
    def defaults(cls, settings: Settings) -> WorkspaceSettings:
        return cls(
            settings.alert_channel, settings.escalation_channel, settings.csm_group, settings.admins, settings.operators
        )

    @property
    def chosen(self) -> tuple[str | None, str | None, str | None, tuple[str, ...], tuple[str, ...]]:
        """The values, without who saved them and when."""
        return (self.alert_channel, self.escalation_channel, self.csm_group, self.admins, self.operators)


_SETTING_NAMES = ("alert_channel", "escalation_channel", "csm_group", "admins", "operators")


def workspace_settings(ctx: Context, team_id: str) -> WorkspaceSettings:
    """The settings in force for the workspace: read each time, so a change applies at once in
    every process."""
    with ctx.db.read() as session:
        return settings_in(session, ctx.settings, team_id)


def settings_in(session: Session, defaults: Settings, team_id: str) -> WorkspaceSettings:
    """`workspace_settings` in the caller's session."""
    row = session.get(Workspace, team_id)
    if row is None or row.settings_saved_at is None:
        return WorkspaceSettings.defaults(defaults)
    return WorkspaceSettings(
        row.alert_channel,
        row.escalation_channel,
        row.csm_group,
        tuple(row.admins or ()),
        tuple(row.operators or ()),
        row.settings_saved_at,
        row.settings_saved_by,
    )


def save_workspace_settings(
    ctx: Context,
    actor: Actor,
    chosen: WorkspaceSettings,
    *,
    before_saving: Callable[[WorkspaceSettings], None] | None = None,
) -> WorkspaceSettings:
    """Admins only. `before_saving` is given the settings once the actor may save them: it
    refuses what Slack would not let connbot use (a channel connbot cannot post in, admins that
    leave the person saving without the role), by raising InvalidInput."""
    actor.require(Role.ADMIN, "change the workspace settings")
    chosen = _checked(chosen)
    if before_saving is not None:
        before_saving(chosen)
    before = workspace_settings(ctx, actor.team_id)
    now = ctx.clock.now()
    with ctx.db.begin() as session:
        row = _workspace(session, actor.team_id)
        row.alert_channel, row.escalation_channel, row.csm_group = (
            chosen.alert_channel,
            chosen.escalation_channel,
            chosen.csm_group,
        )
        row.admins, row.operators = list(chosen.admins), list(chosen.operators)
        row.settings_saved_at, row.settings_saved_by = now, actor.user_id
        changed = [
            name for name, old, new in zip(_SETTING_NAMES, before.chosen, chosen.chosen, strict=True) if old != new
        ]
        audit(
            ctx,
            session,
            actor,
            "workspace.settings",
            changed=changed,
            **{name: _audited(getattr(chosen, name)) for name in changed},  # type: ignore[arg-type]  # setting names, never audit's own parameters
        )
    ctx.events.publish(WorkspaceChanged(actor.team_id, "settings"))
    return replace(chosen, saved_at=now, saved_by=actor.user_id)


def _checked(chosen: WorkspaceSettings) -> WorkspaceSettings:
    """Slack's pickers send ids; anything else is a forged or garbled submission."""
    fields: dict[str, str] = {}
    for name in ("alert_channel", "escalation_channel"):
        value = getattr(chosen, name)
        if value is not None and not (CHANNEL_ID.fullmatch(value) and value[0] in "CG"):
            fields[name] = "Choose a public or private channel."
    if chosen.csm_group is not None and not USER_GROUP_ID.fullmatch(chosen.csm_group):
        fields["csm_group"] = "Choose a user group."
    for name in ("admins", "operators"):
        ids = getattr(chosen, name)
        if len(ids) > 100 or not all(SLACK_ID.fullmatch(i) for i in ids):
            fields[name] = "Choose people and user groups (at most 100)."
    if fields:
        raise InvalidInput("Some settings are not valid.", fields)
    return replace(chosen, admins=_dedupe(chosen.admins), operators=_dedupe(chosen.operators))


def _dedupe(ids: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(ids))


def _audited(value: str | tuple[str, ...] | None) -> str | list[str]:
    if isinstance(value, tuple):
        return list(value)
    return value or "none"


def _workspace(session: Session, team_id: str) -> Workspace:
    """The workspace's row, created if need be (two requests of a new workspace may race), locked
    for this unit of work."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(Workspace)
        .values(team_id=team_id, admins=[], operators=[])
        .on_conflict_do_nothing(index_elements=["team_id"])
    )
    workspace = session.get(Workspace, team_id, with_for_update=True, populate_existing=True)
    assert workspace is not None  # inserted just above unless it was there
    return workspace


# ---- installations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class InstalledBot:
    """What an install gave connbot: the bot token of a workspace, or of a whole organization."""

    app_id: str
    enterprise_id: str | None
    team_id: str | None  # None for an org-wide install
    bot_token: str = field(repr=False)
    bot_id: str | None = None
    bot_user_id: str | None = None
    bot_scopes: str = ""
    installed_by: str | None = None
    is_enterprise_install: bool = False
    team_name: str = ""
    enterprise_name: str = ""
    enterprise_url: str = ""
    installed_at: datetime | None = None
    # Token rotation on: what renews the bot token, and when the bot token expires.
    bot_refresh_token: str | None = field(default=None, repr=False)
    bot_token_expires_at: datetime | None = None

    @property
    def key(self) -> str:
        return installation_key(self.enterprise_id, self.team_id, org_wide=self.is_enterprise_install)


def installation_key(enterprise_id: str | None, team_id: str | None, *, org_wide: bool = False) -> str:
    """An organization's org-wide install, or a workspace's own (team ids are unique across
    organizations, and not every payload of a Grid workspace names its organization)."""
    return f"E:{enterprise_id}" if org_wide and enterprise_id else f"T:{team_id}"


def record_installation(ctx: Context, bot: InstalledBot) -> InstalledBot:
    """An install or reinstall, in one unit of work: the bot token (encrypted) replaces the
    previous one, the workspace (every known workspace of the organization, for an org-wide
    install) is installed again, and it is audited."""
    if not (bot.enterprise_id if bot.is_enterprise_install else bot.team_id):
        raise ValueError("an installation names a workspace, or an organization for an org-wide install")
    now = ctx.clock.now()
    with ctx.db.begin() as session:
        row = session.scalars(select(Installation).where(Installation.key == bot.key).with_for_update()).first()
        if row is None:
            row = Installation(key=bot.key)
            session.add(row)
        row.enterprise_id, row.team_id = bot.enterprise_id, None if bot.is_enterprise_install else bot.team_id
        row.is_enterprise_install = bot.is_enterprise_install
        row.app_id, row.bot_id, row.bot_user_id, row.bot_scopes = (
            bot.app_id,
            bot.bot_id,
            bot.bot_user_id,
            bot.bot_scopes,
        )
        row.bot_token = ctx.vault.encrypt_token(bot.bot_token)
        _refused.pop(bot.key, None)  # a new token: a renewal refused before says nothing of it
        row.bot_refresh_token = ctx.vault.encrypt_token(bot.bot_refresh_token) if bot.bot_refresh_token else None
        row.bot_token_expires_at = bot.bot_token_expires_at
        row.installed_by, row.installed_at = bot.installed_by, now
        row.team_name, row.enterprise_name, row.enterprise_url = bot.team_name, bot.enterprise_name, bot.enterprise_url
        teams: Sequence[str]
        if bot.is_enterprise_install:  # an admin's removal of a workspace outlives a reinstall of the org's app
            teams = session.scalars(
                select(Workspace.team_id).where(
                    Workspace.enterprise_id == bot.enterprise_id,
                    Workspace.uninstall_reason.is_(None) | (Workspace.uninstall_reason != ACCESS_REVOKED),
                )
            ).all()
        else:
            assert bot.team_id  # checked above
            teams = [bot.team_id]
        changed = []
        for team_id in teams:
            workspace = _workspace(session, team_id)
            again = workspace.uninstalled_at is not None
            workspace.enterprise_id = bot.enterprise_id
            workspace.installed_at, workspace.installed_by = now, bot.installed_by
            workspace.uninstalled_at = workspace.uninstall_reason = None
            changed.append(team_id)
            _audit_install(ctx, session, team_id, bot, "workspace.reinstalled" if again else "workspace.installed")
        if bot.is_enterprise_install:  # the organization's own line, whatever workspaces are known yet
            assert bot.enterprise_id  # checked above
            _audit_install(ctx, session, bot.enterprise_id, bot, "organization.installed")
    for team_id in changed:
        ctx.events.publish(WorkspaceChanged(team_id, "installed"))
    return replace(bot, installed_at=now)


def _audit_install(ctx: Context, session: Session, team_id: str, bot: InstalledBot, action: str) -> None:
    actor = Actor(team_id, bot.installed_by, Role.ADMIN)
    audit(ctx, session, actor, action, enterprise=bot.enterprise_id or "none", scopes=bot.bot_scopes)


def find_installation(
    ctx: Context, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool = False
) -> InstalledBot | None:
    """The installation serving a request: the workspace's own, or its organization's for an
    org-wide install."""
    key = installation_key(enterprise_id, team_id, org_wide=is_enterprise_install)
    with ctx.db.read() as session:
        row = session.scalars(select(Installation).where(Installation.key == key)).first()
        return _bot(ctx, row) if row is not None else None


def bot_for_team(ctx: Context, team_id: str) -> InstalledBot | None:
    """The installation a job of the workspace uses (it knows the team only): the workspace's
    own, else the org-wide install of its organization. None once it uninstalled connbot."""
    with ctx.db.read() as session:
        workspace = session.get(Workspace, team_id)
        if workspace is not None and workspace.uninstalled_at is not None:
            return None
        keys = [installation_key(None, team_id)]
        if workspace is not None and workspace.enterprise_id:
            keys.append(installation_key(workspace.enterprise_id, None, org_wide=True))
        rows = {row.key: row for row in session.scalars(select(Installation).where(Installation.key.in_(keys)))}
        row = next((rows[key] for key in keys if key in rows), None)
        return _bot(ctx, row) if row is not None else None


def _bot(ctx: Context, row: Installation) -> InstalledBot:
    return InstalledBot(
        app_id=row.app_id,
        enterprise_id=row.enterprise_id,
        team_id=row.team_id,
        bot_token=ctx.vault.decrypt_token(row.bot_token),
        bot_id=row.bot_id,
        bot_user_id=row.bot_user_id,
        bot_scopes=row.bot_scopes,
        installed_by=row.installed_by,
        is_enterprise_install=row.is_enterprise_install,
        team_name=row.team_name,
        enterprise_name=row.enterprise_name,
        enterprise_url=row.enterprise_url,
        installed_at=row.installed_at,
        bot_refresh_token=ctx.vault.decrypt_token(row.bot_refresh_token) if row.bot_refresh_token else None,
        bot_token_expires_at=row.bot_token_expires_at,
    )


# A renewed bot token lasts 12 hours; it is renewed once it has less than this left (bolt's
# default), so that a Slack outage of an hour or two costs nothing.
RENEW_BEFORE = timedelta(hours=2)


@dataclass(frozen=True)
class RenewedToken:
    """Slack's answer to a refresh token: a new bot token, a new refresh token, seconds to live."""

    bot_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int


_RENEWALS: dict[str, threading.Lock] = {}  # installation key -> its lock
_RENEWALS_GUARD = threading.Lock()


def _renewing(key: str) -> threading.Lock:
    with _RENEWALS_GUARD:
        return _RENEWALS.setdefault(key, threading.Lock())


# A renewal Slack refused is asked again after this long, not on every request and job meanwhile.
RETRY_RENEWAL = timedelta(minutes=5)
# Installation key -> (ask again after, Slack's reason); each process keeps its own.
_refused: dict[str, tuple[datetime, str]] = {}


class TokenNotRenewed(Exception):
    """Slack did not renew a bot token; `reason` is its error code (never a token)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def with_fresh_token(ctx: Context, bot: InstalledBot, renew: Callable[[str], RenewedToken]) -> InstalledBot:
    """`bot`, its token renewed first if it expires within RENEW_BEFORE (token rotation on).
    `renew(refresh_token)` asks Slack. When Slack refuses, the token in hand serves while it
    lasts (a warning says so, and Slack is asked again after RETRY_RENEWAL, not on every use); an
    expired one that could not be renewed is NotInstalled."""
    now = ctx.clock.now()
    if bot.bot_token_expires_at is None or bot.bot_token_expires_at - now > RENEW_BEFORE:
        return bot
    refused = _refused.get(bot.key)
    if refused is not None and refused[0] > now:
        return _not_renewed(bot, refused[1], now)
    # The row lock keeps other processes out (PostgreSQL); this lock, other threads (SQLite has no
    # row lock). One installation's renewal waiting for Slack holds up no other installation's.
    with _renewing(bot.key), ctx.db.begin() as session:
        row = session.scalars(select(Installation).where(Installation.key == bot.key).with_for_update()).first()
        if row is None:
            return bot  # uninstalled meanwhile: the caller finds out with the token it has
        current = _bot(ctx, row)
        if current.bot_token_expires_at is None or current.bot_token_expires_at - now > RENEW_BEFORE:
            return current  # another process renewed it while this one waited for the lock
        try:
            if not current.bot_refresh_token:
                raise TokenNotRenewed("no_refresh_token")
            renewed = renew(current.bot_refresh_token)
        except TokenNotRenewed as refusal:
            _refused[bot.key] = (now + RETRY_RENEWAL, refusal.reason)
            log.warning(
                "Slack did not renew the bot token of %s (%s); it expires at %s; asking again in %d minutes",
                bot.key,
                refusal.reason,
                current.bot_token_expires_at.isoformat(),
                RETRY_RENEWAL.total_seconds() // 60,
            )
            return _not_renewed(current, refusal.reason, now)
        _refused.pop(bot.key, None)
        row.bot_token = ctx.vault.encrypt_token(renewed.bot_token)
        row.bot_refresh_token = ctx.vault.encrypt_token(renewed.refresh_token)
        row.bot_token_expires_at = now + timedelta(seconds=renewed.expires_in)
        log.info("renewed the bot token of %s; it expires at %s", bot.key, row.bot_token_expires_at.isoformat())
        return _bot(ctx, row)


def _not_renewed(bot: InstalledBot, reason: str, now: datetime) -> InstalledBot:
    """The token in hand while it lasts; after that, connbot has no access to the workspace."""
    if bot.bot_token_expires_at is not None and bot.bot_token_expires_at <= now:
        raise NotInstalled(
            f"connbot's access to this workspace expired and Slack did not renew it ({reason}). "
            "An admin installs connbot again from the install page; its connections are kept."
        )
    return bot


def note_workspace(ctx: Context, team_id: str, enterprise_id: str | None, *, reinstall: bool) -> bool:
    """A request came from the workspace: recorded (with its organization, which an org-wide
    install's jobs need) the first time. With `reinstall` (a person acting in Slack now, not an
    event that may be a late retry), a workspace marked uninstalled is installed again: with one
    SLACK_BOT_TOKEN a reinstall is a new token and a restart, and Slack sends no event for it.
    Returns whether the workspace is installed."""
    with ctx.db.read() as session:
        row = session.get(Workspace, team_id)
        if row is not None and (row.enterprise_id or None) == (enterprise_id or None):
            if row.uninstalled_at is None or not reinstall:
                return row.uninstalled_at is None
    now = ctx.clock.now()
    with ctx.db.begin() as session:
        row = _workspace(session, team_id)
        row.enterprise_id = enterprise_id
        again = row.uninstalled_at is not None and reinstall
        if row.installed_at is None or again:
            row.installed_at = now
        if again:
            row.uninstalled_at = row.uninstall_reason = None
            audit(ctx, session, Actor.system(team_id), "workspace.reinstalled", enterprise=enterprise_id or "none")
        installed = row.uninstalled_at is None
    if again:
        ctx.events.publish(WorkspaceChanged(team_id, "installed"))
    return installed


# ---- uninstalls and retention ------------------------------------------------------------------


def uninstall(
    ctx: Context, *, team_id: str | None, enterprise_id: str | None, is_enterprise_install: bool, reason: str
) -> list[str]:
    """Slack says connbot was uninstalled (or its bot token revoked) from a workspace, or from a
    whole organization for an org-wide install. In one unit of work: the token is deleted, the
    workspaces marked uninstalled, their queued runs and syncs cancelled; audited. The scheduler
    drops their jobs at once. Safe to receive twice (both events come, in any order). Returns the
    workspaces uninstalled now."""
    if reason not in UNINSTALLED_REASONS:
        raise ValueError(f"unknown uninstall reason {reason!r}")
    now = ctx.clock.now()
    with ctx.db.begin() as session:
        org_wide = bool(is_enterprise_install and enterprise_id)
        key = installation_key(enterprise_id, team_id, org_wide=org_wide)
        session.execute(delete(Installation).where(Installation.key == key))
        if org_wide:
            own = select(Installation.team_id).where(Installation.team_id.is_not(None))
            teams = session.scalars(
                select(Workspace.team_id).where(Workspace.enterprise_id == enterprise_id, Workspace.team_id.not_in(own))
            ).all()
        else:
            teams = [team_id] if team_id else []
        uninstalled = _mark_uninstalled(ctx, session, teams, reason, now)
    _announce_uninstalled(ctx, uninstalled, reason)
    return uninstalled


def revoke_team_access(ctx: Context, enterprise_id: str | None, team_ids: list[str]) -> list[str]:
    """An organization admin removed workspaces from the org-wide app (`team_access_revoked`):
    each that the org-wide install served is uninstalled as an uninstall would (a workspace with an
    install of its own keeps it). Returns the workspaces uninstalled now."""
    if not enterprise_id:
        return []
    with ctx.db.begin() as session:
        own = select(Installation.team_id).where(Installation.team_id.is_not(None))
        served = session.scalars(
            select(Workspace.team_id).where(
                Workspace.team_id.in_(team_ids), Workspace.enterprise_id == enterprise_id, Workspace.team_id.not_in(own)
            )
        ).all()
        uninstalled = _mark_uninstalled(ctx, session, sorted(served), ACCESS_REVOKED, ctx.clock.now())
    _announce_uninstalled(ctx, uninstalled, ACCESS_REVOKED)
    return uninstalled


def grant_team_access(ctx: Context, enterprise_id: str | None, team_ids: list[str]) -> list[str]:
    """An organization admin added workspaces to the org-wide app (`team_access_granted`): each is
    recorded as the organization's and installed (again, with what it had, within the retention
    period). Nothing without the organization's org-wide install. Returns the workspaces installed
    now."""
    if not enterprise_id:
        return []
    now = ctx.clock.now()
    installed = []
    with ctx.db.begin() as session:
        key = installation_key(enterprise_id, None, org_wide=True)
        org = session.scalars(select(Installation).where(Installation.key == key)).first()
        if org is None:
            log.warning("access granted to workspaces of organization %s, which has no org-wide install", enterprise_id)
            return []
        for team_id in sorted(set(team_ids)):
            workspace = _workspace(session, team_id)
            if workspace.installed_at is not None and workspace.uninstalled_at is None:
                workspace.enterprise_id = enterprise_id
                continue
            again = workspace.uninstalled_at is not None
            workspace.enterprise_id = enterprise_id
            workspace.installed_at, workspace.installed_by = now, None
            workspace.uninstalled_at = workspace.uninstall_reason = None
            action = "workspace.reinstalled" if again else "workspace.installed"
            audit(ctx, session, Actor.system(team_id), action, enterprise=enterprise_id, by="team_access_granted")
            installed.append(team_id)
    for team_id in installed:
        ctx.events.publish(WorkspaceChanged(team_id, "installed"))
    return installed


def _mark_uninstalled(ctx: Context, session: Session, teams: Iterable[str], reason: str, now: datetime) -> list[str]:
    uninstalled = []
    for team in teams:
        workspace = _workspace(session, team)
        if workspace.uninstalled_at is not None:
            continue
        workspace.uninstalled_at, workspace.uninstall_reason = now, reason
        cancel_unfinished(ctx, session, team_id=team, reason=UNINSTALLED)
        audit(ctx, session, Actor.system(team), "workspace.uninstalled", reason=reason)
        uninstalled.append(team)
    return uninstalled


def _announce_uninstalled(ctx: Context, teams: list[str], reason: str) -> None:
    for team in teams:
        log.info("workspace %s uninstalled connbot (%s): its jobs stop, its data is kept", team, reason)
        ctx.events.publish(WorkspaceChanged(team, "uninstalled"))


def purge_uninstalled(ctx: Context, now: datetime | None = None) -> list[str]:
    """Deletes the data and credentials of workspaces uninstalled longer than the retention
    period ago, each in its own unit of work; the audit trail is kept and says so. Returns the
    workspaces purged. A scheduled job (see connbot.runtime.start_scheduler)."""
    now = now or ctx.clock.now()
    cutoff = now - timedelta(days=ctx.settings.uninstalled_retention_days)
    with ctx.db.read() as session:
        due = session.scalars(
            select(Workspace.team_id).where(Workspace.uninstalled_at <= cutoff).order_by(Workspace.team_id)
        ).all()
    purged = []
    for team_id in due:
        with ctx.db.begin() as session:
            row = session.get(Workspace, team_id, with_for_update=True)
            if row is None or row.uninstalled_at is None or row.uninstalled_at > cutoff:  # reinstalled meanwhile
                continue
            uninstalled_at = row.uninstalled_at
            deleted = purge_team(session, team_id)
            audit(
                ctx,
                session,
                Actor.system(team_id),
                "workspace.purged",
                uninstalled_at=uninstalled_at.isoformat(),
                **{name.replace(" ", "_"): count for name, count in deleted.items() if count},  # type: ignore[arg-type]  # kinds of rows, never audit's own parameters
            )
        log.info(
            "workspace %s: data deleted %d days after connbot was uninstalled", team_id, (now - uninstalled_at).days
        )
        purged.append(team_id)
        ctx.events.publish(WorkspaceChanged(team_id, "purged"))
    return purged


# ---- the state of "Add to Slack" attempts ----------------------------------------------------------

STATE_TTL = timedelta(minutes=10)


def issue_install_state(ctx: Context) -> str:
    """A fresh state for an "Add to Slack" link: used once, within STATE_TTL. Expired ones are
    deleted on the way."""
    state = secrets.token_urlsafe(32)
    now = ctx.clock.now()
    with ctx.db.begin() as session:
        session.execute(delete(InstallState).where(InstallState.expires_at < now - STATE_TTL))
        session.add(InstallState(state_hash=_hash(state), created_at=now, expires_at=now + STATE_TTL))
    return state


def consume_install_state(ctx: Context, state: str) -> bool:
    """Whether `state` was issued here, is not expired and was not used before: a forged or
    replayed state is refused. Whatever the answer, it cannot be used again."""
    if not state or len(state) > 200:
        return False
    with ctx.db.begin() as session:
        row = session.scalars(
            delete(InstallState).where(InstallState.state_hash == _hash(state)).returning(InstallState.expires_at)
        ).first()
    return row is not None and row > ctx.clock.now()


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()
