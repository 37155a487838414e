"""Extract: the four-step extraction order set-up in one modal (Back/Continue with views.update)."""

from __future__ import annotations

import logging
import uuid
from datetime import date

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot.blocks import extract as steps
from bot.blocks.extract import ACCOUNTS_PAGE, ExtractAction
from bot.cards import show_card_after_modal
from bot.errors import guarded
from bot.forms import form_values
from bot.ids import Action, Callback
from bot.routing import CardRef, Draft, unpack, unpack_draft
from bot.services import Services
from bot.surface import Surface
from core.errors import Conflict, InvalidInput
from operations.auth import Actor
from operations.orders import (
    OrderSpec,
    account_labels,
    account_timezones,
    active_accounts_page,
    create_order,
    open_setup,
    require_extract_available,
    start_first_run,
    template_of,
    validate_spec,
)

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    guard = guarded(services)
    ctx = services.ctx

    def actor_of(body: dict) -> Actor:
        return services.roles.actor(Surface.of(body).team_id, body["user"]["id"])

    @app.action(Action.EXTRACT)
    @guard
    def open_extract(ack: Ack, body: dict, action: dict) -> None:
        ack()
        ref = unpack(CardRef, action.get("value"))
        surface = Surface.of(body)
        actor = services.roles.actor(surface.team_id, surface.user_id)
        total, page = open_setup(ctx, actor, ref.c, limit=ACCOUNTS_PAGE)  # refuses old cards with the reason
        draft = Draft(
            c=ref.c, k=uuid.uuid4().hex, ch=surface.channel_id, ts=surface.ts if surface.kind == "message" else None,
            tz=ctx.settings.timezone.key,
        )
        services.client.views_open(trigger_id=body["trigger_id"], view=steps.accounts_step(draft, total, page))

    @app.action(ExtractAction.SEARCH)
    @app.action(ExtractAction.PREV)
    @app.action(ExtractAction.NEXT)
    @guard
    def page_accounts(ack: Ack, body: dict, action: dict) -> None:
        ack()
        view = body["view"]
        draft = _with_selection(unpack_draft(view.get("private_metadata")), view)
        if action["action_id"] == ExtractAction.SEARCH:
            draft = draft.but(q=(action.get("value") or "").strip()[:200] or None, p=0)
        else:
            draft = draft.but(p=max(0, draft.p + (1 if action["action_id"] == ExtractAction.NEXT else -1)))
        _update(services, view, _accounts_view(services, actor_of(body), draft))

    @app.view_submission(Callback.EXTRACT_ACCOUNTS)
    @guard
    def accounts_chosen(ack: Ack, body: dict, view: dict) -> None:
        draft = _with_selection(unpack_draft(view.get("private_metadata")), view)
        if not draft.a:
            block = next((b["block_id"] for b in view["blocks"] if b["block_id"].startswith("accounts:")), "accounts_search")
            ack(response_action="errors", errors={block: "Select at least one account to continue."})
            return
        ack(response_action="update", view=_template_view(services, actor_of(body), draft))

    @app.view_submission(Callback.EXTRACT_TEMPLATE)
    @guard
    def template_chosen(ack: Ack, body: dict, view: dict) -> None:
        draft = unpack_draft(view.get("private_metadata"))
        name = form_values(view).get("template")
        actor = actor_of(body)
        source = _source_name(services, actor, draft)
        try:
            template = template_of(ctx, source, name or "")
        except InvalidInput as bad:
            ack(response_action="errors", errors=bad.fields)
            return
        if template.name != draft.t:  # a new template: its own defaults
            draft = draft.but(t=template.name, f=None, n=f"{template.title} · {len(draft.a)} account{'s' if len(draft.a) != 1 else ''}")
        ack(response_action="update", view=_configure_view(services, actor, draft))

    @app.view_submission(Callback.EXTRACT_CONFIGURE)
    @guard
    def configured(ack: Ack, body: dict, view: dict) -> None:
        actor = actor_of(body)
        draft = _with_configuration(unpack_draft(view.get("private_metadata")), view)
        try:
            validate_spec(ctx, _source_name(services, actor, draft), _spec(draft), ctx.clock.now().date())
        except InvalidInput as bad:
            ack(response_action="errors", errors=_on_blocks(bad, view))
            return
        ack(response_action="update", view=_review_view(services, actor, draft))

    @app.view_submission(Callback.EXTRACT_REVIEW)
    @guard
    def create(ack: Ack, body: dict, view: dict) -> None:
        actor = actor_of(body)
        draft = unpack_draft(view.get("private_metadata"))
        try:
            order_id, is_new = create_order(ctx, actor, draft.c, _spec(draft), idempotency_key=draft.k)
        except InvalidInput as bad:
            ack(response_action="update", view=steps.created(draft.n or "", f":warning: Not created: {bad.message} Go back and adjust."))
            return
        if not is_new:  # a double submit: the first one created it
            ack(response_action="update", view=steps.created(draft.n or "", "It was already created by your first click."))
            return
        ack(response_action="update", view=steps.created(draft.n or "", "Its first run (the historical backfill) is starting now; the card shows its progress."))
        services.background(_first_run, services, actor, draft, order_id)

    @app.action(ExtractAction.BACK)
    @guard
    def back(ack: Ack, body: dict, action: dict) -> None:
        ack()
        view = body["view"]
        actor = actor_of(body)
        draft = unpack_draft(view.get("private_metadata"))
        step = int(action.get("value") or 2)
        if step == 3:
            draft = _with_configuration(draft, view)  # remember what was typed
        target = {
            2: lambda: _accounts_view(services, actor, draft),
            3: lambda: _template_view(services, actor, draft),
            4: lambda: _configure_view(services, actor, draft),
        }[step]
        _update(services, view, target())


def _source_name(services: Services, actor: Actor, draft: Draft) -> str:
    return require_extract_available(services.ctx, actor, draft.c).source


def _accounts_view(services: Services, actor: Actor, draft: Draft) -> dict:
    total, page = active_accounts_page(
        services.ctx, actor, draft.c, offset=draft.p * ACCOUNTS_PAGE, limit=ACCOUNTS_PAGE, search=draft.q
    )
    if page == [] and draft.p > 0 and total:  # the list shrank under us
        draft = draft.but(p=(total - 1) // ACCOUNTS_PAGE)
        return _accounts_view(services, actor, draft)
    return steps.accounts_step(draft, total, page)


def _template_view(services: Services, actor: Actor, draft: Draft) -> dict:
    source = services.ctx.source(_source_name(services, actor, draft))
    return steps.template_step(draft, source.templates())


def _configure_view(services: Services, actor: Actor, draft: Draft) -> dict:
    source = _source_name(services, actor, draft)
    template = template_of(services.ctx, source, draft.t or "")
    zones = [services.ctx.settings.timezone.key, "UTC"]
    zones += account_timezones(services.ctx, actor, draft.c, draft.a)
    return steps.configure_step(draft, template, list(dict.fromkeys(z for z in zones if z))[:100])


def _review_view(services: Services, actor: Actor, draft: Draft) -> dict:
    source_name = _source_name(services, actor, draft)
    template = template_of(services.ctx, source_name, draft.t or "")
    spec = validate_spec(services.ctx, source_name, _spec(draft), services.ctx.clock.now().date())
    draft = draft.but(f=spec.fields)
    accounts = account_labels(services.ctx, actor, draft.c, draft.a)
    return steps.review_step(draft, template, accounts, services.ctx.source(source_name).title)


def _with_selection(draft: Draft, view: dict) -> Draft:
    """Merge this page's ticks into the selection kept across pages."""
    block = next((b for b in view.get("blocks", []) if str(b.get("block_id", "")).startswith("accounts:")), None)
    if block is None:
        return draft
    on_page = {int(o["value"]) for o in block["element"].get("options", [])}
    ticked = {int(v) for v in (form_values(view).get(block["block_id"]) or [])}
    kept = [a for a in draft.a if a not in on_page]
    return draft.but(a=tuple(kept + sorted(ticked)))


def _with_configuration(draft: Draft, view: dict) -> Draft:
    values = form_values(view)

    def number(key: str, default: int | None) -> int | None:
        try:
            return int(values.get(key)) if values.get(key) not in (None, "") else default
        except (TypeError, ValueError):
            return default

    fields = None
    if "metrics" in values or "dimensions" in values:
        fields = tuple((values.get("dimensions") or []) + (values.get("metrics") or []))
    return draft.but(
        n=(values.get("name") or "").strip() or None,
        h=number("history_days", None),
        s=values.get("load_since") or None,
        sk=values.get("schedule_kind") or draft.sk,
        se=number("schedule_every", draft.se),
        sa=values.get("schedule_at") or draft.sa,
        sw=number("schedule_weekday", draft.sw),
        sd=number("schedule_day", draft.sd),
        tz=values.get("schedule_timezone") or draft.tz,
        f=fields if fields is not None else draft.f,
    )


def _spec(draft: Draft) -> OrderSpec:
    since = None
    if draft.s:
        try:
            since = date.fromisoformat(draft.s)
        except ValueError:
            raise InvalidInput("The date is not valid.", {"load_since": "Pick a date."}) from None
    return OrderSpec(
        account_ids=draft.a, template=draft.t or "", name=draft.n or "", fields=tuple(draft.f or ()),
        schedule={"kind": draft.sk, "every_hours": draft.se, "at": draft.sa, "weekday": draft.sw, "day": draft.sd},
        timezone=draft.tz, history_days=draft.h, load_since=since,
    )


def _on_blocks(bad: InvalidInput, view: dict) -> dict[str, str]:
    """Slack shows errors only on input blocks; anything else goes on the name field."""
    inputs = {b.get("block_id") for b in view["blocks"] if b.get("type") == "input"}
    errors = {k: v for k, v in bad.fields.items() if k in inputs}
    return errors or {"name": bad.message}


def _update(services: Services, view: dict, new_view: dict) -> None:
    try:
        services.client.views_update(view_id=view["id"], hash=view.get("hash"), view=new_view)
    except SlackApiError as error:
        if error.response.get("error") != "hash_conflict":  # a newer update won; it shows the state
            raise


def _first_run(services: Services, actor: Actor, draft: Draft, order_id: int) -> None:
    from engine.extraction import execute_run

    ctx = services.ctx
    try:
        run_id = start_first_run(ctx, actor, order_id)
    except Conflict:
        return
    show_card_after_modal(services, actor, draft.c, "orders", draft.ch, draft.ts)
    execute_run(ctx, actor.team_id, run_id)
    show_card_after_modal(services, actor, draft.c, "orders", draft.ch, draft.ts)
