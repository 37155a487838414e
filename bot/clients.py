"""Which Web API client, with which bot token, a request, job or alert of a workspace uses.

The one seam between connbot and its Slack tokens: `Services.client_for(team_id)`.

- One workspace (SLACK_BOT_TOKEN): the same client for everything.
- Installs through Slack's OAuth flow: the bot token of the workspace's installation (its own,
  or its organization's org-wide one), read from the installations table and decrypted, with a
  client per token kept for reuse. A workspace connbot is not installed in gets `NotInstalled`.
  With token rotation on, a token about to expire is renewed first (`token_renewer`).
  The lookup is kept a few seconds, and dropped at once when this process installs or
  uninstalls the workspace; another process sees the change within those seconds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.telemetry import WebApiObserver
from core.errors import NotInstalled
from core.events import WorkspaceChanged
from engine.context import Context
from operations.workspaces import RenewedToken, TokenNotRenewed, bot_for_team, with_fresh_token

# slack_sdk and bolt log whole requests and responses at DEBUG, and a modal's state holds what
# was typed in its inputs, secrets among them: their logger stays at INFO whatever the root's.
SLACK_LOG = logging.getLogger("connbot.slack")
SLACK_LOG.setLevel(logging.INFO)

KEEP_LOOKUP = timedelta(seconds=30)


def make_client(token: str | None, base_url: str | None) -> WebClient:
    """A Web API client that retries what Slack asks to be retried (429 with Retry-After, 5xx),
    every request counted in the metrics."""
    client = WebClient(token=token, base_url=base_url or WebClient.BASE_URL, timeout=10, logger=SLACK_LOG)
    client.retry_handlers[:0] = [WebApiObserver()]  # first, so that it sees every answer
    client.retry_handlers.extend(
        [
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=2),
            ConnectionErrorRetryHandler(max_retry_count=2),
        ]
    )
    return client


def token_renewer(ctx: Context) -> Callable[[str], RenewedToken]:
    """Asks Slack for a new bot token with a refresh token (token rotation): `oauth.v2.access`."""
    client = make_client(None, ctx.settings.slack_api_url)
    client_id, client_secret = ctx.settings.slack_client_id, ctx.settings.slack_client_secret

    def renew(refresh_token: str) -> RenewedToken:
        try:
            answer = client.oauth_v2_access(
                client_id=client_id or "",
                client_secret=client_secret or "",
                grant_type="refresh_token",
                refresh_token=refresh_token,
            )
        except SlackApiError as refused:
            raise TokenNotRenewed(str(refused.response.get("error") or "unknown_error")) from None
        except (SlackClientError, OSError) as failed:  # unreachable: the token in hand serves meanwhile
            raise TokenNotRenewed(type(failed).__name__) from None
        token, refresh, expires_in = answer.get("access_token"), answer.get("refresh_token"), answer.get("expires_in")
        if not (isinstance(token, str) and isinstance(refresh, str) and isinstance(expires_in, int)):
            raise TokenNotRenewed("incomplete_answer")
        return RenewedToken(bot_token=token, refresh_token=refresh, expires_in=expires_in)

    return renew


class OneWorkspace:
    """SLACK_BOT_TOKEN: one client for every workspace."""

    def __init__(self, client: WebClient):
        self.client = client

    def __call__(self, team_id: str) -> WebClient:
        return self.client

    def forget(self, team_id: str) -> None:
        pass


class InstalledWorkspaces:
    """Each workspace's client, with the bot token of its installation."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.renew = token_renewer(ctx)
        self._by_team: dict[str, tuple[datetime, WebClient]] = {}  # team -> (kept until, client)
        self._by_token: dict[str, WebClient] = {}
        self._lock = threading.Lock()

    def __call__(self, team_id: str) -> WebClient:
        now = self.ctx.clock.now()
        with self._lock:
            kept = self._by_team.get(team_id)
            if kept is not None and kept[0] > now:
                return kept[1]
        bot = bot_for_team(self.ctx, team_id)
        if bot is None:
            raise NotInstalled(
                "connbot is not installed in this workspace (any more). An admin can add it again from the "
                "install page; its connections are kept for a while after an uninstall."
            )
        bot = with_fresh_token(self.ctx, bot, self.renew)
        with self._lock:
            client = self._by_token.get(bot.bot_token)
            if client is None:
                client = self._by_token[bot.bot_token] = make_client(bot.bot_token, self.ctx.settings.slack_api_url)
            self._by_team[team_id] = (now + KEEP_LOOKUP, client)
            # The clients of tokens no workspace uses any more (renewed, reinstalled) go.
            in_use = {id(c) for _, c in self._by_team.values()}
            self._by_token = {token: c for token, c in self._by_token.items() if id(c) in in_use}
            return client

    def forget(self, team_id: str) -> None:
        """The workspace was installed again or uninstalled: look its token up afresh."""
        with self._lock:
            kept = self._by_team.pop(team_id, None)
            if kept is not None:
                self._by_token = {token: c for token, c in self._by_token.items() if c is not kept[1]}


def workspace_clients(ctx: Context) -> OneWorkspace | InstalledWorkspaces:
    if not ctx.settings.distributed:
        return OneWorkspace(make_client(ctx.settings.slack_bot_token, ctx.settings.slack_api_url))
    clients = InstalledWorkspaces(ctx)
    ctx.events.subscribe(WorkspaceChanged, lambda event: clients.forget(event.team_id))
    return clients
