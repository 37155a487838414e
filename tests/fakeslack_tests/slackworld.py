"""The small workspace and Block Kit payloads shared by the fake Slack's tests."""

from __future__ import annotations

ALICE, BOB, CAROL = "U01ALICE", "U02BOB", "U03CAROL"
GENERAL, OPS, RANDOM = "C01GENERAL", "C02OPS", "C03RANDOM"


SECRET = "fakeslack-test-signing-secret"


def pt(text: str) -> dict:
    return {"type": "plain_text", "text": text}


def mrkdwn(text: str) -> dict:
    return {"type": "mrkdwn", "text": text}


def option(text: str, value: str) -> dict:
    return {"text": pt(text), "value": value}


MENU_BLOCKS = [
    {
        "type": "section",
        "block_id": "head",
        "text": mrkdwn("Connection *Ads*"),
        "accessory": {
            "type": "overflow",
            "action_id": "more",
            "options": [option("Rename", "rename"), option("Archive", "archive")],
        },
    },
    {
        "type": "actions",
        "block_id": "menu",
        "elements": [
            {
                "type": "button",
                "action_id": "sync",
                "text": pt("Sync accounts"),
                "value": "42",
                "style": "primary",
            },
            {
                "type": "button",
                "action_id": "delete",
                "text": pt("Delete"),
                "value": "42",
                "style": "danger",
                "confirm": {
                    "title": pt("Delete Ads?"),
                    "text": mrkdwn("This removes the connection."),
                    "confirm": pt("Delete"),
                    "deny": pt("Cancel"),
                },
            },
        ],
    },
]


def new_connection_view(channel_id: str, *, title: str = "New connection") -> dict:
    return {
        "type": "modal",
        "callback_id": "new_conn",
        "title": pt(title),
        "submit": pt("Create"),
        "close": pt("Cancel"),
        "notify_on_close": True,
        "private_metadata": channel_id,
        "blocks": [
            {
                "type": "input",
                "block_id": "name",
                "label": pt("Name"),
                "element": {"type": "plain_text_input", "action_id": "name", "max_length": 40},
            },
            {
                "type": "input",
                "block_id": "kind",
                "label": pt("Data source"),
                "element": {
                    "type": "static_select",
                    "action_id": "kind",
                    "options": [option("Demo", "demo"), option("Facebook Ads", "facebook_ads")],
                },
            },
            {
                "type": "input",
                "block_id": "note",
                "label": pt("Note"),
                "optional": True,
                "element": {"type": "plain_text_input", "action_id": "note"},
            },
        ],
    }


STEP_TWO = {
    "type": "modal",
    "callback_id": "step_two",
    "title": pt("Step two"),
    "submit": pt("Done"),
    "blocks": [{"type": "section", "text": mrkdwn("Almost there")}],
}
