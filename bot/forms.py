"""Reading submitted modal state: {block_id: value} for the input kinds connbot uses."""

from __future__ import annotations

from typing import Any


def form_values(view: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for block_id, actions in ((view.get("state") or {}).get("values") or {}).items():
        for element in actions.values():
            kind = element.get("type")
            if kind in ("plain_text_input", "number_input", "email_text_input", "url_text_input"):
                values[block_id] = element.get("value")
            elif kind in ("static_select", "radio_buttons", "external_select"):
                values[block_id] = (element.get("selected_option") or {}).get("value")
            elif kind in ("checkboxes", "multi_static_select"):
                values[block_id] = [o.get("value") for o in element.get("selected_options") or []]
            elif kind == "conversations_select":
                values[block_id] = element.get("selected_conversation")
            elif kind == "datepicker":
                values[block_id] = element.get("selected_date")
            elif kind == "timepicker":
                values[block_id] = element.get("selected_time")
            else:
                values[block_id] = element.get("value")
    return values
