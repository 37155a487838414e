"""A workspace's comings and goings: `app_uninstalled` and `tokens_revoked` (its jobs stop, its
data is kept for a reinstall: operations/workspaces.py), an organization admin adding or removing
workspaces of the org-wide app (`team_access_granted` / `team_access_revoked`), and each request
noting the workspace it comes from (its organization, for an org-wide install's jobs)."""

from __future__ import annotations

import logging
import threading

from slack_bolt import App, BoltContext

from bot.errors import guarded
from bot.services import Services
from core.events import WorkspaceChanged
from operations.workspaces import grant_team_access, note_workspace, revoke_team_access, uninstall

log = logging.getLogger(__name__)

UNINSTALL_EVENTS = ("app_uninstalled", "tokens_revoked", "team_access_revoked")


def register(app: App, services: Services) -> None:
    guard = guarded(services)
    ctx = services.ctx
    noted: set[str] = set()  # workspaces this process has seen since it started (or since they changed)
    lock = threading.Lock()

    def forget(event: WorkspaceChanged) -> None:
        with lock:
            noted.discard(event.team_id)

    ctx.events.subscribe(WorkspaceChanged, forget)

    @app.middleware
    def note_the_workspace(context: BoltContext, body: dict, next) -> None:
        """A person acting in Slack shows connbot is installed there; an event may be a late
        retry, so it only introduces a workspace, never installs one again."""
        team_id = context.team_id
        event = body.get("event") or {}
        if team_id and event.get("type") not in UNINSTALL_EVENTS:
            with lock:
                seen = team_id in noted
            if not seen and note_workspace(
                ctx, team_id, context.enterprise_id, reinstall=body.get("type") != "event_callback"
            ):
                with lock:
                    noted.add(team_id)
        next()

    @app.event("app_uninstalled")
    @guard
    def uninstalled(event: dict, body: dict, context: BoltContext) -> None:
        _uninstall(services, body, context, "app_uninstalled")

    @app.event("tokens_revoked")
    @guard
    def tokens_revoked(event: dict, body: dict, context: BoltContext) -> None:
        if not (event.get("tokens") or {}).get("bot"):
            return  # people's tokens: connbot keeps none
        _uninstall(services, body, context, "tokens_revoked")

    # Sent to an org-wide app; the organization is the envelope's (its team_id may be null).
    @app.event("team_access_revoked")
    @guard
    def team_access_revoked(event: dict, body: dict, context: BoltContext) -> None:
        revoke_team_access(ctx, _organization(body, context), _team_ids(event))

    @app.event("team_access_granted")
    @guard
    def team_access_granted(event: dict, body: dict, context: BoltContext) -> None:
        grant_team_access(ctx, _organization(body, context), _team_ids(event))


def _uninstall(services: Services, body: dict, context: BoltContext, reason: str) -> None:
    authorizations = body.get("authorizations") or [{}]
    uninstall(
        services.ctx,
        team_id=body.get("team_id") or context.team_id,
        enterprise_id=body.get("enterprise_id") or context.enterprise_id,
        is_enterprise_install=bool(body.get("is_enterprise_install") or authorizations[0].get("is_enterprise_install")),
        reason=reason,
    )


def _organization(body: dict, context: BoltContext) -> str | None:
    authorizations = body.get("authorizations") or [{}]
    return body.get("enterprise_id") or context.enterprise_id or authorizations[0].get("enterprise_id")


def _team_ids(event: dict) -> list[str]:
    return [team for team in event.get("team_ids") or [] if isinstance(team, str) and team]
