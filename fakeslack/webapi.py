"""The stateful Web API methods of the fake Slack.

Each handler takes ``(fake, team, args)`` -- the :class:`FakeSlack`, the team
the bot token belongs to, and the decoded arguments (already checked against
``methods.json``: names known, required ones present) -- and returns Slack's
JSON answer, or raises :class:`SlackError` with Slack's error code.  Handlers
run under the fake's lock, so they can read and change state freely.

Only what connbot needs is here; ``fake.on(method, handler)`` adds others.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import limits
from .models import Channel, Message, Team, View

if TYPE_CHECKING:  # pragma: no cover
    from .server import FakeSlack

Handler = Callable[["FakeSlack", Team, dict], dict]
HANDLERS: dict[str, Handler] = {}

MAX_VIEW_STACK = 3  # Slack keeps at most three modals on a stack


class SlackError(Exception):
    """An ``{"ok": false, "error": ...}`` answer (HTTP 200 unless ``status``)."""

    def __init__(self, error: str, *, status: int = 200, messages: list[str] | None = None, **extra: Any):
        super().__init__(error)
        self.error = error
        self.status = status
        self.body: dict[str, Any] = {"ok": False, "error": error, **extra}
        if messages:
            self.body["response_metadata"] = {"messages": list(messages)}


def method(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn

    return register


# --- argument helpers ------------------------------------------------------------
def bool_arg(value: Any) -> bool:
    """Slack reads "true"/"1" (form) and true (JSON) as true."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value)


def json_arg(args: dict, key: str, error: str) -> Any:
    """An argument that is JSON: an object in JSON bodies, a string in form bodies."""
    value = args.get(key)
    if isinstance(value, str):
        if value == "":
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise SlackError(error, messages=[f"[ERROR] {key} is not valid JSON"]) from None
    return value


def message_content(fake: FakeSlack, source: str, args: dict, *, text_limit: int, require: bool = True):
    """(text, blocks, attachments) of a chat.* call, checked against the limits."""
    blocks = json_arg(args, "blocks", "invalid_blocks_format")
    if blocks is not None and not isinstance(blocks, list):
        raise SlackError("invalid_blocks_format", messages=["[ERROR] blocks must be an array"])
    attachments = json_arg(args, "attachments", "invalid_attachments")
    text = args.get("text")
    markdown = args.get("markdown_text")
    if markdown is not None:
        if text or blocks:
            raise SlackError("markdown_text_conflict")
        text = markdown
    if require and not text and not blocks and not attachments:
        raise SlackError("no_text")
    if attachments is not None and len(attachments) > 100:
        raise SlackError("too_many_attachments")
    fake.check_message_limits(source, blocks, text, text_limit=text_limit)
    return text, blocks, attachments


def _channel(fake: FakeSlack, team: Team, args: dict, *, post: bool) -> Channel:
    channel = fake.resolve_channel(team, args.get("channel", ""))
    if channel.is_archived and post:
        raise SlackError("is_archived")
    if not channel.bot_member:
        if channel.is_private:
            raise SlackError("channel_not_found")  # a private channel is invisible to outsiders
        if not (post and fake.chat_write_public):
            raise SlackError("not_in_channel")
    return channel


def _message(channel: Channel, ts: Any) -> Message:
    for msg in channel.messages:
        if msg.ts == ts and not msg.deleted:
            return msg
    raise SlackError("message_not_found")


# --- auth / api -------------------------------------------------------------------
@method("api.test")
def api_test(fake, team, args):
    if args.get("error"):
        raise SlackError(args["error"], args={"error": args["error"]})
    return {"ok": True, "args": {k: v for k, v in args.items()}}


@method("auth.test")
def auth_test(fake, team, args):
    return {
        "ok": True,
        "url": f"https://{team.domain}.slack.com/",
        "team": team.name,
        "user": fake.users[team.bot_user_id].name,
        "team_id": team.id,
        "user_id": team.bot_user_id,
        "bot_id": team.bot_id,
        "is_enterprise_install": False,
    }


@method("oauth.v2.access")
def oauth_v2_access(fake, team, args):
    """Exchanges the code of an approved install for a bot token, as Slack documents it: the
    app's client id and secret (HTTP Basic or arguments), the code (once, within 10 minutes) and
    the redirect_uri the authorize link had. With token rotation on, the answer carries a
    refresh token and `expires_in`, and `grant_type=refresh_token` renews the bot token (each
    refresh token once)."""
    app = fake.oauth_app
    if app is None or args.get("client_id") != app.client_id:
        raise SlackError("invalid_client_id")
    if args.get("client_secret") != app.client_secret:
        raise SlackError("bad_client_secret")
    grant_type = args.get("grant_type") or "authorization_code"
    if grant_type == "refresh_token" and app.token_rotation:
        return fake._renew(args.get("refresh_token") or "")
    if grant_type != "authorization_code":
        raise SlackError("invalid_grant_type")
    grant = fake._grants.get(args.get("code") or "")
    if (
        grant is None
        or grant.used
        or grant.client_id != app.client_id
        or fake.clock() - grant.issued_at > fake.code_ttl
    ):
        raise SlackError("invalid_code")
    if grant.redirect_uri is not None and args.get("redirect_uri") != grant.redirect_uri:
        raise SlackError("bad_redirect_uri")
    grant.used = True
    return fake._install(grant)


# --- chat --------------------------------------------------------------------------
@method("chat.postMessage")
def chat_post_message(fake, team, args):
    channel = _channel(fake, team, args, post=True)
    text, blocks, attachments = message_content(fake, "chat.postMessage", args, text_limit=limits.MESSAGE_TEXT)
    metadata = json_arg(args, "metadata", "invalid_metadata_format")
    msg = fake.post_message(
        channel,
        team,
        text=text or "",
        blocks=blocks,
        attachments=attachments,
        thread_ts=args.get("thread_ts") or None,
        broadcast=bool_arg(args.get("reply_broadcast", False)),
        metadata=metadata,
    )
    return {"ok": True, "channel": channel.id, "ts": msg.ts, "message": msg.to_api()}


@method("chat.update")
def chat_update(fake, team, args):
    channel = _channel(fake, team, args, post=False)
    ts = args["ts"]
    if any(e.ts == ts for e in fake.all_ephemerals()):
        raise SlackError("message_not_found")  # ephemeral messages cannot be chat.update'd
    msg = _message(channel, ts)
    if msg.bot_id != team.bot_id:
        raise SlackError("cant_update_message")
    text, blocks, attachments = message_content(fake, "chat.update", args, text_limit=limits.UPDATE_TEXT)
    if "blocks" not in args:
        blocks = msg.blocks  # Slack keeps the previous blocks when none are given
        raw = msg.raw_blocks
    else:
        raw = blocks
        blocks = fake.fill_ids(blocks)
    if "attachments" not in args:
        attachments = msg.attachments
    msg.replace(
        text=text,
        blocks=blocks,
        raw_blocks=raw,
        attachments=attachments,
        edited_by=team.bot_user_id,
        ts=fake.new_ts(),
    )
    return {"ok": True, "channel": channel.id, "ts": msg.ts, "text": msg.text, "message": msg.to_api()}


@method("chat.delete")
def chat_delete(fake, team, args):
    channel = _channel(fake, team, args, post=False)
    msg = _message(channel, args["ts"])
    if msg.bot_id != team.bot_id:
        raise SlackError("cant_delete_message")
    msg.deleted = True
    return {"ok": True, "channel": channel.id, "ts": msg.ts}


@method("chat.postEphemeral")
def chat_post_ephemeral(fake, team, args):
    channel = _channel(fake, team, args, post=True)
    user = fake.users.get(args["user"])
    if user is None or user.team_id != team.id:
        raise SlackError("user_not_found")
    if not channel.has_member(user.id):
        raise SlackError("user_not_in_channel")
    text, blocks, attachments = message_content(fake, "chat.postEphemeral", args, text_limit=limits.MESSAGE_TEXT)
    msg = fake.post_ephemeral(
        channel,
        team,
        user.id,
        text=text or "",
        blocks=blocks,
        attachments=attachments,
        thread_ts=args.get("thread_ts") or None,
    )
    return {"ok": True, "message_ts": msg.ts}


@method("chat.getPermalink")
def chat_get_permalink(fake, team, args):
    channel = fake.resolve_channel(team, args["channel"])
    msg = _message(channel, args["message_ts"])
    link = f"https://{team.domain}.slack.com/archives/{channel.id}/p{msg.ts.replace('.', '')}"
    if msg.is_reply:
        link += f"?thread_ts={msg.thread_ts}&cid={channel.id}"
    return {"ok": True, "channel": channel.id, "permalink": link}


# --- conversations ------------------------------------------------------------------
@method("conversations.info")
def conversations_info(fake, team, args):
    channel = fake.resolve_channel(team, args["channel"])
    if channel.is_private and not channel.bot_member:
        raise SlackError("channel_not_found")
    num = None
    if bool_arg(args.get("include_num_members", False)):
        num = len(fake.channel_members(channel))
    return {"ok": True, "channel": channel.to_api(num_members=num)}


@method("conversations.join")
def conversations_join(fake, team, args):
    channel = fake.resolve_channel(team, args["channel"])
    if channel.is_private or channel.is_im:
        raise SlackError("channel_not_found" if not channel.bot_member else "method_not_supported_for_channel_type")
    if channel.is_archived:
        raise SlackError("is_archived")
    if channel.bot_member:
        return {
            "ok": True,
            "channel": channel.to_api(),
            "warning": "already_in_channel",
            "response_metadata": {"warnings": ["already_in_channel"]},
        }
    channel.bot_member = True
    return {"ok": True, "channel": channel.to_api()}


@method("conversations.replies")
def conversations_replies(fake, team, args):
    channel = _channel(fake, team, args, post=False)
    thread = fake.thread(channel.id, args["ts"])
    if not thread:
        raise SlackError("thread_not_found")
    limit = int(args.get("limit") or 1000)
    start = int(base64.b64decode(args["cursor"]).decode()) if args.get("cursor") else 0
    page = thread[start : start + limit]
    more = start + limit < len(thread)
    cursor = base64.b64encode(str(start + limit).encode()).decode() if more else ""
    return {
        "ok": True,
        "messages": [m.to_api() for m in page],
        "has_more": more,
        "response_metadata": {"next_cursor": cursor},
    }


@method("conversations.open")
def conversations_open(fake, team, args):
    users = [u for u in str(args.get("users", "")).split(",") if u]
    if args.get("channel"):
        return {"ok": True, "channel": fake.resolve_channel(team, args["channel"]).to_api()}
    if len(users) != 1:
        raise SlackError("not_enough_users" if not users else "too_many_users")
    if users[0] not in fake.users or fake.users[users[0]].team_id != team.id:
        raise SlackError("user_not_found")
    return {"ok": True, "channel": {"id": fake.im(users[0]).id}}


# --- users -----------------------------------------------------------------------------
@method("users.info")
def users_info(fake, team, args):
    user = fake.users.get(args["user"])
    if user is None or user.team_id != team.id:
        raise SlackError("user_not_found")
    return {"ok": True, "user": user.to_api(include_locale=bool_arg(args.get("include_locale", False)))}


@method("usergroups.list")
def usergroups_list(fake, team, args):
    include_users = bool_arg(args.get("include_users", False))
    include_count = bool_arg(args.get("include_count", False))
    include_disabled = bool_arg(args.get("include_disabled", False))
    groups = []
    for group in fake.usergroups.values():
        if group["team_id"] != team.id or (group["disabled"] and not include_disabled):
            continue
        shown = {
            "id": group["id"],
            "team_id": group["team_id"],
            "is_usergroup": True,
            "is_subteam": True,
            "name": group["name"],
            "description": "",
            "handle": group["handle"],
            "is_external": False,
            "date_create": 1_600_000_000,
            "date_update": 1_600_000_000,
            "date_delete": 1_600_000_100 if group["disabled"] else 0,
            "auto_type": None,
            "created_by": "USLACKBOT",
            "updated_by": "USLACKBOT",
            "deleted_by": None,
            "prefs": {"channels": [], "groups": []},
        }
        if include_users:
            shown["users"] = list(group["users"])
        if include_count:
            shown["user_count"] = len(group["users"])
        groups.append(shown)
    return {"ok": True, "usergroups": groups}


@method("usergroups.users.list")
def usergroups_users_list(fake, team, args):
    group = fake.usergroups.get(args["usergroup"])
    if group is None or group["team_id"] != team.id:
        raise SlackError("no_such_subteam")
    return {"ok": True, "users": list(group["users"])}


# --- views -------------------------------------------------------------------------------
def _view_arg(fake, source: str, args: dict, kinds: tuple[str, ...]) -> dict:
    view = json_arg(args, "view", "invalid_arguments")
    if not isinstance(view, dict):
        raise SlackError("invalid_arguments", messages=["[ERROR] view must be an object [json-pointer:/view]"])
    if view.get("type") not in kinds:
        raise SlackError(
            "invalid_arguments",
            messages=[f"[ERROR] must be one of {', '.join(kinds)} [json-pointer:/view/type]"],
        )
    fake.check_view_limits(source, view)
    return view


def _trigger(fake, team, args):
    trigger_id = args.get("trigger_id") or args.get("interactivity_pointer")
    if not trigger_id:
        raise SlackError("invalid_arguments", messages=["[ERROR] missing required field: trigger_id"])
    return fake.use_trigger(team, trigger_id)


@method("views.open")
def views_open(fake, team, args):
    view = _view_arg(fake, "views.open", args, ("modal",))
    trigger = _trigger(fake, team, args)
    opened = fake.open_view(team, trigger.user_id, view)
    return {"ok": True, "view": opened.to_api()}


@method("views.push")
def views_push(fake, team, args):
    view = _view_arg(fake, "views.push", args, ("modal",))
    trigger = _trigger(fake, team, args)
    if len(fake.views(trigger.user_id, team_id=team.id)) >= MAX_VIEW_STACK:
        raise SlackError("push_limit_reached")
    pushed = fake.push_view(team, trigger.user_id, view)
    return {"ok": True, "view": pushed.to_api()}


@method("views.update")
def views_update(fake: FakeSlack, team: Team, args: dict) -> dict:
    if not args.get("view_id") and not args.get("external_id"):
        raise SlackError("invalid_arguments", messages=["[ERROR] either view_id or external_id is required"])
    current: View | None = fake.find_view(team, view_id=args.get("view_id"), external_id=args.get("external_id"))
    if current is None:
        raise SlackError("not_found")
    view = _view_arg(fake, "views.update", args, (current.type,))
    if args.get("hash") and args["hash"] != current.hash:
        raise SlackError("hash_conflict")
    fake.replace_view(current, view)
    return {"ok": True, "view": current.to_api()}


@method("views.publish")
def views_publish(fake, team, args):
    user = fake.users.get(args["user_id"])
    if user is None or user.team_id != team.id:
        raise SlackError("user_not_found")
    view = _view_arg(fake, "views.publish", args, ("home",))
    current = fake.home(user.id)
    if current is not None and args.get("hash") and args["hash"] != current.hash:
        raise SlackError("hash_conflict")
    published = fake.publish_home(team, user.id, view)
    return {"ok": True, "view": published.to_api()}
