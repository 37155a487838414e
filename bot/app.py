"""The bolt App: one per process, with every listener registered and one error handler."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from slack_bolt import App, BoltContext, BoltResponse
from slack_bolt.authorization.authorize import InstallationStoreAuthorize
from slack_bolt.request import BoltRequest
from slack_bolt.request.internals import build_context

from bot import errors
from bot.alerts import AlertPoster
from bot.clients import SLACK_LOG, make_client, workspace_clients
from bot.handlers import alerts, cards, commands, connect, connection_actions, extract, home, settings, workspaces
from bot.home import HomeRefresher
from bot.installations import install_flow
from bot.roles import RoleResolver
from bot.security import RequestVerifier
from bot.services import Services
from bot.telemetry import bind_request, observed_dispatch
from core.logcontext import ContextThreadPoolExecutor
from engine.context import Context
from operations.workspaces import workspace_settings

log = logging.getLogger(__name__)

__all__ = ["SLACK_LOG", "ConnbotApp", "create_app", "make_client"]

NOT_INSTALLED = (
    "connbot is not installed in this workspace any more. An admin can add it again from its install page; "
    "its connections are kept for a while after an uninstall."
)


class ConnbotApp(App):
    """bolt's App, with two changes to how an HTTP request is read, and each request observed
    (bot/telemetry.py: its log context, and the metrics of its kind, outcome and ack time).

    - Its signature is verified before anything runs, by `bot.security.RequestVerifier` (bolt's
      own check is off): any request failing verification gets 401 and runs nothing, whatever
      its headers.
    - Every form body is read whole. bolt (1.30) takes a form body in which the word "payload"
      appears anywhere (`/connections payload`, a channel named #payload-team) for an
      interaction and, finding no `payload` field, reads it as empty: the command would go
      unanswered."""

    def __init__(self, *, verifier: RequestVerifier, **kwargs):
        super().__init__(request_verification_enabled=False, **kwargs)
        self._verifier = verifier

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        if req.mode == "http" and not req.body and req.raw_body and req.content_type != "application/json":
            form = dict(parse_qsl(req.raw_body, keep_blank_values=True))
            if "payload" not in form:
                req.body = form
                req.context = build_context(BoltContext(), form)
        return observed_dispatch(self._verified_dispatch, req)

    def _verified_dispatch(self, req: BoltRequest) -> BoltResponse:
        if req.mode == "http" and (reason := self._verifier.refusal(req.headers, req.raw_body)):
            log.warning("refused a request to the Slack endpoint: %s", reason)
            return BoltResponse(status=401, body="")
        return super().dispatch(req)


def create_app(ctx: Context) -> tuple[App, Services]:
    """The app for one workspace (SLACK_BOT_TOKEN), or for every workspace that installs it
    through Slack's OAuth flow (CONNBOT_SLACK_CLIENT_ID / _SECRET: bot/installations.py)."""
    config = ctx.settings
    if config.distributed:
        flow = install_flow(ctx)
        client = make_client(None, config.slack_api_url)
        auth = {
            "oauth_flow": flow,
            # auth.test once per token and process, not on every request.
            "authorize": InstallationStoreAuthorize(
                logger=SLACK_LOG,
                installation_store=flow.settings.installation_store,
                client_id=config.slack_client_id,
                client_secret=config.slack_client_secret,
                cache_enabled=True,
                client=client,
            ),
            "user_facing_authorize_error_message": NOT_INSTALLED,
        }
    else:
        client = make_client(config.slack_bot_token, config.slack_api_url)
        auth = {"token_verification_enabled": False}
    app = ConnbotApp(
        verifier=RequestVerifier(config.slack_signing_secret),
        client=client,
        signing_secret=config.slack_signing_secret,
        # Listeners run after the ack, so the person sees something within Slack's 3 seconds.
        process_before_response=False,
        logger=SLACK_LOG,  # also Socket Mode's, which logs every payload at DEBUG
        # Listeners run in a copy of the request's log context (its id, team, connection).
        listener_executor=ContextThreadPoolExecutor(max_workers=5, thread_name_prefix="bolt-listener"),
        **auth,
    )
    client_for = workspace_clients(ctx)
    settings_of = lambda team_id: workspace_settings(ctx, team_id)  # noqa: E731
    services = Services(ctx=ctx, client_for=client_for, roles=RoleResolver(settings_of, client_for, ctx.clock))
    services.home = HomeRefresher(services).attach()
    app.use(bind_request)  # after the verification: the request's team and connection, in its log context
    errors.register(app, services)
    for module in (workspaces, commands, cards, connect, connection_actions, extract, home, settings, alerts):
        module.register(app, services)
    services.alerts = AlertPoster(services).attach()
    return app, services
