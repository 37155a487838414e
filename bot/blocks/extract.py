"""The four-step Extract modal: select accounts, choose a template, configure it, check the result."""

from __future__ import annotations

import zlib
from datetime import datetime
from typing import Any

from bot.blocks.common import (
    SELECT_OPTIONS_MAX,
    actions,
    button,
    context,
    divider,
    matching_options,
    mrkdwn,
    option,
    plain,
    plural,
    searched_select,
    section,
)
from bot.ids import Callback
from bot.routing import Draft, draft_fields, pack_draft
from engine.schedules import HOURLY_EVERY, WEEKDAYS, describe
from sources.base import ExtractionTemplate, TemplateField

VALUE = "value"
ACCOUNTS_PAGE = 10  # Slack's checkbox group holds 10 options
SEARCH_MAX = 200  # characters of an account search
TITLE = "Extract"

SCHEDULE_KINDS = (("hourly", "Hourly"), ("daily", "Daily"), ("weekly", "Weekly"), ("monthly", "Monthly"))


class ExtractAction:
    SEARCH = "extract.search"
    PREV = "extract.accounts.prev"
    NEXT = "extract.accounts.next"
    BACK = "extract.back"
    # Pickers of more than a select's 100 options: their options come as the person types.
    STREAMS = "extract.streams"
    FIELDS = "extract.fields"


def _modal(
    callback_id: str, step: int, blocks: list[dict], draft: Draft, submit: str | None, notice: str | None = None
) -> dict:
    """`notice`: what went wrong with the last submit and what to do, shown at the top of the step.
    `submit` None: the step offers no submit button (it could not succeed)."""
    top = [context(mrkdwn(_steps(step)))]
    if notice:
        top.append(section(plain(f"⚠️ {notice}", 3000)))
    view = {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain(f"{TITLE} · step {step} of 4", 24),
        "close": plain("Cancel", 24),
        "private_metadata": pack_draft(draft),
        "blocks": top + blocks,
    }
    if submit:
        view["submit"] = plain(submit, 24)
    return view


def _steps(current: int) -> str:
    names = ("Select accounts", "Choose extraction template", "Configure extraction template", "Check the result")
    return "  ›  ".join(f"*{n}*" if i + 1 == current else n for i, n in enumerate(names))


def _back(step: int) -> dict:
    return actions(button("Back", ExtractAction.BACK, str(step)), block_id=f"back:{step}")


def accounts_step(
    draft: Draft, total: int, page: list[tuple[int, str, str, datetime]], limit: int, notice: str | None = None
) -> dict:
    """Step 1: active accounts, searchable, 10 a page; the selection survives paging. `limit`: accounts per order."""
    search = {
        "type": "input",
        "block_id": "accounts_search",
        "dispatch_action": True,
        "optional": True,
        "label": plain("Search accounts by name or ID"),
        "element": {
            "type": "plain_text_input",
            "action_id": ExtractAction.SEARCH,
            "max_length": SEARCH_MAX,
            "initial_value": draft.q or "",
            "dispatch_action_config": {"trigger_actions_on": ["on_enter_pressed"]},
        },
    }
    blocks: list[dict] = [search]
    if not page:
        blocks.append(
            section(
                plain(
                    f"No active account matches “{draft.q}”." if draft.q else "This connection has no active accounts.",
                    500,
                )
            )
        )
    else:
        options: list[dict[str, Any]] = [
            {
                "text": plain(name, 75),
                "description": plain(f"{external_id} · added {added:%Y-%m-%d}", 75),
                "value": str(account_id),
            }
            for account_id, external_id, name, added in page
        ]
        selected = [o for o in options if int(o["value"]) in draft.a]
        element: dict[str, Any] = {"type": "checkboxes", "action_id": VALUE, "options": options}
        if selected:
            element["initial_options"] = selected
        blocks.append(
            {
                # A new block id per page, so Slack shows this page's choices instead of keeping the last page's.
                "type": "input",
                "block_id": f"accounts:{draft.p}:{zlib.crc32((draft.q or '').encode()) % 10_000}",
                "optional": True,
                "label": plain(
                    f"Active accounts {draft.p * ACCOUNTS_PAGE + 1}–{draft.p * ACCOUNTS_PAGE + len(page)} of {total:,}"
                ),
                "element": element,
            }
        )
    nav = []
    if draft.p > 0:
        nav.append(button("Previous", ExtractAction.PREV))
    if (draft.p + 1) * ACCOUNTS_PAGE < total:
        nav.append(button("Next", ExtractAction.NEXT))
    if nav:
        blocks.append(actions(*nav, block_id="accounts_nav"))
    # Slack tells us of ticks only on paging or Continue, so a count of the whole selection would be
    # wrong as soon as a box is ticked: count what is kept from other pages, which the page does not show.
    on_page = {account_id for account_id, *_ in page}
    elsewhere = sum(1 for a in draft.a if a not in on_page)
    kept = (
        f"{plural(elsewhere, 'account')} selected on other pages or searches"
        if elsewhere
        else "Ticks are kept when you page or search"
    )
    blocks.append(context(mrkdwn(f"{kept}. An order takes up to {limit} accounts.")))
    return _modal(Callback.EXTRACT_ACCOUNTS, 1, blocks, draft, "Continue", notice)


RADIO_TEMPLATES = 10  # Slack's radio buttons hold 10 options; more templates (streams) get a select


def template_step(draft: Draft, templates: tuple[ExtractionTemplate, ...]) -> dict:
    element: dict[str, Any]
    if len(templates) <= RADIO_TEMPLATES:
        options = [
            {"text": plain(t.title, 75), "description": plain(t.description, 75), "value": t.name} for t in templates
        ]
        element = {"type": "radio_buttons", "action_id": VALUE, "options": options}
    elif len(templates) <= SELECT_OPTIONS_MAX:
        options = [option(t.title, t.name) for t in templates]
        element = {
            "type": "static_select",
            "action_id": VALUE,
            "placeholder": plain("Choose a stream"),
            "options": options,
        }
    else:
        options = [option(t.title, t.name) for t in templates if t.name == draft.t]
        element = searched_select(ExtractAction.STREAMS, "Type part of a stream's name")
    chosen = next((o for o in options if o["value"] == draft.t), None)
    if chosen:
        element["initial_option"] = chosen
    blocks: list[dict] = [
        {"type": "input", "block_id": "template", "label": plain("Extraction template"), "element": element}
    ]
    if not templates:
        blocks = [section(plain("No templates yet: Sync accounts on the card reads the data source's streams.", 500))]
    elif len(templates) > SELECT_OPTIONS_MAX:
        blocks.append(context(plain(f"{len(templates):,} streams: type part of a name to find one.", 200)))
    blocks.append(_back(2))
    return _modal(Callback.EXTRACT_TEMPLATE, 2, blocks, draft, "Continue")


def stream_options(templates: tuple[ExtractionTemplate, ...], typed: str) -> list[dict]:
    """What the stream picker offers for what was typed: streams whose title or name holds it."""
    return matching_options([(t.title, t.name) for t in templates], typed)


def _select(block_id: str, label: str, choices: list[tuple[str, str]], initial: str | None, *, optional=True) -> dict:
    options = [option(text, value) for value, text in choices][:SELECT_OPTIONS_MAX]
    element: dict[str, Any] = {"type": "static_select", "action_id": VALUE, "options": options}
    chosen = next((o for o in options if o["value"] == initial), None)
    if chosen:
        element["initial_option"] = chosen
    return {"type": "input", "block_id": block_id, "optional": optional, "label": plain(label), "element": element}


# The field pickers of step 3, by block id.
DIMENSIONS, METRICS, KEY_FIELDS = "dimensions", "metrics", "key_fields"


def offered_fields(template: ExtractionTemplate, block_id: str) -> list[TemplateField]:
    """The fields the picker `block_id` of step 3 offers (the primary key is always extracted)."""
    if block_id == DIMENSIONS:
        key = set(template.primary_key)
        return [f for f in template.dimensions if f.name not in key]
    if block_id == METRICS:
        return list(template.metrics)
    if block_id == KEY_FIELDS and not template.primary_key:
        return list(template.fields)
    return []


def field_options(template: ExtractionTemplate, block_id: str, typed: str) -> list[dict]:
    """What the field picker `block_id` offers for what was typed, when it has too many to list."""
    return matching_options([(f.label, f.name) for f in offered_fields(template, block_id)], typed)


def _multi(block_id: str, label: str, fields: list[TemplateField], chosen: set[str] | tuple[str, ...]) -> dict | None:
    if not fields:
        return None
    initial = [option(f.label, f.name) for f in fields if f.name in chosen]
    element: dict[str, Any]
    hint = None
    if len(fields) <= SELECT_OPTIONS_MAX:
        element = {
            "type": "multi_static_select",
            "action_id": VALUE,
            "options": [option(f.label, f.name) for f in fields],
        }
    else:
        element = searched_select(ExtractAction.FIELDS, "Type part of a field's name", multiple=True)
        hint = f"{len(fields):,} fields: type part of a name to find one."
    if initial:
        element["initial_options"] = initial
    block = {
        "type": "input",
        "block_id": block_id,
        "optional": block_id != METRICS,
        "label": plain(label),
        "element": element,
    }
    if hint:
        block["hint"] = plain(hint, 2000)
    return block


def chosen_fields(draft: Draft, template: ExtractionTemplate) -> set[str]:
    chosen = draft_fields(draft, [f.name for f in template.fields])
    if chosen is not None:
        return set(chosen)
    return {f.name for f in template.fields if f.default}


def configure_step(draft: Draft, template: ExtractionTemplate, timezones: list[str], notice: str | None = None) -> dict:
    chosen = chosen_fields(draft, template)
    blocks: list[dict] = [
        {
            "type": "input",
            "block_id": "name",
            "label": plain("Order name"),
            "element": {
                "type": "plain_text_input",
                "action_id": VALUE,
                "max_length": 255,
                "initial_value": draft.n or "",
            },
        },
        {
            "type": "input",
            "block_id": "history_days",
            "optional": True,
            "label": plain("Historical data depth, in days"),
            "hint": plain("Or pick a date below to load data since then."),
            "element": {
                "type": "number_input",
                "action_id": VALUE,
                "is_decimal_allowed": False,
                "min_value": "1",
                "max_value": "3650",
                **({"initial_value": str(draft.h)} if draft.h else {}),
            },
        },
        {
            "type": "input",
            "block_id": "load_since",
            "optional": True,
            "label": plain("Load data since"),
            "hint": plain("When set, it replaces the depth above."),
            "element": {"type": "datepicker", "action_id": VALUE, **({"initial_date": draft.s} if draft.s else {})},
        },
        _select("schedule_kind", "Schedule", [(k, t) for k, t in SCHEDULE_KINDS], draft.sk, optional=False),
        _select("schedule_every", "Hourly: every", [(str(h), f"{h} hours") for h in HOURLY_EVERY], str(draft.se)),
        {
            "type": "input",
            "block_id": "schedule_at",
            "optional": True,
            "label": plain("Daily, weekly, monthly: at"),
            "element": {"type": "timepicker", "action_id": VALUE, "initial_time": draft.sa},
        },
        _select("schedule_weekday", "Weekly: on", [(str(i), d) for i, d in enumerate(WEEKDAYS)], str(draft.sw)),
        _select("schedule_day", "Monthly: on day", [(str(d), str(d)) for d in range(1, 29)], str(draft.sd)),
        _select("schedule_timezone", "Time zone", [(tz, tz) for tz in timezones], draft.tz, optional=False),
    ]
    for block in (
        # A template without metrics (a connector's stream) has plain fields.
        _multi(
            DIMENSIONS, "Dimensions" if template.metrics else "Fields", offered_fields(template, DIMENSIONS), chosen
        ),
        _multi(METRICS, "Metrics", offered_fields(template, METRICS), chosen),
    ):
        if block:
            blocks.append(block)
    if template.primary_key:
        blocks.append(
            context(
                plain(
                    "Always extracted (primary key): "
                    + ", ".join(template.field(n).label for n in template.primary_key),
                    2000,
                )
            )
        )
    else:
        blocks += _key_fields(template, draft.kf or ())
    blocks.append(_back(3))
    return _modal(Callback.EXTRACT_CONFIGURE, 3, blocks, draft, "Continue", notice)


def _key_fields(template: ExtractionTemplate, chosen: tuple[str, ...]) -> list[dict]:
    """For a template without a primary key: the fields that identify a row, or replacement."""
    block = _multi(KEY_FIELDS, "Key fields", offered_fields(template, KEY_FIELDS), chosen)
    if block is None:
        return []
    block["optional"] = True
    said = "The fields that together identify a row; each run then updates rows on them."
    block["hint"] = plain(f"{said} {block['hint']['text']}" if "hint" in block else said, 2000)
    return [block, context(plain(REPLACES_ROWS, 2000))]


REPLACES_ROWS = (
    "This stream has no primary key. Without key fields, each run replaces this connection's rows of the stream."
)


def review_step(
    draft: Draft,
    template: ExtractionTemplate,
    accounts: list[tuple[int, str, str]],
    source_title: str,
    notice: str | None = None,
    *,
    can_create: bool = True,
) -> dict:
    """Step 4. `can_create` False (the notice says why): no Create, only Back and Cancel."""
    shown = ", ".join(f"{name} ({external_id})" for _, external_id, name in accounts[:20])
    if len(accounts) > 20:
        shown += f" and {len(accounts) - 20:,} more"
    depth = f"since {draft.s}" if draft.s else f"the last {draft.h or 0:,} days"
    labels = {f.name: f.label for f in template.fields}
    fields = [labels[n] for n in draft_fields(draft, list(labels)) or () if n in labels]
    schedule = {"kind": draft.sk, "every_hours": draft.se, "at": draft.sa, "weekday": draft.sw, "day": draft.sd}
    key = template.primary_key or draft.kf
    merge = (
        f"Rows are merged on {', '.join(template.field(n).label for n in key)}."
        if key
        else "No key: each run replaces this connection's rows of the stream."
    )
    blocks = [
        section(plain(f"Order: {draft.n}", 2000)),
        section(plain(f"Data source: {source_title} · template: {template.title}", 2000)),
        section(plain(f"Accounts ({len(accounts)}): {shown}", 3000)),
        section(plain(f"History: {depth} · Schedule: {describe(schedule, draft.tz)}", 2000)),
        section(plain("Fields: " + _listed(fields, 2900), 3000)),
        *([] if template.primary_key else [section(plain(merge, 2000))]),
        divider(),
    ]
    if can_create:
        blocks.append(
            context(mrkdwn("*Create* saves the order and starts its first run (the historical backfill) at once."))
        )
    blocks.append(_back(4))
    return _modal(Callback.EXTRACT_REVIEW, 4, blocks, draft, "Create" if can_create else None, notice)


def taken_out(labels: list[tuple[int, str, str]]) -> str:
    """The sentence naming selected accounts no longer active, taken out of the selection."""
    names = ", ".join(f"{name} ({external_id})" for _, external_id, name in labels[:10])
    if len(labels) > 10:
        names += f" and {len(labels) - 10:,} more"
    one = len(labels) == 1
    return (
        f"{plural(len(labels), 'selected account')} {'is' if one else 'are'} no longer active and "
        f"{'was' if one else 'were'} taken out of the selection: {names}."
    )


def _listed(names: list[str], room: int) -> str:
    """`names` joined, or as many as fit in `room` characters and how many more."""
    text = ", ".join(names)
    if len(text) <= room:
        return text
    shown: list[str] = []
    used = 0
    for name in names:
        rest = len(f" and {len(names) - len(shown) - 1:,} more")
        if used + len(name) + rest > room:
            break
        shown.append(name)
        used += len(name) + 2
    return ", ".join(shown) + f" and {len(names) - len(shown):,} more"


def created(order_name: str, note: str) -> dict:
    return {
        "type": "modal",
        "callback_id": "extract.created",
        "title": plain(TITLE, 24),
        "close": plain("Done", 24),
        "blocks": [section(plain(f"Created the extraction order “{order_name}”.", 2000)), context(mrkdwn(note))],
    }
