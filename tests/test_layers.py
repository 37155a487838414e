"""The house's layers, checked: imports point down (`core → storage / sources → engine →
operations → bot → connbot`), storage and sources do not import each other, and the Slack
emulator is its own package that connbot's runtime code never imports except the console."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RANK = {"core": 0, "storage": 1, "sources": 1, "engine": 2, "operations": 3, "bot": 4, "connbot": 5}
# The console drives the app against the local stand-in for Slack: its one legitimate user.
MAY_IMPORT_FAKESLACK = {"connbot/console.py", "connbot/console_render.py"}


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def _violations(root: Path = ROOT) -> list[str]:
    found = []
    for package in [*RANK, "fakeslack"]:
        for path in sorted((root / package).rglob("*.py")):
            where = path.relative_to(root).as_posix()
            for line, name in _imports(path):
                top = name.split(".")[0]
                if top == package:
                    continue
                if package == "fakeslack" and top in RANK:
                    found.append(f"{where}:{line} the emulator imports {name}")
                elif top == "fakeslack" and package != "fakeslack" and where not in MAY_IMPORT_FAKESLACK:
                    found.append(f"{where}:{line} imports the emulator ({name})")
                elif package in RANK and top in RANK and RANK[top] >= RANK[package]:
                    found.append(f"{where}:{line} {package} imports {name}")
    return found


def test_imports_point_down_the_layers():
    assert _violations() == []


def test_the_check_sees_a_violation(tmp_path):
    (tmp_path / "storage").mkdir()
    (tmp_path / "storage" / "x.py").write_text("from bot.app import create_app\nimport sources.base\n")
    assert _violations(tmp_path) == [
        "storage/x.py:1 storage imports bot.app",
        "storage/x.py:2 storage imports sources.base",
    ]
