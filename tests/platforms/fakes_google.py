"""A fake of the Google OAuth token endpoint and of the Google Ads REST endpoints `google_ads`
uses, built from the documented shapes: `resourceNames`, searchStream answers as a JSON array
of batches with `results` in camelCase, int64 as strings, zero values left out, and errors as a
google.rpc.Status with GoogleAdsFailure details, in each shape the API sends: a bare
`{"error": {...}}` from unary methods, `[{"error": {...}}]` from searchStream, and an error as the
last element of a stream that already sent result batches (HTTP 200).

The hierarchy:

    1111111111 Acme MCC (manager, accessible)
    ├── 2222222222 Acme DE           ENABLED
    ├── 3333333333 Acme Old          CANCELED
    └── 4444444444 Acme Regional (manager)
        └── 5555555555 Acme FR       SUSPENDED
    6666666666 Solo Shop             ENABLED, accessible
    7777777777 Closed Co             accessible, but CUSTOMER_NOT_ENABLED when read
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from platforms.fakes_http import FakeServer, Reply, Request

VERSION = "v18"
FAILURE = f"type.googleapis.com/google.ads.googleads.{VERSION}.errors.GoogleAdsFailure"


def ads_error(http: int, status: str, kind: str, value: str, message: str, *, array: bool = False, **extra) -> Reply:
    """A Google Ads API error; `retry_delay` adds quota error details, `headers` goes out.
    `array`: wrapped as searchStream answers it, `[{"error": {...}}]`; else the bare object of
    unary methods (listAccessibleCustomers, the front end)."""
    failure: dict[str, Any] = {"errorCode": {kind: value}, "message": message}
    if "retry_delay" in extra:
        failure["details"] = {"quotaErrorDetails": {"rateScope": "DEVELOPER", "retryDelay": extra["retry_delay"]}}
    element = {"error": _status(http, status, [{"@type": FAILURE, "errors": [failure], "requestId": "req-1"}])}
    return Reply(http, [element] if array else element, extra.get("headers", {}))


def _status(http: int, status: str, details: list[dict]) -> dict[str, Any]:
    """A google.rpc.Status as REST sends it: `code` is the HTTP status."""
    return {"code": http, "message": "The caller does not have permission", "status": status, "details": details}


def denied(value: str = "USER_PERMISSION_DENIED", *, array: bool = False) -> Reply:
    """A customer the login may not read (`array`: as searchStream answers it)."""
    return ads_error(
        403, "PERMISSION_DENIED", "authorizationError", value, f"{value}: no access to customer", array=array
    )


def retry_info(http: int, status: str, delay: str, *, array: bool = False) -> Reply:
    """An error whose google.rpc.RetryInfo says how long to wait ("3s")."""
    element = {
        "error": _status(http, status, [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}])
    }
    return Reply(http, [element] if array else element)


def stream_ending_in(error: Reply) -> Callable[[Reply], Reply]:
    """For `FakeGoogleAds.then`: the answer's result batches (HTTP 200, already under way), then
    the error's google.rpc.Status as the stream's last element."""

    def answer(reply: Reply) -> Reply:
        element = error.body[-1] if isinstance(error.body, list) else error.body
        return Reply(200, [*reply.body, element], chunk_size=reply.chunk_size)

    return answer


@dataclass
class Customer:
    name: str
    status: str = "ENABLED"
    manager: bool = False
    children: list[str] = field(default_factory=list)
    currency: str = "EUR"


@dataclass
class OAuthClient:
    secret: str
    refresh_tokens: set[str] = field(default_factory=set)


class FakeGoogleAds:
    def __init__(self):
        self.clients: dict[str, OAuthClient] = {}
        self.access_tokens: dict[str, str] = {}  # valid access token: its refresh token
        self.expires_in = 3599
        self.developer_tokens = {"DEV-TOKEN"}
        self.customers = {
            "1111111111": Customer("Acme MCC", manager=True, children=["2222222222", "3333333333", "4444444444"]),
            "2222222222": Customer("Acme DE"),
            "3333333333": Customer("Acme Old", status="CANCELED"),
            "4444444444": Customer("Acme Regional", manager=True, children=["5555555555"]),
            "5555555555": Customer("Acme FR", status="SUSPENDED", currency="USD"),
            "6666666666": Customer("Solo Shop", currency="GBP"),
            "7777777777": Customer("Closed Co", status="CANCELED"),
        }
        self.accessible = ["6666666666", "1111111111", "7777777777"]
        self.not_enabled = {"7777777777"}
        self.batch_size = 2  # results per searchStream batch
        self.chunk_size = 0  # > 0: answers are sent in pieces this big
        # The next searchStream answer whose "<customer id> <query>" contains the key is changed
        # by its function (e.g. `stream_ending_in`): a failure once the answer has begun.
        self.then: dict[str, Callable[[Reply], Reply]] = {}
        self._numbers = itertools.count(1)
        self.server = FakeServer(self.handle)
        self.url = self.server.url
        self.token_url = f"{self.url}/token"

    def add_client(self, client_id: str, secret: str, refresh_token: str) -> None:
        self.clients.setdefault(client_id, OAuthClient(secret)).refresh_tokens.add(refresh_token)

    def revoke_access_tokens(self) -> None:
        self.access_tokens.clear()

    def close(self) -> None:
        self.server.close()

    # --- endpoints -----------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        if request.path == "/token":
            return self.token(request.form())
        streaming = request.path.endswith("googleAds:searchStream")  # its errors come array-wrapped
        if request.bearer not in self.access_tokens:
            return ads_error(
                401,
                "UNAUTHENTICATED",
                "authenticationError",
                "OAUTH_TOKEN_INVALID",
                "Oauth token is invalid.",
                array=streaming,
            )
        if request.headers.get("developer-token") not in self.developer_tokens:
            return ads_error(
                401,
                "UNAUTHENTICATED",
                "authenticationError",
                "DEVELOPER_TOKEN_INVALID",
                "The developer token is not valid.",
                array=streaming,
            )
        if request.path == f"/{VERSION}/customers:listAccessibleCustomers":
            assert request.method == "GET"
            return Reply(body={"resourceNames": [f"customers/{c}" for c in self.accessible]})
        match = re.fullmatch(rf"/{VERSION}/customers/(\d+)/googleAds:searchStream", request.path)
        assert match and request.method == "POST", request.path
        customer_id, via = match.group(1), request.headers.get("login-customer-id")
        if customer_id in self.not_enabled:
            return denied("CUSTOMER_NOT_ENABLED", array=True)
        if not self.may_read(customer_id, via):
            return denied(array=True)
        results = self.search(customer_id, request.json()["query"])
        batches = [
            {"results": results[i : i + self.batch_size], "fieldMask": "x", "requestId": "r"}
            for i in range(0, len(results), self.batch_size)
        ] or [{"fieldMask": "x", "requestId": "r"}]
        reply = Reply(body=batches, chunk_size=self.chunk_size)
        for match, change in list(self.then.items()):
            if match in f"{customer_id} {request.json()['query']}":
                del self.then[match]
                return change(reply)
        return reply

    def token(self, form: dict[str, str]) -> Reply:
        assert form["grant_type"] == "refresh_token", form
        client = self.clients.get(form.get("client_id", ""))
        if client is None or client.secret != form.get("client_secret"):
            return Reply(401, {"error": "invalid_client", "error_description": "The OAuth client was not found."})
        if form.get("refresh_token") not in client.refresh_tokens:
            return Reply(400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
        token = f"ya29.access-{next(self._numbers)}-{form['refresh_token'][-6:]}"
        self.access_tokens[token] = form["refresh_token"]
        return Reply(
            body={
                "access_token": token,
                "expires_in": self.expires_in,
                "scope": "https://www.googleapis.com/auth/adwords",
                "token_type": "Bearer",
            }
        )

    def may_read(self, customer_id: str, via: str | None) -> bool:
        """Without a login customer, accessible customers only; with one, any customer below
        it, when the login customer is itself in the login's hierarchy."""
        if via is None:
            return customer_id in self.accessible
        reachable = any(via in self.below(root) for root in self.accessible)
        return reachable and customer_id in self.below(via)

    def below(self, customer_id: str, level: int = 0) -> dict[str, int]:
        """The customer and every customer under it, with their levels."""
        if customer_id not in self.customers:
            return {}
        found = {customer_id: level}
        for child in self.customers[customer_id].children:
            found.update(self.below(child, level + 1))
        return found

    # --- GAQL ----------------------------------------------------------------------------------

    def search(self, customer_id: str, query: str) -> list[dict[str, Any]]:
        match = re.fullmatch(
            r"SELECT (.+) FROM (\w+)(?: WHERE segments\.date BETWEEN '(.+)' AND '(.+)')?(?: LIMIT 1)?", query
        )
        assert match, query
        selected, resource = [s.strip() for s in match.group(1).split(",")], match.group(2)
        if resource == "customer_client":
            rows = [self._client_row(customer_id, c, level) for c, level in self.below(customer_id).items()]
        elif resource == "customer":
            rows = [{"customer": {"id": customer_id, "descriptiveName": self.customers[customer_id].name}}]
        else:
            first, last = date.fromisoformat(match.group(3)), date.fromisoformat(match.group(4))
            rows = [
                self._report_row(customer_id, resource, first + timedelta(day), campaign, group)
                for day in range((last - first).days + 1)
                for campaign in (1, 2)
                for group in ((1, 2) if resource == "ad_group" else (0,))
            ]
        return [_project(row, selected) for row in rows]

    def _client_row(self, root: str, customer_id: str, level: int) -> dict[str, Any]:
        customer = self.customers[customer_id]
        client = {
            "resourceName": f"customers/{root}/customerClients/{customer_id}",
            "id": customer_id,
            "descriptiveName": customer.name,
            "currencyCode": customer.currency,
            "timeZone": "Europe/Berlin",
            "status": customer.status,
            "level": str(level),
        }
        if customer.manager:  # false booleans are left out of the JSON
            client["manager"] = True
        return {"customerClient": client}

    def _report_row(self, customer_id: str, resource: str, day: date, campaign: int, group: int) -> dict:
        """Campaign 2 spent nothing and had no clicks: those metrics are left out."""
        campaign_id = f"{customer_id[:3]}{campaign}"
        metrics: dict[str, Any] = {
            "impressions": str(1000 * campaign + day.day),
            "clicks": "25",
            "costMicros": "12345678",
            "conversions": 1.5,
            "conversionsValue": 99.9,
            "allConversions": 2.0,
            "interactions": "30",
            "averageCpc": 493827.12,
            "ctr": 0.025,
        }
        if campaign == 2:
            for zero in ("clicks", "costMicros", "conversions", "conversionsValue", "averageCpc"):
                del metrics[zero]
        row: dict[str, Any] = {
            "customer": {
                "resourceName": f"customers/{customer_id}",
                "currencyCode": self.customers[customer_id].currency,
            },
            "campaign": {
                "resourceName": f"customers/{customer_id}/campaigns/{campaign_id}",
                "id": campaign_id,
                "name": f"Search – {campaign}",
                "status": "ENABLED",
                "advertisingChannelType": "SEARCH",
            },
            "metrics": metrics,
            "segments": {"date": day.isoformat()},
        }
        if resource == "ad_group":
            row["adGroup"] = {
                "resourceName": f"customers/{customer_id}/adGroups/{campaign_id}{group}",
                "id": f"{campaign_id}{group}",
                "name": f"Group {campaign}.{group}",
                "status": "PAUSED",
                "type": "SEARCH_STANDARD",
            }
        return row


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def _project(row: dict[str, Any], selected: list[str]) -> dict[str, Any]:
    """Only the selected fields (and each resource's resourceName), as the API answers."""
    out: dict[str, Any] = {}
    for path in selected:
        resource, name = (_camel(p) for p in path.split(".", 1))
        source = row.get(resource, {})
        if name in source:
            target = out.setdefault(resource, {})
            target[name] = source[name]
            if "resourceName" in source:
                target["resourceName"] = source["resourceName"]
    return out
