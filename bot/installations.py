"""Installs to many workspaces through Slack's OAuth v2 flow (bolt's OAuthFlow), on connbot's
own tables.

    GET /slack/install          an "Add to Slack" page; a state (single-use, 10 minutes) is
                                issued and set in a cookie of the browser
    GET /slack/oauth_redirect   Slack sends the installer back with a code and the state: the
                                state is consumed (a forged, expired or replayed one is refused),
                                the code exchanged with `oauth.v2.access`, the installation saved

bolt runs the flow; slack_sdk's `InstallationStore` and `OAuthStateStore` interfaces are
implemented here on operations/workspaces.py, so the bot token is kept encrypted with the
vault's keys and an install is one audited unit of work. Requests are authorized by bolt's
`InstallationStoreAuthorize` on the same store; jobs and alerts find the same token through
`Services.client_for` (bot/clients.py). Bot tokens only: connbot asks for no user scope. With
token rotation on in the app's settings, the refresh token is kept (encrypted) too, and the
store hands out a bot token renewed when it nears its end, for requests as for jobs (bolt's
own rotation is not used: it would save the renewal as a new install). Codes and tokens are
never logged.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from datetime import datetime, timedelta

from slack_bolt.error import BoltError
from slack_bolt.oauth import OAuthFlow
from slack_bolt.oauth.callback_options import CallbackOptions, FailureArgs, SuccessArgs
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk.oauth.installation_store import Bot, Installation, InstallationStore
from slack_sdk.oauth.state_store import OAuthStateStore

from bot.clients import SLACK_LOG, make_client, token_renewer
from bot.pages import PAGE_HEADERS, html_page
from core.errors import ConfigError, NotInstalled
from engine.context import Context
from operations.workspaces import (
    STATE_TTL,
    InstalledBot,
    consume_install_state,
    find_installation,
    issue_install_state,
    record_installation,
    with_fresh_token,
)

log = logging.getLogger(__name__)

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
# The bot scopes the features need: the same as manifest.yml's (a test keeps them equal).
BOT_SCOPES = ("commands", "chat:write", "channels:join", "app_mentions:read", "users:read", "usergroups:read")


class ConnbotInstallationStore(InstallationStore):
    """slack_sdk's installation store on connbot's `installations` table (operations/workspaces.py)."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.renew = token_renewer(ctx)

    @property
    def logger(self) -> logging.Logger:
        return log

    def save(self, installation: Installation) -> None:
        try:
            record_installation(
                self.ctx,
                InstalledBot(
                    app_id=installation.app_id or "",
                    enterprise_id=installation.enterprise_id,
                    team_id=installation.team_id,
                    bot_token=installation.bot_token or "",
                    bot_id=installation.bot_id,
                    bot_user_id=installation.bot_user_id,
                    bot_scopes=",".join(installation.bot_scopes or ()),
                    installed_by=installation.user_id,
                    is_enterprise_install=bool(installation.is_enterprise_install),
                    team_name=installation.team_name or "",
                    enterprise_name=installation.enterprise_name or "",
                    enterprise_url=installation.enterprise_url or "",
                    bot_refresh_token=installation.bot_refresh_token,
                    bot_token_expires_at=_expires_at(self.ctx, installation.bot_token_expires_at),
                ),
            )
        except Exception as error:  # bolt shows its failure page for a BoltError; the reason is logged here
            reference = uuid.uuid4().hex[:8].upper()
            log.error("could not save an installation, reference %s", reference, exc_info=error)
            raise BoltError(f"the installation was not saved (reference {reference})") from None

    def find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        if user_id is not None:  # bot tokens only: no installation of a person's own
            return None
        bot = find_installation(
            self.ctx, enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=bool(is_enterprise_install)
        )
        if bot is None:
            return None
        try:
            bot = with_fresh_token(self.ctx, bot, self.renew)
        except NotInstalled:  # expired, and Slack would not renew it: bolt says to install connbot again
            return None
        return Installation(  # no refresh token: bolt would renew the token itself
            app_id=bot.app_id,
            enterprise_id=bot.enterprise_id,
            enterprise_name=bot.enterprise_name,
            enterprise_url=bot.enterprise_url,
            team_id=bot.team_id,
            team_name=bot.team_name,
            bot_token=bot.bot_token,
            bot_id=bot.bot_id,
            bot_user_id=bot.bot_user_id,
            bot_scopes=bot.bot_scopes,
            user_id=bot.installed_by or "",
            is_enterprise_install=bot.is_enterprise_install,
            token_type="bot",
            installed_at=bot.installed_at.timestamp() if bot.installed_at else None,
        )

    def find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        installation = self.find_installation(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install
        )
        return installation.to_bot() if installation is not None else None


def _expires_at(ctx: Context, expires_at: int | None) -> datetime | None:
    """When a bot token from Slack expires, on connbot's clock (slack_sdk counts on the wall's)."""
    if expires_at is None:
        return None
    return ctx.clock.now() + timedelta(seconds=expires_at - time.time())


class ConnbotStateStore(OAuthStateStore):
    """slack_sdk's state store on connbot's `install_states` table: single use, STATE_TTL."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    @property
    def logger(self) -> logging.Logger:
        return log

    def issue(self, *args, **kwargs) -> str:
        return issue_install_state(self.ctx)

    def consume(self, state: str) -> bool:
        return consume_install_state(self.ctx, state)


class _NoCodes(logging.Filter):
    """bolt logs the code of an exchange Slack refused ("... with code: <code> - error: ..."):
    the code is cut out of the line."""

    _CODE = re.compile(r"code: \S+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "code: " in message:
            record.msg, record.args = self._CODE.sub("code: (hidden)", message), ()
        return True


INSTALL_LOG = SLACK_LOG.getChild("install")
INSTALL_LOG.addFilter(_NoCodes())

# What a refused install says, by bolt's reason (`error` of Slack's redirect included).
_REFUSALS = {
    "access_denied": "The install was cancelled in Slack. Nothing was changed.",
    "invalid_browser": "This install was started in another browser, or cookies are blocked here. "
    "Start again from the install page, in this browser.",
    "invalid_state": "This install link has expired or was already used. Start again from the install page.",
    "missing_code": "Slack did not send the install's code. Start again from the install page.",
    "invalid_code": "Slack did not accept the install's code (it may have expired). Start again from the install page.",
    "storage_error": "connbot could not save the install. Nothing was changed; start again from the install page "
    "in a minute.",
}
_REASON = re.compile(r"[a-z_]{1,64}")


def _success(args: SuccessArgs) -> BoltResponse:
    installation = args.installation
    where = installation.team_name or installation.enterprise_name or "your workspace"
    log.info("installed in %s (enterprise %s)", installation.team_id, installation.enterprise_id)
    body = html_page(
        "connbot is installed",
        f"connbot is installed in {where}. Type /connections in any channel, or open connbot's App Home: "
        "its admins choose the alert and escalation channels there, under Settings.",
        ("Open Slack", f"slack://app?team={installation.team_id or ''}&id={installation.app_id or ''}"),
    )
    return _response(200, body, args.settings.state_utils.build_set_cookie_for_deletion())


def _failure(args: FailureArgs) -> BoltResponse:
    reason = args.reason if _REASON.fullmatch(args.reason or "") else "unknown"
    log.info("an install was refused: %s", reason)
    message = _REFUSALS.get(
        reason, f"Slack did not complete the install ({reason}). Start again from the install page."
    )
    body = html_page("connbot is not installed", message, ("Start again", INSTALL_PATH))
    return _response(args.suggested_status_code, body)


def _response(status: int, body: bytes, set_cookie: str | None = None) -> BoltResponse:
    headers: dict = {"Content-Type": "text/html; charset=utf-8", **dict(PAGE_HEADERS)}
    if set_cookie:
        headers["Set-Cookie"] = [set_cookie]
    return BoltResponse(status=status, body=body.decode(), headers=headers)


class _InstallFlow(OAuthFlow):
    """bolt's flow with connbot's own "Add to Slack" page: plain, escaped, never cached (it holds
    a fresh state), nothing loaded from elsewhere."""

    def build_install_page_html(self, url: str, request) -> str:
        return html_page(
            "Add connbot to Slack",
            "connbot lets your team manage the data-source connections of its marketing-data warehouse from "
            "Slack. Slack asks you, a member who may install apps, to allow what it needs.",
            ("Add to Slack", url),
        ).decode()

    def append_set_cookie_headers(self, headers: dict, set_cookie_value: str | None) -> dict:
        return super().append_set_cookie_headers({**headers, **dict(PAGE_HEADERS)}, set_cookie_value)


def install_flow(ctx: Context) -> OAuthFlow:
    """bolt's OAuth flow on connbot's stores, with connbot's pages."""
    settings = ctx.settings
    if settings.public_url is None:  # load_settings asks for it with the client ID and secret
        raise ConfigError(
            "CONNBOT_PUBLIC_URL: installs through Slack need the https base URL where this app is reached"
        )
    return _InstallFlow(
        client=make_client(None, settings.slack_api_url),
        logger=INSTALL_LOG,
        settings=OAuthSettings(
            client_id=settings.slack_client_id,
            client_secret=settings.slack_client_secret,
            scopes=list(BOT_SCOPES),
            user_scopes=[],
            redirect_uri=settings.public_url + REDIRECT_PATH,
            install_path=INSTALL_PATH,
            redirect_uri_path=REDIRECT_PATH,
            callback_options=CallbackOptions(success=_success, failure=_failure),
            authorization_url=settings.slack_authorize_url,
            installation_store=ConnbotInstallationStore(ctx),
            state_store=ConnbotStateStore(ctx),
            state_expiration_seconds=int(STATE_TTL.total_seconds()),
            logger=INSTALL_LOG,
        ),
    )
