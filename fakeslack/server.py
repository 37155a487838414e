"""``FakeSlack``: a local Slack Web API with workspace state, for tests.

One HTTP server on 127.0.0.1 (ephemeral port, background thread) serves

* ``/api/<method>`` -- the Web API.  Apps point ``WebClient(base_url=fake.base_url)``
  (or ``SLACK_API_URL``) at it.  Calls are checked like Slack checks them
  (method and argument names from ``methods.json``, required arguments, token,
  Block Kit limits), answered from the workspace state, and recorded.
* ``/response/<id>`` -- response_urls handed to the app in slash commands and
  block actions (5 uses in 30 minutes, replace/delete the original message).

The other side -- a person clicking, typing commands, submitting modals -- is
:mod:`fakeslack.client`.  Typical pytest use::

    @pytest.fixture
    def slack():
        with FakeSlack() as fake:
            fake.add_user("U1", "alice")
            fake.add_channel("C1", "general")
            yield fake
            fake.assert_clean()   # no limit violations, no failures, no API misuse

Everything the app cannot see is a plain attribute or helper for tests:
``calls()``, ``last()``, ``messages()``, ``ephemerals()``, ``view()``,
``home()``, ``thread()``, ``violations``, ``failures``, ``wait_for()``.
Timing-sensitive rules (trigger_id 3 s, response_url 30 min) read the
injectable ``clock``; message timestamps read ``wall``.
"""

from __future__ import annotations

import copy
import itertools
import json
import random
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from . import limits
from .httpd import HTTPServer, RequestHandler
from .models import (
    DEFAULT_SCOPES,
    Call,
    Channel,
    Confirmation,
    Failure,
    Grant,
    Message,
    OAuthApp,
    ResponseURL,
    Team,
    Trigger,
    User,
    View,
    Violation,
    _walk_elements,
)
from .webapi import HANDLERS, Handler, SlackError, bool_arg

METHODS_FILE = Path(__file__).with_name("methods.json")

TRIGGER_TTL = 3.0  # seconds a trigger_id can be exchanged for a view
CODE_TTL = 10 * 60.0  # seconds an OAuth code can be exchanged (once)
TOKEN_TTL = 12 * 3600.0  # seconds a bot token lasts with token rotation on (Slack's 12 hours)
# Methods called without a token: the OAuth exchange authenticates the app by its client id and secret.
TOKENLESS = frozenset({"api.test", "oauth.v2.access"})
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60.0

# Arguments whose value is JSON (a string in form bodies); decoded in call records.
JSON_ARGS = ("blocks", "attachments", "view", "metadata")

# Accepted by every method besides those listed in methods.json: slack_sdk adds
# `team_id` to every call of a client built with team_id=... (bolt does that for
# each request), and Slack takes it on any method for org-wide tokens.
IMPLICIT_ARGS = frozenset({"team_id"})

# Errors that mean the app misused the API (a bug), not a state a caller must handle.
BUG_ERRORS = frozenset(
    {
        "unknown_method",
        "method_deprecated",
        "invalid_arg_name",
        "invalid_arguments",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_json",
        "json_not_object",
        "invalid_form_data",
        "msg_too_long",
        "no_text",
        "not_authed",
        "invalid_auth",
        "expired_trigger_id",
        "exchanged_trigger_id",
        "invalid_trigger_id",
        "used_url",
        "expired_url",
        "fakeslack_not_implemented",
    }
)

# Keys Slack reads from a response_url post (others are rejected to catch typos).
RESPONSE_URL_KEYS = frozenset(
    {
        "text",
        "blocks",
        "attachments",
        "response_type",
        "replace_original",
        "delete_original",
        "thread_ts",
        "unfurl_links",
        "unfurl_media",
        "mrkdwn",
        "metadata",
        "parse",
        "link_names",
        "username",
        "icon_emoji",
        "icon_url",
    }
)

_ID_CHARS = string.ascii_letters + string.digits


@dataclass
class Fault:
    """A scripted answer for the next call(s) of a method (see ``fail_next``)."""

    method: str
    error: str | None
    status: int
    retry_after: int | None
    delay: float
    times: int | None  # None: every call until cleared
    body: dict | None

    @property
    def answers(self) -> bool:
        """False for a pure delay: the call is then processed normally."""
        return self.error is not None or self.body is not None


def load_methods(path: Path = METHODS_FILE) -> dict[str, dict]:
    return json.loads(path.read_text())["methods"]


class FakeSlack:
    """A fake Slack workspace (or several) with a Web API server.

    Args:
        team_id, team_domain, team_name: the first team (more with ``add_team``).
        bot_token, bot_user_id, bot_id: the app's bot in that team.
        app_id: the app (the same across teams, as for a distributed app).
        clock: monotonic seconds, for trigger_id / response_url expiry.
        wall: epoch seconds, for message timestamps and call records.
        chat_write_public: the bot may post to public channels it is not in
            (the ``chat:write.public`` scope); off by default.
        scopes: the bot scopes of the first team (``x-oauth-scopes``); default
            ``DEFAULT_SCOPES``. The fake answers every method whatever they are.
    """

    def __init__(
        self,
        *,
        team_id: str = "T0FAKE001",
        team_domain: str = "fakeslack",
        team_name: str = "Fake Slack",
        bot_token: str = "xoxb-fakeslack-token",
        bot_user_id: str = "U0FAKEBOT",
        bot_id: str = "B0FAKEBOT",
        app_id: str = "A0FAKEAPP",
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        chat_write_public: bool = False,
        scopes: tuple[str, ...] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.clock = clock
        self.wall = wall
        self.app_id = app_id
        self.chat_write_public = chat_write_public
        self.trigger_ttl = TRIGGER_TTL
        self.code_ttl = CODE_TTL
        self.token_ttl = TOKEN_TTL
        self.response_url_uses = RESPONSE_URL_USES
        self.response_url_ttl = RESPONSE_URL_TTL
        self._host, self._port = host, port

        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # notified on every request
        self._ids = itertools.count(1)
        # Slack's view ids are unique for good; a console started again keeps its data, and a
        # form's view id is the idempotency key of what it makes.
        self._view_prefix = secrets.token_hex(3).upper()
        self._rng = random.Random(0)  # filled-in block_id/action_id: deterministic
        self._last_us = 0

        self.methods = load_methods()
        self._handlers: dict[str, Handler] = dict(HANDLERS)

        self.teams: dict[str, Team] = {}
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.usergroups: dict[str, dict] = {}
        self._tokens: dict[str, Team] = {}
        self._revoked: set[str] = set()  # tokens of an uninstalled app: "token_revoked"
        self._expires: dict[str, float] = {}  # token rotation: a bot token's end, on `clock`
        self._refresh: dict[str, str] = {}  # token rotation: refresh token -> team id, until used
        self.oauth_app: OAuthApp | None = None
        self._grants: dict[str, Grant] = {}
        self._ephemerals: dict[str, list[Message]] = {}
        self._views: dict[str, View] = {}
        self._stacks: dict[str, list[str]] = {}  # user -> modal view ids, bottom first
        self._homes: dict[str, str] = {}  # user -> home view id
        self._triggers: dict[str, Trigger] = {}
        self._response_urls: dict[str, ResponseURL] = {}
        self._faults: list[Fault] = []

        self._calls: list[Call] = []
        self.violations: list[Violation] = []
        self.failures: list[Failure] = []
        self.confirmations: list[Confirmation] = []
        self.internal_errors: list[str] = []  # tracebacks of the fake's own bugs

        self._server: HTTPServer | None = None
        self._thread: threading.Thread | None = None

        self.add_team(
            team_id, team_domain, team_name, bot_token=bot_token, bot_user_id=bot_user_id, bot_id=bot_id, scopes=scopes
        )

    # ------------------------------------------------------------------ setup
    @property
    def team(self) -> Team:
        """The first team."""
        return next(iter(self.teams.values()))

    def add_team(
        self,
        id: str,
        domain: str | None = None,
        name: str | None = None,
        *,
        bot_token: str | None = None,
        bot_user_id: str | None = None,
        bot_id: str | None = None,
        enterprise_id: str | None = None,
        scopes: tuple[str, ...] | None = None,
    ) -> Team:
        with self._lock:
            team = Team(
                id=id,
                domain=domain or id.lower(),
                name=name or id,
                bot_token=bot_token or f"xoxb-fakeslack-{id}",
                bot_user_id=bot_user_id or f"U0BOT{id}",
                bot_id=bot_id or f"B0BOT{id}",
                enterprise_id=enterprise_id,
                scopes=DEFAULT_SCOPES if scopes is None else tuple(scopes),
            )
            self.teams[id] = team
            self._tokens[team.bot_token] = team
            self.users[team.bot_user_id] = User(id=team.bot_user_id, name="connbot", team_id=id, is_bot=True)
            return team

    def add_user(self, id: str, name: str | None = None, *, team_id: str | None = None, **fields: Any) -> User:
        """A person; ``fields``: real_name, is_admin, is_owner, tz, tz_offset, email, ..."""
        with self._lock:
            user = User(id=id, name=name or id.lower(), team_id=team_id or self.team.id, **fields)
            self.users[id] = user
            return user

    def add_channel(
        self,
        id: str,
        name: str,
        *,
        team_id: str | None = None,
        private: bool = False,
        members: list[str] | set[str] | None = None,
        bot_member: bool = True,
        archived: bool = False,
        **fields: Any,
    ) -> Channel:
        """A channel; ``members=None`` means every person of the team is in it."""
        with self._lock:
            channel = Channel(
                id=id,
                name=name,
                team_id=team_id or self.team.id,
                is_private=private,
                members=set(members) if members is not None else None,
                bot_member=bot_member,
                is_archived=archived,
                **fields,
            )
            self.channels[id] = channel
            return channel

    def add_usergroup(
        self,
        id: str,
        users: list[str],
        *,
        team_id: str | None = None,
        handle: str = "",
        name: str = "",
        disabled: bool = False,
    ) -> dict:
        with self._lock:
            group = {
                "id": id,
                "team_id": team_id or self.team.id,
                "handle": handle or id.lower(),
                "name": name or handle or id,
                "users": list(users),
                "disabled": disabled,
            }
            self.usergroups[id] = group
            return group

    def im(self, user_id: str) -> Channel:
        """The app's DM channel with a person (created on first use)."""
        with self._lock:
            user = self.users[user_id]
            cid = "D" + user_id[1:]
            if cid not in self.channels:
                self.channels[cid] = Channel(
                    id=cid, name=cid, team_id=user.team_id, is_im=True, im_user=user_id, bot_member=True
                )
            return self.channels[cid]

    def on(self, method: str, handler: Handler) -> None:
        """Answer ``method`` with ``handler(fake, team, args) -> dict`` (may raise SlackError)."""
        if method not in self.methods:
            raise ValueError(f"{method} is not a Slack Web API method")
        self._handlers[method] = handler

    # ------------------------------------------------------------ distribution
    def configure_oauth(
        self,
        client_id: str,
        client_secret: str,
        *,
        redirect_urls: list[str],
        scopes: list[str] | tuple[str, ...],
        token_rotation: bool = False,
    ) -> OAuthApp:
        """The app's OAuth settings, as on its api.slack.com page: installs go through
        ``authorize`` (the person on Slack's page) and ``oauth.v2.access`` (the app). With
        ``token_rotation``, bot tokens expire (``token_ttl``) and ``oauth.v2.access`` renews them."""
        with self._lock:
            self.oauth_app = OAuthApp(client_id, client_secret, list(redirect_urls), set(scopes), token_rotation)
            return self.oauth_app

    def authorize(self, url: str, user_id: str, *, approve: bool = True) -> str:
        """A person opens the app's ``https://slack.com/oauth/v2/authorize?...`` link and allows
        (or cancels) the install to their workspace. Returns where Slack sends the browser: the
        redirect URI with ``code`` and ``state`` (or ``error=access_denied``). What Slack shows
        as an error page instead of redirecting raises SlackError."""
        query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
        with self._lock:
            app = self.oauth_app
            if app is None or query.get("client_id") != app.client_id:
                raise SlackError("invalid_client_id")
            redirect = query.get("redirect_uri") or None
            if redirect is not None and redirect not in app.redirect_urls:
                raise SlackError("bad_redirect_uri")
            target = redirect or app.redirect_urls[0]
            scopes = [s for s in (query.get("scope") or "").split(",") if s]
            unknown = sorted(set(scopes) - app.scopes)
            if unknown:
                raise SlackError(
                    "invalid_scope", messages=[f"[ERROR] not configured for the app: {', '.join(unknown)}"]
                )
            if [s for s in (query.get("user_scope") or "").split(",") if s]:
                raise SlackError("invalid_scope", messages=["[ERROR] the fake installs bot scopes only"])
            user = self.users[user_id]
            wanted = query.get("team")
            if wanted and wanted != user.team_id:
                raise SlackError("invalid_team", messages=["[ERROR] the person is not in the team the link asks for"])
            state = {"state": query["state"]} if "state" in query else {}
            if not approve:
                return f"{target}?{urlencode({'error': 'access_denied', **state})}"
            code = f"{self._next()}.{secrets.token_hex(16)}"
            self._grants[code] = Grant(code, app.client_id, user.team_id, user_id, scopes, redirect, self.clock())
            return f"{target}?{urlencode({'code': code, **state})}"

    def uninstall(self, team_id: str) -> None:
        """The app is removed from the workspace: every bot token Slack gave it there is revoked
        (calls with them answer ``token_revoked``). Deliver the events with
        ``AppDriver.uninstalled``."""
        with self._lock:
            for token, team in list(self._tokens.items()):
                if team.id == team_id:
                    del self._tokens[token]
                    self._revoked.add(token)
            self._refresh = {refresh: team for refresh, team in self._refresh.items() if team != team_id}

    def _install(self, grant: Grant) -> dict:
        """``oauth.v2.access``'s answer for a code: a new bot token for the team (its old one
        keeps working until the app is uninstalled, or expires, as Slack's do)."""
        team = self.teams[grant.team_id]
        team.scopes = tuple(grant.scopes)  # what the person allowed
        enterprise = {"id": team.enterprise_id, "name": team.enterprise_id} if team.enterprise_id else None
        return {
            "ok": True,
            **self._new_token(team),
            "token_type": "bot",
            "scope": ",".join(grant.scopes),
            "bot_user_id": team.bot_user_id,
            "app_id": self.app_id,
            "team": {"id": team.id, "name": team.name},
            "enterprise": enterprise,
            "authed_user": {"id": grant.user_id},
            "is_enterprise_install": False,
        }

    def _renew(self, refresh_token: str) -> dict:
        """``oauth.v2.access``'s answer for a refresh token (token rotation): a new bot token and
        a new refresh token; the one given is used up, the old bot token lasts until it expires."""
        team_id = self._refresh.pop(refresh_token, None)
        if team_id is None:
            raise SlackError("invalid_refresh_token")
        team = self.teams[team_id]
        return {
            "ok": True,
            **self._new_token(team),
            "token_type": "bot",
            "scope": ",".join(team.scopes),
            "bot_user_id": team.bot_user_id,
            "app_id": self.app_id,
            "team": {"id": team.id, "name": team.name},
            "enterprise": {"id": team.enterprise_id, "name": team.enterprise_id} if team.enterprise_id else None,
            "is_enterprise_install": False,
        }

    def _new_token(self, team: Team) -> dict:
        rotating = self.oauth_app is not None and self.oauth_app.token_rotation
        token = f"{'xoxe.' if rotating else ''}xoxb-{team.id.lower()}-{secrets.token_hex(12)}"
        team.bot_token = token
        self._tokens[token] = team
        if not rotating:
            return {"access_token": token}
        refresh = f"xoxe-1-{secrets.token_hex(24)}"
        self._refresh[refresh] = team.id
        self._expires[token] = self.clock() + self.token_ttl
        return {"access_token": token, "refresh_token": refresh, "expires_in": int(self.token_ttl)}

    # -------------------------------------------------------------- lifecycle
    def start(self) -> FakeSlack:
        if self._server is None:
            self._server = HTTPServer((self._host, self._port), RequestHandler)
            self._server.fake = self
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="fakeslack",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (started servers only)."""
        if self._server is None:
            raise RuntimeError("FakeSlack is not started: use start() or `with FakeSlack() as fake`")
        host, port = self._server.server_address[:2]
        if not isinstance(host, str):  # an AF_INET socket names its address with a str
            raise RuntimeError(f"FakeSlack is bound to an unexpected address: {host!r}")
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        """What to pass as ``WebClient(base_url=...)`` / ``SLACK_API_URL``."""
        return self.url + "/api/"

    def env(self, team_id: str | None = None) -> dict[str, str]:
        """Environment for an app process pointed at this fake."""
        team = self.teams[team_id] if team_id else self.team
        return {"SLACK_API_URL": self.base_url, "SLACK_BOT_TOKEN": team.bot_token}

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "not started"
        return f"<FakeSlack {where}: {len(self.teams)} team(s), {len(self._calls)} call(s)>"

    # ------------------------------------------------------------- inspection
    def calls(self, method: str | None = None) -> list[Call]:
        """Recorded calls, oldest first (``"response_url"`` for response_url posts)."""
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def last(self, method: str) -> Call:
        """The latest call of ``method``; LookupError if there was none."""
        found = self.calls(method)
        if not found:
            seen = sorted({c.method for c in self.calls()})
            raise LookupError(f"no {method} call recorded (calls so far: {seen})")
        return found[-1]

    def errors(self) -> list[Call]:
        """Calls refused because the app misused the API (see ``BUG_ERRORS``)."""
        return [c for c in self.calls() if not c.injected and c.error in BUG_ERRORS]

    def problems(self) -> list[str]:
        with self._lock:
            out = [f"fakeslack internal error: {e}" for e in self.internal_errors]
            out += [f"Block Kit violation: {v}" for v in self.violations]
            out += [f"user-visible failure: {f}" for f in self.failures]
            out += [
                f"API misuse: {c.method} -> {c.error} {c.response.get('response_metadata', '')}".rstrip()
                for c in self.errors()
            ]
            return out

    def assert_clean(self) -> None:
        """Fail if any message/view broke a limit, a person saw an error, or the
        app misused the API.  Meant for the teardown of a test fixture."""
        problems = self.problems()
        if problems:
            raise AssertionError("fake Slack saw problems:\n  " + "\n  ".join(problems))

    def clear_records(self) -> None:
        """Forget calls, violations, failures and confirmations (not state)."""
        with self._lock:
            self._calls.clear()
            self.violations.clear()
            self.failures.clear()
            self.confirmations.clear()

    def channel(self, channel: str) -> Channel:
        """A channel by ID or name (``"C1"``, ``"general"``, ``"#general"``)."""
        ref = channel.lstrip("#")
        if ref in self.channels:
            return self.channels[ref]
        for ch in self.channels.values():
            if ch.name == ref:
                return ch
        raise KeyError(f"no channel {channel!r}")

    def messages(self, channel: str, *, include_deleted: bool = False) -> list[Message]:
        """Messages shown in the channel (not thread replies, except broadcasts)."""
        with self._lock:
            ch = self.channel(channel)
            return [
                m
                for m in ch.messages
                if (include_deleted or not m.deleted) and (not m.is_reply or m.subtype == "thread_broadcast")
            ]

    def message(self, channel: str, ts: str) -> Message:
        with self._lock:
            for m in self.channel(channel).messages:
                if m.ts == ts:
                    return m
            raise KeyError(f"no message {ts} in {channel}")

    def live_message(self, msg: Message) -> Message | None:
        """The stored message a snapshot (``Message.copy()``) was taken from."""
        with self._lock:
            pool = (
                self._ephemerals.get(msg.recipient or "", []) if msg.ephemeral else self.channels[msg.channel].messages
            )
            return next((m for m in pool if m.ts == msg.ts and m.channel == msg.channel), None)

    def thread(self, channel: str, ts: str) -> list[Message]:
        """Parent message then its replies ([] if there is no such message)."""
        with self._lock:
            ch = self.channel(channel)
            parent = next((m for m in ch.messages if m.ts == ts and not m.deleted), None)
            if parent is None:
                return []
            root = parent.thread_ts or parent.ts
            if root != parent.ts:
                parent = next((m for m in ch.messages if m.ts == root), parent)
            replies = [m for m in ch.messages if m.is_reply and m.thread_ts == root and not m.deleted]
            return [parent, *replies]

    def ephemerals(self, user: str, channel: str | None = None) -> list[Message]:
        """Ephemeral messages the person currently sees, oldest first."""
        with self._lock:
            cid = self.channel(channel).id if channel else None
            return [m for m in self._ephemerals.get(user, []) if not m.deleted and (cid is None or m.channel == cid)]

    def all_ephemerals(self) -> list[Message]:
        with self._lock:
            return [m for ms in self._ephemerals.values() for m in ms]

    def view(self, view_id: str) -> View:
        with self._lock:
            return self._views[view_id]

    def views(self, user: str, *, team_id: str | None = None) -> list[View]:
        """The person's open modals, bottom of the stack first."""
        with self._lock:
            return [self._views[v] for v in self._stacks.get(user, [])]

    def modal(self, user: str) -> View | None:
        """The modal the person sees (top of the stack), or None."""
        stack = self.views(user)
        return stack[-1] if stack else None

    def home(self, user: str) -> View | None:
        with self._lock:
            vid = self._homes.get(user)
            return self._views[vid] if vid else None

    def channel_members(self, channel: Channel) -> list[str]:
        if channel.is_im:
            return [channel.im_user or ""]
        if channel.members is not None:
            return sorted(channel.members)
        return sorted(u.id for u in self.users.values() if u.team_id == channel.team_id and not u.is_bot)

    # ---------------------------------------------------------- synchronising
    def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0, message: str = "") -> Any:
        """Wait until ``predicate()`` is truthy and return its value.

        For asynchronous app behaviour (work after ack()).  Wakes on every
        request the fake handles and polls every 10 ms for conditions outside
        it.  Raises TimeoutError (with ``message``) after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [f"{c.method}({'ok' if c.ok else c.error})" for c in self._calls[-10:]]
                    raise TimeoutError(
                        f"condition not met within {timeout}s{': ' + message if message else ''}; last calls: {seen}"
                    )
                self._changed.wait(min(remaining, 0.01))

    def wait_calls(self, method: str, n: int = 1, timeout: float = 5.0) -> list[Call]:
        """Wait until ``method`` has been called ``n`` times; return those calls."""
        return self.wait_for(
            lambda: (lambda cs: cs if len(cs) >= n else None)(self.calls(method)),
            timeout,
            f"{n} x {method}",
        )

    # -------------------------------------------------------- fault injection
    def fail_next(
        self,
        method: str,
        error: str | None = None,
        *,
        status: int | None = None,
        retry_after: int | None = None,
        delay: float = 0.0,
        times: int | None = 1,
        body: dict | None = None,
    ) -> Fault:
        """Script the answer to the next ``times`` calls of ``method`` ("*": any,
        "response_url": response_url posts; ``times=None``: until clear_faults()).

        * ``fail_next("chat.update", "ratelimited")`` -> HTTP 429, Retry-After: 1
        * ``fail_next("views.open", "channel_not_found")`` -> HTTP 200, ok: false
        * ``fail_next("chat.postMessage", status=500)`` -> HTTP 500, internal_error
        * ``fail_next("chat.update", delay=2.0)`` -> answered normally, 2 s late
          (simulates a slow Slack / client timeouts); combine with ``error``.
        """
        if error is None and body is None and status not in (None, 200):
            error = "ratelimited" if status == 429 else "internal_error"
        if status is None:
            status = 429 if error in ("ratelimited", "rate_limited") else 200
        if status == 429 and retry_after is None:
            retry_after = 1
        fault = Fault(method, error, status, retry_after, delay, times, body)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, method: str) -> Fault | None:
        """The fault injected for `method`, if any, after its delay (in real time: the HTTP client
        must actually wait)."""
        with self._lock:
            fault = next((f for f in self._faults if f.method in (method, "*")), None)
            if fault is not None and fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        return fault

    def _record(
        self, call: Call, fault: Fault | None, answer: Callable[[], tuple[int, dict]]
    ) -> tuple[int, dict[str, str], dict]:
        """Answers `call` as the injected fault says, else with `answer()`; records it and wakes
        waiters. Called under ``_changed``. Returns (HTTP status, extra headers, JSON body)."""
        headers: dict[str, str] = {}
        if fault is not None and fault.answers:
            call.injected = True
            status = fault.status
            body = fault.body if fault.body is not None else {"ok": False, "error": fault.error}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
        else:
            status, body = answer()
        call.status, call.response = status, body
        self._calls.append(call)
        self._changed.notify_all()
        return status, headers, body

    # ----------------------------------------------------------- id factories
    def _next(self) -> int:
        return next(self._ids)

    def new_ts(self) -> str:
        """A message timestamp from ``wall``: unique and increasing."""
        with self._lock:
            us = int(round(self.wall() * 1_000_000))
            if us <= self._last_us:
                us = self._last_us + 1
            self._last_us = us
            return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    def _random_id(self, n: int = 5) -> str:
        return "".join(self._rng.choice(_ID_CHARS) for _ in range(n))

    def fill_ids(self, blocks: list | None) -> list | None:
        """A copy of ``blocks`` with block_id/action_id filled in where the app
        left them out, as Slack stores (and later sends back) blocks."""
        if blocks is None:
            return None
        blocks = copy.deepcopy(blocks)
        for block in blocks:
            if isinstance(block, dict) and "block_id" not in block:
                block["block_id"] = self._random_id()
        for _, el in _walk_elements(blocks):
            if el.get("type") not in ("image",) and "action_id" not in el:
                el["action_id"] = self._random_id(4)
        return blocks

    def _fill_view(self, view: dict) -> dict:
        stored = copy.deepcopy(view)
        stored["blocks"] = self.fill_ids(view.get("blocks") or [])
        return stored

    def _new_hash(self) -> str:
        return f"{int(self.wall())}.{secrets.token_hex(4)}"

    # ------------------------------------------------------- limits (record!)
    def check_message_limits(
        self, source: str, blocks: Any, text: Any, *, text_limit: int = limits.MESSAGE_TEXT
    ) -> None:
        problems = limits.check_message(blocks, text, text_limit=text_limit)
        if problems:
            self.violations.append(Violation(source, problems, {"text": text, "blocks": blocks}))
            text_only = all(p.pointer == "/text" for p in problems)
            raise SlackError("msg_too_long" if text_only else "invalid_blocks", messages=[str(p) for p in problems])

    def check_view_limits(self, source: str, view: Any) -> None:
        problems = limits.check_view(view)
        if problems:
            self.violations.append(Violation(source, problems, view))
            raise SlackError("invalid_arguments", messages=[str(p) for p in problems])

    # ------------------------------------------------------------ state verbs
    def resolve_channel(self, team: Team, ref: Any) -> Channel:
        """A channel by ID, name (``#general``) or a user ID (the DM with them)."""
        ref = str(ref or "").strip().lstrip("#")
        ch = self.channels.get(ref)
        if ch is None and ref in self.users and not self.users[ref].is_bot:
            ch = self.im(ref)
        if ch is None:
            ch = next((c for c in self.channels.values() if c.name == ref and c.team_id == team.id), None)
        if ch is None or ch.team_id != team.id:
            raise SlackError("channel_not_found")
        return ch

    def _thread_root(self, channel: Channel, thread_ts: str) -> Message:
        for m in channel.messages:
            if m.ts == thread_ts and not m.deleted:
                if m.is_reply:  # replying to a reply threads under its parent
                    return self._thread_root(channel, m.thread_ts or "")
                return m
        raise SlackError("thread_not_found")

    def post_message(
        self,
        channel: Channel,
        team: Team,
        *,
        text: str,
        blocks: list | None = None,
        attachments: list | None = None,
        thread_ts: str | None = None,
        broadcast: bool = False,
        metadata: dict | None = None,
        user: str | None = None,
    ) -> Message:
        """Store a message (by the bot, or by ``user`` for a person's message)."""
        with self._lock:
            parent = self._thread_root(channel, thread_ts) if thread_ts else None
            author = user or team.bot_user_id
            msg = Message(
                channel=channel.id,
                ts=self.new_ts(),
                text=text,
                team_id=team.id,
                blocks=self.fill_ids(blocks),
                raw_blocks=copy.deepcopy(blocks),
                attachments=attachments,
                user=author,
                bot_id=None if user else team.bot_id,
                app_id=None if user else self.app_id,
                thread_ts=parent.ts if parent else None,
                subtype="thread_broadcast" if (parent and broadcast) else None,
                metadata=metadata,
            )
            channel.messages.append(msg)
            if parent is not None:
                parent.thread_ts = parent.ts
                parent.reply_ts.append(msg.ts)
                if author not in parent.reply_users:
                    parent.reply_users.append(author)
            return msg

    def post_ephemeral(
        self,
        channel: Channel,
        team: Team,
        user_id: str,
        *,
        text: str,
        blocks: list | None = None,
        attachments: list | None = None,
        thread_ts: str | None = None,
    ) -> Message:
        with self._lock:
            msg = Message(
                channel=channel.id,
                ts=self.new_ts(),
                text=text,
                team_id=team.id,
                blocks=self.fill_ids(blocks),
                raw_blocks=copy.deepcopy(blocks),
                attachments=attachments,
                user=team.bot_user_id,
                bot_id=team.bot_id,
                app_id=self.app_id,
                thread_ts=thread_ts,
                ephemeral=True,
                recipient=user_id,
            )
            self._ephemerals.setdefault(user_id, []).append(msg)
            return msg

    # views
    def _new_view(self, team: Team, user_id: str, payload: dict, **links: Any) -> View:
        view = View(
            id=f"V{self._view_prefix}{self._next():06d}",
            team_id=team.id,
            user_id=user_id,
            app_id=self.app_id,
            bot_id=team.bot_id,
            payload=self._fill_view(payload),
            hash=self._new_hash(),
            **links,
        )
        ext = payload.get("external_id")
        if ext and any(v.external_id == ext and v.team_id == team.id and not v.closed for v in self._views.values()):
            raise SlackError("duplicate_external_id")
        self._views[view.id] = view
        return view

    def open_view(self, team: Team, user_id: str, payload: dict) -> View:
        with self._lock:
            view = self._new_view(team, user_id, payload)
            self.close_views(user_id)  # a new modal replaces whatever was open
            self._stacks[user_id] = [view.id]
            return view

    def push_view(self, team: Team, user_id: str, payload: dict) -> View:
        with self._lock:
            stack = self._stacks.get(user_id)
            if not stack:
                return self.open_view(team, user_id, payload)
            top = self._views[stack[-1]]
            view = self._new_view(
                team, user_id, payload, root_view_id=top.root_view_id or top.id, previous_view_id=top.id
            )
            stack.append(view.id)
            return view

    def replace_view(self, view: View, payload: dict) -> View:
        """New content for an existing view (views.update, response_action update)."""
        with self._lock:
            view.versions.append(view.payload)
            external_id = view.external_id
            view.payload = self._fill_view(payload)
            if external_id and "external_id" not in payload:
                view.payload["external_id"] = external_id  # an update keeps the view's external_id
            view.hash = self._new_hash()
            view.errors = {}
            # Slack keeps what the person typed in inputs that are still there.
            still = {(b.get("block_id"), e.get("action_id")) for b, e in _walk_elements(view.blocks)}
            view.values = {
                bid: kept
                for bid, acts in view.values.items()
                if (kept := {aid: v for aid, v in acts.items() if (bid, aid) in still})
            }
            return view

    def publish_home(self, team: Team, user_id: str, payload: dict) -> View:
        with self._lock:
            current = self.home(user_id)
            if current is not None:
                return self.replace_view(current, payload)
            view = self._new_view(team, user_id, payload)
            self._homes[user_id] = view.id
            return view

    def find_view(self, team: Team, *, view_id: str | None = None, external_id: str | None = None) -> View | None:
        with self._lock:
            for view in self._views.values():
                if view.closed or view.team_id != team.id:
                    continue
                if (view_id and view.id == view_id) or (external_id and view.external_id == external_id):
                    return view
            return None

    def close_view(self, view: View) -> None:
        """Close the top modal (the person pressed Cancel, or an empty ack)."""
        with self._lock:
            stack = self._stacks.get(view.user_id, [])
            if view.id in stack:
                stack.remove(view.id)
            view.closed = True

    def close_views(self, user_id: str) -> None:
        """Close every modal of the person (``response_action: clear``)."""
        with self._lock:
            for vid in self._stacks.pop(user_id, []):
                self._views[vid].closed = True

    # triggers and response_urls (issued by the client side)
    def issue_trigger(self, user_id: str, *, view_id: str | None = None) -> str:
        with self._lock:
            user = self.users[user_id]
            trigger_id = f"{self._next()}.{abs(hash(user.team_id)) % 10**12}.{secrets.token_hex(16)}"
            self._triggers[trigger_id] = Trigger(trigger_id, user.team_id, user_id, self.clock(), view_id=view_id)
            return trigger_id

    def use_trigger(self, team: Team, trigger_id: str) -> Trigger:
        with self._lock:
            trigger = self._triggers.get(trigger_id)
            if trigger is None or trigger.team_id != team.id:
                raise SlackError("invalid_trigger_id")
            if trigger.used:
                raise SlackError("exchanged_trigger_id")
            if self.clock() - trigger.issued_at > self.trigger_ttl:
                raise SlackError("expired_trigger_id")
            trigger.used = True
            return trigger

    def issue_response_url(
        self,
        user_id: str,
        channel_id: str | None,
        *,
        source: Message | None = None,
        thread_ts: str | None = None,
    ) -> str:
        with self._lock:
            rid = f"{self._next()}-{secrets.token_hex(8)}"
            url = f"{self.url}/response/{rid}"
            self._response_urls[rid] = ResponseURL(
                id=rid,
                url=url,
                team_id=self.users[user_id].team_id,
                user_id=user_id,
                channel_id=channel_id,
                issued_at=self.clock(),
                source=source,
                thread_ts=thread_ts,
            )
            return url

    def bind_response_url(self, url: str, message: Message | None) -> None:
        """Make ``message`` the original a response_url's replace/delete acts on
        (a slash command's ack message), unless it already has one."""
        with self._lock:
            rurl = self._response_urls[url.rsplit("/", 1)[-1]]
            if rurl.source is None:
                rurl.source = message

    def show_response(
        self,
        team: Team,
        user_id: str,
        channel_id: str | None,
        payload: dict,
        *,
        source: Message | None = None,
        via: str = "response_url",
        thread_ts: str | None = None,
    ) -> Message | None:
        """Show a message an app answered with (response_url post, slash command
        ack): replace or delete the original, post in channel, or ephemerally."""
        with self._lock:
            if bool_arg(payload.get("delete_original", False)):
                if source is None or source.deleted:
                    raise SlackError("message_not_found", status=404)
                source.deleted = True
                return None
            blocks = payload.get("blocks")
            text = payload.get("text")
            attachments = payload.get("attachments")
            if not text and not blocks and not attachments:
                raise SlackError("no_text", status=400)
            try:
                self.check_message_limits(via, blocks, text)
            except SlackError as err:
                err.status = 400
                raise
            if bool_arg(payload.get("replace_original", False)) and source is not None and not source.deleted:
                source.replace(
                    text=text or "",
                    blocks=self.fill_ids(blocks),
                    raw_blocks=copy.deepcopy(blocks),
                    attachments=attachments,
                    edited_by=team.bot_user_id,
                    ts=self.new_ts(),
                )
                return source
            if channel_id is None or channel_id not in self.channels:
                raise SlackError("channel_not_found", status=404)
            channel = self.channels[channel_id]
            thread = payload.get("thread_ts") or thread_ts
            if payload.get("response_type") == "in_channel":
                # response_url posts do not need the bot in the channel
                return self.post_message(
                    channel, team, text=text or "", blocks=blocks, attachments=attachments, thread_ts=thread
                )
            return self.post_ephemeral(
                channel,
                team,
                user_id,
                text=text or "",
                blocks=blocks,
                attachments=attachments,
                thread_ts=thread,
            )

    def record_failure(self, kind: str, detail: str, *, interaction: str = "", user_id: str | None = None) -> Failure:
        with self._changed:
            failure = Failure(kind, detail, interaction, user_id)
            self.failures.append(failure)
            self._changed.notify_all()
            return failure

    def notify(self) -> None:
        """Wake ``wait_for`` (state changed outside a request)."""
        with self._changed:
            self._changed.notify_all()

    # --------------------------------------------------------- request entry
    def api(self, method: str, *, token: str | None = None, **args: Any) -> dict:
        """Call a Web API method in-process (no HTTP); token defaults to the first bot's."""
        transport = "json" if self.methods.get(method, {}).get("json", True) else "form"
        _, _, body = self.handle_api(method, args, token=token or self.team.bot_token, transport=transport)
        return body

    def handle_api(
        self,
        method: str,
        args: dict,
        *,
        token: str | None,
        transport: str,
        parse_error: SlackError | None = None,
    ) -> tuple[int, dict[str, str], dict]:
        """Answer one Web API call: (HTTP status, extra headers, JSON body). An app's client id
        and secret sent by HTTP Basic authentication arrive in ``args``."""
        fault = self._take_fault(method)
        with self._changed:
            team = self._tokens.get(token or "")
            call = Call(
                method=method,
                args=_decoded(args),
                time=self.wall(),
                token=token,
                team_id=team.id if team else None,
                transport=transport,
            )

            def answer() -> tuple[int, dict]:
                try:
                    if parse_error is not None:
                        raise parse_error
                    return 200, self._dispatch(method, args, team, token, transport)
                except SlackError as err:
                    return err.status, err.body

            status, headers, body = self._record(call, fault, answer)
            if team is not None:  # as Slack: the token's scopes, on every answer to it
                headers["x-oauth-scopes"] = ",".join(team.scopes)
            return status, headers, body

    def _dispatch(self, method: str, args: dict, team: Team | None, token: str | None, transport: str) -> dict:
        spec = self.methods.get(method)
        if spec is None:
            raise SlackError("unknown_method", req_method=method)
        if spec.get("retired"):
            raise SlackError("method_deprecated")
        if method not in TOKENLESS:
            if not token:
                raise SlackError("not_authed")
            if token in self._revoked:
                raise SlackError("token_revoked")
            if team is None:
                raise SlackError("invalid_auth")
            if token in self._expires and self.clock() >= self._expires[token]:
                raise SlackError("token_expired")
        if transport == "json" and not spec["json"]:
            raise SlackError(
                "invalid_arguments",
                messages=[f"[ERROR] {method} does not accept JSON bodies: send form data or query parameters"],
            )
        unknown = sorted(set(args) - set(spec["args"]) - IMPLICIT_ARGS)
        if unknown:
            raise SlackError("invalid_arg_name", messages=[f"[ERROR] unknown argument: {name}" for name in unknown])
        missing = [name for name in spec["required"] if args.get(name) in (None, "")]
        if missing:
            raise SlackError(
                "invalid_arguments", messages=[f"[ERROR] missing required field: {name}" for name in missing]
            )
        handler = self._handlers.get(method)
        if handler is None:
            raise SlackError(
                "fakeslack_not_implemented",
                messages=[f"[ERROR] the fake does not implement {method}; add it with fake.on()"],
            )
        assert team is not None or method in TOKENLESS
        return handler(self, team, args)  # type: ignore[arg-type]

    def handle_response_url(self, rid: str, raw: bytes, content_type: str) -> tuple[int, dict[str, str], dict]:
        """Answer a POST to a response_url."""
        fault = self._take_fault("response_url")
        with self._changed:
            rurl = self._response_urls.get(rid)
            try:
                payload = json.loads(raw or b"null")
            except ValueError:
                payload = None
            call = Call(
                method="response_url",
                args=payload if isinstance(payload, dict) else {"_raw": raw.decode("utf-8", "replace")},
                time=self.wall(),
                team_id=rurl.team_id if rurl else None,
                transport="json",
                url=rurl.url if rurl else rid,
            )

            def answer() -> tuple[int, dict]:
                try:
                    self._respond(rurl, payload, content_type)
                    return 200, {"ok": True}
                except SlackError as err:
                    return (err.status if err.status != 200 else 400), err.body

            return self._record(call, fault, answer)

    def _respond(self, rurl: ResponseURL | None, payload: Any, content_type: str) -> None:
        if rurl is None:
            raise SlackError("invalid_url", status=404)
        if self.clock() - rurl.issued_at > self.response_url_ttl:
            raise SlackError("expired_url", status=404)
        if rurl.uses >= self.response_url_uses:
            raise SlackError("used_url", status=404)
        if not content_type.startswith("application/json") or not isinstance(payload, dict):
            raise SlackError("invalid_payload", status=400, messages=["[ERROR] body must be a JSON object"])
        unknown = sorted(set(payload) - RESPONSE_URL_KEYS)
        if unknown:
            raise SlackError("invalid_arg_name", status=400, messages=[f"[ERROR] unknown field: {k}" for k in unknown])
        team = self.teams[rurl.team_id]
        msg = self.show_response(
            team, rurl.user_id, rurl.channel_id, payload, source=rurl.source, thread_ts=rurl.thread_ts
        )
        rurl.uses += 1
        if rurl.source is None and msg is not None:
            rurl.source = msg  # later replace_original acts on this response (slash commands)


def _decoded(args: dict) -> dict:
    out = dict(args)
    for secret in ("token", "client_secret", "refresh_token"):  # never recorded
        out.pop(secret, None)
    for key in JSON_ARGS:
        if isinstance(out.get(key), str):
            try:
                out[key] = json.loads(out[key])
            except ValueError:
                pass
    return out
