"""Checks of typed input, shared by every form: clear messages that say what to do."""

from __future__ import annotations

import unicodedata

from core.errors import InvalidInput

MAX_TEXT = 4000


def clean_text(value: str | None, *, field: str, label: str, required: bool = True, max_length: int = MAX_TEXT) -> str:
    """Strip, refuse control characters and over-long text."""
    text = (value or "").strip()
    if not text:
        if required:
            raise InvalidInput(f"{label} is required.", {field: f"Enter the {label.lower()}."})
        return ""
    if len(text) > max_length:
        raise InvalidInput(
            f"{label} is too long.",
            {field: f"{label} can be at most {max_length:,} characters; this is {len(text):,}."},
        )
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise InvalidInput(
            f"{label} contains control characters.",
            {field: f"Remove line breaks and control characters from the {label.lower()}."},
        )
    return text
