"""The plain HTML pages connbot serves to a browser: after a data source's sign-in
(connbot/oauth.py) and after an "Add to Slack" (bot/installations.py). Everything is escaped;
nothing is cached, nothing leaks through a Referer, nothing runs."""

from __future__ import annotations

import html

# No caching of pages that follow a one-time code; no Referer carrying it to anyone else.
PAGE_HEADERS = [
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'"),
]


def html_page(title: str, message: str, link: tuple[str, str] | None = None) -> bytes:
    """A page saying `message` under `title`, with an optional (text, URL) link below."""
    title, message = html.escape(title), html.escape(message)
    below = f'<p><a href="{html.escape(link[1])}">{html.escape(link[0])}</a></p>' if link else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title} · connbot</title>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em}</style>"
        f"</head><body><h1>{title}</h1><p>{message}</p>{below}</body></html>\n"
    ).encode()
