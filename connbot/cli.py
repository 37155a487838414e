"""The `connbot` command."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

from connbot.logs import configure as configure_logging
from core.errors import ConfigError, ConnbotError
from core.settings import Settings, load_settings

SLACK_SETUP = """\
connbot needs a Slack app to talk to Slack, and none is configured.

  1. Create the app from the manifest: https://api.slack.com/apps?new_app=1 → "From a manifest",
     paste manifest.yml from this repository.
  2. For one workspace: install it there, then set in the environment (or in a .env file):
       SLACK_BOT_TOKEN=xoxb-…        (OAuth & Permissions → Bot User OAuth Token)
       SLACK_SIGNING_SECRET=…        (Basic Information → Signing Secret)
       SLACK_APP_TOKEN=xapp-…        (optional: Socket Mode, an app-level token with connections:write)
     For any number of workspaces, each installing it from connbot's /slack/install page:
       CONNBOT_SLACK_CLIENT_ID=…, CONNBOT_SLACK_CLIENT_SECRET=…  (Basic Information → App Credentials)
       SLACK_SIGNING_SECRET=…, CONNBOT_PUBLIC_URL=https://…      (where Slack reaches `connbot serve`)
  3. Run `connbot run` again (README, "Slack app set-up").
"""

METRICS_PORT_HELP = "also serve GET /metrics on this port (HTTP mode serves it on --port too; Socket Mode only here)"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    if args.handler is _doctor:  # it reads the settings itself: a wrong one is one of its findings
        configure_logging(level=logging.WARNING)
        return _doctor(args)
    try:
        settings = load_settings()
        configure_logging(level=logging.DEBUG if args.verbose else logging.INFO, log_format=settings.log_format)
        return args.handler(settings, args) or 0
    except ConfigError as error:
        print(f"connbot: {error.message}", file=sys.stderr)
        return 2
    except ConnbotError as error:
        print(f"connbot: {error.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="connbot", description="Manage data-source connections from Slack.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    run = commands.add_parser("run", help="run the app (Socket Mode when SLACK_APP_TOKEN is set, else HTTP)")
    run.add_argument("--host", default="0.0.0.0", help="HTTP mode: address to listen on (default 0.0.0.0)")
    run.add_argument("--port", type=int, default=3000, help="HTTP mode: port (default 3000)")
    run.add_argument("--metrics-port", type=int, help=METRICS_PORT_HELP)
    run.set_defaults(handler=_run)

    serve = commands.add_parser("serve", help="serve HTTP: POST /slack/events, GET /healthz, GET /metrics")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=3000, help="port (default 3000)")
    serve.add_argument("--metrics-port", type=int, help=METRICS_PORT_HELP)
    serve.set_defaults(handler=_serve)

    console = commands.add_parser(
        "console", help="try connbot in this terminal, with a local stand-in for Slack (no workspace needed)"
    )
    console.add_argument(
        "--script", metavar="FILE", help="play the inputs in FILE ('-': standard input) and print the transcript"
    )
    console.add_argument("--team", default="T0CONSOLE", help="Slack team ID of the local workspace (default T0CONSOLE)")
    console.add_argument("--user", default="U0YOU", help="your Slack user ID there, a workspace admin (default U0YOU)")
    console.set_defaults(handler=_console)

    worker = commands.add_parser(
        "worker",
        help="carry out extraction runs and account syncs from the task queue (CONNBOT_EXECUTION=queue); "
        "inline, run only the scheduler",
    )
    worker.add_argument(
        "--concurrency",
        type=_positive,
        help="extraction runs at once (default CONNBOT_SYNC_CONCURRENCY); account syncs get twice as many",
    )
    worker.add_argument(
        "--queues",
        type=_queues,
        default=("sync", "run"),
        help="what to carry out: sync, run or sync,run (default both)",
    )
    worker.add_argument(
        "--grace",
        type=float,
        default=25.0,
        help="seconds running jobs get at SIGTERM before they are queued again for another worker (default 25)",
    )
    worker.add_argument("--host", default="0.0.0.0", help="address of --metrics-port (default 0.0.0.0)")
    worker.add_argument("--metrics-port", type=int, help="serve GET /metrics on this port")
    worker.set_defaults(handler=_worker)

    status = commands.add_parser(
        "status", help="the scheduler leader, the workers alive and the task queue (depth, oldest waiting job)"
    )
    status.set_defaults(handler=_status)

    doctor = commands.add_parser(
        "doctor", help="check the set-up (settings, database, keys, Slack token, scopes, channels, sources)"
    )
    doctor.add_argument(
        "--manifest",
        type=Path,
        help="the Slack app manifest to compare the granted scopes with (default: ./manifest.yml, else connbot's)",
    )
    doctor.set_defaults(handler=_doctor)

    db = commands.add_parser("db", help="database schema").add_subparsers(title="db commands", metavar="COMMAND")
    db.add_parser("upgrade", help="apply the migrations up to the newest").set_defaults(handler=_db_upgrade)

    keys = commands.add_parser("keys", help="credential encryption keys").add_subparsers(
        title="keys commands", metavar="COMMAND"
    )
    keys.add_parser("generate", help="print a new Fernet key").set_defaults(handler=_keys_generate)
    keys.add_parser("rotate", help="re-encrypt every credential with the current (first) key").set_defaults(
        handler=_keys_rotate
    )

    sources = commands.add_parser("sources", help="data-source plugins").add_subparsers(
        title="sources commands", metavar="COMMAND"
    )
    sources.add_parser("list", help="list installed data sources").set_defaults(handler=_sources_list)

    connectors = commands.add_parser(
        "connectors", help="Airbyte source connectors, each a data source named airbyte:<name>"
    ).add_subparsers(title="connectors commands", metavar="COMMAND")
    add = connectors.add_parser(
        "add", help="install a connector package (or register an executable), run its spec, record it"
    )
    add.add_argument("package", nargs="?", help="a package and optional version: airbyte-source-faker==7.2.1")
    add.add_argument("--executable", metavar="PATH", help="register a connector already installed at PATH")
    add.add_argument("--name", help="the connector's name (default: from the package or executable)")
    add.add_argument("--python", metavar="PATH", help="the Python of its virtual environment (default: connbot's)")
    add.set_defaults(handler=_connectors_add)
    connectors.add_parser("list", help="list the installed connectors").set_defaults(handler=_connectors_list)
    upgrade = connectors.add_parser("upgrade", help="install a connector's newest (or given) version")
    upgrade.add_argument("name")
    upgrade.add_argument("version", nargs="?", help="an exact version (default: the newest)")
    upgrade.set_defaults(handler=_connectors_upgrade)
    remove = connectors.add_parser("remove", help="remove a connector (its connections stay, marked missing)")
    remove.add_argument("name")
    remove.set_defaults(handler=_connectors_remove)

    demo = commands.add_parser("demo", help="demo data").add_subparsers(title="demo commands", metavar="COMMAND")
    seed = demo.add_parser("seed", help="create demo connections in several states")
    seed.add_argument("--team", help="Slack team ID (default: the bot token's team, from auth.test)")
    seed.set_defaults(handler=_demo_seed)

    audit = commands.add_parser("audit", help="print the audit trail")
    audit.add_argument("--connection", type=int, help="only this connection id")
    audit.add_argument("--since", type=_date, help="only events since this date (YYYY-MM-DD)")
    audit.add_argument("--team", help="only this Slack team ID")
    audit.add_argument("--limit", type=int, default=100, help="at most this many events (default 100)")
    audit.set_defaults(handler=_audit)
    return parser


def _positive(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 256:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 256, got {text!r}")
    return int(text)


def _queues(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not names or set(names) - {"sync", "run"}:
        raise argparse.ArgumentTypeError(f"expected sync, run or sync,run, got {text!r}")
    return names


def _date(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def _require_slack(settings: Settings) -> None:
    if not settings.has_slack:
        raise ConfigError(SLACK_SETUP.rstrip())


def _run(settings: Settings, args) -> int:
    _require_slack(settings)
    from connbot.server import run_app

    return run_app(settings, host=args.host, port=args.port, metrics_port=args.metrics_port)


def _serve(settings: Settings, args) -> int:
    _require_slack(settings)
    from connbot.server import run_app

    return run_app(settings, host=args.host, port=args.port, force_http=True, metrics_port=args.metrics_port)


def _console(settings: Settings, args) -> int:
    from connbot.console import run_console

    return run_console(settings, script=args.script, team_id=args.team, user_id=args.user)


def _worker(settings: Settings, args) -> int:
    from connbot.server import run_worker
    from engine.queue import WorkerOptions

    options = WorkerOptions(
        queues=args.queues, concurrency=args.concurrency or settings.sync_concurrency, grace=args.grace
    )
    return run_worker(settings, options, metrics_port=args.metrics_port, host=args.host)


def _doctor(args) -> int:
    from connbot.doctor import run_doctor

    return run_doctor(args.manifest)


def _db_upgrade(settings: Settings, args) -> int:
    from storage.db import Database

    db = Database(settings.database_url)
    db.upgrade()
    print(f"Database schema is at revision {db.current_revision()}.")
    if not settings.is_sqlite:  # the task queue lives in PostgreSQL, whichever the execution mode
        from engine.queue import upgrade_schema

        print(f"Task queue: {upgrade_schema(db.engine)}.")
    return 0


def _status(settings: Settings, args) -> int:
    from connbot.runtime import build_context
    from engine.leader import current_leader

    ctx = build_context(settings)
    print(f"Execution: {settings.execution}")
    print(f"Scheduler leader: {current_leader(ctx) or 'none (no connbot run, serve or worker is up)'}")
    if settings.is_sqlite:
        return 0
    from engine.queue import queue_stats

    try:
        stats = queue_stats(ctx.db.engine)
    except Exception as error:
        print(f"Task queue: unreadable ({type(error).__name__}); run `connbot db upgrade`")
        return 1
    print(f"Workers alive: {stats.workers_alive}")
    for worker_id, age in stats.extra["workers"]:
        print(f"  worker {worker_id}: last heartbeat {age.total_seconds():.0f}s ago")
    for queue, depth in stats.depth.items():
        oldest = stats.oldest_wait.get(queue)
        waited = f", oldest waiting {_age(oldest)}" if oldest is not None else ""
        print(f"Queue {queue}: {depth} waiting, {stats.running.get(queue, 0)} running{waited}")
    if stats.stalled:
        print(f"Jobs of stopped workers, to be retried: {stats.stalled}")
    return 0


def _age(age) -> str:
    seconds = int(age.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _keys_generate(settings: Settings, args) -> int:
    from storage.vault import generate_key

    print(generate_key())
    return 0


def _keys_rotate(settings: Settings, args) -> int:
    from connbot.runtime import build_context
    from storage.vault import rotate_all

    ctx = build_context(settings)
    with ctx.db.begin() as session:
        count, tokens = rotate_all(ctx.vault, session)
    print(
        f"Re-encrypted the credentials of {count} connection(s) and {tokens} Slack bot token(s) with the current key."
    )
    return 0


def _sources_list(settings: Settings, args) -> int:
    from connbot.runtime import build_context

    for name, source in build_context(settings).sources().items():
        print(f"{name:<16} {source.title:<20} auth: {source.auth_type}")
    return 0


def _connectors(settings: Settings):
    from connbot.runtime import build_context
    from engine.connectors import Connectors

    ctx = build_context(settings)
    return Connectors(ctx.db, settings.data_dir, ctx.clock.now)


def _print_connector(c, verb: str) -> None:
    what = f"{c.package}=={c.version}" if c.package else "an executable"
    print(f"{verb} {c.source} ({c.title}): {what} at {c.executable}")


def _connectors_add(settings: Settings, args) -> int:
    from core.errors import InvalidInput

    if bool(args.package) == bool(args.executable):
        raise InvalidInput(
            "connectors add: give a package (airbyte-source-faker==7.2.1) or --executable PATH, not both."
        )
    connectors = _connectors(settings)
    if args.executable:
        added = connectors.register(args.executable, name=args.name)
    else:
        print(f"Installing {args.package} into its own virtual environment…", flush=True)
        added = connectors.add(args.package, name=args.name, python=args.python)
    _print_connector(added, "Added")
    return 0


def _connectors_list(settings: Settings, args) -> int:
    found = _connectors(settings).list()
    if not found:
        print("No connectors installed. Add one with `connbot connectors add airbyte-source-<name>`.")
    for c in found:
        version = f"{c.package}=={c.version}" if c.package else "executable"
        print(f"{c.source:<24} {c.title:<20} {version:<36} {c.executable}")
    return 0


def _connectors_upgrade(settings: Settings, args) -> int:
    _print_connector(_connectors(settings).upgrade(args.name, args.version), "Upgraded")
    return 0


def _connectors_remove(settings: Settings, args) -> int:
    removed = _connectors(settings).remove(args.name)
    print(f"Removed {removed.source}. Its connections stay, marked as missing their connector.")
    return 0


def _demo_seed(settings: Settings, args) -> int:
    from connbot.runtime import build_context
    from operations.demo_seed import seed_demo

    team = args.team or _team_from_slack(settings)
    ctx = build_context(settings)
    created = seed_demo(ctx, team)
    if not created:
        print(f"Team {team} already has connections; nothing seeded.")
    for line in created:
        print(line)
    return 0


def _team_from_slack(settings: Settings) -> str:
    if not settings.slack_bot_token:
        raise ConfigError("demo seed: give --team TEAM_ID, or set SLACK_BOT_TOKEN so the team is read from auth.test")
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    client = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url or WebClient.BASE_URL)
    try:
        return client.auth_test()["team_id"]
    except SlackApiError as error:
        raise ConfigError(f"SLACK_BOT_TOKEN: auth.test answered {error.response.get('error')!r}") from None


def _audit(settings: Settings, args) -> int:
    from connbot.runtime import build_context
    from storage.repositories import all_audit_events

    ctx = build_context(settings)
    with ctx.db.begin() as session:
        events = all_audit_events(
            session, team_id=args.team, connection_id=args.connection, since=args.since, limit=args.limit
        )
        for e in events:
            details = " ".join(f"{k}={v}" for k, v in sorted(e.details.items()))
            print(
                f"{e.at:%Y-%m-%d %H:%M:%S} {e.team_id} {e.user_id or 'system':<11} {e.action:<22} "
                f"{e.outcome:<8} conn={e.connection_id or '-'} order={e.order_id or '-'} {details}".rstrip()
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
