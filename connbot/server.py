"""HTTP serving: POST /slack/events (slash commands, interactivity, events), GET /healthz,
GET /metrics (connbot/metrics.py).

Served by waitress, a production WSGI server, not bolt's development server.
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Callable, Iterable

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from connbot import metrics
from core.settings import Settings

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
METRICS_PATH = "/metrics"
OAUTH_PREFIX = "/oauth/"


def wsgi_app(app: App, *, health: Callable[[], bool] = lambda: True, oauth: Callable | None = None):
    """`oauth`: the WSGI app of the OAuth sign-in routes (`connbot.oauth.OAuthRoutes`), if served."""
    slack = SlackRequestHandler(app, path=EVENTS_PATH)

    def application(environ: dict, start_response) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            ok = health()
            body = json.dumps({"ok": ok}).encode()
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
            return [body]
        if path == METRICS_PATH:
            return metrics.wsgi_app(environ, start_response)
        if path == EVENTS_PATH:
            if environ.get("REQUEST_METHOD") != "POST":
                start_response("405 Method Not Allowed", [("Allow", "POST")])
                return [b""]
            return slack(environ, start_response)
        if oauth is not None and path.startswith(OAUTH_PREFIX):
            return oauth(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    return application


def settle_start_up() -> None:
    """Before serving: what start-up built (about 100,000 objects: SQLAlchemy's mappers, bolt's
    listeners, the sources) lives as long as the process, so it is moved out of the garbage
    collector's sight. A full collection then no longer walks all of it (25-60 ms here) in the
    middle of someone's request."""
    gc.collect()
    gc.freeze()


def run_app(
    settings: Settings, *, host: str, port: int, force_http: bool = False, metrics_port: int | None = None
) -> int:
    from bot.app import create_app
    from connbot.runtime import build_context, recover
    from engine.scheduler import start_in_process

    ctx = build_context(settings)
    if metrics_port is not None:  # first: a port in use stops start-up before anything runs
        metrics.serve(metrics_port, host)
    recover(ctx)
    app, services = create_app(ctx)
    scheduler = start_in_process(ctx)
    metrics.watch(ctx, scheduler)
    services.alerts.start()
    try:
        return _serve(app, services, ctx, settings, host=host, port=port, force_http=force_http)
    finally:
        services.alerts.stop()
        scheduler.stop()
        services.executor.shutdown(wait=False)


def run_worker(settings: Settings, *, metrics_port: int | None = None, host: str = "0.0.0.0") -> int:
    """The scheduler alone (beside HTTP replicas), posting the alerts its runs raise."""
    from bot.app import create_app
    from connbot.runtime import build_context, recover
    from engine.scheduler import start_in_process, wait_for_termination

    ctx = build_context(settings)
    if metrics_port is not None:  # first: a port in use stops start-up before anything runs
        metrics.serve(metrics_port, host)
    recover(ctx)
    services = None
    if settings.has_slack:
        _, services = create_app(ctx)
        services.alerts.start()
    else:
        log.warning("connbot worker: no Slack settings, so credentials alerts are recorded but not posted")
    scheduler = start_in_process(ctx)
    metrics.watch(ctx, scheduler)
    wait_for_termination()
    scheduler.stop()
    if services:
        services.alerts.stop()
    return 0


def _serve(app: App, services, ctx, settings: Settings, *, host: str, port: int, force_http: bool) -> int:
    settle_start_up()
    if settings.socket_mode and not force_http:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        log.info("connbot: Socket Mode")
        SocketModeHandler(app, settings.slack_app_token).start()
        return 0
    import waitress

    def healthy() -> bool:
        try:
            return ctx.db.current_revision() is not None
        except Exception:
            return False

    log.info("connbot: HTTP on %s:%s, Slack request URL path %s", host, port, EVENTS_PATH)
    from connbot.oauth import OAuthRoutes

    routes = wsgi_app(app, health=healthy, oauth=OAuthRoutes(services))
    waitress.serve(routes, host=host, port=port, threads=8, ident="connbot")
    return 0
