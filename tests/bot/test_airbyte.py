"""An Airbyte connector in Slack, driven by signed requests through the fake Slack: Make a new
connection from its spec, the card and its streams, Extract of a stream into the warehouse, and
a connector that was removed."""

from __future__ import annotations

import json

import duckdb
from sqlalchemy import select

from engine.connectors import Connectors
from faker_connector import connect_airbyte, faker_config, register_faker
from storage.models import Account, AuditEvent, Connection, ExtractionRun
from support import assert_not_stored, texts, wait_modal_text

SECRET = "an-Api-KEY-planted-4d1c9e"
TABLE = "airbyte:faker__users"


def _accounts(ctx, cid) -> list[str]:
    with ctx.db.begin() as session:
        return list(session.scalars(select(Account.external_id).where(Account.connection_id == cid)))


def _card(fake, user, cid):
    user.command("/connections", str(cid), channel="C0DATA")
    return fake.ephemerals(user.id)[-1]


def _runs(ctx):
    with ctx.db.begin() as session:
        return session.scalars(select(ExtractionRun).order_by(ExtractionRun.id)).all()


def test_make_a_new_connection_to_a_connector_then_extract_a_stream_into_the_warehouse(
    fake, driver, app_ctx, faker_installed
):
    executable, spec = faker_installed
    spec = json.loads(json.dumps(spec))
    spec["connectionSpecification"]["properties"]["api_key"] = {"type": "string", "airbyte_secret": True}
    register_faker(app_ctx, executable, spec)
    ada = driver.user("UADMIN")
    ada.command("/connections", "new", channel="C0DATA")
    picker = fake.wait_for(lambda: fake.modal("UADMIN"))
    offered = next(b for b in picker.blocks if b.get("block_id") == "source")["element"]["options"]
    assert ("airbyte:faker", "Faker") in [(o["value"], o["text"]["text"]) for o in offered]  # beside the built-ins
    form = ada.submit(picker, {"source": {"value": "airbyte:faker"}}).view
    ada.submit(
        form,
        {
            "connection_title": {"value": "Acme test data"},
            "cfg/count": {"value": "150"},
            "cfg/seed": {"value": "7"},
            "cfg/parallelism": {"value": "1"},
            "cfg/always_updated": {"value": []},
            "cfg/api_key": {"value": SECRET},
        },
    )
    wait_modal_text(fake, "UADMIN", "is connected")  # the connector's `check`, behind "Checking…"
    with app_ctx.db.begin() as session:
        cid = session.scalars(select(Connection.id)).one()
    fake.wait_for(lambda: _accounts(app_ctx, cid) == ["Acme test data"], timeout=60)  # discover + accounts

    otto = driver.user("UOPS")
    card = _card(fake, otto, cid)
    shown = texts(card.blocks)
    assert "Faker · Acme test data" in shown and "Data source: Faker" in shown and "1 active of 1" in shown

    otto.click(card, "connection.tab.accounts")
    accounts = fake.wait_for(
        lambda: "*Streams:*" in texts(fake.ephemerals("UOPS")[-1].blocks) and fake.ephemerals("UOPS")[-1]
    )
    assert "*Streams:* 3 streams (the extraction templates), discovered" in texts(accounts.blocks)

    otto.click(_card(fake, otto, cid), "connection.extract")
    step1 = fake.wait_for(lambda: fake.modal("UOPS"))
    block = next(b for b in step1.blocks if b.get("block_id", "").startswith("accounts:"))
    assert [o["text"]["text"] for o in block["element"]["options"]] == ["Acme test data"]
    otto.fill(step1, {block["block_id"]: {"value": [block["element"]["options"][0]["value"]]}})
    step2 = otto.submit(step1).view
    streams = next(b for b in step2.blocks if b.get("block_id") == "template")["element"]["options"]
    assert [(o["value"], o["description"]["text"]) for o in streams] == [
        ("products", "7 fields · incremental on updated_at · key id"),
        ("users", "17 fields · incremental on updated_at · key id"),
        ("purchases", "8 fields · incremental on updated_at · key id"),
    ]
    step3 = otto.submit(step2, {"template": {"value": "users"}}).view
    assert step3.callback_id == "extract.configure", texts(step3.errors)
    assert "Always extracted (primary key): id" in texts(step3.blocks)
    assert '"text": "Fields"' in texts(step3.blocks) and "metrics" not in texts(step3.blocks)
    step4 = otto.submit(
        step3,
        {"history_days": {"value": "30"}, "dimensions": {"value": ["name", "email", "age"]}},
    ).view
    assert step4.callback_id == "extract.review", texts(step4.errors)
    assert "Fields: id, name, email, age" in texts(step4.blocks)
    done = otto.submit(step4).view
    assert "Created the extraction order" in texts(done.blocks)

    runs = fake.wait_for(
        lambda: _runs(app_ctx) and _runs(app_ctx)[0].status != "running" and _runs(app_ctx), timeout=60
    )
    assert (runs[0].status, runs[0].rows) == ("succeeded", 150), runs[0].error
    with duckdb.connect(app_ctx.settings.warehouse, read_only=True) as con:
        rows, ids, named = con.execute(f'SELECT count(*), count(DISTINCT id), count(name) FROM "{TABLE}"').fetchone()
    assert (rows, ids, named) == (150, 150, 150)
    last = fake.wait_for(lambda: "150 rows · succeeded" in texts(fake.ephemerals("UOPS")[-1].blocks), timeout=30)
    assert last

    # The secret of the configuration went nowhere: no Slack payload, no audit detail, no clear column.
    assert SECRET not in json.dumps([c.args for c in fake.calls()], default=str)
    with app_ctx.db.begin() as session:
        assert SECRET not in json.dumps([e.details for e in session.scalars(select(AuditEvent))])
    assert_not_stored(app_ctx, SECRET)


def test_a_connection_whose_connector_was_removed_says_how_to_add_it_back(fake, driver, app_ctx, faker_installed):
    source = register_faker(app_ctx, *faker_installed)
    cid = connect_airbyte(app_ctx, source, faker_config(20), title="Acme test data", check=False, sync=False)
    Connectors(app_ctx.db, app_ctx.settings.data_dir, app_ctx.clock.now).remove("faker")
    otto = driver.user("UOPS")
    card = _card(fake, otto, cid)
    shown = texts(card.blocks)
    assert (
        "The connector airbyte:faker is not installed. An administrator adds it back with "
        "`connbot connectors add --executable PATH --name faker`." in shown
    )
    assert "Extract is unavailable: its connector is not installed" in shown
    assert "connection.extract" not in shown
    otto.click(card, "connection.tab.accounts")
    tab = fake.wait_for(
        lambda: "connection.sync_accounts" in texts(fake.ephemerals("UOPS")[-1].blocks) and fake.ephemerals("UOPS")[-1]
    )
    otto.click(tab, "connection.sync_accounts")
    failed = fake.wait_for(
        lambda: (
            "Why: The connector airbyte:faker is not installed" in texts(fake.ephemerals("UOPS")[-1].blocks)
            and fake.ephemerals("UOPS")[-1]
        ),
        timeout=30,
    )
    assert failed


def _wide_catalog(streams: int, fields: int) -> dict:
    """A catalog as large as a CRM's: `streams` streams, the first with `fields` properties named as
    long as a CRM's custom properties."""

    def stream(name: str, properties: list[str]) -> dict:
        return {
            "name": name,
            "json_schema": {"type": "object", "properties": {p: {"type": ["null", "string"]} for p in properties}},
            "supported_sync_modes": ["full_refresh"],
            "source_defined_primary_key": [["id"]],
        }

    wide = ["id", *(f"hs_analytics_custom_property_number_{i:03d}" for i in range(fields - 1))]
    return {
        "streams": [stream("contacts", wide), *(stream(f"object_{i:03d}", ["id", "name"]) for i in range(streams - 1))]
    }


def test_extract_from_a_catalog_beyond_slacks_100_options_searches_streams_and_fields(
    fake, driver, app_ctx, faker_installed
):
    """120 streams and a stream of 260 fields: Slack's selects hold 100 options and private_metadata
    3,000 characters, so the pickers are searched as one types and the choice is carried as a mask."""
    from engine.catalogs import save_catalog
    from storage.models import ExtractionOrder

    source = register_faker(app_ctx, *faker_installed)
    cid = connect_airbyte(app_ctx, source, faker_config(20), title="Acme CRM", check=False)
    save_catalog(app_ctx, cid, _wide_catalog(streams=120, fields=260))
    otto = driver.user("UOPS")
    otto.click(_card(fake, otto, cid), "connection.extract")
    step1 = fake.wait_for(lambda: fake.modal("UOPS"))
    block = next(b for b in step1.blocks if b.get("block_id", "").startswith("accounts:"))
    otto.fill(step1, {block["block_id"]: {"value": [block["element"]["options"][0]["value"]]}})
    step2 = otto.submit(step1).view

    picker = next(b for b in step2.blocks if b.get("block_id") == "template")["element"]
    assert picker["type"] == "external_select" and "options" not in picker
    assert "120 streams: type part of a name to find one." in texts(step2.blocks)
    assert len(otto.suggest(step2, "template", "")) == 100  # the first 100 when nothing is typed
    found = otto.suggest(step2, "template", "OBJECT_11")  # any case, title or name
    assert [o["value"] for o in found] == [f"object_{i}" for i in range(110, 119)]
    assert [o["value"] for o in otto.suggest(step2, "template", "object_118")] == ["object_118"]  # beyond 100
    contacts = otto.suggest(step2, "template", "contacts")
    step3 = otto.submit(step2, {"template": {"extract.streams": contacts[0]}}).view
    assert step3.callback_id == "extract.configure", texts(step3.errors)

    fields = next(b for b in step3.blocks if b.get("block_id") == "dimensions")
    assert fields["element"]["type"] == "multi_external_select"
    assert len(fields["element"]["initial_options"]) == 259  # every field but the key, as a stream's default
    assert "259 fields: type part of a name to find one." in texts([fields])
    assert [o["value"] for o in otto.suggest(step3, "dimensions", "number_25")] == [
        f"hs_analytics_custom_property_number_{i}" for i in range(250, 259)
    ]
    # Keep 200 of them: far more names than private_metadata holds.
    kept = fields["element"]["initial_options"][:200]
    step4 = otto.submit(step3, {"history_days": {"value": "30"}, "dimensions": {"extract.fields": kept}}).view
    assert step4.callback_id == "extract.review", texts(step4.errors)
    assert len(step4.private_metadata) <= 3000
    review = texts(step4.blocks)
    assert "Fields: id, hs_analytics_custom_property_number_000, " in review and " more" in review

    # Back to step 3 shows the choice carried, and so does Continue again.
    otto.click(step4, "extract.back")
    step3 = fake.wait_for(lambda: fake.modal("UOPS").callback_id == "extract.configure" and fake.modal("UOPS"))
    fields = next(b for b in step3.blocks if b.get("block_id") == "dimensions")
    assert fields["element"]["initial_options"] == kept
    step4 = otto.submit(step3).view
    assert step4.callback_id == "extract.review", texts(step4.errors)
    done = otto.submit(step4).view
    assert "Created the extraction order" in texts(done.blocks)
    with app_ctx.db.begin() as session:
        order = session.scalars(select(ExtractionOrder)).one()
        assert order.fields == ["id", *(o["value"] for o in kept)]
        assert order.template == "contacts"


def test_more_data_sources_than_a_select_holds_are_searched_as_one_types(fake, driver, app_ctx, faker_installed):
    executable, spec = faker_installed
    for i in range(110):
        named = json.loads(json.dumps(spec))
        named["connectionSpecification"]["title"] = f"Platform {i:03d}"
        register_faker(app_ctx, executable, named, name=f"platform{i:03d}")
    ada = driver.user("UADMIN")
    ada.command("/connections", "new", channel="C0DATA")
    picker = fake.wait_for(lambda: fake.modal("UADMIN"))
    element = next(b for b in picker.blocks if b.get("block_id") == "source")["element"]
    assert element["type"] == "external_select" and "options" not in element
    total = len(app_ctx.sources())  # the 110 and the built-ins
    assert total > 110 and f"{total} data sources: type part of a name to find one." in texts(picker.blocks)
    assert len(ada.suggest(picker, "source", "")) == 100
    found = ada.suggest(picker, "source", "platform 10")  # the title, any case
    assert [o["value"] for o in found] == [f"airbyte:platform{i}" for i in range(100, 110)]
    assert [o["value"] for o in ada.suggest(picker, "source", "demo")] == ["demo"]  # the built-ins too
    form = ada.submit(picker, {"source": {"connection.new.sources": found[-1]}}).view
    assert form.callback_id == "connection.new.credentials", texts(form.errors)
    assert "Platform 109" in texts(form.blocks)

    # Options asked for by someone who is not an admin (a forged request: only admins get the
    # picker) are none.
    otto = driver.user("UOPS")
    payload = otto._base("block_suggestion")
    payload.update(action_id="connection.new.sources", block_id="source", value="", view=picker.to_api())
    answer = driver._interactive("block_suggestion", payload, otto.id)
    assert answer.ok and answer.json == {"options": []}
