"""`connbot console`: the renderer on its own, a scripted session end to end, and a person at a
terminal (a pseudo-terminal: `connbot console` and `make run`)."""

import io
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pexpect

from connbot.console import ALERTS, Console, open_workspace
from connbot.console_render import Directory, mrkdwn_text, render_blocks, render_message
from core.settings import load_settings

BIN = Path(sys.executable).parent
CONNBOT = str(BIN / "connbot")
REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).with_name("console_script.txt")


def plain(text):
    return {"type": "plain_text", "text": text, "emoji": False}


def mrkdwn(text):
    return {"type": "mrkdwn", "text": text}


def clean_env(**extra):
    """No Slack settings: empty values also keep a developer's .env from supplying them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CONNBOT_"))}
    return {**env, "SLACK_BOT_TOKEN": "", "SLACK_SIGNING_SECRET": "", **extra}


# ---- the renderer ---------------------------------------------------------------------------


def test_a_card_renders_with_its_buttons_and_menus_numbered():
    delete = {
        "type": "button",
        "text": plain("Delete"),
        "action_id": "del",
        "style": "danger",
        "confirm": {
            "title": plain("Sure?"),
            "text": plain("Really."),
            "confirm": plain("Delete"),
            "deny": plain("Cancel"),
        },
    }
    blocks = [
        {"type": "header", "text": plain("Demo Ads · Acme Retail")},
        {
            "type": "section",
            "fields": [
                mrkdwn("*Credentials status:* :large_green_circle: Active"),
                plain("Business account ID: biz_0001"),
                mrkdwn("*Active accounts:* 33 active of 40"),
            ],
            "accessory": {"type": "button", "text": plain("Extract"), "action_id": "x", "style": "primary"},
        },
        {
            "type": "actions",
            "block_id": "tabs",
            "elements": [
                {"type": "button", "text": plain("Extraction orders"), "action_id": "t.o", "style": "primary"},
                {"type": "button", "text": plain("Accounts"), "action_id": "t.a"},
                delete,
            ],
        },
        {"type": "divider"},
        {
            "type": "section",
            "text": plain("Campaigns by day"),
            "accessory": {
                "type": "overflow",
                "action_id": "menu",
                "options": [{"text": plain("Run now"), "value": "run"}, {"text": plain("Pause"), "value": "pause"}],
            },
        },
        {
            "type": "context",
            "elements": [
                mrkdwn(":large_green_circle: *Active*"),
                mrkdwn("next <!date^1764313200^{date_short}|2025-11-28 07:00 UTC>"),
            ],
        },
        {
            "type": "actions",
            "elements": [
                {
                    "type": "conversations_select",
                    "action_id": "ch",
                    "placeholder": plain("Alert channel (default)"),
                    "initial_conversation": "C2",
                }
            ],
        },
    ]
    rendered = render_blocks(blocks, Directory(channels={"C1": "data-team", "C2": "data-alerts"}))
    assert rendered.lines == [
        "Demo Ads · Acme Retail",
        "══════════════════════",
        "  Credentials status: 🟢 Active       Business account ID: biz_0001",
        "  Active accounts: 33 active of 40",
        "[1] Extract*",
        "[2] Extraction orders*  [3] Accounts  [4] Delete!",
        "─" * 48,
        "Campaigns by day   [5] ⋯ Run now / Pause",
        "  🟢 Active  next 2025-11-28 07:00 UTC",
        "[6] ▾ #data-alerts",
        "      1 #data-team · 2 ✓#data-alerts",
    ]
    assert [(c.number, c.kind, c.element["action_id"]) for c in rendered.controls] == [
        (1, "button", "x"),
        (2, "button", "t.o"),
        (3, "button", "t.a"),
        (4, "button", "del"),
        (5, "overflow", "menu"),
        (6, "conversations_select", "ch"),
    ]
    assert rendered.controls[4].choices == (("Run now", "run"), ("Pause", "pause"))
    assert rendered.controls[5].choices == (("#data-team", "C1"), ("#data-alerts", "C2"))


def test_mrkdwn_reads_as_slack_shows_it_and_escaped_user_text_stays_literal():
    directory = Directory(users={"U1": "ada"}, channels={"C1": "data-team"}, groups={"S1": "csm"})
    text = (
        "<@U1> in <#C1> asks <!subteam^S1> · *bold* _it_ `code` ~gone~ · <https://x.example|docs> · "
        "*\u200dnot bold*\u200d &lt;b&gt; &amp; :red_circle: :unknown: snake_case_name"
    )
    assert mrkdwn_text(text, directory) == (
        "@ada in #data-team asks @csm · bold it code gone · docs (https://x.example) · "
        "*not bold* <b> & 🔴 :unknown: snake_case_name"
    )


def test_modal_inputs_show_what_they_hold_their_options_hints_and_errors():
    def option(text, value, description=None):
        return {"text": plain(text), "value": value, **({"description": plain(description)} if description else {})}

    blocks = [
        {
            "type": "input",
            "block_id": "name",
            "label": plain("Order name"),
            "element": {"type": "plain_text_input", "action_id": "value", "initial_value": "Old"},
        },
        {
            "type": "input",
            "block_id": "days",
            "optional": True,
            "label": plain("Depth, in days"),
            "hint": plain("Or a date."),
            "element": {"type": "number_input", "action_id": "value", "is_decimal_allowed": False},
        },
        {
            "type": "input",
            "block_id": "accounts",
            "label": plain("Accounts"),
            "element": {
                "type": "checkboxes",
                "action_id": "value",
                "options": [option("Ads UK", "1", "act_1"), option("Ads US", "2")],
            },
        },
        {
            "type": "input",
            "block_id": "template",
            "label": plain("Template"),
            "element": {
                "type": "radio_buttons",
                "action_id": "value",
                "options": [option("By day", "day"), option("By ad", "ad")],
            },
        },
        {
            "type": "input",
            "block_id": "kind",
            "label": plain("Schedule"),
            "element": {
                "type": "static_select",
                "action_id": "value",
                "options": [option("Hourly", "h"), option("Daily", "d")],
                "initial_option": option("Daily", "d"),
            },
        },
        {
            "type": "input",
            "block_id": "since",
            "optional": True,
            "label": plain("Since"),
            "element": {"type": "datepicker", "action_id": "value"},
        },
    ]
    state = {
        "name": {"value": {"type": "plain_text_input", "value": "Typed"}},
        "accounts": {"value": {"type": "checkboxes", "selected_options": [option("Ads US", "2")]}},
    }
    rendered = render_blocks(blocks, state=state, errors={"template": "Choose one."})
    assert rendered.lines == [
        "[1] Order name: Typed",
        "[2] Depth, in days (optional): (empty)",
        "      Or a date.",
        "[3] Accounts:",
        "      ☐ 1 Ads UK — act_1",
        "      ☑ 2 Ads US",
        "[4] Template:",
        "      ○ 1 By day",
        "      ○ 2 By ad",
        "      ⚠ Choose one.",
        "[5] Schedule: Daily",
        "      1 Hourly · 2 ✓Daily",
        "[6] Since (optional): (empty)   YYYY-MM-DD",
    ]
    assert all(c.is_input for c in rendered.controls)


def test_a_message_without_blocks_shows_its_text_and_peoples_messages_their_rich_text():
    directory = Directory(users={"U0BOT": "connbot"})
    assert render_message("Done for <@U0BOT>", None, directory).lines == ["Done for @connbot"]
    said = [
        {
            "type": "rich_text",
            "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": "<@U0BOT> status 2"}]}],
        }
    ]
    assert render_message("<@U0BOT> status 2", said, directory).lines == ["@connbot status 2"]


# ---- a scripted session, end to end ---------------------------------------------------------------


def test_scripted_session_list_open_tabs_sync_extract_and_delete(tmp_path):
    result = subprocess.run(
        [CONNBOT, "console", "--script", str(SCRIPT)],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr
    assert "To use a real Slack workspace instead" in out and "SLACK_SIGNING_SECRET" in out
    assert "1: extraction order “Campaigns by day · daily”" in out  # the seeded workspace
    assert "── connbot · #data-alerts" in out and "Credentials error: Demo Ads · Globex Travel" in out

    def after(typed: str) -> str:
        """What was printed after the prompt line `typed`, up to the next prompt line."""
        rest = out.split("\n" + typed + "\n", 1)[1]
        return re.split(r"^(?:m\d+|modal|home)?› ", rest, maxsplit=1, flags=re.MULTILINE)[0]

    assert "Connected sources" in after("m1› /connections")
    card = after("m2› 2")
    assert "Demo Ads · Acme Retail" in card and "[2] Extraction orders*  [3] Accounts  [4] Settings" in card
    assert (
        "Campaigns by day · daily   [6] ⋯ Run now / Pause / Run history / Turn off too-few-rows alerts / Delete order…"
        in card
    )
    assert "last 1 run 🟩" in card
    assert "[6] Sync accounts" in after("m3› 3")
    assert "Recent activity" in after("m3› 4") and "[7] Delete connection!" in after("m3› 4")
    assert "Last sync" in after("m3› 6") and "by @you" in after("m3› 6")  # the sync ran and the card updated in place

    assert "Extract · step 1 of 4" in after("m3› 1")
    assert "☑ 1 *Bold* _Italic_ ~Strike~ `Code`" in after("modal› 2 1 3")  # user text stays literal
    assert "Active accounts 11–20 of 33" in after("modal› 3")
    assert "Extract · step 2 of 4" in out and "◉ 1 Campaigns by day" in after("modal› 1 1")
    assert "Extract · step 3 of 4" in out and "[1] Order name: Campaigns by day · 3 accounts" in out
    assert "Extract · step 4 of 4" in out and "Accounts (3):" in out
    assert "Created the extraction order “Campaigns by day · 3 accounts”" in out
    created = out.split("Created the extraction order", 1)[1].split("modal› cancel", 1)[0]
    # The first run's card, once it has finished (an ephemeral card that said "running" could not be updated).
    assert "running" not in created
    assert re.search(
        r"🟢 Active  Campaigns by day · 3 accounts · Daily at 06:00 UTC  last run .* rows · succeeded", created
    )
    assert "the modal closed" in after("modal› cancel")

    deleted = after("m4› 7")
    assert "Delete this connection?" in deleted and "y: Delete · n: Cancel" in deleted
    assert "confirm? [y/N] y" in out
    assert "🗑 Demo Ads · Acme Retail was deleted." in out.split("confirm? [y/N] y", 1)[1]


def play(tmp_path, typed: str) -> subprocess.CompletedProcess:
    """`connbot console --script -` on what was typed, in a workspace kept in `tmp_path`."""
    return subprocess.run(
        [CONNBOT, "console", "--script", "-"],
        cwd=tmp_path,
        env=clean_env(),
        input=typed,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_script_stops_at_input_it_cannot_act_on(tmp_path):
    result = play(tmp_path, "/connections\n42\n/connections 1\n")
    assert result.returncode == 2
    assert "⚠ m2 has no [42]; its numbers go from 1 to 4." in result.stdout
    assert "m2› /connections 1" not in result.stdout


def test_the_workspace_settings_are_changed_from_the_app_home_with_options_the_app_offers(tmp_path):
    # The Home's Settings ([6]); the admins' user-group picker ([5]) lists what connbot offers.
    assert "[5] offers: 1 @csm" in play(tmp_path, "home\n6\n5\n").stdout
    result = play(tmp_path, "home\n6\n5 1\n4 2\nsubmit\n")
    assert result.returncode == 0, result.stdout
    home = result.stdout.rsplit("modal› submit", 1)[1]
    assert "Admins: @you, @csm" in home and "Saved by @you" in home


# ---- at a terminal ------------------------------------------------------------------------------


def test_a_person_at_a_terminal_lists_opens_and_leaves(tmp_path):
    child = pexpect.spawn(
        CONNBOT,
        ["console"],
        cwd=str(tmp_path),
        env=clean_env(TERM="xterm"),
        encoding="utf-8",
        timeout=30,
        dimensions=(50, 140),
    )
    try:
        child.expect("To use a real Slack workspace instead")
        child.expect("Credentials error")  # the seed broke Globex's credentials: the alert is posted
        child.expect("m1› ")
        child.sendline("/connections")
        child.expect("Connected sources")
        child.expect("m2› ")
        child.sendline("2")
        child.expect("Acme Retail")
        child.expect("Extraction orders")
        child.expect("m3› ")
        child.sendline("3")
        child.expect("Sync accounts")
        child.expect("m3› ")
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_make_run_without_slack_settings_seeds_data_and_opens_the_console(tmp_path):
    # The Makefile's run target in a fresh directory; the venv is there already (BIN), so a
    # stamp newer than pyproject.toml and uv.lock keeps make from reinstalling it.
    for name in ("pyproject.toml", "uv.lock"):
        (tmp_path / name).touch()
        os.utime(tmp_path / name, (0, 0))
    (tmp_path / "stamp").touch()
    child = pexpect.spawn(
        "make",
        ["-f", str(REPO / "Makefile"), "run", f"BIN={BIN}", "STAMP=stamp"],
        cwd=str(tmp_path),
        env=clean_env(TERM="xterm"),
        encoding="utf-8",
        timeout=30,
    )
    try:
        child.expect("what to try|Try:")
        child.expect("1: healthy, 40 accounts")
        child.expect("› ")
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert (tmp_path / "data" / "connbot.db").exists()


def test_what_happens_while_you_are_at_the_prompt_is_printed_and_a_changed_screen_stops_a_stale_number(tmp_path):
    settings = load_settings({"CONNBOT_DATA_DIR": str(tmp_path)}, dotenv=False)
    out = io.StringIO()
    typed: queue.Queue = queue.Queue()
    prompts: queue.Queue = queue.Queue()

    def read(prompt):
        prompts.put(prompt)
        return typed.get(timeout=30)

    def shown(text, timeout=15.0):
        deadline = time.monotonic() + timeout
        while text not in out.getvalue():
            assert time.monotonic() < deadline, f"{text!r} never shown:\n{out.getvalue()[-2000:]}"
            time.sleep(0.05)

    with open_workspace(settings) as workspace:
        console = Console(workspace, out, interactive=True)
        session = threading.Thread(target=console.run, args=(read,))
        session.start()
        assert prompts.get(timeout=30) == "m1› "  # the seed's alert
        typed.put("/connections 1")
        assert prompts.get(timeout=30) == "m2› "
        # An on-call teammate's post arrives while you are typing a button number for m2.
        workspace.fake.api(
            "chat.postMessage",
            channel=ALERTS[0],
            text="Heads-up",
            blocks=[
                {
                    "type": "section",
                    "text": mrkdwn("Heads-up: *maintenance* at 18:00"),
                    "accessory": {"type": "button", "text": plain("Acknowledge"), "action_id": "ack"},
                }
            ],
        )
        shown("Heads-up: maintenance at 18:00   [1] Acknowledge")
        assert out.getvalue().endswith("m3› ")  # the prompt is drawn again below it
        typed.put("1")
        shown("The screen changed while you typed: numbers now act on m3")
        typed.put("exit")
        session.join(timeout=30)
    assert not session.is_alive()
    assert workspace.fake.problems() == []
