"""Block Kit limits, checked the way Slack checks them.

Slack refuses a message or view that breaks one of its Block Kit limits, with
``invalid_blocks`` (messages) or ``invalid_arguments`` (views) and one line per
problem in ``response_metadata.messages``, each naming the offending field by a
JSON pointer::

    [ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]

The fake Web API runs these checks on everything an app sends (``chat.*``,
``views.*``, response_url posts, slash-command acks, ``response_action``
views) so that a test fails on the first message that would be rejected by
the real Slack, long before a user meets it.  The checks are plain functions so
that block builders can be tested directly::

    problems = check_message(blocks, text="fallback")
    assert problems == [], "\\n".join(map(str, problems))

Covered: block counts, text lengths of every text-bearing field the app
controls, element counts of actions/context/fields/options, ``action_id`` and
``block_id`` length and uniqueness, confirm dialogs, modal title/submit/close,
``private_metadata``, the shape of text objects (type, non-empty text,
``plain_text`` where Slack demands it) and which elements each block accepts.
Not covered: rendering details Slack does not reject (e.g. unescaped mrkdwn).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# --- the numbers (Slack's Block Kit reference) ---------------------------------
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100  # modals and App Home
MESSAGE_TEXT = 40_000  # chat.postMessage `text`
UPDATE_TEXT = 4_000  # chat.update `text`
SECTION_TEXT = 3_000
SECTION_FIELDS = 10
FIELD_TEXT = 2_000
HEADER_TEXT = 150
MARKDOWN_BLOCK_TEXT = 12_000
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25
ID_LENGTH = 255  # action_id, block_id, callback_id, external_id
BUTTON_TEXT = 75
BUTTON_VALUE = 2_000
URL_LENGTH = 3_000
CONFIRM_TITLE = 100
CONFIRM_TEXT = 300
CONFIRM_BUTTON = 30
OPTION_TEXT = 75
OPTION_VALUE = 150
OPTION_DESCRIPTION = 75
SELECT_OPTIONS = 100
OPTION_GROUPS = 100
OPTION_GROUP_LABEL = 75
OVERFLOW_MIN, OVERFLOW_MAX = 2, 5
CHOICE_OPTIONS = 10  # checkboxes, radio_buttons
PLACEHOLDER = 150
INPUT_LABEL = 2_000
INPUT_HINT = 2_000
TEXT_INPUT_MAX = 3_000
IMAGE_ALT = 2_000
MODAL_TITLE = 24  # also submit and close
PRIVATE_METADATA = 3_000

SELECTS = {
    "static_select",
    "external_select",
    "users_select",
    "conversations_select",
    "channels_select",
}
MULTI_SELECTS = {"multi_" + s for s in SELECTS}
# Elements that can sit in an actions block / a section accessory / an input block.
ACTION_ELEMENTS = (
    SELECTS
    | MULTI_SELECTS
    | {
        "button",
        "overflow",
        "datepicker",
        "timepicker",
        "datetimepicker",
        "checkboxes",
        "radio_buttons",
        "workflow_button",
        "rich_text_input",
    }
)
ACCESSORY_ELEMENTS = (
    SELECTS
    | MULTI_SELECTS
    | {
        "button",
        "overflow",
        "datepicker",
        "timepicker",
        "checkboxes",
        "radio_buttons",
        "image",
        "workflow_button",
    }
)
INPUT_ELEMENTS = (
    SELECTS
    | MULTI_SELECTS
    | {
        "plain_text_input",
        "number_input",
        "email_text_input",
        "url_text_input",
        "datepicker",
        "timepicker",
        "datetimepicker",
        "checkboxes",
        "radio_buttons",
        "rich_text_input",
        "file_input",
    }
)
BLOCK_TYPES = {
    "section",
    "header",
    "divider",
    "actions",
    "context",
    "input",
    "image",
    "rich_text",
    "markdown",
    "file",
    "video",
    "call",
    "table",
    "context_actions",
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}$")


@dataclass(frozen=True)
class Problem:
    """One reason Slack would refuse the payload."""

    pointer: str  # JSON pointer into the checked payload, e.g. "/blocks/0/text/text"
    message: str  # e.g. "must be less than 3001 characters"

    def __str__(self) -> str:  # Slack's own wording in response_metadata.messages
        return f"[ERROR] {self.message} [json-pointer:{self.pointer}]"


class _Checker:
    """Walks a payload, collecting problems with the JSON pointer of each."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    # -- primitives --------------------------------------------------------
    def fail(self, at: str, message: str) -> None:
        self.problems.append(Problem(at, message))

    def length(self, value: Any, at: str, limit: int, *, min_len: int = 0) -> None:
        if value is None:
            return
        if not isinstance(value, str):
            self.fail(at, "must be a string")
        elif len(value) > limit:
            self.fail(at, f"must be less than {limit + 1} characters")
        elif len(value) < min_len:
            self.fail(at, f"must be more than {min_len - 1} characters")

    def count(self, items: Any, at: str, limit: int, *, min_items: int = 0) -> list:
        if not isinstance(items, list):
            self.fail(at, "must be an array")
            return []
        if len(items) > limit:
            self.fail(at, f"must provide no more than {limit} items")
        elif len(items) < min_items:
            self.fail(at, f"must provide at least {min_items} items")
        return items

    def text(
        self,
        obj: Any,
        at: str,
        limit: int,
        *,
        plain: bool = False,
        required: bool = True,
    ) -> None:
        """A composition text object: {"type": "plain_text"|"mrkdwn", "text": ...}."""
        if obj is None:
            if required:
                self.fail(at, "missing required field")
            return
        if not isinstance(obj, dict):
            self.fail(at, "must be a text object")
            return
        kind = obj.get("type")
        if kind not in ("plain_text", "mrkdwn"):
            self.fail(at + "/type", "must be plain_text or mrkdwn")
        elif plain and kind != "plain_text":
            self.fail(at + "/type", "must be plain_text")
        if "text" not in obj:
            self.fail(at + "/text", "missing required field")
        else:
            self.length(obj["text"], at + "/text", limit, min_len=1)

    def ident(self, value: Any, at: str) -> None:
        self.length(value, at, ID_LENGTH, min_len=1)

    # -- composition objects -------------------------------------------------
    def confirm(self, obj: Any, at: str) -> None:
        if obj is None:
            return
        if not isinstance(obj, dict):
            self.fail(at, "must be a confirmation object")
            return
        self.text(obj.get("title"), at + "/title", CONFIRM_TITLE, plain=True)
        self.text(obj.get("text"), at + "/text", CONFIRM_TEXT)
        self.text(obj.get("confirm"), at + "/confirm", CONFIRM_BUTTON, plain=True)
        self.text(obj.get("deny"), at + "/deny", CONFIRM_BUTTON, plain=True)
        if obj.get("style") not in (None, "primary", "danger"):
            self.fail(at + "/style", "must be primary or danger")

    def option(self, obj: Any, at: str, *, plain: bool) -> None:
        if not isinstance(obj, dict):
            self.fail(at, "must be an option object")
            return
        self.text(obj.get("text"), at + "/text", OPTION_TEXT, plain=plain)
        if "value" not in obj:
            self.fail(at + "/value", "missing required field")
        self.length(obj.get("value"), at + "/value", OPTION_VALUE, min_len=1)
        self.text(obj.get("description"), at + "/description", OPTION_DESCRIPTION, required=False)
        self.length(obj.get("url"), at + "/url", URL_LENGTH)

    def options(self, items: Any, at: str, limit: int, *, min_items: int = 1, plain: bool) -> list:
        items = self.count(items, at, limit, min_items=min_items)
        values = []
        for i, opt in enumerate(items):
            self.option(opt, f"{at}/{i}", plain=plain)
            if isinstance(opt, dict):
                values.append(opt.get("value"))
        return values

    def initial_options(self, element: dict, at: str, known: list) -> None:
        """initial_option(s) must be among the element's options."""
        initial = element.get("initial_option")
        chosen = [initial] if initial is not None else list(element.get("initial_options") or [])
        field = "initial_option" if initial is not None else "initial_options"
        for i, opt in enumerate(chosen):
            if not isinstance(opt, dict) or opt.get("value") not in known:
                suffix = "" if field == "initial_option" else f"/{i}"
                self.fail(f"{at}/{field}{suffix}", "must match one of the provided options")

    # -- elements --------------------------------------------------------------
    def element(self, el: Any, at: str, allowed: set[str]) -> None:
        if not isinstance(el, dict):
            self.fail(at, "must be an element object")
            return
        kind = el.get("type")
        if kind not in allowed:
            self.fail(at + "/type", f"{kind!r} is not a valid element here")
            return
        if "action_id" in el:
            self.ident(el["action_id"], at + "/action_id")
        self.confirm(el.get("confirm"), at + "/confirm")
        if "placeholder" in el:
            self.text(el["placeholder"], at + "/placeholder", PLACEHOLDER, plain=True)

        if kind == "button":
            self.text(el.get("text"), at + "/text", BUTTON_TEXT, plain=True)
            self.length(el.get("value"), at + "/value", BUTTON_VALUE)
            self.length(el.get("url"), at + "/url", URL_LENGTH)
            self.length(el.get("accessibility_label"), at + "/accessibility_label", BUTTON_TEXT)
            if el.get("style") not in (None, "primary", "danger"):
                self.fail(at + "/style", "must be primary or danger")
        elif kind == "overflow":
            self.options(el.get("options"), at + "/options", OVERFLOW_MAX, min_items=OVERFLOW_MIN, plain=True)
        elif kind in ("static_select", "multi_static_select"):
            has_opts, has_groups = "options" in el, "option_groups" in el
            if has_opts == has_groups:
                self.fail(at, "must provide exactly one of options or option_groups")
            known: list = []
            if has_opts:
                known = self.options(el["options"], at + "/options", SELECT_OPTIONS, plain=True)
            if has_groups:
                groups = self.count(el["option_groups"], at + "/option_groups", OPTION_GROUPS, min_items=1)
                for g, group in enumerate(groups):
                    gat = f"{at}/option_groups/{g}"
                    if not isinstance(group, dict):
                        self.fail(gat, "must be an option group")
                        continue
                    self.text(group.get("label"), gat + "/label", OPTION_GROUP_LABEL, plain=True)
                    known += self.options(group.get("options"), gat + "/options", SELECT_OPTIONS, plain=True)
            self.initial_options(el, at, known)
        elif kind in ("checkboxes", "radio_buttons"):
            known = self.options(el.get("options"), at + "/options", CHOICE_OPTIONS, plain=False)
            self.initial_options(el, at, known)
        elif kind in ("plain_text_input",):
            for key in ("min_length", "max_length"):
                if key in el and not (isinstance(el[key], int) and 0 <= el[key] <= TEXT_INPUT_MAX):
                    self.fail(f"{at}/{key}", f"must be an integer between 0 and {TEXT_INPUT_MAX}")
            self.length(el.get("initial_value"), at + "/initial_value", TEXT_INPUT_MAX)
        elif kind == "datepicker":
            if "initial_date" in el and not _DATE.match(str(el["initial_date"])):
                self.fail(at + "/initial_date", "must be in YYYY-MM-DD format")
        elif kind == "timepicker":
            if "initial_time" in el and not _TIME.match(str(el["initial_time"])):
                self.fail(at + "/initial_time", "must be in HH:mm format")
        elif kind == "number_input":
            if not isinstance(el.get("is_decimal_allowed"), bool):
                self.fail(at + "/is_decimal_allowed", "missing required field")
        elif kind == "image":
            self.image(el, at)

    def image(self, el: dict, at: str) -> None:
        if "image_url" not in el and "slack_file" not in el:
            self.fail(at, "must provide image_url or slack_file")
        self.length(el.get("image_url"), at + "/image_url", URL_LENGTH)
        if "alt_text" not in el:
            self.fail(at + "/alt_text", "missing required field")
        self.length(el.get("alt_text"), at + "/alt_text", IMAGE_ALT)

    def unique_action_ids(self, elements: Iterable, at: str) -> None:
        seen: set = set()
        for i, el in enumerate(elements):
            aid = el.get("action_id") if isinstance(el, dict) else None
            if aid is None:
                continue
            if aid in seen:
                self.fail(f"{at}/{i}/action_id", f"duplicate action_id {aid!r} in this block")
            seen.add(aid)

    # -- blocks ----------------------------------------------------------------
    def blocks(self, blocks: Any, at: str, limit: int) -> None:
        blocks = self.count(blocks, at, limit)
        seen_ids: set = set()
        for i, block in enumerate(blocks):
            bat = f"{at}/{i}"
            if not isinstance(block, dict):
                self.fail(bat, "must be a block object")
                continue
            if "block_id" in block:
                bid = block["block_id"]
                self.ident(bid, bat + "/block_id")
                if bid in seen_ids:
                    self.fail(bat + "/block_id", f"duplicate block_id {bid!r}")
                seen_ids.add(bid)
            self.block(block, bat)

    def block(self, block: dict, at: str) -> None:
        kind = block.get("type")
        if kind not in BLOCK_TYPES:
            self.fail(at + "/type", f"unsupported block type {kind!r}")
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                self.fail(at, "must provide text or fields")
            if "text" in block:
                self.text(block["text"], at + "/text", SECTION_TEXT)
            if "fields" in block:
                fields = self.count(block["fields"], at + "/fields", SECTION_FIELDS, min_items=1)
                for f, field in enumerate(fields):
                    self.text(field, f"{at}/fields/{f}", FIELD_TEXT)
            if "accessory" in block:
                self.element(block["accessory"], at + "/accessory", ACCESSORY_ELEMENTS)
        elif kind == "header":
            self.text(block.get("text"), at + "/text", HEADER_TEXT, plain=True)
        elif kind == "context":
            elements = self.count(block.get("elements"), at + "/elements", CONTEXT_ELEMENTS, min_items=1)
            for e, el in enumerate(elements):
                eat = f"{at}/elements/{e}"
                if isinstance(el, dict) and el.get("type") == "image":
                    self.image(el, eat)
                else:
                    self.text(el, eat, SECTION_TEXT)
        elif kind == "actions":
            elements = self.count(block.get("elements"), at + "/elements", ACTIONS_ELEMENTS, min_items=1)
            for e, el in enumerate(elements):
                self.element(el, f"{at}/elements/{e}", ACTION_ELEMENTS)
            self.unique_action_ids(elements, at + "/elements")
        elif kind == "input":
            self.text(block.get("label"), at + "/label", INPUT_LABEL, plain=True)
            self.text(block.get("hint"), at + "/hint", INPUT_HINT, plain=True, required=False)
            if "element" not in block:
                self.fail(at + "/element", "missing required field")
            else:
                self.element(block["element"], at + "/element", INPUT_ELEMENTS)
        elif kind == "image":
            self.image(block, at)
            self.text(block.get("title"), at + "/title", IMAGE_ALT, plain=True, required=False)
        elif kind == "markdown":
            self.length(block.get("text"), at + "/text", MARKDOWN_BLOCK_TEXT, min_len=1)


def _has_input(blocks: Any) -> bool:
    return isinstance(blocks, list) and any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)


def check_blocks(blocks: Any, *, limit: int = MESSAGE_BLOCKS, pointer: str = "/blocks") -> list[Problem]:
    """Problems of a bare ``blocks`` array (``limit`` blocks at most)."""
    checker = _Checker()
    checker.blocks(blocks, pointer, limit)
    return checker.problems


def check_message(
    blocks: Any = None,
    text: Any = None,
    *,
    text_limit: int = MESSAGE_TEXT,
) -> list[Problem]:
    """Problems Slack would report for a message with these ``blocks`` and ``text``.

    ``text_limit`` is 40,000 for new messages; ``chat.update`` allows 4,000
    (:data:`UPDATE_TEXT`).
    """
    checker = _Checker()
    if blocks is not None:
        checker.blocks(blocks, "/blocks", MESSAGE_BLOCKS)
    if text is not None:
        checker.length(text, "/text", text_limit)
    return checker.problems


def check_view(view: Any) -> list[Problem]:
    """Problems Slack would report for a modal or App Home ``view``."""
    checker = _Checker()
    if not isinstance(view, dict):
        checker.fail("/view", "must be a view object")
        return checker.problems
    kind = view.get("type")
    if kind not in ("modal", "home"):
        checker.fail("/view/type", "must be modal or home")
    if "blocks" not in view:
        checker.fail("/view/blocks", "missing required field")
    else:
        checker.blocks(view["blocks"], "/view/blocks", VIEW_BLOCKS)
    checker.length(view.get("private_metadata"), "/view/private_metadata", PRIVATE_METADATA)
    checker.length(view.get("callback_id"), "/view/callback_id", ID_LENGTH)
    checker.length(view.get("external_id"), "/view/external_id", ID_LENGTH)
    if kind == "modal":
        checker.text(view.get("title"), "/view/title", MODAL_TITLE, plain=True)
        checker.text(view.get("submit"), "/view/submit", MODAL_TITLE, plain=True, required=False)
        checker.text(view.get("close"), "/view/close", MODAL_TITLE, plain=True, required=False)
        if _has_input(view.get("blocks")) and "submit" not in view:
            checker.fail("/view/submit", "must provide submit when the view has input blocks")
    return checker.problems
