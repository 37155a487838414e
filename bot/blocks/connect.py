"""Modals of Make a new connection and Re-connect."""

from __future__ import annotations

from typing import Any

from bot.blocks.common import (
    SELECT_OPTIONS_MAX,
    context,
    matching_options,
    mrkdwn,
    option,
    plain,
    searched_select,
    section,
)
from bot.ids import Action
from sources.base import CredentialField

VALUE = "value"  # the action_id of every input's element
SOURCE_BLOCK = "source"
SYNC_MODE_BLOCK = "sync_mode"
CONFIRM_BUSINESS_BLOCK = "confirm_business"
CONFIRM_NO_ACCOUNTS_BLOCK = "confirm_no_accounts"
SIGN_IN_BLOCK = "sign_in"
# A URL button: the browser opens the link; Slack still sends a block action, acked and ignored.

SYNC_MODES = (
    ("all", "Sync all accounts", "New accounts found later are added and enabled for extraction."),
    ("selected", "Select specific accounts", "New accounts are added only through Sync accounts, not enabled."),
)


def modal(
    title: str, callback_id: str, blocks: list[dict], *, submit: str | None, metadata: str = "", close: str = "Cancel"
) -> dict:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain(title, 24),
        "close": plain(close, 24),
        "blocks": blocks,
        "private_metadata": metadata,
    }
    if submit:
        view["submit"] = plain(submit, 24)
    return view


def source_picker(callback_id: str, sources: list[tuple[str, str]]) -> dict:
    """Step 1: which data source; more than a select holds are searched as one types."""
    element: dict[str, Any]
    if len(sources) <= SELECT_OPTIONS_MAX:
        element = {
            "type": "static_select",
            "action_id": VALUE,
            "placeholder": plain("Choose a data source"),
            "options": [option(title, name) for name, title in sources],
        }
    else:
        element = searched_select(Action.SOURCE_OPTIONS, "Type part of a data source's name")
    picker = {"type": "input", "block_id": SOURCE_BLOCK, "label": plain("Data source"), "element": element}
    blocks: list[dict] = [picker]
    if len(sources) > SELECT_OPTIONS_MAX:
        blocks.append(context(plain(f"{len(sources):,} data sources: type part of a name to find one.", 200)))
    return modal("New connection", callback_id, blocks, submit="Continue")


def source_options(sources: list[tuple[str, str]], typed: str) -> list[dict]:
    """What the data-source picker offers for what was typed."""
    return matching_options([(title, name) for name, title in sources], typed)


def _input(spec: CredentialField, initial: str | None, error: str | None) -> list[dict]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": VALUE, "max_length": 3000}
    if initial and not spec.secret:
        element["initial_value"] = initial
    block: dict[str, Any] = {
        "type": "input",
        "block_id": spec.name,
        "label": plain(spec.label, 2000),
        "element": element,
        "optional": spec.optional,
    }
    if spec.hint:
        block["hint"] = plain(spec.hint, 2000)
    return [block] + field_error(error)


def credentials_form(
    *,
    title: str,
    callback_id: str,
    source_title: str,
    fields: tuple[CredentialField, ...],
    metadata: str,
    sync_mode: str = "all",
    in_use: tuple[tuple[str, str], ...] = (),
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    confirm_business: bool = False,
    sign_in: tuple[str, str] | None = None,
) -> dict:
    """Step 2 (or the Re-connect form). Secrets are never pre-filled; what is in use shows masked.

    `sign_in` is (button text, URL) when the source's OAuth sign-in is set up; the fields stay,
    for pasting instead."""
    errors = errors or {}
    values = values or {}
    blocks: list[dict] = [section(plain(f"Data source: {source_title}", 300))]
    if in_use:
        blocks.append(context(plain("In use now: " + ", ".join(f"{label} {masked}" for label, masked in in_use), 2000)))
    if sign_in:
        text, url = sign_in
        button = {
            "type": "button",
            "action_id": Action.SIGN_IN,
            "text": plain(text, 75),
            "url": url,
            "style": "primary",
        }
        blocks.append({"type": "actions", "block_id": SIGN_IN_BLOCK, "elements": [button]})
        blocks.append(
            context(
                plain(
                    "Opens the sign-in page in your browser; this form is updated when you are back. Or fill in the fields below.",
                    2000,
                )
            )
        )
    for spec in fields:
        blocks += _input(spec, values.get(spec.name), errors.get(spec.name))
    # A sign-in submits nothing: its form's choices are sent as they are made.
    blocks += sync_mode_blocks(sync_mode, errors, dispatch=bool(sign_in))
    if confirm_business:
        blocks += confirm_business_blocks(errors, dispatch=bool(sign_in))
    blocks += confirm_no_accounts_blocks(errors, dispatch=bool(sign_in))
    general = errors.get("")
    if general:
        blocks.insert(1, section(plain(f"⚠️ {general}", 2000)))
    return modal(title, callback_id, blocks, submit="Check and save", metadata=metadata)


def sync_mode_blocks(sync_mode: str, errors: dict[str, str], *, dispatch: bool = False) -> list[dict]:
    """The account sync choice of both forms, with its error if any."""
    modes = [
        {"text": plain(label), "value": value, "description": plain(description)}
        for value, label, description in SYNC_MODES
    ]
    block: dict[str, Any] = {
        "type": "input",
        "block_id": SYNC_MODE_BLOCK,
        "label": plain("Account sync"),
        "element": {
            "type": "radio_buttons",
            "action_id": VALUE,
            "options": modes,
            "initial_option": next(m for m in modes if m["value"] == sync_mode),
        },
    }
    if dispatch:
        block["dispatch_action"] = True
    return [block] + field_error(errors.get(SYNC_MODE_BLOCK))


def confirm_business_blocks(errors: dict[str, str], *, dispatch: bool = False) -> list[dict]:
    """Re-connect's consent to a switch of business account, with its error if any."""
    return _confirmation(
        CONFIRM_BUSINESS_BLOCK,
        "Business account",
        "These credentials may belong to another business account: switch to it",
        errors,
        dispatch,
    )


def confirm_no_accounts_blocks(errors: dict[str, str], *, dispatch: bool = False) -> list[dict]:
    """Re-connect's consent to credentials whose login sees no accounts: asked for once the check
    found such a login (its error says so)."""
    if not errors.get(CONFIRM_NO_ACCOUNTS_BLOCK):
        return []
    return _confirmation(
        CONFIRM_NO_ACCOUNTS_BLOCK,
        "Accounts",
        "Save these credentials even though they see no accounts",
        errors,
        dispatch,
    )


def field_error(message: str | None) -> list[dict]:
    """An error shown under its field in a form rendered anew (not as Slack's inline errors)."""
    return [context(plain(f"⚠️ {message}", 2000))] if message else []


def _confirmation(block_id: str, label: str, consent: str, errors: dict[str, str], dispatch: bool) -> list[dict]:
    """An optional box to tick to confirm a surprising outcome, and why it is asked."""
    block: dict[str, Any] = {
        "type": "input",
        "block_id": block_id,
        "optional": True,
        "label": plain(label),
        "element": {"type": "checkboxes", "action_id": VALUE, "options": [option(consent, "yes")]},
    }
    if dispatch:
        block["dispatch_action"] = True  # a sign-in submits nothing: the choice is sent as made
    return [block] + field_error(errors.get(block_id))


def working(title: str, text: str) -> dict:
    """Shown at once while the slow part runs."""
    return modal(title, "working", [section(mrkdwn(f":hourglass_flowing_sand: {text}"))], submit=None, close="Close")


def done(title: str, text_plain: str, note: str = "") -> dict:
    blocks = [section(plain(text_plain, 2000))]
    if note:
        blocks.append(context(mrkdwn(note)))
    return modal(title, "done", blocks, submit=None, close="Done")


def twins_note(twins: list[int]) -> str:
    """A sentence (with a leading space) naming the other connections that read the same business
    account; empty when there are none."""
    if not twins:
        return ""
    listed = ", ".join(str(t) for t in twins[:5]) + (" and more" if len(twins) > 5 else "")
    return (
        f" Note: connection{'s' if len(twins) > 1 else ''} {listed} already read{'' if len(twins) > 1 else 's'} "
        "this business account; this one is separate, with its own credentials and orders."
    )
