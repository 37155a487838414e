"""Make a new connection and Re-connect for sources configured by a JSON Schema (an Airbyte
connector's spec), through signed Slack requests and the fake Web API: the form built from the
spec, a oneOf option redrawing it, inline errors, the JSON fallback, secrets kept and never shown."""

from __future__ import annotations

import json
import logging

import pytest
from platforms.spec_sources import ADS_SPEC, FAKER_SPEC, SpecSource, oversized_spec
from sqlalchemy import select

from sources.base import CheckResult, CheckStatus
from sources.config import credentials_config, credentials_title
from storage.models import Account, AuditEvent, Connection
from support import assert_not_stored, shown, texts, wait_modal_text

PLANT = "9191919191"  # planted in typed secrets: it must never leave the vault
OPTION = "connection.config_option"


def refuse_wrong(config: dict) -> CheckResult:
    """The platform refuses a token containing "wrong"."""
    if "wrong" in json.dumps(config):
        return CheckResult(CheckStatus.INVALID, "The platform refused the token.", "401")
    return CheckResult(CheckStatus.VALID)


@pytest.fixture
def spec_sources(app_ctx):
    made = {
        "faker": SpecSource("faker", "Faker", FAKER_SPEC),
        "acme_ads": SpecSource("acme_ads", "Acme Ads", ADS_SPEC, refuse_wrong),
        "big": SpecSource("big", "Big Source", oversized_spec()),
    }
    sources = {**made, "demo": app_ctx.source("demo")}
    app_ctx.source = sources.__getitem__
    app_ctx.sources = lambda: sources
    return made


def open_form(fake, user, source: str):
    """`/connections new`, choosing `source` in the picker."""
    user.command("/connections", "new", channel="C0DATA")
    picker = fake.wait_for(lambda: fake.modal(user.id))
    user.submit(picker, {"source": {"value": source}})
    view = fake.modal(user.id)
    assert view.callback_id == "connection.new.credentials", shown(view)
    return view


def inputs(view) -> list[str]:
    return [b["block_id"] for b in view.blocks if b["type"] == "input"]


def block(view, block_id: str) -> dict:
    return next(b for b in view.blocks if b.get("block_id") == block_id)


def stored(ctx, cid=None) -> tuple[Connection, dict, str]:
    with ctx.db.begin() as session:
        query = select(Connection) if cid is None else select(Connection).where(Connection.id == cid)
        row = session.scalars(query).one()
        credentials = ctx.vault.decrypt(row.credentials)
        session.expunge(row)
    return row, credentials_config(credentials), credentials_title(credentials)


def connections(ctx) -> list[int]:
    with ctx.db.begin() as session:
        return list(session.scalars(select(Connection.id)))


def test_faker_spec_asks_its_fields_in_order_with_defaults_and_a_name(fake, driver, app_ctx, spec_sources):
    ada = driver.user("UADMIN")
    view = open_form(fake, ada, "faker")
    # The spec's `order`, then the field without one; faker names no platform account: a name is asked.
    assert inputs(view) == [
        "connection_title",
        "cfg/count",
        "cfg/seed",
        "cfg/records_per_slice",
        "cfg/parallelism",
        "cfg/always_updated",
        "sync_mode",
    ]
    assert block(view, "cfg/count")["element"] == {
        "type": "number_input",
        "action_id": "value",
        "is_decimal_allowed": False,
        "min_value": "1",
        "initial_value": "1000",
    }
    assert block(view, "cfg/always_updated")["element"]["initial_options"][0]["value"] == "yes"
    result = ada.submit(view, {"connection_title": {"value": "Load test data"}, "cfg/count": {"value": "250"}})
    assert "is connected" in texts(result.view.blocks)
    row, config, title = stored(app_ctx)
    assert config == {"count": 250, "seed": -1, "records_per_slice": 1000, "parallelism": 4, "always_updated": True}
    assert (title, row.business_account_id, row.title) == ("Load test data", "Load test data", "Faker · Load test data")
    assert row.credentials_hint == {}  # faker has no secret
    # The first account sync: one account stands for the whole connection.
    fake.wait_for(lambda: account_ids(app_ctx) == ["all"])
    fake.wait_for(lambda: fake.calls("views.publish"))  # the App Home, last of the work after a connect


def account_ids(ctx) -> list[str]:
    with ctx.db.begin() as session:
        return list(session.scalars(select(Account.external_id).order_by(Account.external_id)))


def test_a_oneof_option_redraws_the_form_with_its_fields_keeping_what_was_typed(
    fake, driver, app_ctx, spec_sources, caplog, json_log
):
    caplog.set_level(logging.DEBUG)
    ada = driver.user("UADMIN")
    view = open_form(fake, ada, "acme_ads")
    assert "connection_title" not in inputs(view)  # the configuration names its ad accounts
    assert block(view, "cfg/credentials")["element"]["initial_option"]["value"] == "0"  # OAuth first
    assert {"cfg/credentials/client_id", "cfg/credentials/client_secret"} <= set(inputs(view))
    ada.fill(
        view,
        {
            "cfg/account_ids": {"value": "111\n222"},
            "cfg/region": {"value": "2"},
            "cfg/credentials/client_secret": {"value": f"cs-{PLANT}-typed"},
        },
    )
    ada.choose(view, OPTION, "1", block_id="cfg/credentials")  # API token
    redrawn = fake.wait_for(
        lambda: "cfg/credentials/api_token" in inputs(fake.modal("UADMIN")) and fake.modal("UADMIN")
    )
    assert "cfg/credentials/client_secret" not in inputs(redrawn)
    state = redrawn.state_values()
    assert state["cfg/account_ids"]["value"]["value"] == "111\n222"  # typed, kept
    assert state["cfg/region"]["value"]["selected_option"]["value"] == "2"
    assert block(redrawn, "cfg/account_ids")["element"]["initial_value"] == "111\n222"
    ada.choose(redrawn, OPTION, "0", block_id="cfg/credentials")  # back to OAuth
    fake.wait_for(lambda: "cfg/credentials/client_id" in inputs(fake.modal("UADMIN")))
    assert PLANT not in texts([c.args for c in fake.calls()])  # the typed secret was never sent back
    # Slack keeps a typed secret through a redraw that keeps its input, and says so in its answer
    # to views.update: no log line carries it, even at DEBUG.
    ada.fill(fake.modal("UADMIN"), {"cfg/credentials/client_secret": {"value": f"cs-{PLANT}-again"}})
    ada.choose(fake.modal("UADMIN"), OPTION, "0", block_id="cfg/credentials")
    fake.wait_for(lambda: len(fake.calls("views.update")) == 3)
    assert fake.modal("UADMIN").state_values()["cfg/credentials/client_secret"]["value"]["value"].startswith("cs-")
    ada.choose(fake.modal("UADMIN"), OPTION, "1", block_id="cfg/credentials")
    view = fake.wait_for(lambda: "cfg/credentials/api_token" in inputs(fake.modal("UADMIN")) and fake.modal("UADMIN"))
    result = ada.submit(view, {"cfg/credentials/api_token": {"value": "tok-123456"}})
    assert "is connected" in texts(result.view.blocks), shown(result.view)
    row, config, _ = stored(app_ctx)
    assert config["credentials"] == {"auth_type": "token", "api_token": "tok-123456"}
    assert (config["account_ids"], config["region"], config["start_date"]) == (["111", "222"], "apac", "2024-01-01")
    assert (row.business_account_id, row.title) == ("111, 222", "Acme Ads · 111, 222")
    assert row.credentials_hint == {"/credentials/api_token": "••••••••"}
    assert PLANT not in texts([c.args for c in fake.calls()])
    assert PLANT not in caplog.text
    assert json_log.records() and PLANT not in json_log.text  # CONNBOT_LOG_FORMAT=json


def test_what_the_spec_refuses_is_shown_on_its_field_and_nothing_is_stored(fake, driver, app_ctx, spec_sources):
    ada = driver.user("UADMIN")
    view = open_form(fake, ada, "acme_ads")
    result = ada.submit(
        view,
        {
            "cfg/account_ids": {"value": "111\nact_9"},
            "cfg/credentials/client_id": {"value": "client"},
            "cfg/credentials/client_secret": {"value": "secret-1"},
            "cfg/credentials/refresh_token": {"value": "refresh-1"},
            "cfg/end_time": {"value": "tomorrow"},
            "cfg/country": {"value": "Atlantis"},
            "cfg/lookback_days": {"value": "7\nseven"},
            "cfg/reporting/ratio": {"value": "0.5"},  # the reporting options are given: its window is required
            "cfg/custom_reports": {"value": '[{"fields": ["a"]}]'},
        },
    )
    assert result.ok
    assert result.view.errors == {
        "cfg/account_ids": "At [1]: Must match the format ^[0-9]+$.",
        "cfg/end_time": "Must match the format YYYY-MM-DDTHH:mm:ssZ, e.g. 2024-12-31T00:00:00Z.",
        "cfg/country": "Must be one of: AA, AB, AC, AD, AE, AF, AG, AH, AI, AJ and 146 more.",
        "cfg/lookback_days": "Line 2: Must be a whole number.",
        "cfg/reporting/window_days": "Attribution window is required.",
        "cfg/custom_reports": "At [0].name: name is required.",
    }
    assert connections(app_ctx) == []
    assert spec_sources["acme_ads"].checked == []  # the source was not asked


def test_a_failed_check_shows_the_reason_and_keeps_what_was_typed_but_secrets(fake, driver, app_ctx, spec_sources):
    ada = driver.user("UADMIN")
    view = open_form(fake, ada, "acme_ads")
    ada.choose(view, OPTION, "1", block_id="cfg/credentials")
    view = fake.wait_for(lambda: "cfg/credentials/api_token" in inputs(fake.modal("UADMIN")) and fake.modal("UADMIN"))
    ada.submit(view, {"cfg/account_ids": {"value": "42"}, "cfg/credentials/api_token": {"value": f"wrong-{PLANT}"}})
    again = wait_modal_text(fake, "UADMIN", "The platform refused the token")
    assert again.callback_id == "connection.new.credentials"
    assert block(again, "cfg/account_ids")["element"]["initial_value"] == "42"
    assert block(again, "cfg/credentials")["element"]["initial_option"]["value"] == "1"  # still API token
    assert "initial_value" not in block(again, "cfg/credentials/api_token")["element"]
    assert PLANT not in texts([c.args for c in fake.calls()])
    assert connections(app_ctx) == []


def test_a_slow_check_says_checking_then_shows_the_result(fake, driver, app_ctx, spec_sources, monkeypatch):
    import bot.handlers.connect as connect_handlers

    monkeypatch.setattr(connect_handlers, "QUICK_CHECK_SECONDS", 0.0)  # every check answers "Checking…" first
    ada = driver.user("UADMIN")
    result = ada.submit(open_form(fake, ada, "faker"), {"connection_title": {"value": "Slow"}})
    assert "Checking credentials" in texts(result.view.blocks)
    wait_modal_text(fake, "UADMIN", "is connected")


def test_reconnect_keeps_an_untouched_secret_and_replaces_a_retyped_one(
    fake, driver, app_ctx, spec_sources, caplog, json_log
):
    caplog.set_level(logging.DEBUG)
    ada = driver.user("UADMIN")
    secret = f"cs-{PLANT}-client-secret"
    view = open_form(fake, ada, "acme_ads")
    ada.submit(
        view,
        {
            "cfg/account_ids": {"value": "111"},
            "cfg/credentials/client_id": {"value": "client-1"},
            "cfg/credentials/client_secret": {"value": secret},
            "cfg/credentials/refresh_token": {"value": f"rt-{PLANT}-first-refresh"},
            "cfg/reporting/window_days": {"value": "28"},
        },
    )
    wait_modal_text(fake, "UADMIN", "is connected")
    cid = connections(app_ctx)[0]
    fake.close_views("UADMIN")

    ada.command("/connections", str(cid), channel="C0DATA")
    ada.click(fake.ephemerals("UADMIN")[-1], "connection.tab.settings")
    card = fake.wait_for(
        lambda: "Client secret cs…cret" in texts(fake.ephemerals("UADMIN")[-1].blocks) and fake.ephemerals("UADMIN")[-1]
    )
    ada.click(card, "connection.reconnect")
    form = fake.wait_for(lambda: fake.modal("UADMIN"))
    assert form.callback_id == "connection.reconnect.submit"
    assert "In use now: Client secret cs…cret, Refresh token rt…resh" in texts(form.blocks)
    assert block(form, "cfg/credentials/client_id")["element"]["initial_value"] == "client-1"  # the config in use
    assert block(form, "cfg/reporting/window_days")["element"]["initial_value"] == "28"
    secret_input = block(form, "cfg/credentials/client_secret")
    assert secret_input["optional"] and "initial_value" not in secret_input["element"]
    assert "leave empty to keep it" in secret_input["hint"]["text"]

    ada.submit(form, {"cfg/credentials/refresh_token": {"value": "rt-second-refresh-token"}})
    wait_modal_text(fake, "UADMIN", "Re-connected")
    _, config, _ = stored(app_ctx, cid)
    assert config["credentials"] == {
        "auth_type": "oauth2.0",
        "client_id": "client-1",
        "client_secret": secret,  # untouched: kept
        "refresh_token": "rt-second-refresh-token",  # retyped: replaced
    }
    assert spec_sources["acme_ads"].checked[-1] == config  # the check saw the whole configuration

    # Switching to another auth method carries none of the old method's secrets.
    fake.close_views("UADMIN")
    ada.click(card, "connection.reconnect")
    form = fake.wait_for(lambda: fake.modal("UADMIN"))
    ada.choose(form, OPTION, "1", block_id="cfg/credentials")
    form = fake.wait_for(lambda: "cfg/credentials/api_token" in inputs(fake.modal("UADMIN")) and fake.modal("UADMIN"))
    ada.submit(form, {"cfg/credentials/api_token": {"value": "tok-new-one"}})
    wait_modal_text(fake, "UADMIN", "Re-connected")
    row, config, _ = stored(app_ctx, cid)
    assert config["credentials"] == {"auth_type": "token", "api_token": "tok-new-one"}
    assert row.credentials_hint == {"/credentials/api_token": "••••••••"}

    # The planted secret went nowhere but the vault.
    assert PLANT not in texts([c.args for c in fake.calls()])  # views, messages, private_metadata
    assert PLANT not in caplog.text
    assert json_log.records() and PLANT not in json_log.text  # CONNBOT_LOG_FORMAT=json
    assert_not_stored(app_ctx, PLANT)
    with app_ctx.db.begin() as session:
        assert PLANT not in texts([r.details for r in session.scalars(select(AuditEvent))])


def test_a_spec_too_big_for_a_modal_is_asked_as_json(fake, driver, app_ctx, spec_sources):
    ada = driver.user("UADMIN")
    view = open_form(fake, ada, "big")
    assert inputs(view) == ["connection_title", "config_json", "sync_mode"]
    assert block(view, "config_json")["element"]["initial_value"] == '{\n  "name": "report"\n}'  # the defaults
    assert "field_000 (a whole number, required)" in block(view, "config_json")["hint"]["text"]
    result = ada.submit(view, {"connection_title": {"value": "Big"}, "config_json": {"value": '{"name": '}})
    assert result.view.errors == {"config_json": "This is not valid JSON: Expecting value at line 1, column 10."}
    result = ada.submit(view, {"config_json": {"value": '{"field_001": "x", "api_key": 5}'}})
    assert result.view.errors == {
        "config_json": "At field_000: Field 0 is required. At field_001: Must be a whole number. At api_key: Must be text."
    }
    result = ada.submit(view, {"config_json": {"value": f'{{"field_000": 3, "api_key": "k-{PLANT}-key"}}'}})
    assert "is connected" in texts(result.view.blocks), shown(result.view)
    row, config, _ = stored(app_ctx)
    assert config == {"field_000": 3, "api_key": f"k-{PLANT}-key"}
    assert PLANT not in texts([c.args for c in fake.calls()])
