"""`connbot console`: try connbot in a terminal, without a Slack workspace or a Slack app.

You type what you would type in Slack and the console sends what Slack would send. connbot runs
as under `connbot run`: the same bolt app, reached through the same signed POST /slack/events,
with the scheduler and the alert poster. fakeslack stands in for Slack: its Web API
answers the app's calls, and its SlackUser sends your commands, clicks and modal submissions.
What the app shows (messages, ephemeral messages, modals, the App Home) is printed as text by
console_render whenever it changes.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select

from connbot.console_render import (
    COLOR,
    MULTI,
    PICKERS,
    PLAIN,
    TEXT_INPUTS,
    Control,
    Directory,
    Style,
    render_blocks,
    render_message,
    rule,
)
from core.errors import ConfigError
from core.settings import Settings
from fakeslack import (
    AppDriver,
    ConfirmationRequired,
    ElementNotFound,
    FakeSlack,
    Message,
    NotSubmittable,
    SlackUser,
    View,
    wsgi_target,
)

TEAM_ID = "T0CONSOLE"
USER_ID = "U0YOU"
BOT_USER_ID = "U0CONNBOT"
CHANNEL = ("C0DATATEAM", "data-team")  # where you type
ALERTS = ("C0ALERTS", "data-alerts")  # CONNBOT_ALERT_CHANNEL
ESCALATIONS = ("C0CSM", "csm-escalations")  # CONNBOT_ESCALATION_CHANNEL
CSM_GROUP = ("S0CSM", "csm")  # CONNBOT_CSM_GROUP, with one member
CSM_USER = ("U0CASEY", "casey")

QUIET_SECONDS = 0.3  # no Web API call and no work in flight for this long: the app has settled
SCRIPT_PATIENCE = 120.0  # a script waits this long for background work (a sync, a run) per line
INTERACTIVE_PATIENCE = 3.0  # then the prompt comes back, and later changes are printed as they happen
WATCH_EVERY = 0.25

FIRST_SCREEN = """\
connbot console: connbot in this terminal, no Slack workspace needed
════════════════════════════════════════════════════════════════════
You are @you, a workspace admin, in #data-team of a local stand-in for Slack. connbot runs as
it does in Slack: the same app gets the same signed requests, and its Slack Web API calls are
answered here. Messages, modals and the App Home appear as text, buttons and menus numbered.

Try:
  /connections          list the connected sources
  /connections 1        open connection 1: its card, with tabs and buttons
  3                     press button [3] of what was shown last (the prompt names it)
  @connbot status 2     mention connbot: it answers in a thread
  home                  the App Home tab
  help                  all you can type · exit (or Ctrl-D) leaves

To use a real Slack workspace instead: create a Slack app from manifest.yml
(https://api.slack.com/apps?new_app=1 → "From a manifest"), install it, and set
SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET in the environment or in .env: `make run` then runs
the real app."""

HELP = """\
As in Slack (in #data-team):
  /connections [help | new | <id> | <search>]   the slash command
  @connbot <text>          a mention, e.g. @connbot status 2 (the answer comes in a thread)
  home                     open the App Home tab
On what is shown (the prompt names it: m3 is message 3, modal, home):
  3                        press button [3]; a menu [3] lists its options
  3 2                      choose option 2 of menu [3]
  In a modal:
  3 some text              type into input [3] ("3 -" empties it; "3" alone asks for the text)
  3 2                      pick option 2 of [3]; in checkboxes and multi-selects, tick or untick it
  3 1 4 5                  tick or untick several options at once
  submit · cancel          the modal's submit and close buttons
  m3                       show message m3 again, to use its buttons
  wait                     wait until connbot's background work (a sync, a run) is done
  help · exit (or Ctrl-D)
Buttons: * primary, ! destructive, ↗ opens a link. A confirmation dialog asks confirm? [y/N]."""


class ConsoleError(Exception):
    """Input the console cannot act on; said to the person, who tries again."""


# ---- the workspace ---------------------------------------------------------------------


class Activity:
    """Counts the app's work in flight: listeners after their ack, and background tasks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._running > 0

    def track(self, executor: Executor) -> Executor:
        return _Tracked(executor, self)

    def _add(self, n: int) -> None:
        with self._lock:
            self._running += n


class _Tracked(Executor):
    """The same executor, counting what it has not finished yet."""

    def __init__(self, inner: Executor, activity: Activity) -> None:
        self.inner = inner
        self.activity = activity

    def submit(self, fn, /, *args, **kwargs) -> Future:
        self.activity._add(1)
        try:
            future = self.inner.submit(fn, *args, **kwargs)
        except BaseException:
            self.activity._add(-1)
            raise
        future.add_done_callback(lambda _: self.activity._add(-1))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.inner.shutdown(wait=wait, cancel_futures=cancel_futures)


@dataclass
class Workspace:
    fake: FakeSlack
    user: SlackUser
    activity: Activity
    seeded: list[str]


@contextmanager
def open_workspace(settings: Settings, team_id: str = TEAM_ID, user_id: str = USER_ID) -> Iterator[Workspace]:
    """A fake Slack workspace with connbot installed and running, the demo seeded if empty."""
    from bot.app import create_app
    from connbot.runtime import build_context, recover, start_scheduler
    from connbot.server import wsgi_app

    secret = secrets.token_hex(16)
    fake = FakeSlack(
        team_id=team_id,
        team_domain="connbot-console",
        team_name="connbot console",
        bot_token=f"xoxb-console-{secrets.token_hex(8)}",
        bot_user_id=BOT_USER_ID,
    )
    fake.add_user(user_id, "you", real_name="You", is_admin=True)
    fake.add_user(CSM_USER[0], CSM_USER[1], real_name="Casey (Customer Success)")
    fake.add_user("USLACKBOT", "slackbot", is_bot=True)  # the demo seed's author, as in Slack
    fake.add_usergroup(CSM_GROUP[0], [CSM_USER[0]], handle=CSM_GROUP[1])
    for channel_id, name in (CHANNEL, ALERTS, ESCALATIONS):
        fake.add_channel(channel_id, name)
    with fake:
        # Roles come from this workspace (you are an admin), not from a real one's ids.
        settings = replace(
            settings,
            slack_api_url=fake.base_url,
            slack_bot_token=fake.team.bot_token,
            slack_signing_secret=secret,
            slack_app_token=None,
            admins=(),
            operators=(),
            alert_channel=ALERTS[0],
            escalation_channel=ESCALATIONS[0],
            csm_group=CSM_GROUP[0],
        )
        ctx = build_context(settings)
        recover(ctx)  # as `connbot run` does: runs and syncs a previous session left unfinished
        app, services = create_app(ctx)
        activity = Activity()
        services.executor = activity.track(services.executor)
        app.listener_runner.listener_executor = activity.track(app.listener_runner.listener_executor)
        driver = AppDriver(fake, wsgi_target(wsgi_app(app)), signing_secret=secret)
        scheduler = start_scheduler(ctx)
        services.alerts.start()
        try:
            # After the app is up, so the credentials alert the seed raises is posted like any other.
            seeded = seed_if_empty(ctx, team_id)
            yield Workspace(fake, driver.user(user_id), activity, seeded)
        finally:
            services.alerts.stop()
            scheduler.stop()
            services.executor.shutdown(wait=False, cancel_futures=True)


def seed_if_empty(ctx, team_id: str) -> list[str]:
    """The demo connections, and an extraction order with a finished run on the healthy one."""
    from operations.demo_seed import seed_demo

    made = seed_demo(ctx, team_id)
    if made:
        made.append(_demo_order(ctx, team_id))
    return made


def _demo_order(ctx, team_id: str) -> str:
    from engine.extraction import execute_run
    from operations.auth import Actor, Role
    from operations.demo_seed import SEED_USER
    from operations.orders import OrderSpec, active_accounts_page, create_order, start_first_run
    from storage.models import Connection

    actor = Actor(team_id=team_id, user_id=SEED_USER, role=Role.ADMIN)
    with ctx.db.begin() as session:
        connection_id = session.scalar(
            select(Connection.id)
            .where(
                Connection.team_id == team_id,
                Connection.deleted_at.is_(None),
                Connection.credentials_status == "active",
            )
            .order_by(Connection.id)
        )
    template = ctx.source("demo").templates()[0]
    _, accounts = active_accounts_page(ctx, actor, connection_id, offset=0, limit=5, search=None)
    spec = OrderSpec(
        account_ids=tuple(a[0] for a in accounts),
        template=template.name,
        name=f"{template.title} · daily",
        fields=tuple(f.name for f in template.fields if f.default),
        schedule={"kind": "daily", "at": "06:00"},
        history_days=7,
    )
    order_id, _ = create_order(ctx, actor, connection_id, spec, idempotency_key=f"console-demo-{team_id}")
    result = execute_run(ctx, team_id, start_first_run(ctx, actor, order_id))
    return (
        f"{connection_id}: extraction order “{spec.name}”, {len(spec.account_ids)} accounts, first run {result.status}"
    )


def settle(fake: FakeSlack, activity: Activity, patience: float) -> bool:
    """Wait until the app is quiet: nothing in flight and no Web API call for QUIET_SECONDS.
    False when it is still busy after `patience` seconds."""
    deadline = time.monotonic() + patience
    seen, quiet_since = None, time.monotonic()
    while time.monotonic() < deadline:
        now = (len(fake.calls()), len(fake.failures))
        if now != seen or activity.busy:
            seen, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_SECONDS:
            return True
        time.sleep(0.05)
    return False


# ---- what is on screen -------------------------------------------------------------------


@dataclass
class _Surface:
    obj: Message | View
    controls: list[Control]


class Screen:
    """What the person sees. `refresh()` returns the lines for whatever the app changed since
    the last call; numbers typed act on the focused surface (the prompt names it)."""

    def __init__(self, fake: FakeSlack, user_id: str, style: Style) -> None:
        self.fake = fake
        self.user_id = user_id
        self.team_id = fake.users[user_id].team_id
        self.style = style
        self.directory = Directory(
            users={u.id: u.name for u in fake.users.values()},
            channels={c.id: c.name for c in fake.channels.values() if not c.is_im},
            groups={g["id"]: g["handle"] for g in fake.usergroups.values()},
        )
        self.home_open = False  # the App Home is shown only while you look at it
        self.focus: str | None = None
        self.problems = 0
        self._versions: dict[tuple, Any] = {}
        self._labels: dict[tuple, str] = {}  # message key -> "m3"
        self._keys: dict[str, tuple] = {}
        self._surfaces: dict[str, _Surface] = {}
        self._last: str | None = None  # the message or home focused when no modal is open
        self._seen_problems = [0, 0, 0, 0]

    def prompt(self) -> str:
        return f"{self.focus}› " if self.focus else "› "

    def forget(self, label: str) -> None:
        """Show it again at the next refresh."""
        if label in self._keys:
            self._versions.pop(self._keys[label], None)

    def show(self, label: str) -> None:
        """Message `label` again, at the next refresh, with the focus."""
        surface = self._surfaces.get(label)
        if surface is None:
            raise ConsoleError(f"There is no {label} on screen.")
        if isinstance(surface.obj, Message) and surface.obj.deleted:  # views close rather
            raise ConsoleError(f"{label} was deleted.")
        self.forget(label)

    def control(self, number: int) -> tuple[Message | View, Control]:
        if self.focus is None:
            raise ConsoleError("Nothing with buttons is on screen yet: try /connections.")
        surface = self._surfaces[self.focus]
        if not 1 <= number <= len(surface.controls):
            raise ConsoleError(f"{self.focus} has no [{number}]; its numbers go from 1 to {len(surface.controls)}.")
        return surface.obj, surface.controls[number - 1]

    # ---- finding changes -----------------------------------------------------------------

    def refresh(self) -> list[str]:
        changed: list[tuple[float, tuple, Message]] = []
        for channel in list(self.fake.channels.values()):
            if channel.team_id == self.team_id and channel.has_member(self.user_id):
                for msg in list(channel.messages):
                    self._consider(("msg", channel.id, msg.ts), msg, changed)
        for msg in self.fake.all_ephemerals():
            if msg.recipient == self.user_id:
                self._consider(("eph", msg.channel, msg.ts), msg, changed)
        # A modal changes in answer to what you did (the ack); messages mostly follow from it.
        lines = self._modal()
        for _, key, msg in sorted(changed, key=lambda c: c[0]):
            lines += self._message(key, msg)
        home = self.fake.home(self.user_id)
        if self.home_open and home is not None and self._versions.get(("home",)) != home.hash:
            self._versions[("home",)] = home.hash
            lines += self._home(home)
        lines += self._new_problems()
        top = self.fake.modal(self.user_id)
        self.focus = "modal" if top is not None else self._last
        return lines

    def _consider(self, key: tuple, msg: Message, changed: list) -> None:
        version = (len(msg.versions), msg.deleted)
        if self._versions.get(key) == version:
            return
        if key not in self._labels and msg.deleted:  # gone before it was ever seen
            self._versions[key] = version
            return
        at = 0.0 if msg.deleted else float((msg.edited or {}).get("ts") or msg.ts)
        changed.append((at, key, msg))

    def _message(self, key: tuple, msg: Message) -> list[str]:
        updated = key in self._versions
        self._versions[key] = (len(msg.versions), msg.deleted)
        label = self._labels.get(key)
        if label is None:
            label = self._labels[key] = f"m{len(self._labels) + 1}"
            self._keys[label] = key
        if msg.deleted:
            if self._last == label:
                self._last = None
            return ["", rule(f"{label} was deleted", style=self.style)]
        rendered = render_message(msg.text, msg.blocks, self.directory, style=self.style)
        self._surfaces[label] = _Surface(msg, rendered.controls)
        if rendered.controls:
            self._last = label
        return ["", rule(self._head(msg, updated), label, style=self.style), *rendered.lines]

    def _head(self, msg: Message, updated: bool) -> str:
        channel = self.fake.channels[msg.channel]
        parts = [
            "connbot" if msg.bot_id else "@" + self.directory.users.get(msg.user or "", msg.user or "?"),
            "direct message" if channel.is_im else f"#{channel.name}",
        ]
        if msg.ephemeral:
            parts.append("only visible to you")
        if msg.is_reply:
            parent = self._labels.get(("msg", channel.id, msg.thread_ts))
            parts.append(f"in the thread of {parent}" if parent else "in a thread")
        if updated:
            parts.append("updated")
        return " · ".join(parts)

    def _home(self, home: View) -> list[str]:
        rendered = render_blocks(home.blocks, self.directory, style=self.style)
        self._surfaces["home"] = _Surface(home, rendered.controls)
        self._keys["home"] = ("home",)
        if rendered.controls:
            self._last = "home"
        return ["", rule("connbot · App Home", "home", char="━", style=self.style), *rendered.lines]

    def _modal(self) -> list[str]:
        stack = self.fake.views(self.user_id)
        top = stack[-1] if stack else None
        version = (top.id, top.hash, tuple(sorted(top.errors.items())), len(stack)) if top else None
        if self._versions.get(("modal",)) == version:
            return []
        was_open = self._versions.get(("modal",)) is not None
        self._versions[("modal",)] = version
        self._keys["modal"] = ("modal",)
        if top is None:
            self._surfaces.pop("modal", None)
            return ["", rule("the modal closed", style=self.style)] if was_open else []
        rendered = render_blocks(
            top.blocks, self.directory, state=top.state_values(), errors=top.errors, style=self.style
        )
        self._surfaces["modal"] = _Surface(top, rendered.controls)
        title = top.title + (f" · {len(stack)} stacked" if len(stack) > 1 else "")
        buttons = []
        if top.payload.get("submit"):
            buttons.append(f"submit: {top.payload['submit']['text']}")
        buttons.append(f"cancel: {(top.payload.get('close') or {}).get('text', 'Cancel')}")
        return [
            "",
            rule(title, "modal", char="━", lead="┏━", style=self.style),
            *("┃ " + line for line in rendered.lines),
            "┗━ " + self.style.bold(" · ".join(buttons)),
        ]

    def _new_problems(self) -> list[str]:
        """What Slack would show as an error, or refuse: the app's bugs, never hidden."""
        fake = self.fake
        groups: tuple[tuple[str, list[object]], ...] = (
            ("fakeslack internal error", list(fake.internal_errors)),
            ("Slack refused it", list(fake.violations)),
            ("Slack shows an error", list(fake.failures)),
            (
                "Web API error",
                [f"{c.method} → {c.error} {c.response.get('response_metadata', '')}".rstrip() for c in fake.errors()],
            ),
        )
        lines = []
        for i, (title, items) in enumerate(groups):
            for item in items[self._seen_problems[i] :]:
                lines.append(self.style.warn(f"⚠ {title}: {item}"))
                self.problems += 1
            self._seen_problems[i] = len(items)
        return lines


# ---- what you type -------------------------------------------------------------------------


Reader = Callable[[str], "str | None"]


class Console:
    def __init__(self, workspace: Workspace, out: TextIO, *, style: Style = PLAIN, interactive: bool = False) -> None:
        self.workspace = workspace
        self.fake = workspace.fake
        self.user = workspace.user
        self.out = out
        self.style = style
        self.interactive = interactive
        self.patience = INTERACTIVE_PATIENCE if interactive else SCRIPT_PATIENCE
        self.screen = Screen(self.fake, self.user.id, style)
        self.lock = threading.RLock()  # one of: handling your input, printing what changed meanwhile
        self.read: Reader = lambda prompt: None

    def print(self, *lines: str) -> None:
        self.out.write("".join(line + "\n" for line in lines))
        self.out.flush()

    def run(self, read: Reader) -> int:
        """Reads and acts until exit or the end of input. 0; in a script, 2 at the first input it
        cannot act on and 1 if Slack saw problems (errors shown, messages refused)."""
        self.read = read
        with self.lock:
            self.catch_up(self.patience)
        watcher = self._watch() if self.interactive else None
        try:
            while True:
                focus = self.screen.focus
                line = read(self.screen.prompt())
                if line is None:
                    break
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                with self.lock:
                    try:
                        if focus != self.screen.focus and line.split()[0].isdigit():
                            raise ConsoleError(
                                f"The screen changed while you typed: numbers now act on {self.screen.focus}. "
                                f"Type it again to act there{f', or {focus} to go back' if focus else ''}."
                            )
                        if not self.handle(line):
                            break
                    except ConsoleError as error:
                        self.print(self.style.warn(f"⚠ {error}"))
                        if not self.interactive:
                            return 2
                    self.catch_up(self.patience)
        finally:
            if watcher:
                watcher.set()
        if not self.interactive and self.screen.problems:
            self.print(self.style.warn(f"⚠ Slack saw {self.screen.problems} problem(s), shown above."))
            return 1
        return 0

    def catch_up(self, patience: float) -> None:
        """Let the app settle, then print what changed."""
        done = settle(self.fake, self.workspace.activity, patience)
        lines = self.screen.refresh()
        if not done:
            lines.append(self.style.dim("(connbot is still working; what it does appears as it happens, or type wait)"))
        if lines:
            self.print(*lines)

    def _watch(self) -> threading.Event:
        """Prints changes while you are at the prompt (a sync's progress, a run finishing, an alert)."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(WATCH_EVERY):
                with self.lock:
                    lines = self.screen.refresh()
                    if lines:
                        typed = _line_buffer()
                        self.out.write("\r\x1b[2K" + "\n".join(lines) + "\n" + self.screen.prompt() + typed)
                        self.out.flush()

        threading.Thread(target=loop, name="console-watch", daemon=True).start()
        return stop

    # ---- commands ------------------------------------------------------------------------

    def handle(self, line: str) -> bool:
        """Acts on one line; False to leave."""
        words = line.split()
        head = words[0].lower()
        modal_open = self.fake.modal(self.user.id) is not None
        if head in ("exit", "quit"):
            return False
        if head in ("help", "?"):
            self.print(HELP)
        elif head in ("submit", "cancel", "close"):
            self.modal_button(head)
        elif head == "wait":
            self.catch_up(SCRIPT_PATIENCE)
        elif head.isdigit():
            self.act(int(head), line.split(None, 1)[1] if len(words) > 1 else None)
        elif modal_open and (line.startswith(("/", "@")) or head == "home" or re.fullmatch(r"m\d+", head)):
            raise ConsoleError("A modal is open, in front of everything as in Slack: submit or cancel it first.")
        elif line.startswith("/"):
            self.slash(line)
        elif line.startswith("@"):
            self.mention(line)
        elif head == "home":
            self.screen.home_open = True
            self.screen.forget("home")
            self.user.open_home()
        elif re.fullmatch(r"m\d+", head) and len(words) == 1:
            self.screen.show(head)
        else:
            raise ConsoleError(f"Not understood: {line!r}. Type help for what you can type.")
        return True

    def slash(self, line: str) -> None:
        from bot.handlers.commands import COMMAND

        command, _, text = line.partition(" ")
        if command != COMMAND:  # Slack answers this itself: the command is not in the app's manifest
            raise ConsoleError(
                f'{command} is not a valid command. In Slack, all messages that start with "/" are interpreted as commands.'
            )
        self.screen.home_open = False
        self.user.command(command, text.strip(), channel=CHANNEL[0])

    def mention(self, line: str) -> None:
        name, _, text = line.partition(" ")
        if name.lower() != "@connbot":
            raise ConsoleError("Only @connbot is listening here, e.g. @connbot status 2.")
        self.screen.home_open = False
        self.user.mention(CHANNEL[0], f"<@{self.user.team.bot_user_id}> {text.strip()}".rstrip())

    def modal_button(self, which: str) -> None:
        view = self.fake.modal(self.user.id)
        if view is None:
            raise ConsoleError("No modal is open.")
        if which == "submit":
            try:
                self.user.submit(view)
            except NotSubmittable as refused:  # Slack's client refuses it before sending anything
                raise ConsoleError(f"Slack would not submit this: {refused}") from None
        else:
            self.user.close(view)

    def act(self, number: int, rest: str | None) -> None:
        target, control = self.screen.control(number)
        try:
            if control.is_input:
                if not isinstance(target, View):  # connbot's messages have no input blocks
                    raise ConsoleError("Only a modal's inputs can be typed into.")
                self.fill(target, control, rest)
            elif control.kind == "button":
                self.press(target, control)
            else:
                self.choose(target, control, rest)
        except (ElementNotFound, ConfirmationRequired) as stale:
            raise ConsoleError(str(stale)) from None

    def press(self, target: Message | View, control: Control) -> None:
        el = control.element
        if el.get("confirm") and not self.confirm(el["confirm"]):
            self.print("Cancelled: nothing was sent.")
            return
        self.user.click(
            target,
            el["action_id"],
            value=el.get("value"),
            block_id=control.block["block_id"],
            confirm=bool(el.get("confirm")),
        )
        if el.get("url"):
            self.print(f"(Slack opens {el['url']} in your browser.)")

    def choose(self, target: Message | View, control: Control, rest: str | None) -> None:
        value = self.picked(target, control, rest)
        el = control.element
        if el.get("confirm") and not self.confirm(el["confirm"]):
            self.print("Cancelled: nothing was sent.")
            return
        self.user.choose(
            target, el["action_id"], value, block_id=control.block["block_id"], confirm=bool(el.get("confirm"))
        )

    def fill(self, view: View, control: Control, rest: str | None) -> None:
        el, block = control.element, control.block
        if control.kind in TEXT_INPUTS or control.kind in PICKERS:
            label = (block.get("label") or {}).get("text", "value")
            text = rest if rest is not None else self.read(f"{label}: ")
            value = None if text is None or text.strip() in ("", "-") else text.strip()
            if value is not None and control.kind in PICKERS and not _PICKER_FORMAT[control.kind].fullmatch(value):
                raise ConsoleError(f"Type it as {PICKERS[control.kind]}.")
        else:
            value = self.picked(view, control, rest)
        if not block.get("dispatch_action"):  # Slack sends nothing until the modal is submitted
            self.user.fill(view, {block["block_id"]: {el["action_id"]: value}})
            self.screen.forget("modal")
        elif control.kind in TEXT_INPUTS:
            self.enter(view, control, value)
        else:
            self.user.choose(view, el["action_id"], value, block_id=block["block_id"])

    def picked(self, target: Message | View, control: Control, rest: str | None) -> Any:
        """The value(s) that option numbers in `rest` stand for; multi-selects toggle them."""
        numbers = (rest or "").split()
        choices = control.choices or self.suggested(target, control)
        options = " · ".join(f"{i} {label}" for i, (label, _) in enumerate(choices, 1))
        n = control.number
        if not numbers or not all(x.isdigit() and 1 <= int(x) <= len(choices) for x in numbers):
            raise ConsoleError(f"Choose by option number, e.g. `{n} 1`. [{n}] offers: {options or 'nothing'}")
        values = [choices[int(x) - 1][1] for x in numbers]
        state = target.state_values() if isinstance(target, View) else {}
        entry = state.get(control.block.get("block_id"), {}).get(control.element.get("action_id"), {})
        if control.kind.endswith("external_select"):  # the options themselves: only the app knows their texts
            labels = {value: label for label, value in choices}
            labels |= {o["value"]: o["text"]["text"] for o in entry.get("selected_options") or []}
            option = lambda value: {"text": {"type": "plain_text", "text": labels[value]}, "value": value}  # noqa: E731
        else:
            option = lambda value: value  # noqa: E731
        if control.kind not in MULTI:
            if len(values) > 1:
                raise ConsoleError(f"[{n}] takes one option, e.g. `{n} {numbers[0]}`.")
            return option(values[0])
        chosen = [o["value"] for o in entry.get("selected_options") or []]
        for value in values:
            if value in chosen:
                chosen.remove(value)
            else:
                chosen.append(value)
        return [option(value) for value in chosen]

    def suggested(self, target: Message | View, control: Control) -> tuple[tuple[str, Any], ...]:
        """An external select's options come from the app, as Slack asks for them when it opens."""
        if not control.kind.endswith("external_select") or not isinstance(target, View):
            return ()
        options = self.user.suggest(target, control.block["block_id"], "")
        return tuple((o["text"]["text"], o["value"]) for o in options)

    def enter(self, view: View, control: Control, text: str | None) -> None:
        """Type into an input that dispatches its action and press Enter: Slack sends a
        block_actions with the text. (SlackUser has no verb for this; it follows its `_act`.)"""
        block, el = control.block, control.element
        self.user.fill(view, {block["block_id"]: {el["action_id"]: text}})
        payload = self.user._base("block_actions")
        payload.update(
            container={"type": "view", "view_id": view.id},
            trigger_id=self.fake.issue_trigger(self.user.id, view_id=view.id),
            view=view.to_api(),
            actions=[
                {
                    "action_id": el["action_id"],
                    "block_id": block["block_id"],
                    "type": el["type"],
                    "value": text,
                    "action_ts": self.fake.new_ts(),
                }
            ],
        )
        self.user.driver._interactive("block_actions", payload, self.user.id)

    def confirm(self, dialog: dict) -> bool:
        """Slack's confirmation dialog: nothing is sent unless you accept it."""

        def text(key: str, default: str) -> str:
            return (dialog.get(key) or {}).get("text") or default

        self.print(
            "",
            "┌ " + self.style.bold(text("title", "Are you sure?")),
            "│ " + text("text", ""),
            f"└ y: {text('confirm', 'Yes')} · n: {text('deny', 'Cancel')}",
        )
        answer = self.read("confirm? [y/N] ")
        return (answer or "").strip().lower() in ("y", "yes")


_PICKER_FORMAT = {"datepicker": re.compile(r"\d{4}-\d{2}-\d{2}"), "timepicker": re.compile(r"\d{2}:\d{2}")}


def _line_buffer() -> str:
    """What you have typed at the prompt so far, to draw it again below new output."""
    readline = sys.modules.get("readline")  # imported by terminal_reader where available
    return readline.get_line_buffer() if readline else ""


# ---- readers --------------------------------------------------------------------------------


def script_reader(lines: Iterable[str], out: TextIO) -> Reader:
    """Lines of a script, echoed after the prompt as if typed; `#` comments are printed as
    narration, blank lines skipped."""
    remaining = iter(lines)

    def read(prompt: str) -> str | None:
        for raw in remaining:
            line = raw.rstrip("\n")
            if not line.strip():
                continue
            if line.lstrip().startswith("#"):
                out.write("\n" + line.strip() + "\n")
                continue
            out.write(prompt + line + "\n")
            out.flush()
            return line
        return None

    return read


def terminal_reader() -> Reader:
    try:
        import readline  # noqa: F401 -- importing it gives input() line editing and history
    except ImportError:  # not on every platform; input() works without it
        pass

    def read(prompt: str) -> str | None:
        try:
            return input(prompt)
        except EOFError:  # Ctrl-D
            print()
            return None

    return read


# ---- entry point ------------------------------------------------------------------------------


def run_console(
    settings: Settings, *, script: str | None = None, team_id: str = TEAM_ID, user_id: str = USER_ID
) -> int:
    """`connbot console`: interactive on a terminal; otherwise (or with --script) the lines of
    the script ('-': standard input) are played and the transcript printed."""
    if not re.fullmatch(r"T[A-Z0-9]{2,}", team_id):
        raise ConfigError(f"--team: expected a Slack team ID such as {TEAM_ID}, got {team_id!r}")
    if not re.fullmatch(r"[UW][A-Z0-9]{2,}", user_id) or user_id in (BOT_USER_ID, CSM_USER[0], "USLACKBOT"):
        raise ConfigError(f"--user: expected a Slack user ID such as {USER_ID}, got {user_id!r}")
    lines: Iterable[str] | None = None
    if script not in (None, "-"):
        try:
            lines = Path(script).read_text().splitlines()
        except OSError as error:
            raise ConfigError(f"--script: cannot read {script}: {error.strerror}") from None
    elif script == "-" or not sys.stdin.isatty():
        lines = sys.stdin
    interactive = lines is None
    out = sys.stdout
    style = COLOR if interactive and out.isatty() and not os.environ.get("NO_COLOR") else PLAIN
    log_file = _log_to_file(settings.data_dir)

    print(FIRST_SCREEN, file=out)
    print(style.dim(f"Data: {settings.data_dir}/ · log: {log_file} · starting…"), file=out, flush=True)
    with open_workspace(settings, team_id, user_id) as workspace:
        if workspace.seeded:
            print(
                "\nThe demo workspace was empty; connbot made these connections:",
                *workspace.seeded,
                sep="\n  ",
                file=out,
            )
        console = Console(workspace, out, style=style, interactive=interactive)
        read = terminal_reader() if lines is None else script_reader(lines, out)
        return console.run(read)


def _log_to_file(data_dir: Path) -> Path:
    """The app's log would bury the conversation: it goes to a file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "console.log"
    root = logging.getLogger()
    formatter = root.handlers[0].formatter if root.handlers else None
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.FileHandler(path)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    return path
