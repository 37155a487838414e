"""The bolt App: one per process, with every listener registered and one error handler."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from slack_bolt import App, BoltContext, BoltResponse
from slack_bolt.request import BoltRequest
from slack_bolt.request.internals import build_context
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot import errors
from bot.alerts import AlertPoster
from bot.handlers import alerts, cards, commands, connect, connection_actions, extract, home
from bot.home import HomeRefresher
from bot.roles import RoleResolver
from bot.security import RequestVerifier
from bot.services import Services
from bot.telemetry import WebApiObserver, bind_request, observed_dispatch
from core.logcontext import ContextThreadPoolExecutor
from engine.context import Context

log = logging.getLogger(__name__)

# slack_sdk and bolt log whole requests and responses at DEBUG, and a modal's state holds what
# was typed in its inputs, secrets among them: their logger stays at INFO whatever the root's.
SLACK_LOG = logging.getLogger("connbot.slack")
SLACK_LOG.setLevel(logging.INFO)


def make_client(token: str, base_url: str | None) -> WebClient:
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


def create_app(ctx: Context, *, client: WebClient | None = None) -> tuple[App, Services]:
    settings = ctx.settings
    client = client or make_client(settings.slack_bot_token, settings.slack_api_url)
    app = ConnbotApp(
        verifier=RequestVerifier(settings.slack_signing_secret),
        client=client,
        signing_secret=settings.slack_signing_secret,
        # Listeners run after the ack, so the person sees something within Slack's 3 seconds.
        process_before_response=False,
        token_verification_enabled=False,
        logger=SLACK_LOG,  # also Socket Mode's, which logs every payload at DEBUG
        # Listeners run in a copy of the request's log context (its id, team, connection).
        listener_executor=ContextThreadPoolExecutor(max_workers=5, thread_name_prefix="bolt-listener"),
    )
    services = Services(ctx=ctx, client=client, roles=RoleResolver(settings, client, ctx.clock))
    services.home = HomeRefresher(services).attach()
    app.use(bind_request)  # after the verification: the request's team and connection, in its log context
    errors.register(app, services)
    for module in (commands, cards, connect, connection_actions, extract, home, alerts):
        module.register(app, services)
    services.alerts = AlertPoster(services).attach()
    return app, services
