"""Block Kit as text: what Slack would show, with every button, menu and input numbered.

Pure functions for `connbot console`. Control numbers start at 1 on each surface (a message,
a modal, the App Home); `Rendered.controls` says what each number acts on and, for menus,
which choices its option numbers stand for.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fakeslack.models import initial_state

# The emoji connbot uses, as a terminal can show them; others stay as :name:.
EMOJI = {
    "arrows_counterclockwise": "🔄",
    "double_vertical_bar": "⏸",
    "hourglass_flowing_sand": "⏳",
    "large_green_circle": "🟢",
    "link": "🔗",
    "no_entry_sign": "🚫",
    "red_circle": "🔴",
    "warning": "⚠️",
    "wastebasket": "🗑",
    "white_check_mark": "✅",
    "white_circle": "⚪",
}

TEXT_INPUTS = frozenset({"plain_text_input", "number_input", "email_text_input", "url_text_input"})
PICKERS = {"datepicker": "YYYY-MM-DD", "timepicker": "HH:MM"}
MULTI = frozenset(
    {
        "checkboxes",
        "multi_static_select",
        "multi_external_select",
        "multi_users_select",
        "multi_conversations_select",
        "multi_channels_select",
    }
)
SINGLE = frozenset(
    {
        "overflow",
        "static_select",
        "external_select",
        "radio_buttons",
        "users_select",
        "conversations_select",
        "channels_select",
    }
)
_STATE_KEYS = {
    "users_select": "selected_user",
    "conversations_select": "selected_conversation",
    "channels_select": "selected_channel",
    "multi_users_select": "selected_users",
    "multi_conversations_select": "selected_conversations",
    "multi_channels_select": "selected_channels",
}

WIDTH = 100  # where action rows and option lists wrap
INDENT = "      "

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ANGLE = re.compile(r"<([^<>|\n]+)(?:\|([^<>\n]*))?>")
_EMOJI_NAME = re.compile(r":([a-z0-9_+-]+):")
# Slack's formatting marks pair up only at word edges; `escape` (bot/blocks/common.py) puts a
# zero-width joiner after marks in user text, which is what keeps these from matching it.
_CODE = re.compile(r"`(?![\u200d`])([^`\n]+?)`(?!\u200d)")
_BOLD = re.compile(r"(?<![\w*])\*(?![\s\u200d*])([^*\n]*?[^\s*])\*(?![\w\u200d*])")
_ITALIC = re.compile(r"(?<![\w_])_(?![\s\u200d_])([^_\n]*?[^\s_])_(?![\w\u200d_])")
_STRIKE = re.compile(r"(?<![\w~])~(?![\s\u200d~])([^~\n]*?[^\s~])~(?![\w\u200d~])")


@dataclass(frozen=True)
class Directory:
    """Names for the ids in mrkdwn (<@U…>, <#C…>, <!subteam^S…>) and the choices of pickers."""

    users: Mapping[str, str] = field(default_factory=dict)
    channels: Mapping[str, str] = field(default_factory=dict)
    groups: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Style:
    """ANSI styling for a terminal; PLAIN (no escape codes) for transcripts and tests."""

    color: bool = False

    def _sgr(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color and text else text

    def bold(self, text: str) -> str:
        return self._sgr("1", text)

    def dim(self, text: str) -> str:
        return self._sgr("2", text)

    def italic(self, text: str) -> str:
        return self._sgr("3", text)

    def strike(self, text: str) -> str:
        return self._sgr("9", text)

    def code(self, text: str) -> str:
        return self._sgr("36", text)

    def warn(self, text: str) -> str:
        return self._sgr("33", text)


PLAIN = Style()
COLOR = Style(color=True)


@dataclass(frozen=True)
class Control:
    """A numbered element: a button, a menu, an input. `choices` are (label, value), from 1."""

    number: int
    block: dict
    element: dict
    choices: tuple[tuple[str, Any], ...] = ()

    @property
    def kind(self) -> str:
        return self.element.get("type", "")

    @property
    def is_input(self) -> bool:
        return self.block.get("type") == "input"


@dataclass
class Rendered:
    lines: list[str]
    controls: list[Control]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def width(text: str) -> int:
    """Terminal columns: wide characters (most emoji) take two, escape codes none."""
    text = _ANSI.sub("", text)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 0 if unicodedata.combining(ch) else 1 for ch in text)


def pad(text: str, columns: int) -> str:
    return text + " " * max(0, columns - width(text))


def render_blocks(
    blocks: list[dict] | None,
    directory: Directory = Directory(),
    *,
    state: Mapping[str, Mapping[str, dict]] | None = None,
    errors: Mapping[str, str] | None = None,
    style: Style = PLAIN,
) -> Rendered:
    """Blocks as lines. `state` ({block_id: {action_id: state}}) is what a modal's inputs hold
    now (initial values when absent); `errors` are a modal's errors by input block id."""
    renderer = _Renderer(directory, style, state or {}, errors or {})
    for block in blocks or []:
        renderer.block(block)
    return Rendered(renderer.lines, renderer.controls)


def render_message(
    text: str, blocks: list[dict] | None, directory: Directory = Directory(), *, style: Style = PLAIN
) -> Rendered:
    """A message: its blocks, or its `text` when it has none (as Slack shows it)."""
    if blocks:
        return render_blocks(blocks, directory, style=style)
    renderer = _Renderer(directory, style, {}, {})
    return Rendered(renderer.mrkdwn(text or "").split("\n"), [])


def mrkdwn_text(text: str, directory: Directory = Directory(), *, style: Style = PLAIN) -> str:
    return _Renderer(directory, style, {}, {}).mrkdwn(text)


def rule(
    title: str, label: str = "", *, char: str = "─", lead: str = "", style: Style = PLAIN, columns: int = 72
) -> str:
    """`── title ─────── label`: the heading of a surface (`lead` replaces the first two marks)."""
    head = f"{lead or char * 2} {title} "
    tail = f" {label}" if label else ""
    return style.dim(head + char * max(3, columns - width(head) - width(tail))) + style.bold(tail)


class _Renderer:
    def __init__(self, directory: Directory, style: Style, state: Mapping, errors: Mapping) -> None:
        self.directory = directory
        self.style = style
        self.state = state
        self.errors = errors
        self.lines: list[str] = []
        self.controls: list[Control] = []

    # ---- text objects ------------------------------------------------------------------

    def text(self, obj: Any) -> str:
        if not isinstance(obj, dict):
            return ""
        raw = str(obj.get("text", ""))
        if obj.get("type") == "mrkdwn":
            return self.mrkdwn(raw)
        return _emoji(raw) if obj.get("emoji", True) else raw

    def mrkdwn(self, text: str) -> str:
        s = self.style
        out = _ANGLE.sub(lambda m: self._angle(m[1], m[2]), text)
        out = _emoji(out)
        for pattern, paint in ((_CODE, s.code), (_BOLD, s.bold), (_ITALIC, s.italic), (_STRIKE, s.strike)):

            def painted(m: re.Match[str], paint: Callable[[str], str] = paint) -> str:
                return paint(m[1])

            out = pattern.sub(painted, out)
        return out.replace("\u200d", "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")

    def _angle(self, target: str, label: str | None) -> str:
        d = self.directory
        if target.startswith("@"):
            return "@" + (label or d.users.get(target[1:], target[1:]))
        if target.startswith("#"):
            return "#" + (label or d.channels.get(target[1:], target[1:]))
        if target.startswith("!subteam^"):
            group = target.removeprefix("!subteam^")
            return "@" + (label or d.groups.get(group, group))
        if target.startswith("!date^"):
            return label or target  # the fallback: the reader's own time zone needs a real client
        if target.startswith("!"):
            return "@" + target[1:]  # !here, !channel
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            return f"{label} ({target})" if label and label != target else target
        return f"<{target}>"  # not a link or mention: shown as written

    # ---- output ------------------------------------------------------------------------

    def out(self, line: str) -> None:
        self.lines.append(line)

    def control(self, block: dict, element: dict) -> Control:
        control = Control(len(self.controls) + 1, block, element, tuple(self._choices(element)))
        self.controls.append(control)
        return control

    def _choices(self, el: dict) -> list[tuple[str, Any]]:
        kind = el.get("type", "")
        if kind.endswith("users_select"):
            return [(f"@{name}", uid) for uid, name in self.directory.users.items()]
        if kind.endswith(("conversations_select", "channels_select")):
            return [(f"#{name}", cid) for cid, name in self.directory.channels.items()]
        options = list(el.get("options") or [])
        for group in el.get("option_groups") or []:
            options += group.get("options") or []
        return [(self.text(o.get("text")), o.get("value")) for o in options]

    # ---- blocks ------------------------------------------------------------------------

    def block(self, block: dict) -> None:
        kind = block.get("type")
        if kind == "header":
            title = self.text(block.get("text"))
            self.out(self.style.bold(title))
            self.out("═" * width(title))
        elif kind == "section":
            self.section(block)
        elif kind == "context":
            pieces = [
                self.text(e) if e.get("type") in ("mrkdwn", "plain_text") else f"[image: {e.get('alt_text', '')}]"
                for e in block.get("elements") or []
            ]
            for line in "  ".join(pieces).split("\n"):
                self.out("  " + self.style.dim(line))
        elif kind == "divider":
            self.out(self.style.dim("─" * 48))
        elif kind == "actions":
            self.actions(block)
        elif kind == "input":
            self.input(block)
        elif kind == "image":
            self.out(f"[image: {block.get('alt_text', '')}]")
        elif kind == "rich_text":
            for line in self.rich_text(block.get("elements") or []).split("\n"):
                self.out(line)
        else:
            self.out(self.style.dim(f"[{kind} block]"))

    def section(self, block: dict) -> None:
        inline, extra = self.inline(block, block["accessory"]) if block.get("accessory") else ("", [])
        lines = self.text(block.get("text")).split("\n") if block.get("text") else []
        if lines and inline:
            lines[0] += "   " + inline
        for line in lines:
            self.out(line)
        if block.get("fields"):
            self.fields([self.text(f) for f in block["fields"]])
        if inline and not lines:
            self.out(inline)
        for line in extra:
            self.out(line)

    def fields(self, texts: list[str]) -> None:
        """Two columns, as Slack lays fields out, when they fit; else one a line."""
        left, right = texts[0::2], texts[1::2]
        single = any("\n" in t for t in texts) or any(width(t) > 44 for t in texts)
        if single:
            for t in texts:
                for line in t.split("\n"):
                    self.out("  " + line)
            return
        columns = max(30, max(width(t) for t in left) + 4)  # most cards line up
        for i, first in enumerate(left):
            second = right[i] if i < len(right) else ""
            self.out(("  " + pad(first, columns) + second).rstrip())

    def actions(self, block: dict) -> None:
        parts, extra = [], []
        for el in block.get("elements") or []:
            text, more = self.inline(block, el)
            parts.append(text)
            extra += more
        line = ""
        for part in parts:  # wrapped between elements, never inside one
            if line and width(line) + 2 + width(part) > WIDTH:
                self.out(line)
                line = part
            else:
                line = f"{line}  {part}" if line else part
        if line:
            self.out(line)
        for text in extra:
            self.out(text)

    def inline(self, block: dict, el: dict) -> tuple[str, list[str]]:
        """An element in a section or actions block: its text, and lines listing its options."""
        c = self.control(block, el)
        number = f"[{c.number}]"
        if c.kind == "button":
            mark = {"primary": "*", "danger": "!"}.get(el.get("style", ""), "")
            return self.style.bold(f"{number} {self.text(el.get('text'))}{mark}") + (" ↗" if el.get("url") else ""), []
        if c.kind == "overflow":
            return f"{number} ⋯ " + " / ".join(label for label, _ in c.choices), []
        if c.kind in SINGLE or c.kind in MULTI:
            chosen = self._chosen(block, el, c)
            shown = (
                ", ".join(label for label, value in c.choices if value in chosen)
                or self.text(el.get("placeholder"))
                or "choose"
            )
            return f"{number} ▾ {shown}", self.options(c, chosen)
        if c.kind in PICKERS:
            value = self._value(block, el) or self.text(el.get("placeholder")) or PICKERS[c.kind]
            return f"{number} {value} ({PICKERS[c.kind]})", []
        return f"{number} [{c.kind}]", []

    def options(self, c: Control, chosen: set) -> list[str]:
        """`1 Hourly · 2 ✓Daily · …`, wrapped."""
        lines, line = [], ""
        for i, (label, value) in enumerate(c.choices, 1):
            part = f"{i} {'✓' if value in chosen else ''}{label}"
            if line and width(INDENT + line) + 3 + width(part) > WIDTH:
                lines.append(INDENT + line)
                line = part
            else:
                line = f"{line} · {part}" if line else part
        if line:
            lines.append(INDENT + line)
        return lines

    def input(self, block: dict) -> None:
        el = block.get("element") or {}
        c = self.control(block, el)
        head = f"[{c.number}] {self.text(block.get('label'))}{' (optional)' if block.get('optional') else ''}"
        if c.kind in TEXT_INPUTS or c.kind in PICKERS:
            value = self._value(block, el)
            shown = value if value not in (None, "") else "(empty)"
            how = " · Enter sends it" if block.get("dispatch_action") else ""
            fmt = f"   {PICKERS[c.kind]}" if c.kind in PICKERS else ""
            self.out(f"{head}: {shown}{fmt}" + (self.style.dim(how) if how else ""))
        elif c.kind in ("radio_buttons", "checkboxes"):
            self.out(f"{head}:")
            chosen = self._chosen(block, el, c)
            options = el.get("options") or []
            for i, (label, value) in enumerate(c.choices, 1):
                on = value in chosen
                mark = ("◉" if on else "○") if c.kind == "radio_buttons" else ("☑" if on else "☐")
                described = options[i - 1].get("description") if i <= len(options) else None
                note = self.style.dim(" — " + self.text(described)) if described else ""
                self.out(f"{INDENT}{mark} {i} {label}{note}")
        elif c.kind.endswith("external_select"):  # its options come from the app when opened
            state = self._state(block, el)
            options = state.get("selected_options") or [state.get("selected_option") or {}]
            shown = ", ".join(self.text(o["text"]) for o in options if o.get("text")) or "(none)"
            self.out(f"{head}: {shown}")
            self.out(INDENT + self.style.dim(f"`{c.number}` lists the options connbot offers"))
        elif c.kind in SINGLE or c.kind in MULTI:
            chosen = self._chosen(block, el, c)
            shown = ", ".join(label for label, value in c.choices if value in chosen) or "(none)"
            self.out(f"{head}: {shown}")
            for line in self.options(c, chosen):
                self.out(line)
        else:
            self.out(f"{head}: [{c.kind}]")
        if block.get("hint"):
            self.out(INDENT + self.style.dim(self.text(block["hint"])))
        if self.errors.get(block.get("block_id")):
            self.out(INDENT + self.style.warn("⚠ " + self.errors[block["block_id"]]))

    # ---- state -------------------------------------------------------------------------

    def _state(self, block: dict, el: dict) -> dict:
        found = self.state.get(block.get("block_id"), {}).get(el.get("action_id"))
        return found if found is not None else (initial_state(el) or {})

    def _value(self, block: dict, el: dict) -> Any:
        state = self._state(block, el)
        return state.get("value", state.get("selected_date", state.get("selected_time")))

    def _chosen(self, block: dict, el: dict, c: Control) -> set:
        state = self._state(block, el)
        if c.kind in _STATE_KEYS:
            value = state.get(_STATE_KEYS[c.kind])
            return set(value) if isinstance(value, list) else {value} - {None}
        options = state.get("selected_options") or ([state["selected_option"]] if state.get("selected_option") else [])
        return {o.get("value") for o in options}

    # ---- rich text (people's messages) ---------------------------------------------------

    def rich_text(self, elements: list[dict]) -> str:
        out = []
        for el in elements:
            kind = el.get("type")
            if kind == "rich_text_list":
                out.append("\n".join("• " + self.rich_text([item]) for item in el.get("elements") or []))
            elif kind == "rich_text_quote":
                out.append("> " + self._inline_rich(el.get("elements") or []))
            else:  # rich_text_section, rich_text_preformatted
                out.append(self._inline_rich(el.get("elements") or []))
        return "\n".join(out)

    def _inline_rich(self, parts: list[dict]) -> str:
        d = self.directory
        text = ""
        for p in parts:
            kind = p.get("type")
            if kind == "text":
                text += p.get("text", "")
            elif kind == "user":
                text += "@" + d.users.get(p.get("user_id", ""), p.get("user_id", ""))
            elif kind == "channel":
                text += "#" + d.channels.get(p.get("channel_id", ""), p.get("channel_id", ""))
            elif kind == "usergroup":
                text += "@" + d.groups.get(p.get("usergroup_id", ""), p.get("usergroup_id", ""))
            elif kind == "link":
                text += p.get("text") or p.get("url", "")
            elif kind == "emoji":
                text += EMOJI.get(p.get("name", ""), f":{p.get('name', '')}:")
            elif kind == "broadcast":
                text += "@" + p.get("range", "")
        # SlackUser.say puts the raw text (<@U…> mentions included) into one text element.
        return self.mrkdwn(text)


def _emoji(text: str) -> str:
    return _EMOJI_NAME.sub(lambda m: EMOJI.get(m[1], m[0]), text)
