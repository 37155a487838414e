"""Every metric connbot exports, in Prometheus' terms (docs/OPERATIONS.md explains each).

They are counted at a few seams, never in handlers: the Slack request entry and the Web API
client (bot/telemetry.py), the one error renderer (bot/errors.py), and subscribers to the engine's
events (connbot/metrics.py, which also reads the gauges at scrape time and serves /metrics).

Labels are bounded: kinds of Slack request, outcomes, Slack method names and error codes, source
names. Never a connection id or name, a team, user text or a secret. What reaches a label comes
from such a small set already; `label` guards it, keeping a value only if it looks like an
identifier and counting anything else as "other".
"""

from __future__ import annotations

import re

from prometheus_client import Counter, Histogram

_LABEL = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def label(value: object) -> str:
    text = str(value)
    return text if _LABEL.fullmatch(text) else "other"


# -- Slack --------------------------------------------------------------------------------------

SLACK_REQUESTS = Counter(
    "connbot_slack_requests",
    "Requests from Slack (slash commands, interactions, events) by kind and how they were answered",
    ["kind", "outcome"],
)
SLACK_ACK_SECONDS = Histogram(
    "connbot_slack_ack_seconds",
    "Time from a Slack request's arrival to its acknowledgement (Slack gives up after 3 s)",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0),
)
SLACK_ERRORS_SHOWN = Counter(
    "connbot_slack_errors_shown",
    "Errors shown to people (in Slack, or on a sign-in page), by kind (unexpected: 'Something went wrong', a bug)",
    ["error"],
)
SLACK_API_REQUESTS = Counter(
    "connbot_slack_api_requests",
    "HTTP requests to Slack's Web API (each retry is one) by method and outcome: ok, Slack's error code, "
    "ratelimited, http_<status> or connection_error",
    ["method", "outcome"],
)
SLACK_API_RATE_LIMITED = Counter(
    "connbot_slack_api_rate_limited",
    "Web API requests Slack answered with HTTP 429 (the client waits Retry-After and retries, at most 3 times)",
    ["method"],
)

# -- the engine ---------------------------------------------------------------------------------

_WORK_BUCKETS = (0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200)

ACCOUNT_SYNCS = Counter("connbot_account_syncs", "Account syncs finished, by source and outcome", ["source", "outcome"])
ACCOUNT_SYNC_SECONDS = Histogram(
    "connbot_account_sync_seconds", "Duration of account syncs", ["source"], buckets=_WORK_BUCKETS
)
ACCOUNTS_READ = Counter("connbot_accounts_read", "Accounts read from sources by account syncs", ["source"])
EXTRACTION_RUNS = Counter(
    "connbot_extraction_runs", "Extraction runs finished, by source and outcome", ["source", "outcome"]
)
EXTRACTION_RUN_SECONDS = Histogram(
    "connbot_extraction_run_seconds", "Duration of extraction runs", ["source"], buckets=_WORK_BUCKETS
)
ROWS_LOADED = Counter("connbot_rows_loaded", "Rows loaded into the warehouse by extraction runs", ["source"])
CREDENTIALS_ERRORS = Counter(
    "connbot_credentials_errors", "Connections whose credentials turned to Error (each opens an alert)", ["source"]
)
