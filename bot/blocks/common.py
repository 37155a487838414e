"""Block Kit helpers. Pure functions returning dicts.

Rule: text that comes from users or sources goes into `plain_text` objects (through `plain`),
where Slack never turns it into a mention, link or formatting. `mrkdwn` objects hold only our
own words, numbers, dates and validated Slack ids. Fallback `text` goes through `escape`.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

ELLIPSIS = "…"

# Slack's limits (ARCHITECTURE.md).
HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
BUTTON_TEXT_MAX = 75
CONFIRM_TITLE_MAX = 100
CONFIRM_TEXT_MAX = 300
OPTION_TEXT_MAX = 75
SELECT_OPTIONS_MAX = 100  # a static select's options, and an external select's answer
MODAL_TITLE_MAX = 24


def truncate(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def escape(text: str) -> str:
    """For mrkdwn: &, < and > are control characters; formatting marks are neutralised."""
    text = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # Slack has no escape for *, _, ~ and `: a zero-width joiner after each stops them pairing up.
    for mark in "*_~`":
        text = text.replace(mark, mark + "\u200d")
    return text


def plain(text: str, limit: int = SECTION_MAX) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text, limit) or " ", "emoji": False}


def mrkdwn(text: str, limit: int = SECTION_MAX) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": truncate(text, limit)}


def slack_date(when: datetime | None, fmt: str = "{date_short_pretty} {time}") -> str:
    """Each reader sees their own time zone; the fallback after `|` is UTC."""
    if when is None:
        return "never"
    when = when.astimezone(UTC)
    return f"<!date^{int(when.timestamp())}^{fmt}|{when:%Y-%m-%d %H:%M} UTC>"


def user_mention(user_id: str | None, *, system: str = "connbot") -> str:
    """A mention of a Slack user id we stored; anything unexpected is shown as text."""
    if not user_id:
        return system
    if user_id.isalnum() and user_id[:1] in "UW":
        return f"<@{user_id}>"
    return escape(user_id)


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": plain(text, HEADER_MAX)}


def divider() -> dict[str, Any]:
    return {"type": "divider"}


def section(text: dict[str, Any], *, fields: list[dict[str, Any]] | None = None, accessory=None, block_id=None) -> dict:
    block: dict[str, Any] = {"type": "section", "text": text}
    if fields:
        block["fields"] = fields[:10]
    if accessory:
        block["accessory"] = accessory
    if block_id:
        block["block_id"] = block_id
    return block


def fields_section(fields: list[dict[str, Any]], *, accessory=None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "fields": fields[:10]}
    if accessory:
        block["accessory"] = accessory
    return block


def context(*elements: dict[str, Any]) -> dict[str, Any]:
    return {"type": "context", "elements": list(elements)[:10]}


def actions(*elements: dict[str, Any], block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "actions", "elements": list(elements)[:25]}
    if block_id:
        block["block_id"] = block_id
    return block


def confirm(title: str, text: str, ok: str, *, danger: bool = False, deny: str = "Cancel") -> dict[str, Any]:
    dialog: dict[str, Any] = {
        "title": plain(title, CONFIRM_TITLE_MAX),
        "text": plain(text, CONFIRM_TEXT_MAX),
        "confirm": plain(ok, 30),
        "deny": plain(deny, 30),
    }
    if danger:
        dialog["style"] = "danger"
    return dialog


def button(
    text: str, action_id: str, value: str | None = None, *, style: str | None = None, confirm_dialog=None, url=None
):
    element: dict[str, Any] = {"type": "button", "text": plain(text, BUTTON_TEXT_MAX), "action_id": action_id}
    if value is not None:
        element["value"] = value
    if style:
        element["style"] = style
    if confirm_dialog:
        element["confirm"] = confirm_dialog
    if url:
        element["url"] = url
    return element


def option(text: str, value: str) -> dict[str, Any]:
    return {"text": plain(text, OPTION_TEXT_MAX), "value": value}


def searched_select(action_id: str, placeholder: str, *, multiple: bool = False) -> dict[str, Any]:
    """A select whose options the app gives as the person types (block_suggestion), from the
    first keystroke: for more options than a static select holds."""
    return {
        "type": "multi_external_select" if multiple else "external_select",
        "action_id": action_id,
        "placeholder": plain(placeholder),
        "min_query_length": 0,
    }


def matching_options(choices: list[tuple[str, str]], typed: str) -> list[dict[str, Any]]:
    """What an external select offers for what was typed: the first options (label, value) whose
    label or value holds it, whatever its case."""
    wanted = typed.strip().casefold()
    found = (
        option(label, value) for label, value in choices if wanted in label.casefold() or wanted in value.casefold()
    )
    return list(itertools.islice(found, SELECT_OPTIONS_MAX))


def overflow(action_id: str, options: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "overflow", "action_id": action_id, "options": options[:5]}


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def notice_modal(title: str, blocks: list[dict[str, Any]], *, close: str = "Close") -> dict[str, Any]:
    """A modal that only tells something (a result, a refusal) and closes."""
    return {
        "type": "modal",
        "title": plain(title, MODAL_TITLE_MAX),
        "close": plain(close, MODAL_TITLE_MAX),
        "blocks": blocks,
    }
