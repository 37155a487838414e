"""HTTP serving: POST /slack/events (slash commands, interactivity, events), GET /healthz,
GET /metrics (connbot/metrics.py), and with installs through Slack (bot/installations.py)
GET /slack/install and /slack/oauth_redirect.

Served by waitress, a production WSGI server, not bolt's development server.
"""

from __future__ import annotations

import gc
import io
import json
import logging
from collections.abc import Callable, Iterable

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.installations import INSTALL_PATH, REDIRECT_PATH
from connbot import metrics
from core.settings import Settings
from sources.registry import close_sources

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
METRICS_PATH = "/metrics"
OAUTH_PREFIX = "/oauth/"


def wsgi_app(app: App, *, health: Callable[[], dict] = lambda: {"ok": True}, oauth: Callable | None = None):
    """`health`: the body of /healthz, 200 when its "ok" is true. `oauth`: the WSGI app of the
    OAuth sign-in routes (`connbot.oauth.OAuthRoutes`), if served."""
    slack = SlackRequestHandler(app, path=EVENTS_PATH)

    def application(environ: dict, start_response) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            report = health()
            body = json.dumps(report).encode()
            status = "200 OK" if report["ok"] else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json")])
            return [body]
        if path == METRICS_PATH:
            return metrics.wsgi_app(environ, start_response)
        if path == EVENTS_PATH:
            if environ.get("REQUEST_METHOD") != "POST":
                start_response("405 Method Not Allowed", [("Allow", "POST")])
                return [b""]
            refusal = _unreadable_body(environ)
            if refusal:
                log.warning("refused a request to the Slack endpoint: %s", refusal)
                start_response("400 Bad Request", [("Content-Type", "text/plain")])
                return [refusal.encode()]
            return slack(environ, start_response)
        if app.oauth_flow is not None and path in (INSTALL_PATH, REDIRECT_PATH):
            if environ.get("REQUEST_METHOD") != "GET":
                start_response("405 Method Not Allowed", [("Allow", "GET")])
                return [b""]
            return slack(environ, start_response)  # bolt's OAuth flow
        if oauth is not None and path.startswith(OAUTH_PREFIX):
            return oauth(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    return application


def _unreadable_body(environ: dict) -> str | None:
    """Why the body cannot be read as Slack sends it (UTF-8, its length stated), else None; the
    body read is put back for bolt. Bolt's reader raised on either, which answered 500."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return "Content-Length is not a number"
    if length < 0:
        return "Content-Length is negative"
    body = environ["wsgi.input"].read(length) if length else b""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    environ["wsgi.input"] = io.BytesIO(body)
    return None


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
    from connbot.runtime import build_context, check_execution, recover, start_executor, start_scheduler

    check_execution(settings)
    ctx = build_context(settings)
    if metrics_port is not None:  # first: a port in use stops start-up before anything runs
        metrics.serve(metrics_port, host)
    start_executor(ctx)  # queued: this process claims and defers, `connbot worker` executes
    recover(ctx)
    app, services = create_app(ctx)
    scheduler = start_scheduler(ctx)
    metrics.watch(ctx, scheduler)
    services.alerts.start()
    try:
        return _serve(app, services, ctx, settings, host=host, port=port, force_http=force_http)
    finally:
        services.alerts.stop()
        scheduler.stop()
        services.executor.shutdown(wait=False)
        close_sources()


def run_worker(settings: Settings, options=None, *, metrics_port: int | None = None, host: str = "0.0.0.0") -> int:
    """`connbot worker`, posting the alerts its runs raise. Queued: Procrastinate workers carry
    out runs and syncs (engine/queue.py), until SIGTERM drains them. Inline: the scheduler alone,
    beside HTTP replicas that do not schedule. A scheduler candidate in both."""
    from bot.app import create_app
    from connbot.runtime import build_context, check_execution, recover, start_executor, start_scheduler
    from engine.scheduler import wait_for_termination

    check_execution(settings)
    ctx = build_context(settings)
    if metrics_port is not None:  # first: a port in use stops start-up before anything runs
        metrics.serve(metrics_port, host)
    start_executor(ctx)
    recover(ctx)
    services = None
    if settings.has_slack:
        _, services = create_app(ctx)
        services.alerts.start()
    else:
        log.warning("connbot worker: no Slack settings, so credentials alerts are recorded but not posted")
    scheduler = start_scheduler(ctx)
    metrics.watch(ctx, scheduler)
    try:
        if ctx.executor.queues:
            from engine.queue import WorkerOptions, run_workers

            run_workers(ctx, options or WorkerOptions(concurrency=settings.sync_concurrency))
        else:
            wait_for_termination()
    finally:
        scheduler.stop()
        if services:
            services.alerts.stop()
        close_sources()
    return 0


def health_report(ctx) -> dict:
    """/healthz: the database reachable and, queued, the task queue readable (workers need not
    be alive for this process to serve: runs wait for them)."""
    try:
        ok = ctx.db.current_revision() is not None
    except Exception:
        ok = False
    report: dict = {"ok": ok}
    if ctx.executor.queues:
        try:
            stats = ctx.executor.stats()
            report["queue"] = {"reachable": True, "workers": stats.workers_alive, "waiting": sum(stats.depth.values())}
        except Exception:
            report["ok"], report["queue"] = False, {"reachable": False}
    return report


def _serve(app: App, services, ctx, settings: Settings, *, host: str, port: int, force_http: bool) -> int:
    settle_start_up()
    if settings.socket_mode and not force_http:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        log.info("connbot: Socket Mode")
        SocketModeHandler(app, settings.slack_app_token).start()
        return 0
    import waitress

    def healthy() -> dict:
        return health_report(ctx)

    log.info("connbot: HTTP on %s:%s, Slack request URL path %s", host, port, EVENTS_PATH)
    if app.oauth_flow is not None:
        log.info("connbot: installs to any workspace from %s%s", settings.public_url, INSTALL_PATH)
    from connbot.oauth import OAuthRoutes

    routes = wsgi_app(app, health=healthy, oauth=OAuthRoutes(services))
    waitress.serve(routes, host=host, port=port, threads=8, ident="connbot")
    return 0
