"""A fake of the Marketing API endpoints `facebook_ads` uses, built from the documented shapes:
`data` + `paging.next` (absolute URLs carrying the token), metrics as strings, `actions` lists,
the asynchronous report run (whose failure reports its error fields from v25.0), and
`{"error": {...}}` bodies, at any HTTP status (`fb_error(..., status=200)` too)."""

from __future__ import annotations

import json
import re
import ssl
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from platforms.fakes_http import FakeServer, Reply, Request

VERSION = "v21.0"
COMPLETED = [("Job Not Started", 0), ("Job Running", 40), ("Job Completed", 100)]


def fb_error(code: int, message: str, subcode: int | None = None, status: int = 400, headers=None, **extra) -> Reply:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf", **extra}
    if subcode is not None:
        error["error_subcode"] = subcode
    return Reply(status, {"error": error}, headers or {})


def run_error(code: int, message: str, subcode: int | None = None) -> dict[str, Any]:
    """The error fields of a failed AdReportRun (Graph API v25.0 and later)."""
    fields: dict[str, Any] = {"error_code": code, "error_message": message, "error_user_msg": message}
    if subcode is not None:
        fields["error_subcode"] = subcode
    return fields


def buc_headers(minutes: int) -> dict[str, str]:
    usage = {
        "900": [
            {
                "type": "ads_insights",
                "call_count": 100,
                "total_cputime": 40,
                "total_time": 60,
                "estimated_time_to_regain_access": minutes,
            }
        ]
    }
    return {"X-Business-Use-Case-Usage": json.dumps(usage)}


@dataclass
class Login:
    user: dict[str, str]
    ads_read: bool = True
    businesses: list[dict[str, str]] | None = field(default_factory=list)  # None: edge refused


# account_status of each fake account: every documented code once.
STATUSES = (1, 2, 3, 7, 8, 9, 100, 101, 1)


class FakeGraph:
    def __init__(self, tls: ssl.SSLContext | None = None):
        self.logins: dict[str, Login] = {}
        self.accounts = [
            {
                "id": f"act_{100 + n}",
                "account_id": str(100 + n),
                "name": f"Account {n} & <Co>",
                "account_status": status,
                "currency": "EUR",
                "timezone_name": "Europe/Berlin",
            }
            for n, status in enumerate(STATUSES)
        ]
        self.job_states = list(COMPLETED)  # what the next report run goes through
        # The error fields a failed run reports (from v25.0, when asked for), e.g. run_error(100, ...).
        self.run_error: dict[str, Any] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.server = FakeServer(self.handle, tls)
        self.url = self.server.url

    def add_login(self, token: str, **kwargs) -> Login:
        login = self.logins[token] = Login(user={"id": "10", "name": "Ann Admin"}, **kwargs)
        return login

    def close(self) -> None:
        self.server.close()

    # --- endpoints -----------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        login = self.logins.get(request.bearer)
        if login is None:
            return fb_error(190, "Invalid OAuth access token - Cannot parse access token", status=401)
        path = re.sub(r"^/v[0-9]+\.[0-9]+/", "", request.path)  # any version the source is set to
        parts = path.split("/")
        if path == "me":
            return Reply(body=_pick(login.user, request.query.get("fields", "id")))
        if path == "me/businesses":
            if login.businesses is None:
                return fb_error(200, "(#200) Requires business_management permission", status=403)
            return self._page(request, login.businesses)
        if path == "me/adaccounts":
            if not login.ads_read:
                return fb_error(200, "(#200) Requires either ads_management or ads_read permission", status=403)
            return self._page(request, self.accounts, lambda account: _pick(account, request.query["fields"]))
        if len(parts) == 2 and parts[0].startswith("act_") and parts[1] == "insights":
            params = request.form() if request.method == "POST" else request.query
            rows = self.insights(parts[0], params)
            if request.method == "GET":
                return self._page(request, rows)
            run_id = str(6000 + len(self.runs))
            self.runs[run_id] = {"states": list(self.job_states), "rows": rows, "polls": 0, "status": ""}
            return Reply(body={"report_run_id": run_id})
        if parts[0] in self.runs:
            run = self.runs[parts[0]]
            if len(parts) == 1:
                status, percent = run["states"][min(run["polls"], len(run["states"]) - 1)]
                run["polls"] += 1
                run["status"] = status
                body = {"id": parts[0], "async_status": status, "async_percent_completion": percent}
                if status == "Job Failed":
                    body.update(self.run_error)
                return Reply(body=_pick(body, request.query.get("fields", "id")))
            if run["status"] != "Job Completed":
                return fb_error(100, "Report not ready")
            return self._page(request, run["rows"])
        return fb_error(100, f"Unsupported get request. Object with ID '{path}' does not exist")

    def insights(self, account: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """Rows of `level` per day of `time_range`: 2 campaigns, 2 ad sets each, 1 ad each."""
        assert params["time_increment"] == "1", params
        level = params["level"]
        span = json.loads(params["time_range"])
        first, last = date.fromisoformat(span["since"]), date.fromisoformat(span["until"])
        number = account.removeprefix("act_")
        rows = []
        for day in range((last - first).days + 1):
            for campaign in (1, 2):
                for adset in (1, 2) if level in ("adset", "ad") else (0,):
                    rows.append(_insight(number, level, first + timedelta(day), day, campaign, adset))
        wanted = {*params["fields"].split(","), "date_start", "date_stop"}
        return [{k: v for k, v in row.items() if k in wanted} for row in rows]

    def _page(self, request: Request, rows: list[dict[str, Any]], pick=lambda row: row) -> Reply:
        """The page the request asks for, each row as `pick` makes it."""
        limit = int(request.query.get("limit", 25))
        offset = int(request.query.get("after", 0))
        body: dict[str, Any] = {"data": [pick(row) for row in rows[offset : offset + limit]]}
        if offset + limit < len(rows):
            # As the Graph API does: an absolute URL repeating the query, token included.
            query = {**request.query, "after": offset + limit, "access_token": request.bearer}
            body["paging"] = {
                "cursors": {"before": "MAZDZD", "after": "MjQZD"},
                "next": f"{self.url}{request.path}?{urlencode(query)}",
            }
        return Reply(body=body)


def _pick(row: dict[str, Any], fields: str) -> dict[str, Any]:
    return {k: row[k] for k in fields.split(",") if k in row}


def _insight(number: str, level: str, day: date, index: int, campaign: int, adset: int) -> dict[str, Any]:
    """Figures as the API sends them: strings. Campaign 2 has no actions at all."""
    campaign_id = f"{number}00{campaign}"
    row: dict[str, Any] = {
        "account_id": number,
        "account_name": f"Account {number}",
        "account_currency": "EUR",
        "campaign_id": campaign_id,
        "campaign_name": f"Campaign {campaign}",
        "objective": "OUTCOME_SALES",
        "impressions": str(1000 * campaign + index),
        "clicks": str(10 * campaign),
        "spend": f"{12 * campaign}.34",
        "reach": str(900 * campaign),
        "frequency": "1.111111",
        "ctr": "1.234567",
        "cpc": "1.234",
        "cpm": "5.123456",
        "inline_link_clicks": "7",
        "date_start": day.isoformat(),
        "date_stop": day.isoformat(),
    }
    if level in ("adset", "ad"):
        row.update(adset_id=f"{campaign_id}{adset}", adset_name=f"Ad set {campaign}.{adset}")
    if level == "ad":
        row.update(ad_id=f"{campaign_id}{adset}9", ad_name=f"Ad {campaign}.{adset}")
    if campaign == 1:
        row["actions"] = [
            {"action_type": "link_click", "value": "7"},
            {"action_type": "purchase", "value": "3"},
            {"action_type": "offsite_conversion.fb_pixel_purchase", "value": "3"},
            {"action_type": "lead", "value": "2.0"},
        ]
        row["action_values"] = [{"action_type": "purchase", "value": "149.97"}]
    return row
