"""Workspace state of the fake Slack: teams, users, channels, messages, views.

Plain dataclasses, mutated in place by :class:`~fakeslack.server.FakeSlack`
under its lock.  Tests read them through the fake's helpers
(``fake.messages(channel)``, ``fake.view(view_id)``, ...) and pass them back to
the client side (``user.click(message, ...)``).  ``to_api()`` renders each
object the way Slack's Web API and interaction payloads show it.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


class FakeClock:
    """A clock that only moves when told to; pass it as ``clock=`` and ``wall=``.

    Starts at a realistic epoch so it can serve as the wall clock (message
    ``ts``) as well as the monotonic clock (trigger and response_url expiry).
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now


# The bot scopes an installation is granted unless a test says otherwise: what a typical bot
# asks for (posting, joining public channels, reading people, groups and channels).
DEFAULT_SCOPES = (
    "app_mentions:read",
    "channels:join",
    "channels:read",
    "chat:write",
    "commands",
    "groups:read",
    "im:write",
    "usergroups:read",
    "users:read",
)


@dataclass
class Team:
    id: str
    domain: str
    name: str
    bot_token: str
    bot_user_id: str
    bot_id: str
    enterprise_id: str | None = None
    # Granted to the bot token; every authenticated answer lists them in `x-oauth-scopes`.
    scopes: tuple[str, ...] = DEFAULT_SCOPES

    def to_api(self) -> dict:  # as in interaction payloads
        return {"id": self.id, "domain": self.domain}


@dataclass
class User:
    id: str
    name: str
    team_id: str
    real_name: str = ""
    is_admin: bool = False
    is_owner: bool = False
    is_primary_owner: bool = False
    is_restricted: bool = False
    is_ultra_restricted: bool = False
    is_bot: bool = False
    deleted: bool = False
    tz: str = "Etc/UTC"
    tz_label: str = "Coordinated Universal Time"
    tz_offset: int = 0
    email: str | None = None
    locale: str = "en-US"

    def to_api(self, *, include_locale: bool = False) -> dict:
        """The ``user`` object of ``users.info``."""
        profile: dict[str, Any] = {
            "real_name": self.real_name or self.name,
            "display_name": self.name,
            "real_name_normalized": self.real_name or self.name,
            "display_name_normalized": self.name,
            "team": self.team_id,
            "image_48": f"https://avatars.example/{self.id}_48.png",
        }
        if self.email:
            profile["email"] = self.email
        data = {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": self.deleted,
            "color": "9f69e7",
            "real_name": self.real_name or self.name,
            "tz": self.tz,
            "tz_label": self.tz_label,
            "tz_offset": self.tz_offset,
            "profile": profile,
            "is_admin": self.is_admin,
            "is_owner": self.is_owner,
            "is_primary_owner": self.is_primary_owner,
            "is_restricted": self.is_restricted,
            "is_ultra_restricted": self.is_ultra_restricted,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
            "is_email_confirmed": True,
        }
        if include_locale:
            data["locale"] = self.locale
        return data

    def payload_user(self) -> dict:
        """The ``user`` object of interaction payloads."""
        return {"id": self.id, "username": self.name, "name": self.name, "team_id": self.team_id}


@dataclass
class Channel:
    id: str
    name: str
    team_id: str
    is_private: bool = False
    is_im: bool = False
    is_archived: bool = False
    members: set[str] | None = None  # None: every user of the team
    bot_member: bool = True
    im_user: str | None = None  # the person of a DM channel
    created: int = 1_600_000_000
    topic: str = ""
    purpose: str = ""
    messages: list[Message] = field(default_factory=list, repr=False)

    def has_member(self, user_id: str) -> bool:
        if self.is_im:
            return user_id == self.im_user
        return True if self.members is None else user_id in self.members

    @property
    def payload_name(self) -> str:
        """Channel name as interaction payloads and slash commands give it."""
        if self.is_im:
            return "directmessage"
        if self.is_private:
            return "privategroup"
        return self.name

    def to_api(self, *, num_members: int | None = None) -> dict:
        """The ``channel`` object of ``conversations.info``."""
        if self.is_im:
            return {
                "id": self.id,
                "created": self.created,
                "is_im": True,
                "is_org_shared": False,
                "user": self.im_user,
                "is_user_deleted": False,
                "priority": 0,
            }
        data = {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "created": self.created,
            "is_archived": self.is_archived,
            "is_general": self.name == "general",
            "unlinked": 0,
            "is_shared": False,
            "is_org_shared": False,
            "is_ext_shared": False,
            "is_pending_ext_shared": False,
            "is_member": self.bot_member,
            "creator": "",
            "context_team_id": self.team_id,
            "topic": {"value": self.topic, "creator": "", "last_set": 0},
            "purpose": {"value": self.purpose, "creator": "", "last_set": 0},
            "previous_names": [],
        }
        if num_members is not None:
            data["num_members"] = num_members
        return data


def _walk_elements(blocks: list | None) -> Iterator[tuple[dict, dict]]:
    """(block, element) for every interactive element of ``blocks``."""
    for block in blocks or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "actions":
            for el in block.get("elements") or []:
                if isinstance(el, dict):
                    yield block, el
        elif block.get("type") == "section" and isinstance(block.get("accessory"), dict):
            yield block, block["accessory"]
        elif block.get("type") == "input" and isinstance(block.get("element"), dict):
            yield block, block["element"]


def _texts(obj: Any) -> Iterator[str]:
    """Every string a person can read in a Block Kit structure."""
    if isinstance(obj, dict):
        if obj.get("type") in ("plain_text", "mrkdwn") and isinstance(obj.get("text"), str):
            yield obj["text"]
            return
        for key, value in obj.items():
            if key in ("action_id", "block_id", "value", "url", "image_url", "type", "style"):
                continue
            if key == "text" and isinstance(value, str):  # rich_text / markdown elements
                yield value
            else:
                yield from _texts(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from _texts(item)


def visible_text(blocks: list | None, text: str | None = None) -> str:
    """All readable text of a message or view, one piece a line (for assertions)."""
    parts = list(_texts(blocks or []))
    if not parts and text:
        parts = [text]  # Slack shows `text` only when there are no blocks
    return "\n".join(parts)


@dataclass
class Message:
    """A channel message, thread reply, or ephemeral message."""

    channel: str
    ts: str
    text: str
    team_id: str = field(repr=False)
    blocks: list | None = field(default=None, repr=False)
    raw_blocks: list | None = field(default=None, repr=False)  # as sent, before ids were filled
    attachments: list | None = field(default=None, repr=False)
    user: str | None = None  # author (the bot user for bot messages)
    bot_id: str | None = field(default=None, repr=False)
    app_id: str | None = field(default=None, repr=False)
    thread_ts: str | None = None
    subtype: str | None = None
    metadata: dict | None = field(default=None, repr=False)
    ephemeral: bool = False
    recipient: str | None = None  # ephemeral: the only user who sees it
    deleted: bool = False
    edited: dict | None = field(default=None, repr=False)
    versions: list[dict] = field(default_factory=list, repr=False)  # previous {text, blocks}
    reply_ts: list[str] = field(default_factory=list, repr=False)  # a parent's replies
    reply_users: list[str] = field(default_factory=list, repr=False)
    snapshot: bool = field(default=False, repr=False)  # a frozen copy: see :meth:`copy`

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    @property
    def visible_text(self) -> str:
        return visible_text(self.blocks, self.text)

    def elements(self) -> list[dict]:
        return [el for _, el in _walk_elements(self.blocks)]

    def find(self, action_id: str) -> dict | None:
        """The interactive element with this action_id, or None."""
        return next((el for el in self.elements() if el.get("action_id") == action_id), None)

    def copy(self) -> Message:
        """A snapshot, as a stale client still shows it (clicks use its content)."""
        clone = copy.deepcopy(self)
        clone.snapshot = True
        return clone

    def replace(
        self,
        *,
        text: str | None,
        blocks: list | None,
        raw_blocks: list | None,
        attachments: list | None = None,
        edited_by: str | None = None,
        ts: str | None = None,
    ) -> None:
        self.versions.append({"text": self.text, "blocks": self.blocks})
        self.text = text if text is not None else ""
        self.blocks = blocks
        self.raw_blocks = raw_blocks
        self.attachments = attachments
        if edited_by and ts:
            self.edited = {"user": edited_by, "ts": ts}

    def to_api(self) -> dict:
        """The message object of the Web API and of ``block_actions`` payloads."""
        data: dict[str, Any] = {"type": "message"}
        if self.subtype:
            data["subtype"] = self.subtype
        data["text"] = self.text
        if self.user:
            data["user"] = self.user
        if self.bot_id:
            data["bot_id"] = self.bot_id
            data["app_id"] = self.app_id
        data["ts"] = self.ts
        data["team"] = self.team_id
        if self.blocks is not None:
            data["blocks"] = copy.deepcopy(self.blocks)
        if self.attachments:
            data["attachments"] = copy.deepcopy(self.attachments)
        if self.thread_ts:
            data["thread_ts"] = self.thread_ts
        if self.reply_ts:
            data["reply_count"] = len(self.reply_ts)
            data["reply_users_count"] = len(self.reply_users)
            data["latest_reply"] = self.reply_ts[-1]
            data["reply_users"] = list(self.reply_users)
        if self.edited:
            data["edited"] = dict(self.edited)
        if self.metadata:
            data["metadata"] = copy.deepcopy(self.metadata)
        return data


@dataclass
class View:
    """A modal (on a user's view stack) or an App Home tab."""

    id: str
    team_id: str
    user_id: str
    app_id: str = field(repr=False)
    bot_id: str = field(repr=False)
    payload: dict = field(repr=False)  # the view as Slack stores it (ids filled in)
    hash: str
    root_view_id: str | None = None
    previous_view_id: str | None = None
    values: dict = field(default_factory=dict, repr=False)  # {block_id: {action_id: state}} set by the user
    errors: dict = field(default_factory=dict)  # from response_action: errors
    closed: bool = False
    versions: list[dict] = field(default_factory=list, repr=False)

    @property
    def type(self) -> str:
        return self.payload.get("type", "")

    @property
    def blocks(self) -> list:
        return self.payload.get("blocks") or []

    @property
    def callback_id(self) -> str:
        return self.payload.get("callback_id", "")

    @property
    def private_metadata(self) -> str:
        return self.payload.get("private_metadata", "")

    @property
    def external_id(self) -> str:
        return self.payload.get("external_id", "")

    @property
    def title(self) -> str:
        return (self.payload.get("title") or {}).get("text", "")

    @property
    def visible_text(self) -> str:
        return visible_text(self.blocks)

    def elements(self) -> list[dict]:
        return [el for _, el in _walk_elements(self.blocks)]

    def find(self, action_id: str) -> dict | None:
        return next((el for el in self.elements() if el.get("action_id") == action_id), None)

    def state_values(self) -> dict:
        """``view.state.values`` as Slack sends it: inputs (null when empty) and
        any other element the user has set."""
        return state_values(self.blocks, self.values)

    def to_api(self) -> dict:
        p = self.payload
        data: dict[str, Any] = {
            "id": self.id,
            "team_id": self.team_id,
            "type": p.get("type"),
            "blocks": copy.deepcopy(self.blocks),
            "private_metadata": p.get("private_metadata", ""),
            "callback_id": p.get("callback_id", ""),
            "state": {"values": self.state_values()},
            "hash": self.hash,
            "clear_on_close": bool(p.get("clear_on_close", False)),
            "notify_on_close": bool(p.get("notify_on_close", False)),
            "root_view_id": self.root_view_id or self.id,
            "previous_view_id": self.previous_view_id,
            "app_id": self.app_id,
            "external_id": p.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        if p.get("type") == "modal":
            data["title"] = copy.deepcopy(p.get("title"))
            data["close"] = copy.deepcopy(p.get("close"))
            data["submit"] = copy.deepcopy(p.get("submit"))
        return data


# Initial-value keys per element type, and how each appears in state.values.
def initial_state(el: dict) -> dict | None:
    """The state entry of an element before the user touches it (None: no entry)."""
    kind = el.get("type")
    if kind in ("plain_text_input", "number_input", "email_text_input", "url_text_input"):
        return {"type": kind, "value": el.get("initial_value")}
    if kind in ("static_select", "external_select", "radio_buttons"):
        return {"type": kind, "selected_option": el.get("initial_option")}
    if kind in ("multi_static_select", "multi_external_select", "checkboxes"):
        return {"type": kind, "selected_options": list(el.get("initial_options") or [])}
    if kind == "users_select":
        return {"type": kind, "selected_user": el.get("initial_user")}
    if kind == "multi_users_select":
        return {"type": kind, "selected_users": list(el.get("initial_users") or [])}
    if kind == "conversations_select":
        return {"type": kind, "selected_conversation": el.get("initial_conversation")}
    if kind == "multi_conversations_select":
        return {"type": kind, "selected_conversations": list(el.get("initial_conversations") or [])}
    if kind == "channels_select":
        return {"type": kind, "selected_channel": el.get("initial_channel")}
    if kind == "multi_channels_select":
        return {"type": kind, "selected_channels": list(el.get("initial_channels") or [])}
    if kind == "datepicker":
        return {"type": kind, "selected_date": el.get("initial_date")}
    if kind == "timepicker":
        return {"type": kind, "selected_time": el.get("initial_time")}
    if kind == "datetimepicker":
        return {"type": kind, "selected_date_time": el.get("initial_date_time")}
    return None


def state_values(blocks: list | None, values: dict) -> dict:
    out: dict = {}
    for block, el in _walk_elements(blocks):
        bid, aid = block.get("block_id"), el.get("action_id")
        chosen = values.get(bid, {}).get(aid)
        if chosen is not None:
            out.setdefault(bid, {})[aid] = copy.deepcopy(chosen)
        elif block.get("type") == "input":
            entry = initial_state(el)
            if entry is not None:
                out.setdefault(bid, {})[aid] = entry
    return out


@dataclass
class Trigger:
    id: str
    team_id: str
    user_id: str
    issued_at: float
    used: bool = False
    view_id: str | None = None  # the view the interaction came from, if any


@dataclass
class OAuthApp:
    """The app's OAuth settings (its page at api.slack.com: App Credentials, Redirect URLs, scopes)."""

    client_id: str
    client_secret: str
    redirect_urls: list[str]
    scopes: set[str]
    # Token rotation (once on, Slack's apps cannot turn it off): bot tokens expire after
    # `token_ttl` seconds and are renewed with a refresh token, each usable once.
    token_rotation: bool = False


@dataclass
class Grant:
    """A person approved an install on Slack's authorize page: the code the app exchanges once."""

    code: str
    client_id: str
    team_id: str
    user_id: str
    scopes: list[str]
    redirect_uri: str | None  # as given to the authorize page: oauth.v2.access must repeat it
    issued_at: float
    used: bool = False


@dataclass
class ResponseURL:
    id: str
    url: str
    team_id: str
    user_id: str
    channel_id: str | None
    issued_at: float
    source: Message | None = None  # the message replace/delete_original act on
    thread_ts: str | None = None  # the thread the interaction happened in
    uses: int = 0


@dataclass
class Call:
    """One request the app made to the fake (Web API method or response_url)."""

    method: str  # "chat.update", ... or "response_url"
    args: dict  # decoded arguments (JSON strings such as `blocks` parsed), token removed
    time: float  # fake.wall() when it arrived
    token: str | None = None
    team_id: str | None = None
    transport: str = "form"  # "json", "form" or "query"
    status: int = 200
    response: dict = field(default_factory=dict)
    injected: bool = False  # answered by fail_next()
    url: str | None = None  # response_url posts: the URL used

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return self.response.get("error")


@dataclass
class Violation:
    """A message or view that breaks a Block Kit limit (Slack refused it)."""

    source: str  # the method, "response_url", "ack" or "response_action"
    problems: list  # of limits.Problem
    payload: Any = None

    def __str__(self) -> str:
        return f"{self.source}: " + "; ".join(str(p) for p in self.problems)


@dataclass
class Failure:
    """Something a person in Slack would see as an error from the app."""

    kind: str  # "operation_timeout", "http_error", "invalid_response", ...
    detail: str
    interaction: str = ""  # "slash_command", "block_actions", "view_submission", "event_callback", ...
    user_id: str | None = None

    def __str__(self) -> str:
        return f"{self.interaction or 'request'}: {self.kind}: {self.detail}"


@dataclass
class Confirmation:
    """A confirm dialog a test accepted (the dialog text the person saw)."""

    user_id: str
    action_id: str
    title: str
    text: str
    confirm: str
    deny: str


__all__ = [
    "Call",
    "Channel",
    "Confirmation",
    "FakeClock",
    "Failure",
    "Message",
    "ResponseURL",
    "Team",
    "Trigger",
    "User",
    "View",
    "Violation",
    "initial_state",
    "state_values",
    "visible_text",
]
