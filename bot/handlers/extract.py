"""Extract: the four-step extraction order set-up in one modal (Back/Continue with views.update)."""

from __future__ import annotations

import logging
import uuid
from datetime import date

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot.blocks import extract as steps
from bot.blocks.common import notice_modal
from bot.blocks.connections import tombstone
from bot.blocks.extract import ACCOUNTS_PAGE, SEARCH_MAX, ExtractAction
from bot.cards import show_card_after_modal
from bot.errors import guarded
from bot.forms import form_values
from bot.ids import Action, Callback
from bot.routing import CardRef, Draft, draft_fields, search_that_fits, unpack, unpack_draft, with_fields
from bot.services import Services
from bot.surface import Surface
from core.errors import Conflict, ConnbotError, InvalidInput, NotAllowed, NotFound, StaleAction
from engine.executor import Work, carry_out
from operations.auth import Actor
from operations.cards import connection_summary, deleted_connection
from operations.orders import (
    MAX_ACCOUNTS_PER_ORDER,
    InactiveAccounts,
    OrderSpec,
    account_labels,
    account_timezones,
    active_accounts_page,
    check_selection_size,
    create_order,
    creation_refusal,
    open_setup,
    order_fields,
    require_extract_available,
    start_first_run,
    still_active,
    template_of,
    templates_of,
    validate_spec,
)
from sources.base import ExtractionTemplate

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
            c=ref.c,
            k=uuid.uuid4().hex,
            ch=surface.channel_id,
            ts=surface.ts if surface.kind == "message" else None,
            tz=ctx.settings.timezone.key,
        )
        services.client_for(surface.team_id).views_open(
            trigger_id=body["trigger_id"], view=steps.accounts_step(draft, total, page, MAX_ACCOUNTS_PER_ORDER)
        )

    @app.action(ExtractAction.SEARCH)
    @app.action(ExtractAction.PREV)
    @app.action(ExtractAction.NEXT)
    @guard
    def page_accounts(ack: Ack, body: dict, action: dict) -> None:
        ack()
        view = body["view"]
        draft = _with_selection(unpack_draft(view.get("private_metadata")), view)
        if action["action_id"] == ExtractAction.SEARCH:
            draft = search_that_fits(draft.but(q=(action.get("value") or "").strip()[:SEARCH_MAX] or None, p=0))
        else:
            draft = draft.but(p=max(0, draft.p + (1 if action["action_id"] == ExtractAction.NEXT else -1)))
        _update(services, view, _accounts_view(services, actor_of(body), draft))

    @app.view_submission(Callback.EXTRACT_ACCOUNTS)
    @guard
    def accounts_chosen(ack: Ack, body: dict, view: dict) -> None:
        draft = _with_selection(unpack_draft(view.get("private_metadata")), view)
        try:
            check_selection_size(draft.a)
        except InvalidInput as bad:
            block = next(
                (b["block_id"] for b in view["blocks"] if b["block_id"].startswith("accounts:")), "accounts_search"
            )
            ack(response_action="errors", errors={block: bad.fields["accounts"]})
            return
        # The search is needed on this step only; dropping it keeps the draft within private_metadata.
        ack(response_action="update", view=_template_view(services, actor_of(body), draft.but(q=None, p=0)))

    @app.view_submission(Callback.EXTRACT_TEMPLATE)
    @guard
    def template_chosen(ack: Ack, body: dict, view: dict) -> None:
        draft = unpack_draft(view.get("private_metadata"))
        name = form_values(view).get("template")
        actor = actor_of(body)
        source = _source_name(services, actor, draft)
        try:
            template = template_of(ctx, source, draft.c, name or "")
        except InvalidInput as bad:
            ack(response_action="errors", errors=bad.fields)
            return
        if template.name != draft.t:  # a new template: its own defaults
            draft = draft.but(
                t=template.name,
                f=None,
                fm=None,
                kf=None,
                n=f"{template.title} · {len(draft.a)} account{'s' if len(draft.a) != 1 else ''}",
            )
        ack(response_action="update", view=_configure_view(services, actor, draft))

    @app.view_submission(Callback.EXTRACT_CONFIGURE)
    @guard
    def configured(ack: Ack, body: dict, view: dict) -> None:
        actor = actor_of(body)
        draft = unpack_draft(view.get("private_metadata"))
        source = _source_name(services, actor, draft)
        try:
            template = template_of(ctx, source, draft.c, draft.t or "")
            draft = _with_configuration(draft, view, template)
            validate_spec(ctx, source, draft.c, _spec(draft, template), ctx.clock.now().date())
        except InvalidInput as bad:
            errors = _on_blocks(bad, view)
            if errors:
                ack(response_action="errors", errors=errors)
            else:  # a choice of an earlier step: say so over this form, what was typed kept
                ack(
                    response_action="update",
                    view=_configure_view(services, actor, draft, f"{_what_to_fix(bad)} Go Back to change it."),
                )
            return
        ack(response_action="update", view=_review_view(services, actor, draft))

    @app.view_submission(Callback.EXTRACT_REVIEW)
    @guard
    def create(ack: Ack, body: dict, view: dict) -> None:
        actor = actor_of(body)
        draft = unpack_draft(view.get("private_metadata"))
        # A refusal updates the review in place, rebuilt from the state now, so that it offers
        # Create only if Create can work (a notice pushed over it would go Back to a stale Create).
        try:
            spec = _spec(draft, template_of(ctx, _source_name(services, actor, draft), draft.c, draft.t or ""))
            order_id, is_new = create_order(ctx, actor, draft.c, spec, idempotency_key=draft.k)
        except InactiveAccounts as gone:  # e.g. the daily account sync ran since step 1
            draft, taken_out = _without(services, actor, draft, gone.account_ids)
            then = " Press Create again to create it with the other accounts." if draft.a else ""
            ack(response_action="update", view=_review_view(services, actor, draft, f"Not created: {taken_out}{then}"))
            return
        except (InvalidInput, StaleAction, NotAllowed):  # the rebuilt review says why and what to do
            ack(response_action="update", view=_review_view(services, actor, draft, "Not created."))
            return
        except NotFound:
            deleted = deleted_connection(ctx, actor, draft.c)
            if deleted is None:
                raise
            ack(response_action="update", view=notice_modal(steps.TITLE, tombstone(deleted)))
            return
        if not is_new:  # a double submit: the first one created it
            ack(
                response_action="update",
                view=steps.created(draft.n or "", "It was already created by your first click."),
            )
            return
        where = (
            "the card in the channel shows its progress"
            if draft.ts
            else "a fresh card will show its result when it finishes"
        )
        ack(
            response_action="update",
            view=steps.created(draft.n or "", f"Its first run (the historical backfill) is starting now; {where}."),
        )
        services.background(_first_run, services, actor, draft, order_id)

    @app.options(ExtractAction.STREAMS)
    def stream_options(ack: Ack, body: dict) -> None:
        def options(draft: Draft, actor: Actor) -> list[dict]:
            return steps.stream_options(
                templates_of(ctx, _source_name(services, actor, draft), draft.c), body.get("value") or ""
            )

        ack(options=_suggested(body, options))

    @app.options(ExtractAction.FIELDS)
    def field_options(ack: Ack, body: dict) -> None:
        def options(draft: Draft, actor: Actor) -> list[dict]:
            template = template_of(ctx, _source_name(services, actor, draft), draft.c, draft.t or "")
            return steps.field_options(template, body.get("block_id") or "", body.get("value") or "")

        ack(options=_suggested(body, options))

    def _suggested(body: dict, options) -> list[dict]:
        """The options for a picker of the modal in `body`; none when they cannot be read (the
        picker shows nothing, and Continue says what is wrong)."""
        try:
            return options(unpack_draft((body.get("view") or {}).get("private_metadata")), actor_of(body))
        except ConnbotError as refused:
            log.info("no options for an Extract picker: %s", refused.message)
        except Exception:  # the picker shows nothing; the person can type again
            log.exception("could not list the options of an Extract picker")
        return []

    @app.action(ExtractAction.BACK)
    @guard
    def back(ack: Ack, body: dict, action: dict) -> None:
        ack()
        view = body["view"]
        actor = actor_of(body)
        draft = unpack_draft(view.get("private_metadata"))
        step = int(action.get("value") or 2)
        if step == 3:  # remember what was typed, unless the stream is gone (step 2 says so)
            try:
                template = template_of(ctx, _source_name(services, actor, draft), draft.c, draft.t or "")
            except InvalidInput:
                pass
            else:
                draft = _with_configuration(draft, view, template)
        target = {
            2: lambda: _accounts_view(services, actor, draft),
            3: lambda: _template_view(services, actor, draft),
            4: lambda: _configure_view(services, actor, draft),
        }[step]
        _update(services, view, target())


def _source_name(services: Services, actor: Actor, draft: Draft) -> str:
    return require_extract_available(services.ctx, actor, draft.c).source


def _accounts_view(services: Services, actor: Actor, draft: Draft, notice: str | None = None) -> dict:
    # Inactive accounts are never on a page, so they could not be unticked: take them out now.
    active = set(still_active(services.ctx, actor, draft.c, draft.a))
    if len(active) != len(draft.a):
        draft, notice = _without(services, actor, draft, [a for a in draft.a if a not in active])
    total, page = active_accounts_page(
        services.ctx, actor, draft.c, offset=draft.p * ACCOUNTS_PAGE, limit=ACCOUNTS_PAGE, search=draft.q
    )
    if page == [] and draft.p > 0 and total:  # the list shrank under us
        draft = draft.but(p=(total - 1) // ACCOUNTS_PAGE)
        return _accounts_view(services, actor, draft, notice)
    return steps.accounts_step(draft, total, page, MAX_ACCOUNTS_PER_ORDER, notice)


def _without(services: Services, actor: Actor, draft: Draft, inactive) -> tuple[Draft, str]:
    """The draft without accounts no longer active, and a sentence naming them."""
    said = steps.taken_out(account_labels(services.ctx, actor, draft.c, inactive))
    gone = set(inactive)
    return draft.but(a=tuple(a for a in draft.a if a not in gone)), said


def _template_view(services: Services, actor: Actor, draft: Draft) -> dict:
    return steps.template_step(draft, templates_of(services.ctx, _source_name(services, actor, draft), draft.c))


def _configure_view(services: Services, actor: Actor, draft: Draft, notice: str | None = None) -> dict:
    source = _source_name(services, actor, draft)
    template = template_of(services.ctx, source, draft.c, draft.t or "")
    zones = [services.ctx.settings.timezone.key, "UTC"]
    zones += account_timezones(services.ctx, actor, draft.c, draft.a)
    return steps.configure_step(draft, template, list(dict.fromkeys(z for z in zones if z))[:100], notice)


def _review_view(services: Services, actor: Actor, draft: Draft, notice: str | None = None) -> dict:
    """What Create will save, built from the state now: Create is offered only when it would
    create the order; else the step says why and what to do. `notice`: the last Create's outcome."""
    ctx = services.ctx
    summary = connection_summary(ctx, actor, draft.c)
    template = template_of(ctx, summary.source, draft.c, draft.t or "")
    offered = [f.name for f in template.fields]
    draft = with_fields(draft, order_fields(template, draft_fields(draft, offered) or (), draft.kf or ()), offered)
    try:
        refusal = creation_refusal(ctx, actor, draft.c, _spec(draft, template))
    except InvalidInput as bad:  # a date that is not one
        refusal = bad
    if refusal is not None:
        notice = " ".join(filter(None, [notice, _cannot_create(refusal)]))
    accounts = account_labels(ctx, actor, draft.c, draft.a)
    return steps.review_step(draft, template, accounts, summary.source_title, notice, can_create=refusal is None)


def _cannot_create(refusal: ConnbotError) -> str:
    if isinstance(refusal, InvalidInput):  # a choice of an earlier step
        return f"{_what_to_fix(refusal)} Go Back to change it."
    return f"{refusal.message} Create is not offered until that changes."


def _with_selection(draft: Draft, view: dict) -> Draft:
    """Merge this page's ticks into the selection kept across pages."""
    block = next((b for b in view.get("blocks", []) if str(b.get("block_id", "")).startswith("accounts:")), None)
    if block is None:
        return draft
    on_page = {int(o["value"]) for o in block["element"].get("options", [])}
    ticked = {int(v) for v in (form_values(view).get(block["block_id"]) or [])}
    kept = [a for a in draft.a if a not in on_page]
    return draft.but(a=tuple(kept + sorted(ticked)))


def _with_configuration(draft: Draft, view: dict, template: ExtractionTemplate) -> Draft:
    values = form_values(view)

    def number(key: str, default: int | None) -> int | None:
        raw = values.get(key)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except (TypeError, ValueError):
            return default

    key_fields = tuple(values.get(steps.KEY_FIELDS) or ()) if steps.KEY_FIELDS in values else draft.kf
    draft = draft.but(
        kf=key_fields or None,
        n=(values.get("name") or "").strip() or None,
        h=number("history_days", None),
        s=values.get("load_since") or None,
        sk=values.get("schedule_kind") or draft.sk,
        se=number("schedule_every", draft.se),
        sa=values.get("schedule_at") or draft.sa,
        sw=number("schedule_weekday", draft.sw),
        sd=number("schedule_day", draft.sd),
        tz=values.get("schedule_timezone") or draft.tz,
    )
    if steps.METRICS in values or steps.DIMENSIONS in values:  # last: how they are carried depends on the rest
        chosen = (values.get(steps.DIMENSIONS) or []) + (values.get(steps.METRICS) or [])
        draft = with_fields(draft, chosen, [f.name for f in template.fields])
    return draft


def _spec(draft: Draft, template: ExtractionTemplate) -> OrderSpec:
    since = None
    if draft.s:
        try:
            since = date.fromisoformat(draft.s)
        except ValueError:
            raise InvalidInput("The date is not valid.", {"load_since": "Pick a date."}) from None
    return OrderSpec(
        account_ids=draft.a,
        template=draft.t or "",
        name=draft.n or "",
        fields=draft_fields(draft, [f.name for f in template.fields]) or (),
        schedule={"kind": draft.sk, "every_hours": draft.se, "at": draft.sa, "weekday": draft.sw, "day": draft.sd},
        timezone=draft.tz,
        history_days=draft.h,
        load_since=since,
        key_fields=tuple(draft.kf or ()),
    )


def _on_blocks(bad: InvalidInput, view: dict) -> dict[str, str]:
    """The errors Slack can show on this form's input blocks (none: the problem is on another step)."""
    inputs = {b.get("block_id") for b in view["blocks"] if b.get("type") == "input"}
    return {k: v for k, v in bad.fields.items() if k in inputs}


def _what_to_fix(bad: InvalidInput) -> str:
    """A refusal in words, for a step without the field: the field texts say what to do."""
    return " ".join(dict.fromkeys(bad.fields.values())) or bad.message


def _update(services: Services, view: dict, new_view: dict) -> None:
    try:
        # A view of Slack's names its workspace.
        services.client_for(view["team_id"]).views_update(view_id=view["id"], hash=view.get("hash"), view=new_view)
    except SlackApiError as error:
        if error.response.get("error") != "hash_conflict":  # a newer update won; it shows the state
            raise


def _first_run(services: Services, actor: Actor, draft: Draft, order_id: int) -> None:
    ctx = services.ctx
    try:
        run_id = start_first_run(ctx, actor, order_id)
    except Conflict:
        return
    # One card, never left saying "running". A channel copy is chat.update'd now and again when the
    # run ends. An ephemeral card can only be replaced through its response_url, which is not ours to
    # carry (a capability, not an id) and expires after 30 minutes, often before a backfill ends: so
    # its user gets one fresh card when the run has finished, and no "running" card that could stick.
    if draft.ts:
        show_card_after_modal(services, actor, draft.c, "orders", draft.ch, draft.ts)
    carry_out(  # inline: here; queued: the card comes when a worker has finished it
        ctx,
        Work("run", actor.team_id, run_id, order_id),
        then=lambda: show_card_after_modal(services, actor, draft.c, "orders", draft.ch, draft.ts),
    )
