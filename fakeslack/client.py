"""Slack's side of the conversation: people typing, clicking and submitting.

:class:`AppDriver` sends requests to an app exactly as Slack does -- the same
bodies (form-encoded slash commands, ``payload=`` JSON interactions, JSON
Events API envelopes), signed with the app's signing secret (``v0`` HMAC-SHA256
over ``v0:{timestamp}:{body}``), each interaction with a fresh ``trigger_id``
and, for messages, a ``response_url`` bound to the message it came from -- and
then shows the app's answer the way Slack would (an ack body becomes an
ephemeral message, ``response_action`` changes the modal, ...).  Anything a
person would see as an error (non-200, an ack later than 3 s, a malformed
``response_action``) lands in ``fake.failures``.

The app is a *target*: an HTTP URL (``http://127.0.0.1:3000/slack/events``) or
a callable ``(body: bytes, headers: dict) -> (status, headers, body)``;
:func:`bolt_target` and :func:`wsgi_target` adapt an in-process bolt ``App``::

    driver = AppDriver(fake, bolt_target(app), signing_secret="secret")
    alice = driver.user("U1")
    alice.command("/connections", channel="C1")
    msg = fake.ephemerals("U1")[-1]
    alice.click(msg, "delete", confirm=True)
    alice.submit(fake.modal("U1"), {"name": {"name": "Ads"}})

:class:`SlackUser` refuses what a person could not do -- clicking a button the
app did not render, skipping a confirm dialog, submitting a modal with an empty
required input -- so a test cannot pass on an impossible path.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import io
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from .models import Confirmation, Failure, Message, Team, User, View, _walk_elements, state_values
from .server import FakeSlack
from .webapi import MAX_VIEW_STACK, SlackError

Target = Callable[[bytes, dict], tuple]

ACK_TIMEOUT = 3.0

BUTTON = {"button"}
CHOOSERS = {
    "overflow",
    "static_select",
    "external_select",
    "radio_buttons",
    "users_select",
    "conversations_select",
    "channels_select",
    "multi_static_select",
    "multi_external_select",
    "multi_users_select",
    "multi_conversations_select",
    "multi_channels_select",
    "checkboxes",
    "datepicker",
    "timepicker",
    "datetimepicker",
}


class ElementNotFound(AssertionError):
    """The test acted on something the app did not render."""


class ConfirmationRequired(AssertionError):
    """The element has a confirm dialog: pass ``confirm=True`` to accept it."""


class NotSubmittable(AssertionError):
    """Slack's client would not submit this modal (e.g. a required input is empty)."""


# --------------------------------------------------------------------- targets
def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature: ``v0=`` + HMAC-SHA256 of ``v0:{ts}:{body}``."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def http_target(url: str, *, timeout: float = ACK_TIMEOUT + 0.5) -> Target:
    """POST to an app listening on HTTP (Slack gives up after 3 s; so do we)."""

    def send(body: bytes, headers: dict) -> tuple[int, dict, bytes]:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    return send


def bolt_target(app: Any) -> Target:
    """Dispatch to a bolt ``App`` in-process (``App.dispatch(BoltRequest)``)."""
    from slack_bolt.request import BoltRequest

    def send(body: bytes, headers: dict) -> tuple[int, dict, bytes]:
        response = app.dispatch(BoltRequest(body=body.decode("utf-8"), headers=dict(headers)))
        flat = {k: ", ".join(v) for k, v in response.headers.items()}
        return response.status, flat, response.body.encode("utf-8")

    return send


def wsgi_target(wsgi_app: Callable, path: str = "/slack/events") -> Target:
    """Call a WSGI app (e.g. bolt's ``SlackRequestHandler``) without a server."""

    def send(body: bytes, headers: dict) -> tuple[int, dict, bytes]:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "CONTENT_LENGTH": str(len(body)),
        }
        for key, value in headers.items():
            if key.lower() == "content-type":
                environ["CONTENT_TYPE"] = value
            elif key.lower() != "content-length":
                environ["HTTP_" + key.upper().replace("-", "_")] = value
        started: dict[str, Any] = {}

        def start_response(status: str, response_headers: list, exc_info: Any = None) -> None:
            started["status"] = int(status.split()[0])
            started["headers"] = dict(response_headers)

        chunks = wsgi_app(environ, start_response)
        try:
            data = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        return started["status"], started["headers"], data

    return send


# ----------------------------------------------------------------- interaction
@dataclass
class Interaction:
    """One request Slack sent to the app, and what came of it."""

    kind: str  # "slash_command", "block_actions", "view_submission", "view_closed", "event_callback", ...
    payload: dict  # what Slack sent (decoded)
    body: bytes  # the exact request body
    headers: dict  # the request headers (signed)
    user_id: str | None = None
    status: int | None = None  # the app's HTTP status (None: no answer in time)
    response_headers: dict = field(default_factory=dict)
    response_body: bytes = b""
    elapsed: float = 0.0
    trigger_id: str | None = None
    response_url: str | None = None
    retry_num: int = 0
    failure: Failure | None = None
    message: Message | None = None  # message shown from the ack (slash commands)
    view: View | None = None  # the modal shown afterwards (view submissions)

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def text(self) -> str:
        return self.response_body.decode("utf-8", "replace")

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.response_body)
        except ValueError:
            return None


class AppDriver:
    """Delivers Slack's requests to one app and applies its answers to ``fake``.

    Args:
        fake: the running FakeSlack (the app's Web API).
        target: URL of the app's request endpoint, or a callable target.
        signing_secret: the app's signing secret (requests are signed with it).
        clock: epoch seconds for ``X-Slack-Request-Timestamp`` (bolt rejects
            timestamps more than 5 minutes off its own clock).
        timer: measures how long the app takes to answer (3 s ack limit).
    """

    def __init__(
        self,
        fake: FakeSlack,
        target: str | Target,
        signing_secret: str,
        *,
        verification_token: str = "fakeslack-verification-token",
        clock: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.perf_counter,
        ack_timeout: float = ACK_TIMEOUT,
    ) -> None:
        self.fake = fake
        self.target: Target = http_target(target, timeout=ack_timeout + 0.5) if isinstance(target, str) else target
        self.signing_secret = signing_secret
        self.verification_token = verification_token
        self.clock = clock
        self.timer = timer
        self.ack_timeout = ack_timeout
        self.interactions: list[Interaction] = []

    def user(self, user_id: str) -> SlackUser:
        return SlackUser(self, self.fake.users[user_id])

    # -- raw delivery -------------------------------------------------------------
    def signed_headers(
        self, body: bytes, content_type: str, *, secret: str | None = None, timestamp: str | None = None
    ) -> dict:
        ts = timestamp or str(int(self.clock()))
        return {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sign(secret or self.signing_secret, ts, body),
        }

    def send_raw(
        self,
        body: bytes,
        content_type: str = "application/x-www-form-urlencoded",
        *,
        secret: str | None = None,
        timestamp: str | None = None,
        extra_headers: dict | None = None,
    ) -> tuple[int | None, dict, bytes]:
        """Send a body signed with ``secret`` (default: the right one); nothing
        is interpreted or recorded.  For signature tests."""
        headers = self.signed_headers(body, content_type, secret=secret, timestamp=timestamp)
        headers.update(extra_headers or {})
        try:
            return self.target(body, headers)
        except OSError:  # timeout, connection refused
            return None, {}, b""

    def deliver(
        self,
        kind: str,
        payload: dict,
        body: bytes,
        content_type: str,
        *,
        user_id: str | None = None,
        retry_num: int = 0,
        retry_reason: str | None = None,
    ) -> Interaction:
        """Sign and send; record a failure if the app does not answer 200 in time."""
        headers = self.signed_headers(body, content_type)
        if retry_num:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        interaction = Interaction(kind, payload, body, headers, user_id=user_id, retry_num=retry_num)
        started = self.timer()
        try:
            status, response_headers, response_body = self.target(body, headers)
        except OSError as err:  # urllib's URLError and timeouts are OSErrors
            status, response_headers, response_body = None, {}, b""
            reason = getattr(err, "reason", err)
            if not isinstance(reason, TimeoutError) and not isinstance(err, TimeoutError):
                interaction.failure = self.fake.record_failure(
                    "dispatch_failed", f"could not reach the app: {reason}", interaction=kind, user_id=user_id
                )
        interaction.elapsed = self.timer() - started
        interaction.status = status
        interaction.response_headers = {k.lower(): v for k, v in dict(response_headers).items()}
        interaction.response_body = response_body or b""
        if interaction.failure is None:
            if status is None or interaction.elapsed > self.ack_timeout:
                interaction.failure = self.fake.record_failure(
                    "operation_timeout",
                    f"the app answered after {interaction.elapsed:.2f}s (limit {self.ack_timeout}s)",
                    interaction=kind,
                    user_id=user_id,
                )
            elif status != 200:
                interaction.failure = self.fake.record_failure(
                    "http_error",
                    f"HTTP {status}: {interaction.text[:200]}",
                    interaction=kind,
                    user_id=user_id,
                )
        self.interactions.append(interaction)
        self.fake.notify()
        return interaction

    def _interactive(self, kind: str, payload: dict, user_id: str) -> Interaction:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return self.deliver(kind, payload, body, "application/x-www-form-urlencoded", user_id=user_id)

    # -- Events API -----------------------------------------------------------------
    def event(self, event: dict, *, team_id: str | None = None, event_id: str | None = None) -> Interaction:
        """Deliver an Events API ``event_callback`` envelope around ``event``."""
        team = self.fake.teams[team_id] if team_id else self.fake.team
        event = dict(event)
        event.setdefault("event_ts", self.fake.new_ts())
        envelope = {
            "token": self.verification_token,
            "team_id": team.id,
            "api_app_id": self.fake.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(self.fake.wall()),
            "authorizations": [
                {
                    "enterprise_id": team.enterprise_id,
                    "team_id": team.id,
                    "user_id": team.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{uuid.uuid4().hex}",
        }
        body = json.dumps(envelope).encode()
        return self.deliver("event_callback", envelope, body, "application/json", user_id=event.get("user"))

    def uninstalled(self, team_id: str | None = None) -> list[Interaction]:
        """Someone removes the app from the workspace: its tokens are revoked, and Slack sends
        ``tokens_revoked`` then ``app_uninstalled`` (in no promised order)."""
        team = self.fake.teams[team_id] if team_id else self.fake.team
        self.fake.uninstall(team.id)
        revoked = {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": [team.bot_user_id]}}
        return [self.event(revoked, team_id=team.id), self.event({"type": "app_uninstalled"}, team_id=team.id)]

    def retry(self, interaction: Interaction, reason: str = "http_timeout") -> Interaction:
        """Deliver the same request again as Slack's retry (same body, same
        event_id; ``X-Slack-Retry-Num`` / ``X-Slack-Retry-Reason``)."""
        return self.deliver(
            interaction.kind,
            interaction.payload,
            interaction.body,
            interaction.headers["Content-Type"],
            user_id=interaction.user_id,
            retry_num=interaction.retry_num + 1,
            retry_reason=reason,
        )

    def url_verification(self, challenge: str = "fakeslack-challenge") -> bool:
        """The handshake Slack does when the Events URL is configured."""
        payload = {"token": self.verification_token, "challenge": challenge, "type": "url_verification"}
        result = self.deliver("url_verification", payload, json.dumps(payload).encode(), "application/json")
        data = result.json
        answered = data.get("challenge") if isinstance(data, dict) else result.text
        return result.ok and answered == challenge


class SlackUser:
    """A person in the fake workspace, acting on what the app showed them."""

    def __init__(self, driver: AppDriver, user: User) -> None:
        self.driver = driver
        self.fake = driver.fake
        self.user = user
        self.id = user.id

    def __repr__(self) -> str:
        return f"SlackUser({self.id!r})"

    @property
    def team(self) -> Team:
        return self.fake.teams[self.user.team_id]

    def _base(self, kind: str) -> dict:
        return {
            "type": kind,
            "user": self.user.payload_user(),
            "api_app_id": self.fake.app_id,
            "token": self.driver.verification_token,
            "team": self.team.to_api(),
            "enterprise": None,
            "is_enterprise_install": False,
        }

    # -- slash commands -------------------------------------------------------------
    def command(self, command: str, text: str = "", *, channel: str) -> Interaction:
        """Type ``/command text`` in ``channel``; the ack body is shown like Slack does."""
        fake = self.fake
        ch = fake.channel(channel)
        if ch.is_private and not ch.has_member(self.id):
            raise ElementNotFound(f"{self.id} is not in private channel {ch.id}")
        trigger_id = fake.issue_trigger(self.id)
        response_url = fake.issue_response_url(self.id, ch.id)
        form = {
            "token": self.driver.verification_token,
            "team_id": self.team.id,
            "team_domain": self.team.domain,
            "channel_id": ch.id,
            "channel_name": ch.payload_name,
            "user_id": self.id,
            "user_name": self.user.name,
            "command": command,
            "text": text,
            "api_app_id": fake.app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
        if self.team.enterprise_id:
            form["enterprise_id"] = self.team.enterprise_id
        body = urlencode(form).encode()
        result = self.driver.deliver("slash_command", form, body, "application/x-www-form-urlencoded", user_id=self.id)
        result.trigger_id, result.response_url = trigger_id, response_url
        if result.ok:
            result.message = self._show_ack(result, ch.id, response_url)
        return result

    def _show_ack(self, result: Interaction, channel_id: str, response_url: str) -> Message | None:
        """A slash command's ack body is a message: ephemeral unless in_channel."""
        raw = result.response_body.strip()
        if not raw:
            return None
        data = result.json
        if not isinstance(data, dict):
            data = {"text": result.text}
        if not any(data.get(k) for k in ("text", "blocks", "attachments")):
            return None
        try:
            msg = self.fake.show_response(self.team, self.id, channel_id, data, via="ack")
        except SlackError as err:
            result.failure = self.fake.record_failure(
                "invalid_response",
                f"ack body refused: {err.body}",
                interaction="slash_command",
                user_id=self.id,
            )
            return None
        self.fake.bind_response_url(response_url, msg)  # replace_original now acts on it
        return msg

    # -- shortcuts ----------------------------------------------------------------------
    def shortcut(self, callback_id: str) -> Interaction:
        """Run a global shortcut (lightning menu)."""
        trigger_id = self.fake.issue_trigger(self.id)
        payload = self._base("shortcut")
        payload.update(callback_id=callback_id, trigger_id=trigger_id, action_ts=self.fake.new_ts())
        result = self.driver._interactive("shortcut", payload, self.id)
        result.trigger_id = trigger_id
        return result

    # -- block actions --------------------------------------------------------------
    def click(
        self,
        target: Message | View,
        action_id: str,
        *,
        value: str | None = None,
        block_id: str | None = None,
        confirm: bool = False,
    ) -> Interaction:
        """Click the button ``action_id`` (``value``/``block_id`` pick among several)."""
        return self._act(target, action_id, BUTTON, value=value, block_id=block_id, confirm=confirm)

    def choose(
        self,
        target: Message | View,
        action_id: str,
        option: Any,
        *,
        block_id: str | None = None,
        confirm: bool = False,
    ) -> Interaction:
        """Pick ``option`` (an option value; a list for multi-selects and
        checkboxes; a date/time/user/channel for pickers) in an overflow menu,
        select, radio group, ... that dispatches actions."""
        return self._act(target, action_id, CHOOSERS, choice=option, block_id=block_id, confirm=confirm)

    def _current(self, target: Message | View) -> Message | View:
        """What the person sees now (a snapshot stays as it was: a stale client)."""
        if isinstance(target, View):
            view = self.fake.view(target.id)
            if view.closed:
                raise ElementNotFound(f"view {view.id} is closed")
            if view.user_id != self.id:
                raise ElementNotFound(f"view {view.id} belongs to {view.user_id}, not {self.id}")
            if view.type == "modal" and self.fake.modal(self.id) is not view:
                raise ElementNotFound(f"view {view.id} is not the modal on top of {self.id}'s stack")
            return view
        if target.ephemeral and target.recipient != self.id:
            raise ElementNotFound(f"ephemeral message {target.ts} is shown to {target.recipient}, not {self.id}")
        if target.deleted:
            raise ElementNotFound(f"message {target.ts} was deleted")
        channel = self.fake.channels[target.channel]
        if channel.is_private and not channel.has_member(self.id):
            raise ElementNotFound(f"{self.id} cannot see channel {channel.id}")
        return target

    def _find(
        self, target: Message | View, action_id: str, kinds: set[str], value: Any, block_id: str | None
    ) -> tuple[dict, dict]:
        found = [
            (block, el)
            for block, el in _walk_elements(target.blocks)
            if el.get("action_id") == action_id and (block_id is None or block.get("block_id") == block_id)
        ]
        if value is not None:
            found = [(b, e) for b, e in found if e.get("value") == value]
        rendered = [(e.get("type"), e.get("action_id"), e.get("value")) for _, e in _walk_elements(target.blocks)]
        where = f"view {target.id}" if isinstance(target, View) else f"message {target.ts}"
        if not found:
            raise ElementNotFound(
                f"no element action_id={action_id!r}"
                + (f" value={value!r}" if value is not None else "")
                + (f" block_id={block_id!r}" if block_id else "")
                + f" in {where}; rendered (type, action_id, value): {rendered}"
            )
        if len(found) > 1:
            raise ElementNotFound(f"{len(found)} elements action_id={action_id!r} in {where}: pass value= or block_id=")
        block, el = found[0]
        if el.get("type") not in kinds:
            raise ElementNotFound(f"{action_id!r} is a {el.get('type')}, not one of {sorted(kinds)}")
        return block, el

    def _confirm(self, el: dict, action_id: str, confirm: bool) -> None:
        dialog = el.get("confirm")
        if dialog and not confirm:
            raise ConfirmationRequired(
                f"{action_id!r} asks {dialog.get('title', {}).get('text')!r}: "
                f"{dialog.get('text', {}).get('text')!r} -- pass confirm=True to accept"
            )
        if confirm and not dialog:
            raise AssertionError(f"{action_id!r} has no confirm dialog, but the test expected one")
        if dialog:
            self.fake.confirmations.append(
                Confirmation(
                    user_id=self.id,
                    action_id=action_id,
                    title=dialog.get("title", {}).get("text", ""),
                    text=dialog.get("text", {}).get("text", ""),
                    confirm=(dialog.get("confirm") or {}).get("text", ""),
                    deny=(dialog.get("deny") or {}).get("text", ""),
                )
            )

    def _act(
        self,
        target: Message | View,
        action_id: str,
        kinds: set[str],
        *,
        value: Any = None,
        choice: Any = None,
        block_id: str | None = None,
        confirm: bool = False,
    ) -> Interaction:
        target = target if getattr(target, "snapshot", False) else self._current(target)
        block, el = self._find(target, action_id, kinds, value, block_id)
        if block.get("type") == "input" and not block.get("dispatch_action"):
            raise ElementNotFound(
                f"{action_id!r} is in an input block without dispatch_action: Slack sends nothing "
                "until the modal is submitted (use submit(view, values))"
            )
        self._confirm(el, action_id, confirm)
        action: dict[str, Any] = {
            "action_id": el["action_id"],
            "block_id": block["block_id"],
            "type": el["type"],
            "action_ts": self.fake.new_ts(),
        }
        if el["type"] == "button":
            action["text"] = copy.deepcopy(el.get("text"))
            if "value" in el:
                action["value"] = el["value"]
            if "style" in el:
                action["style"] = el["style"]
            if "url" in el:
                action["url"] = el["url"]
        else:
            state = _choice_state(el, choice)
            action.update({k: v for k, v in state.items() if k != "type"})
            if "placeholder" in el:
                action["placeholder"] = copy.deepcopy(el["placeholder"])
            if isinstance(target, View) and el["type"] != "overflow":
                target.values.setdefault(block["block_id"], {})[el["action_id"]] = state

        trigger_id = self.fake.issue_trigger(self.id, view_id=target.id if isinstance(target, View) else None)
        payload = self._base("block_actions")
        response_url = None
        if isinstance(target, View):
            payload.update(
                container={"type": "view", "view_id": target.id},
                trigger_id=trigger_id,
                view=target.to_api(),
                actions=[action],
            )
        else:
            channel = self.fake.channels[target.channel]
            thread_ts = target.thread_ts if target.is_reply else None
            source = target if not target.snapshot else self.fake.live_message(target)
            response_url = self.fake.issue_response_url(self.id, channel.id, source=source, thread_ts=thread_ts)
            container: dict[str, Any] = {
                "type": "message",
                "message_ts": target.ts,
                "channel_id": channel.id,
                "is_ephemeral": target.ephemeral,
            }
            if target.thread_ts:
                container["thread_ts"] = target.thread_ts
            payload.update(
                container=container,
                trigger_id=trigger_id,
                channel={"id": channel.id, "name": channel.payload_name},
            )
            if not target.ephemeral:  # Slack does not send the content of ephemeral messages back
                payload["message"] = target.to_api()
            payload.update(
                state={"values": _message_state(target)},
                response_url=response_url,
                actions=[action],
            )
        result = self.driver._interactive("block_actions", payload, self.id)
        result.trigger_id, result.response_url = trigger_id, response_url
        return result

    # -- external selects ---------------------------------------------------------------
    def suggest(self, view: View | None, block_id: str, typed: str = "") -> list[dict]:
        """Type ``typed`` into the external select of input ``block_id`` in the top modal: Slack
        asks the app for options (``block_suggestion``) and shows them. Returns the options,
        which ``fill`` takes as values."""
        view = self._top_modal(view)
        block = next((b for b in view.blocks if b.get("block_id") == block_id), None)
        el = (block or {}).get("element") or {}
        if el.get("type") not in ("external_select", "multi_external_select"):
            raise ElementNotFound(f"no external select in input block {block_id!r} of view {view.id}")
        if len(typed) < int(el.get("min_query_length", 3)):
            return []  # Slack waits for more characters
        payload = self._base("block_suggestion")
        payload.update(
            container={"type": "view", "view_id": view.id},
            action_id=el["action_id"],
            block_id=block_id,
            value=typed,
            view=view.to_api(),
        )
        result = self.driver._interactive("block_suggestion", payload, self.id)
        data = result.json if result.ok else None
        options = data.get("options") if isinstance(data, dict) else None
        if options is None and isinstance(data, dict) and data.get("option_groups"):
            options = [o for group in data["option_groups"] for o in group.get("options") or []]
        problem = None
        if not isinstance(options, list):
            problem = f"no options in the answer: {result.text[:200]!r}"
        elif len(options) > 100:
            problem = f"{len(options)} options (at most 100)"
        elif any(
            not isinstance(o, dict)
            or (o.get("text") or {}).get("type") != "plain_text"
            or len((o.get("text") or {}).get("text") or "") > 75
            or not isinstance(o.get("value"), str)
            or len(o["value"]) > 150
            for o in options
        ):
            problem = "an option is not a plain_text text of at most 75 characters with a value of at most 150"
        if problem and result.ok:
            result.failure = self.fake.record_failure(
                "invalid_response", problem, interaction="block_suggestion", user_id=self.id
            )
        return copy.deepcopy(options) if isinstance(options, list) and not problem else []

    # -- modals -----------------------------------------------------------------------
    def _top_modal(self, view: View | None) -> View:
        top = self.fake.modal(self.id)
        if top is None:
            raise ElementNotFound(f"{self.id} has no open modal")
        if view is not None and view.id != top.id:
            raise ElementNotFound(f"view {view.id} is not the modal on top of {self.id}'s stack ({top.id})")
        return top

    def fill(self, view: View | None, values: dict) -> View:
        """Type into inputs without submitting: ``{block_id: {action_id: value}}``.

        Values are natural: text for text inputs (numbers too), the option value
        for selects and radio buttons, a list of values for multi-selects and
        checkboxes, ``"YYYY-MM-DD"``/``"HH:MM"`` for pickers, IDs for user and
        conversation selects, None to clear.
        """
        view = self._top_modal(view)
        for block_id, by_action in values.items():
            block = next((b for b in view.blocks if b.get("block_id") == block_id), None)
            if block is None or block.get("type") != "input":
                inputs = [b.get("block_id") for b in view.blocks if b.get("type") == "input"]
                raise ElementNotFound(f"no input block {block_id!r} in view {view.id}; input blocks: {inputs}")
            el = block["element"]
            for action_id, value in by_action.items():
                if el.get("action_id") != action_id:
                    raise ElementNotFound(
                        f"input block {block_id!r} holds action_id {el.get('action_id')!r}, not {action_id!r}"
                    )
                if el.get("type") in (
                    "plain_text_input",
                    "number_input",
                    "email_text_input",
                    "url_text_input",
                ):
                    state = {"type": el["type"], "value": None if value in (None, "") else str(value)}
                else:
                    state = _choice_state(el, value)
                view.values.setdefault(block_id, {})[action_id] = state
        return view

    def submit(self, view: View | None = None, values: dict | None = None) -> Interaction:
        """Fill ``values`` into the top modal and press its submit button.

        The app's answer is applied like Slack does: ``errors`` are shown on the
        view (``view.errors``), ``update``/``push``/``clear`` change the stack, an
        empty 200 closes the modal.  ``result.view`` is the modal shown after.
        """
        view = self._top_modal(view)
        if "submit" not in view.payload:
            raise NotSubmittable(f"view {view.id} has no submit button")
        if values:
            self.fill(view, values)
        _validate_inputs(view)
        view.errors = {}  # the client clears shown errors on every submit
        trigger_id = self.fake.issue_trigger(self.id, view_id=view.id)
        payload = self._base("view_submission")
        payload.update(trigger_id=trigger_id, view=view.to_api(), response_urls=[])
        result = self.driver._interactive("view_submission", payload, self.id)
        result.trigger_id = trigger_id
        if result.ok:
            self._apply_response_action(view, result)
        result.view = self.fake.modal(self.id)
        return result

    def _apply_response_action(self, view: View, result: Interaction) -> None:
        fake = self.fake

        def fail(detail: str) -> None:
            result.failure = fake.record_failure(
                "invalid_response", detail, interaction="view_submission", user_id=self.id
            )

        if not result.response_body.strip():
            fake.close_view(view)
            return
        data = result.json
        if not isinstance(data, dict):
            fail(f"response is not JSON: {result.text[:200]!r}")
            return
        action = data.get("response_action")
        if action is None:
            fake.close_view(view)
        elif action == "errors":
            errors = data.get("errors")
            inputs = {b.get("block_id") for b in view.blocks if b.get("type") == "input"}
            if not isinstance(errors, dict) or not errors:
                fail(f"response_action errors needs an errors object, got {errors!r}")
            elif set(errors) - inputs:
                fail(f"errors for block_ids that are not input blocks of the view: {sorted(set(errors) - inputs)}")
            else:
                view.errors = dict(errors)
        elif action in ("update", "push"):
            new = data.get("view")
            try:
                if not isinstance(new, dict) or new.get("type") != "modal":
                    raise SlackError("invalid_arguments", messages=["[ERROR] view must be a modal"])
                fake.check_view_limits("response_action", new)
                if action == "update":
                    fake.replace_view(view, new)
                elif len(fake.views(self.id)) >= MAX_VIEW_STACK:
                    raise SlackError("push_limit_reached")
                else:
                    fake.push_view(self.team, self.id, new)
            except SlackError as err:
                fail(f"response_action {action} refused: {err.body}")
        elif action == "clear":
            fake.close_views(self.id)
        else:
            fail(f"unknown response_action {action!r}")

    def close(self, view: View | None = None) -> Interaction | None:
        """Press the modal's Close button; ``view_closed`` is sent if the view
        asked for it (``notify_on_close``).  Returns that interaction or None."""
        view = self._top_modal(view)
        clear = bool(view.payload.get("clear_on_close"))
        payload = self._base("view_closed")
        payload.update(view=view.to_api(), is_cleared=clear)
        if clear:
            self.fake.close_views(self.id)
        else:
            self.fake.close_view(view)
        if view.payload.get("notify_on_close"):
            return self.driver._interactive("view_closed", payload, self.id)
        return None

    # -- events -------------------------------------------------------------------------
    def open_home(self) -> Interaction:
        """Open the app's Home tab (``app_home_opened``)."""
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": self.id,
            "channel": self.fake.im(self.id).id,
            "tab": "home",
        }
        home = self.fake.home(self.id)
        if home is not None:
            event["view"] = home.to_api()
        return self.driver.event(event, team_id=self.team.id)

    def say(self, channel: str, text: str, *, thread_ts: str | None = None) -> Message:
        """Post a message as this person (stored; no event is sent)."""
        ch = self.fake.channel(channel)
        return self.fake.post_message(
            ch, self.team, text=text, blocks=_rich_text(text), thread_ts=thread_ts, user=self.id
        )

    def mention(self, channel: str, text: str, *, thread_ts: str | None = None) -> Interaction:
        """Post ``@app text`` in ``channel`` and deliver the ``app_mention`` event."""
        mention = f"<@{self.team.bot_user_id}>"
        if mention not in text:
            text = f"{mention} {text}"
        msg = self.say(channel, text, thread_ts=thread_ts)
        event: dict[str, Any] = {
            "type": "app_mention",
            "user": self.id,
            "text": text,
            "ts": msg.ts,
            "team": self.team.id,
            "channel": msg.channel,
            "event_ts": msg.ts,
            "client_msg_id": str(uuid.uuid4()),
            "blocks": copy.deepcopy(msg.blocks),
        }
        if msg.thread_ts:
            event["thread_ts"] = msg.thread_ts
        return self.driver.event(event, team_id=self.team.id)


# ------------------------------------------------------------------ helpers
def _rich_text(text: str) -> list:
    return [
        {
            "type": "rich_text",
            "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
        }
    ]


def _options(el: dict) -> list[dict]:
    opts = list(el.get("options") or [])
    for group in el.get("option_groups") or []:
        opts += group.get("options") or []
    return opts


def _option(el: dict, value: Any) -> dict:
    if isinstance(value, dict):
        return copy.deepcopy(value)
    if el["type"].endswith("external_select"):  # options come from the app at run time
        return {"text": {"type": "plain_text", "text": str(value)}, "value": str(value)}
    for opt in _options(el):
        if opt.get("value") == value:
            return copy.deepcopy(opt)
    raise ElementNotFound(
        f"{el.get('action_id')!r} offers no option {value!r}; options: {[o.get('value') for o in _options(el)]}"
    )


def _choice_state(el: dict, choice: Any) -> dict:
    """The state entry (and action fields) for a choice made in element ``el``."""
    kind = el["type"]
    if kind in ("overflow", "static_select", "external_select", "radio_buttons"):
        return {"type": kind, "selected_option": None if choice is None else _option(el, choice)}
    if kind in ("multi_static_select", "multi_external_select", "checkboxes"):
        choices = [] if choice is None else list(choice if isinstance(choice, (list, tuple)) else [choice])
        return {"type": kind, "selected_options": [_option(el, c) for c in choices]}
    single = {
        "users_select": "selected_user",
        "conversations_select": "selected_conversation",
        "channels_select": "selected_channel",
        "datepicker": "selected_date",
        "timepicker": "selected_time",
        "datetimepicker": "selected_date_time",
    }
    if kind in single:
        return {"type": kind, single[kind]: choice}
    multi = {
        "multi_users_select": "selected_users",
        "multi_conversations_select": "selected_conversations",
        "multi_channels_select": "selected_channels",
    }
    if kind in multi:
        return {"type": kind, multi[kind]: list(choice or [])}
    raise ElementNotFound(f"cannot choose in a {kind}")


def _message_state(msg: Message) -> dict:
    return state_values(msg.blocks, {})


_EMPTY: tuple[object, ...] = (None, "", [])


def _validate_inputs(view: View) -> None:
    """What Slack's client checks before it sends a view_submission."""
    values = view.state_values()
    for block in view.blocks:
        if block.get("type") != "input":
            continue
        el = block.get("element") or {}
        label = (block.get("label") or {}).get("text", block.get("block_id"))
        state = values.get(block.get("block_id"), {}).get(el.get("action_id"), {})
        filled = {k: v for k, v in state.items() if k != "type"}
        empty = all(v in _EMPTY for v in filled.values()) if filled else True
        if empty:
            if not block.get("optional"):
                raise NotSubmittable(f"required input {label!r} ({block.get('block_id')}) is empty")
            continue
        text = state.get("value")
        if el.get("type") == "plain_text_input" and isinstance(text, str):
            if "min_length" in el and len(text) < el["min_length"]:
                raise NotSubmittable(f"{label!r} needs at least {el['min_length']} characters")
            if "max_length" in el and len(text) > el["max_length"]:
                raise NotSubmittable(f"{label!r} allows at most {el['max_length']} characters")
        if el.get("type") == "number_input" and isinstance(text, str):
            try:
                number = float(text) if el.get("is_decimal_allowed") else int(text)
            except ValueError:
                raise NotSubmittable(f"{label!r} must be a number, got {text!r}") from None
            if "min_value" in el and number < float(el["min_value"]):
                raise NotSubmittable(f"{label!r} must be at least {el['min_value']}")
            if "max_value" in el and number > float(el["max_value"]):
                raise NotSubmittable(f"{label!r} must be at most {el['max_value']}")


__all__ = [
    "AppDriver",
    "ConfirmationRequired",
    "ElementNotFound",
    "Interaction",
    "NotSubmittable",
    "SlackUser",
    "bolt_target",
    "http_target",
    "sign",
    "wsgi_target",
]
