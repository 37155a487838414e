"""Make a new connection, Re-connect, Delete connection.

Modal flow (as Dispatch does it): validate in the 3-second window and answer field errors
inline; otherwise ack with a "Checking credentials…" view, do the slow check in the background,
then update the view with the result.

Where a source's OAuth sign-in is set up, the forms also offer "Sign in with …": a URL button
whose attempt is recorded when the form is rendered (`operations.oauth`). The browser comes
back to `connbot/oauth.py`, which hands the credentials to `finish_sign_in`, so they take the
same path as pasted ones.

A source configured by a JSON Schema (`config_spec`, an Airbyte connector's spec) has its own
form and reader (`bot.blocks.spec_form`): the functions below branch on "spec source vs field
source" and otherwise share the flow, the check and the operations.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass, replace
from typing import Any, TypedDict

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot.blocks import connect as forms
from bot.blocks import spec_form
from bot.blocks.alerts import ALERT_BLOCK_PREFIX
from bot.blocks.common import escape
from bot.cards import card_message, publish_home, refresh_card, replace_card_after_modal, show_card_after_modal
from bot.errors import guarded, user_message
from bot.forms import form_values
from bot.ids import Action, Callback
from bot.roles import person
from bot.routing import CardRef, pack, unpack
from bot.services import Services
from bot.surface import Surface
from core.errors import Conflict, InvalidInput, StaleAction
from engine.account_sync import start_sync
from engine.executor import Work, carry_out
from operations.auth import Actor, Role, authorize
from operations.connections import (
    CONFIRM_BUSINESS_FIELD,
    CONFIRM_NO_ACCOUNTS_FIELD,
    connection_setup,
    credentials_from_form,
    delete_connection,
    make_connection,
    parse_sync_mode,
    reconnect,
    same_business_account,
)
from operations.oauth import Offer, Purpose, SignIn, attach_view, note_choice, offer_sign_in
from sources.config import config_credentials, config_spec, credentials_config, credentials_title, without_secrets
from storage.models import SyncMode

log = logging.getLogger(__name__)

# A check that answers within this time is shown in the ack itself (errors inline).
QUICK_CHECK_SECONDS = 1.5
# After acking "Checking…", give Slack this long to show it before updating the view.
ACK_SETTLE_SECONDS = 1.0


@dataclass(frozen=True)
class FormMeta:
    """Routing for the credentials modal: ids only."""

    s: str  # source name
    c: int | None = None  # connection id, for Re-connect
    ch: str | None = None  # channel of the card to refresh
    ts: str | None = None  # ts of the card, when it is a channel message
    e: bool | None = None  # the card is an ephemeral message (replaced through its response_url)
    n: bool | None = None  # Re-connect: saving a login that sees no accounts was confirmed


class _Choice(TypedDict, total=False):
    """One choice made in a form with a sign-in button (operations.oauth.note_choice)."""

    sync_mode: SyncMode
    confirm_business: bool
    slack_meta: str


def register(app: App, services: Services) -> None:
    guard = guarded(services)

    @app.action(Action.NEW_CONNECTION)
    @guard
    def new_from_home(ack: Ack, body: dict) -> None:
        ack()
        open_new_connection(services, body["trigger_id"], Surface.of(body).team_id, body["user"]["id"])

    @app.options(Action.SOURCE_OPTIONS)
    def source_options(ack: Ack, body: dict) -> None:
        actor = services.roles.actor(Surface.of(body).team_id, body["user"]["id"])
        if actor.role < Role.ADMIN:  # the picker is an admin's; nothing for anyone else
            ack(options=[])
            return
        sources = [(n, s.title) for n, s in services.ctx.sources().items()]
        ack(options=forms.source_options(sources, body.get("value") or ""))

    @app.view_submission(Callback.NEW_CONNECTION_SOURCE)
    @guard
    def chose_source(ack: Ack, body: dict, view: dict) -> None:
        name = form_values(view).get(forms.SOURCE_BLOCK)
        sources = services.ctx.sources()
        if not isinstance(name, str) or name not in sources:
            ack(response_action="errors", errors={forms.SOURCE_BLOCK: "Choose a data source from the list."})
            return
        meta = FormMeta(s=name)
        offer = _offer(services, Surface.of(body).team_id, body["user"]["id"], meta, view["id"])
        ack(response_action="update", view=_new_form(services, meta, offer))

    @app.view_submission(Callback.NEW_CONNECTION_CREDENTIALS)
    @guard
    def submit_new(ack: Ack, body: dict, view: dict) -> None:
        meta = unpack(FormMeta, view.get("private_metadata"))
        values, mode = _read_form(services, meta, view, ack)
        if values is None:
            return
        actor = services.roles.actor(Surface.of(body).team_id, body["user"]["id"])
        working = forms.working("New connection", "Checking credentials…")
        submit_with_check(
            services,
            ack,
            actor,
            view["id"],
            working,
            lambda: _finish_new(services, actor, meta, values, mode, view["id"]),
        )

    @app.action(Action.RECONNECT)
    @guard
    def open_reconnect(ack: Ack, body: dict, action: dict) -> None:
        ack()
        ref = unpack(CardRef, action.get("value"))
        surface = Surface.of(body)
        actor = services.roles.actor(surface.team_id, surface.user_id)
        authorize(services.ctx, actor, Role.ADMIN, "re-connect a connection", ref.c)
        setup = connection_setup(services.ctx, actor, ref.c)
        source, mode, hint = setup.source, setup.account_sync_mode, setup.credentials_hint
        # A card in a channel is refreshed in place afterwards; an alert is not a card: the alert
        # poster marks it resolved, and a card written over it would hide that.
        is_alert = action.get("block_id", "").startswith(ALERT_BLOCK_PREFIX)
        is_card = surface.kind == "message" and not is_alert
        ephemeral = surface.kind == "ephemeral" and not is_alert
        meta = FormMeta(
            s=source, c=ref.c, ch=surface.channel_id, ts=surface.ts if is_card else None, e=ephemeral or None
        )
        offer = _offer(services, actor.team_id, person(actor), meta, None, mode)
        opened = services.client_for(actor.team_id).views_open(
            trigger_id=body["trigger_id"], view=_reconnect_form(services, meta, mode, hint, offer, values=setup.prefill)
        )
        _attach(services, offer, opened)
        if ephemeral:  # replaced in place afterwards, through its response_url
            services.cards_behind_modals.keep((opened.get("view") or {}).get("id"), surface)

    @app.view_submission(Callback.RECONNECT)
    @guard
    def submit_reconnect(ack: Ack, body: dict, view: dict) -> None:
        meta = unpack(FormMeta, view.get("private_metadata"))
        values, mode = _read_form(services, meta, view, ack)
        if values is None:
            return
        ticked = form_values(view)
        confirmed = "yes" in (ticked.get(forms.CONFIRM_BUSINESS_BLOCK) or [])
        meta = replace(meta, n="yes" in (ticked.get(forms.CONFIRM_NO_ACCOUNTS_BLOCK) or []) or None)
        actor = services.roles.actor(Surface.of(body).team_id, body["user"]["id"])
        working = forms.working("Re-connect", "Checking the new credentials…")
        submit_with_check(
            services,
            ack,
            actor,
            view["id"],
            working,
            lambda: _finish_reconnect(services, actor, meta, values, mode, confirmed, view["id"]),
        )

    @app.action(Action.SIGN_IN)
    @guard
    def sign_in_clicked(ack: Ack, body: dict) -> None:
        ack()  # the browser follows the URL; nothing to do here

    @app.action({"block_id": forms.SYNC_MODE_BLOCK, "action_id": forms.VALUE})
    @app.action({"block_id": forms.CONFIRM_BUSINESS_BLOCK, "action_id": forms.VALUE})
    @app.action({"block_id": forms.CONFIRM_NO_ACCOUNTS_BLOCK, "action_id": forms.VALUE})
    @guard
    def choice_made(ack: Ack, body: dict, action: dict) -> None:
        ack()  # sent only by forms with a sign-in button, for the sign-in to come
        ticked = any(o.get("value") == "yes" for o in action.get("selected_options") or ())
        choice: _Choice
        if action["block_id"] == forms.SYNC_MODE_BLOCK:
            choice = {"sync_mode": parse_sync_mode((action.get("selected_option") or {}).get("value"))}
        elif action["block_id"] == forms.CONFIRM_BUSINESS_BLOCK:
            choice = {"confirm_business": ticked}
        else:  # kept with the form's routing, which the sign-in brings back
            meta = unpack(FormMeta, body["view"].get("private_metadata"))
            choice = {"slack_meta": pack(replace(meta, n=ticked or None))}
        note_choice(services.ctx, Surface.of(body).team_id, body["user"]["id"], body["view"]["id"], **choice)

    @app.action(Action.SPEC_BRANCH)
    @guard
    def option_chosen(ack: Ack, body: dict) -> None:
        ack()
        surface = Surface.of(body)
        _redraw_spec_form(services, services.roles.actor(surface.team_id, surface.user_id), body["view"])

    @app.action(Action.DELETE)
    @guard
    def delete(ack: Ack, body: dict, action: dict) -> None:
        ack()
        ref = unpack(CardRef, action.get("value"))
        surface = Surface.of(body)
        actor = services.roles.actor(surface.team_id, surface.user_id)
        try:
            delete_connection(services.ctx, actor, ref.c)
        except Conflict as already:
            surface.tell(services.client_for(surface.team_id), already.message)
        refresh_card(services, surface, actor, ref.c, "orders")  # the tombstone
        publish_home(services, actor)


def open_new_connection(services: Services, trigger_id: str, team_id: str, user_id: str) -> None:
    actor = services.roles.actor(team_id, user_id)
    actor.require(Role.ADMIN, "make a new connection")
    sources = services.ctx.sources()
    if len(sources) == 1:
        meta = FormMeta(s=next(iter(sources)))
        offer = _offer(services, team_id, user_id, meta, None)
        opened = services.client_for(team_id).views_open(trigger_id=trigger_id, view=_new_form(services, meta, offer))
        _attach(services, offer, opened)
    else:
        view = forms.source_picker(Callback.NEW_CONNECTION_SOURCE, [(n, s.title) for n, s in sources.items()])
        services.client_for(team_id).views_open(trigger_id=trigger_id, view=view)


def _offer(
    services: Services, team_id: str, user_id: str, meta: FormMeta, view_id: str | None, mode: str = "all"
) -> Offer | None:
    """Records the sign-in attempt of a form about to be shown, if the source has sign-in."""
    return offer_sign_in(
        services.ctx,
        team_id=team_id,
        user_id=user_id,
        source=meta.s,
        purpose=Purpose.RECONNECT if meta.c else Purpose.NEW,
        connection_id=meta.c,
        view_id=view_id,
        sync_mode=mode,
        slack_meta=pack(meta),
    )


def _attach(services: Services, offer: Offer | None, opened) -> None:
    if offer:
        attach_view(services.ctx, offer.id, opened["view"]["id"])


def _new_form(services: Services, meta: FormMeta, offer: Offer | None, **kw) -> dict:
    source = services.ctx.source(meta.s)
    spec = config_spec(source)
    if spec is not None:
        return _spec_form(services, meta, spec, "New connection", Callback.NEW_CONNECTION_CREDENTIALS, **kw)
    return forms.credentials_form(
        title="New connection",
        callback_id=Callback.NEW_CONNECTION_CREDENTIALS,
        source_title=source.title,
        fields=source.credential_fields,
        metadata=pack(meta),
        sign_in=(offer.button, offer.url) if offer else None,
        **kw,
    )


def _reconnect_form(services: Services, meta: FormMeta, mode: str, hint: dict, offer: Offer | None, **kw) -> dict:
    source = services.ctx.source(meta.s)
    spec = config_spec(source)
    if spec is not None:
        return _spec_form(
            services,
            meta,
            spec,
            "Re-connect",
            Callback.RECONNECT,
            sync_mode=mode,
            in_use=hint,
            confirm_business=True,
            **kw,
        )
    labels = {f.name: f.label for f in source.credential_fields}
    return forms.credentials_form(
        title="Re-connect",
        callback_id=Callback.RECONNECT,
        source_title=source.title,
        fields=source.credential_fields,
        metadata=pack(meta),
        sync_mode=mode,
        in_use=tuple((labels.get(k, k), v) for k, v in sorted(hint.items())),
        confirm_business=True,
        sign_in=(offer.button, offer.url) if offer else None,
        **kw,
    )


def _read_form(services: Services, meta: FormMeta, view: dict, ack: Ack):
    """Fields checked in the 3-second window; errors answered inline. (None, None) when refused."""
    values = form_values(view)
    source = services.ctx.source(meta.s)
    spec = config_spec(source)
    if spec is not None:
        return _read_spec_form(meta, spec, view, ack)
    try:
        credentials_from_form(source, values)
        mode = parse_sync_mode(values.get(forms.SYNC_MODE_BLOCK))
    except InvalidInput as bad:
        ack(response_action="errors", errors=bad.fields or {source.credential_fields[0].name: bad.message})
        return None, None
    return {f.name: values.get(f.name) for f in source.credential_fields}, mode.value


def _non_secret(services: Services, meta: FormMeta, values: dict) -> dict:
    spec = config_spec(services.ctx.source(meta.s))
    if spec is not None:
        config = without_secrets(spec, credentials_config(values))
        return config_credentials(config, credentials_title(values)).to_dict()
    secret = {f.name for f in services.ctx.source(meta.s).credential_fields if f.secret}
    return {k: v for k, v in values.items() if k not in secret and v}


# -- sources configured by a JSON Schema ---------------------------------------------------------


def _spec_form(
    services: Services,
    meta: FormMeta,
    spec: dict[str, Any],
    title: str,
    callback_id: str,
    *,
    values: dict | None = None,
    **kw,
) -> dict:
    """The form built from the source's spec; `values` (the sources.config Credentials shape)
    fill it in: the configuration in use, or what was typed."""
    source = services.ctx.source(meta.s)
    values = values or {}
    return spec_form.spec_form(
        title=title,
        callback_id=callback_id,
        source_title=source.title,
        spec=spec,
        metadata=pack(meta),
        config=credentials_config(values) if values else None,
        name=credentials_title(values),
        **kw,
    )


def _read_spec_form(meta: FormMeta, spec: dict[str, Any], view: dict, ack: Ack):
    """The configuration typed, validated against the spec in the 3-second window; errors inline.
    A secret left empty on Re-connect keeps the one in use (the operation puts it back)."""
    values = form_values(view)
    reading = spec_form.read_spec_form(spec, values, keep_secrets=meta.c is not None)
    errors = dict(reading.errors)
    try:
        mode = parse_sync_mode(values.get(forms.SYNC_MODE_BLOCK))
    except InvalidInput as bad:
        errors.update(bad.fields)
    if errors:
        inputs = [b.get("block_id") for b in view["blocks"] if b.get("type") == "input"]
        ack(response_action="errors", errors=spec_form.errors_on_view(errors, inputs))
        return None, None
    return config_credentials(reading.config, reading.name).to_dict(), mode.value


def _redraw_spec_form(services: Services, actor: Actor, view: dict) -> None:
    """A oneOf option was chosen: the form again with that option's fields, what was typed kept
    (Slack keeps typed secrets in inputs whose block ids stay; they are never sent back)."""
    meta = unpack(FormMeta, view.get("private_metadata"))
    values = form_values(view)
    spec = config_spec(services.ctx.source(meta.s))
    if spec is None:  # the source changed since the form was drawn
        raise StaleAction("This form no longer matches its data source. Close it and start again.")
    reading = spec_form.read_spec_form(spec, values)
    typed = config_credentials(without_secrets(spec, reading.config), reading.name).to_dict()
    try:
        mode = parse_sync_mode(values.get(forms.SYNC_MODE_BLOCK)).value
    except InvalidInput:
        mode = "all"
    if meta.c is None:
        actor.require(Role.ADMIN, "make a new connection")
        form = _new_form(services, meta, None, values=typed, sync_mode=mode, choices=reading.choices)
    else:
        authorize(services.ctx, actor, Role.ADMIN, "re-connect a connection", meta.c)
        hint = connection_setup(services.ctx, actor, meta.c).credentials_hint
        form = _reconnect_form(services, meta, mode, hint, None, values=typed, choices=reading.choices)
    try:
        services.client_for(actor.team_id).views_update(view_id=view["id"], hash=view.get("hash"), view=form)
    except SlackApiError as error:
        if error.response.get("error") != "hash_conflict":  # a newer choice won; it shows its own fields
            raise


@dataclass(frozen=True)
class Outcome:
    """What a credentials check led to: the view to show, inline errors, and work to do after."""

    view: dict
    errors: dict[str, str] | None = None  # by input block id, for response_action errors
    after: Callable[[], None] | None = None
    ok: bool = True
    message: str = ""  # the result in plain words, for a sign-in's page and DM


def submit_with_check(
    services: Services, ack: Ack, actor: Actor, view_id: str, working: dict, check: Callable[[], Outcome]
) -> None:
    """Answer within Slack's 3 s: the result itself when the check is quick (errors inline on
    their fields), else "Checking…" at once and the result by views.update when it is done."""
    started = time.monotonic()
    future = services.executor.submit(check)
    try:
        outcome = future.result(timeout=QUICK_CHECK_SECONDS)
    except FuturesTimeout:
        ack(response_action="update", view=working)
        acked = time.monotonic()
        future.add_done_callback(lambda done: _show_late(services, actor, view_id, done, acked))
        return
    except Exception as error:  # the check itself failed: say so in the modal
        ack(response_action="update", view=forms.done(working["title"]["text"], user_message(error)))
        return
    if outcome.errors:
        ack(response_action="errors", errors=outcome.errors)
    else:
        ack(response_action="update", view=outcome.view)
    if outcome.after:
        services.background(outcome.after)
    log.debug("credentials check answered in %.2fs", time.monotonic() - started)


def _show_late(services: Services, actor: Actor, view_id: str, done: Future, acked: float) -> None:
    try:
        outcome = done.result()
    except Exception as error:
        message = user_message(error)
        outcome = Outcome(forms.done("connbot", message), ok=False, message=message)
    # Slack applies our ack's "Checking…" view when it reads the response; an update that
    # overtook it would be overwritten, so let the ack land first.
    time.sleep(max(0.0, ACK_SETTLE_SECONDS - (time.monotonic() - acked)))
    show_outcome(services, actor, view_id, outcome)
    if outcome.after:
        outcome.after()


def _inline(errors: dict[str, str], view: dict) -> dict[str, str] | None:
    """Errors Slack can show on input blocks; None when one has no input block to sit on."""
    inputs = {b.get("block_id") for b in view["blocks"] if b.get("type") == "input"}
    return errors if errors and set(errors) <= inputs else None


def _form_again(
    services: Services, actor: Actor, meta: FormMeta, mode: str, view_id: str | None, errors: dict, values: dict
) -> dict:
    """The form once more, with the errors, what was typed (never secrets) and a fresh sign-in."""
    offer = _offer(services, actor.team_id, person(actor), meta, view_id, mode)
    if meta.c is None:
        return _new_form(services, meta, offer, errors=errors, values=values, sync_mode=mode)
    hint = connection_setup(services.ctx, actor, meta.c).credentials_hint
    return _reconnect_form(services, meta, mode, hint, offer, errors=errors, values=values)


def _finish_new(
    services: Services, actor: Actor, meta: FormMeta, values: dict, mode: str, view_id: str | None
) -> Outcome:
    try:
        connection_id = make_connection(services.ctx, actor, meta.s, values, mode, idempotency_key=view_id)
    except Conflict as made:  # the same submission, delivered twice: the first one made it
        return Outcome(forms.done("New connection", made.message), message=made.message)
    except InvalidInput as bad:
        errors = bad.fields or {"": bad.message}
        form = _form_again(services, actor, meta, mode, view_id, errors, _non_secret(services, meta, values))
        return Outcome(form, _inline(errors, form), ok=False, message=bad.message)
    blocks, text = card_message(services, actor, connection_id)

    def after() -> None:
        client = services.client_for(actor.team_id)
        try:
            posted = client.chat_postMessage(channel=person(actor), text=text, blocks=blocks)
        except SlackApiError as error:
            posted = None
            log.warning("could not send the new card: %s", error.response.get("error"))

        def shown() -> None:
            if posted is not None:  # the card as the first sync left it: accounts, Extract available
                show_card_after_modal(services, actor, connection_id, "orders", posted["channel"], posted["ts"])
            publish_home(services, actor)

        _first_sync(services, actor, connection_id, "connect", then=shown)

    # The title itself, not the card's escaped fallback text: this goes into plain text.
    connected = connection_setup(services.ctx, actor, connection_id).title + " is connected."
    note = "Reading its accounts now; the card is in your messages with connbot." + _twins_note(
        services, actor, connection_id
    )
    done = forms.done("New connection", connected, note)
    return Outcome(done, after=after, message=connected)


def _first_sync(services: Services, actor: Actor, connection_id: int, trigger: str, *, then) -> None:
    """The sync after a connect or re-connect; `then` shows its outcome, even when it cannot start.
    Inline it runs here; queued, `then` comes when a worker has finished it."""
    try:
        run_id = start_sync(services.ctx, actor.team_id, connection_id, trigger=trigger, user_id=actor.user_id)
    except BaseException:
        then()
        raise
    carry_out(services.ctx, Work("sync", actor.team_id, run_id, connection_id), then=then)


def _twins_note(services: Services, actor: Actor, connection_id: int) -> str:
    """Other connections reading the same business account: allowed, but to be made knowingly."""
    return forms.twins_note(same_business_account(services.ctx, actor, connection_id))


def _finish_reconnect(
    services: Services, actor: Actor, meta: FormMeta, values: dict, mode: str, confirmed: bool, view_id: str | None
) -> Outcome:
    connection_id = meta.c
    if connection_id is None:  # Re-connect's forms are drawn for a connection
        raise ValueError("a Re-connect form that names no connection")
    try:
        result = reconnect(
            services.ctx,
            actor,
            connection_id,
            values,
            mode,
            confirm_business_change=confirmed,
            confirm_no_accounts=bool(meta.n),
        )
    except InvalidInput as bad:
        errors = bad.fields or {"": bad.message}
        confirmations = {
            CONFIRM_BUSINESS_FIELD: forms.CONFIRM_BUSINESS_BLOCK,
            CONFIRM_NO_ACCOUNTS_FIELD: forms.CONFIRM_NO_ACCOUNTS_BLOCK,
        }
        if set(errors) & set(confirmations):  # asked on their checkboxes
            errors = {confirmations[k]: v for k, v in errors.items() if k in confirmations}
        form = _form_again(services, actor, meta, mode, view_id, errors, _non_secret(services, meta, values))
        # The no-accounts checkbox is new to the form: it is shown by an update, not inline.
        inline = None if forms.CONFIRM_NO_ACCOUNTS_BLOCK in errors else _inline(errors, form)
        return Outcome(form, inline, ok=False, message=bad.message)

    card = services.cards_behind_modals.take(view_id)  # the ephemeral card Re-connect was pressed on

    def after() -> None:
        # The card is updated now (a channel copy, or the ephemeral card in place) and again after
        # the sync; an ephemeral card that can no longer be replaced is posted anew, said so.
        if meta.ts:
            show_card_after_modal(services, actor, connection_id, "settings", meta.ch, meta.ts)
        elif card is not None:
            blocks, text = card_message(services, actor, connection_id, "settings")
            card.replace(services.client_for(actor.team_id), blocks, text)
        try:
            # Shown when the sync has finished (inline here, queued when a worker has run it).
            _first_sync(
                services,
                actor,
                connection_id,
                "reconnect",
                then=lambda: replace_card_after_modal(
                    services,
                    actor,
                    connection_id,
                    "settings",
                    card,
                    meta.ch,
                    meta.ts,
                    action="Re-connect",
                    from_ephemeral=bool(meta.e),
                ),
            )
        except Conflict:
            pass  # a sync already running or queued reads the new credentials' accounts soon enough

    note = "The business account changed as you confirmed. " if result.business_account_changed else ""
    if result.sees_no_accounts:
        note += "As you confirmed, this login sees no accounts: the connection has none to extract until it does. "
    note += "Reading its accounts now; the card shows them when that is done."
    if result.business_account_changed:
        note += _twins_note(services, actor, connection_id)
    reconnected = "Re-connected: the new credentials work and are in use."
    if result.sees_no_accounts:
        reconnected = "Re-connected: the new credentials work, but they see no accounts."
    return Outcome(forms.done("Re-connect", reconnected, note), after=after, message=reconnected)


def finish_sign_in(services: Services, sign_in: SignIn, values: dict[str, str] | None, problem: str = "") -> Outcome:
    """Ends an OAuth sign-in as a submitted form would end: the same check and operation, then
    the user's modal updated (or, when it is gone, a DM). `values` is None when the platform
    gave no credentials: the form shows `problem` and a fresh sign-in button."""
    actor = services.roles.actor(sign_in.team_id, sign_in.user_id)
    meta = unpack(FormMeta, sign_in.slack_meta)
    if values is None:
        form = _form_again(services, actor, meta, sign_in.sync_mode, sign_in.view_id, {"": problem}, {})
        outcome = Outcome(form, ok=False, message=problem)
    elif meta.c is None:
        outcome = _finish_new(services, actor, meta, values, sign_in.sync_mode, sign_in.view_id)
    else:
        outcome = _finish_reconnect(
            services, actor, meta, values, sign_in.sync_mode, sign_in.confirm_business, sign_in.view_id
        )
    show_outcome(services, actor, sign_in.view_id, outcome)
    if outcome.after:
        services.background(outcome.after)
    return outcome


def show_outcome(services: Services, actor: Actor, view_id: str | None, outcome: Outcome) -> None:
    """The outcome in the user's modal; when it cannot be updated (closed, expired, Slack
    refusing), in a DM: a result is never lost behind "Checking…"."""
    client = services.client_for(actor.team_id)
    if view_id:
        try:
            client.views_update(view_id=view_id, view=outcome.view)
            return
        except SlackApiError as error:
            log.info("modal not updated (%s); telling the user in a DM", error.response.get("error"))
    try:
        client.chat_postMessage(channel=person(actor), text=escape(outcome.message))
    except SlackApiError as error:
        log.warning("could not DM the user the outcome either: %s", error.response.get("error"))
