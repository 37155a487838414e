"""OAuth sign-in over HTTP: the authorization-code flow of the Facebook Ads and Google Ads sources.

    GET /oauth/<source>/start?state=…           302 to the platform's consent page
    GET /oauth/<source>/callback?code=…&state=…  the code exchanged, the connection made or
                                                 re-connected, a page saying so

The modal's "Sign in with …" button points at the start route with the state of an attempt
recorded by `operations.oauth` (which also reads the apps' settings). The callback claims the
attempt once, exchanges the code, and hands the credentials to
`bot.handlers.connect.finish_sign_in`: the same check, operation, audit and events as pasted
credentials, and the user's modal updated. The platform is asked at the source's own
endpoints, so CONNBOT_FACEBOOK_API_URL and CONNBOT_GOOGLE_TOKEN_URL apply; the consent pages:

    CONNBOT_FACEBOOK_LOGIN_URL   default https://www.facebook.com/<API version>/dialog/oauth
    CONNBOT_GOOGLE_AUTH_URL      default https://accounts.google.com/o/oauth2/v2/auth

Codes, tokens, secrets and verifiers are never logged, shown or sent to Slack; every page is
plain HTML with everything escaped.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlencode, urlsplit

from bot.errors import user_message
from bot.handlers.connect import finish_sign_in
from bot.pages import PAGE_HEADERS, html_page
from bot.services import Services
from core.errors import ConnbotError
from operations.oauth import OAuthApp, SignInRefused, claim, code_challenge, oauth_app, pending, sign_in_values
from sources.base import Source, SourceError
from sources.http import HttpClient, HttpSettings, Response, platform_message

log = logging.getLogger(__name__)

ENV_FACEBOOK_LOGIN_URL = "CONNBOT_FACEBOOK_LOGIN_URL"
ENV_GOOGLE_AUTH_URL = "CONNBOT_GOOGLE_AUTH_URL"
DEFAULT_GOOGLE_AUTH_URL = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_ADS_SCOPE = "https://www.googleapis.com/auth/adwords"
# ads_read for the reports and accounts; business_management for the business account's name.
FACEBOOK_SCOPES = "ads_read,business_management"

_ERROR_CODE = re.compile(r"[a-z_]{1,64}")


class Provider(Protocol):
    def authorize_url(self, app: OAuthApp, state: str, challenge: str | None) -> str:
        """The platform's consent page for this attempt."""

    def exchange(self, app: OAuthApp, code: str, verifier: str | None) -> dict[str, str]:
        """The credential values the code is worth. Raises SourceError."""


@runtime_checkable
class GraphApiSource(Protocol):
    """What Facebook Login needs of its source (sources.facebook_ads): the Graph API it calls."""

    api_url: str
    api_version: str


@runtime_checkable
class GoogleTokenSource(Protocol):
    """What Google sign-in needs of its source (sources.google_ads): where codes become tokens."""

    token_url: str


def _client(platform: str) -> HttpClient:
    # A code works once: a retried exchange could only be refused, so there is no retry.
    return HttpClient(platform, replace(HttpSettings.from_env(), attempts=1))


def _with_query(url: str, params: Mapping[str, str]) -> str:
    return f"{url}{'&' if urlsplit(url).query else '?'}{urlencode(params)}"


def _value(payload: Any, name: str, platform: str) -> str:
    value = payload.get(name) if isinstance(payload, dict) else None
    if not isinstance(value, str) or not value:
        raise SourceError(f"{platform} sent no {name.replace('_', ' ')}", code="bad_answer")
    return value


class FacebookLogin:
    """Facebook Login's code flow, then the token exchanged for a long-lived one (about 60
    days) that the Marketing API source uses as its access token."""

    def __init__(self, source: Source):
        if not isinstance(source, GraphApiSource):
            raise TypeError(f"Facebook Login signs in to a source of the Graph API, not to {source!r}")
        self.source = source

    def authorize_url(self, app: OAuthApp, state: str, challenge: str | None) -> str:
        base = (
            os.environ.get(ENV_FACEBOOK_LOGIN_URL) or f"https://www.facebook.com/{self.source.api_version}/dialog/oauth"
        )
        return _with_query(
            base,
            {
                "client_id": app.client_id,
                "redirect_uri": app.redirect_uri,
                "state": state,
                "response_type": "code",
                "scope": FACEBOOK_SCOPES,
            },
        )

    def exchange(self, app: OAuthApp, code: str, verifier: str | None) -> dict[str, str]:
        url = f"{self.source.api_url}/{self.source.api_version}/oauth/access_token"
        http = _client("Facebook")
        app_params = {"client_id": app.client_id, "client_secret": app.client_secret}
        answer = http.request(
            "GET",
            url,
            classify=_facebook_error([code, app.client_secret]),
            params={
                **app_params,
                "redirect_uri": app.redirect_uri,
                "code": code,
            },
        )
        short = _value(answer.payload, "access_token", "Facebook")
        answer = http.request(
            "GET",
            url,
            classify=_facebook_error([code, app.client_secret, short]),
            params={
                **app_params,
                "grant_type": "fb_exchange_token",
                "fb_exchange_token": short,
            },
        )
        return {"access_token": _value(answer.payload, "access_token", "Facebook")}


def _facebook_error(secrets: Sequence[str]) -> Callable[[Response], SourceError | None]:
    def classify(response: Response) -> SourceError | None:
        error = response.payload.get("error") if isinstance(response.payload, dict) else None
        if not isinstance(error, dict):
            return None
        text = platform_message(error.get("message") or "no message", secrets)
        return SourceError(f"Facebook: {text}", code=str(error.get("code") or "oauth"))

    return classify


class GoogleLogin:
    """Google's web-server flow with PKCE (S256), offline access, and consent asked every time
    so that a refresh token comes back even for a login that consented before."""

    def __init__(self, source: Source):
        if not isinstance(source, GoogleTokenSource):
            raise TypeError(f"Google sign-in signs in to a source with a Google token endpoint, not to {source!r}")
        self.source = source

    def authorize_url(self, app: OAuthApp, state: str, challenge: str | None) -> str:
        pkce = {"code_challenge": challenge, "code_challenge_method": "S256"} if challenge else {}
        return _with_query(
            os.environ.get(ENV_GOOGLE_AUTH_URL) or DEFAULT_GOOGLE_AUTH_URL,
            {
                "client_id": app.client_id,
                "redirect_uri": app.redirect_uri,
                "state": state,
                "response_type": "code",
                "scope": GOOGLE_ADS_SCOPE,
                "access_type": "offline",
                "prompt": "consent",
                **pkce,
            },
        )

    def exchange(self, app: OAuthApp, code: str, verifier: str | None) -> dict[str, str]:
        secrets = [code, app.client_secret, verifier or ""]
        answer = _client("Google").request(
            "POST",
            self.source.token_url,
            classify=_google_error(secrets),
            form={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": app.redirect_uri,
                "client_id": app.client_id,
                "client_secret": app.client_secret,
                **({"code_verifier": verifier} if verifier else {}),
            },
        )
        granted = answer.payload.get("scope") if isinstance(answer.payload, dict) else None
        if isinstance(granted, str) and GOOGLE_ADS_SCOPE not in granted.split():
            raise SourceError("Google: access to Google Ads was not granted; tick it on the consent page", "scope")
        refresh_token = _value(answer.payload, "refresh_token", "Google")
        return {"refresh_token": refresh_token, "client_id": app.client_id, "client_secret": app.client_secret}


def _google_error(secrets: Sequence[str]) -> Callable[[Response], SourceError | None]:
    def classify(response: Response) -> SourceError | None:
        payload = response.payload if isinstance(response.payload, dict) else {}
        if not isinstance(payload.get("error"), str):
            return None
        text = platform_message(payload.get("error_description") or payload["error"], secrets)
        return SourceError(f"Google: {text}", code=payload["error"])

    return classify


PROVIDERS: Mapping[str, Callable[[Source], Provider]] = {"facebook_ads": FacebookLogin, "google_ads": GoogleLogin}


class OAuthRoutes:
    """The WSGI application of the /oauth/ paths (`connbot.server.wsgi_app` routes them here)."""

    def __init__(self, services: Services):
        self.services = services

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        parts = environ.get("PATH_INFO", "").split("/")  # "", "oauth", source, step
        if len(parts) != 4 or parts[1] != "oauth" or parts[3] not in ("start", "callback"):
            return _page(start_response, "404 Not Found", "Not found", "There is no page here.")
        if environ.get("REQUEST_METHOD") != "GET":
            return _page(
                start_response, "405 Method Not Allowed", "Not allowed", "Only GET is served here.", [("Allow", "GET")]
            )
        name, step = parts[2], parts[3]
        app = oauth_app(name) if name in PROVIDERS and name in self.services.ctx.sources() else None
        if app is None:
            return _page(
                start_response,
                "404 Not Found",
                "Sign-in is not set up",
                "This connbot has no sign-in for this data source. Paste a token in the form in Slack instead.",
            )
        provider = PROVIDERS[name](self.services.ctx.source(name))
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        try:
            if step == "start":
                return self._start(start_response, app, provider, query.get("state", ""))
            return self._callback(start_response, app, provider, query)
        except SignInRefused as refused:
            log.info("oauth %s: sign-in refused (%s)", name, refused.reason)
            return _page(start_response, "400 Bad Request", "This link cannot be used", refused.message)
        except ConnbotError as error:  # the role was lost, the connection deleted meanwhile...
            return _page(start_response, "400 Bad Request", "Not connected", error.message)
        except Exception as error:  # a bug: a reference to quote, the traceback in the log
            return _page(start_response, "500 Internal Server Error", "Not connected", user_message(error))

    def _start(self, start_response, app: OAuthApp, provider: Provider, state: str) -> Iterable[bytes]:
        sign_in = pending(self.services.ctx, app.source, state)
        challenge = code_challenge(sign_in.code_verifier) if sign_in.code_verifier else None
        start_response("302 Found", [("Location", provider.authorize_url(app, state, challenge)), *PAGE_HEADERS])
        return [b""]

    def _callback(self, start_response, app: OAuthApp, provider: Provider, query: dict[str, str]) -> Iterable[bytes]:
        ctx, state = self.services.ctx, query.get("state", "")
        if "error" in query or not query.get("code"):
            pending(ctx, app.source, state)  # a stale or forged link is told so, not "declined"
            error = query.get("error", "")
            reason = error if _ERROR_CODE.fullmatch(error) else "no code"
            log.info("oauth %s: no consent (%s)", app.source, reason)
            return _page(
                start_response,
                "400 Bad Request",
                "Not connected",
                f"{app.platform} did not give connbot access ({reason}). Nothing was changed: the form in Slack "
                "still offers to sign in again, or to paste a token.",
            )
        sign_in = claim(ctx, app.source, state)
        try:
            obtained = provider.exchange(app, query["code"], sign_in.code_verifier)
        except SourceError as error:
            log.info("oauth %s: code exchange failed (%s)", app.source, error.code)
            problem = (
                f"The sign-in with {app.platform} did not complete ({error.message}). Nothing was saved; try again."
            )
            finish_sign_in(self.services, sign_in, None, problem)
            return _page(start_response, "502 Bad Gateway", "Not connected", problem)
        outcome = finish_sign_in(self.services, sign_in, sign_in_values(ctx, sign_in, obtained))
        log.info(
            "oauth %s: %s sign-in by %s %s",
            app.source,
            sign_in.purpose,
            sign_in.user_id,
            "done" if outcome.ok else "refused",
        )
        if outcome.ok:
            return _page(start_response, "200 OK", "Connected — you can close this tab", outcome.message)
        return _page(
            start_response,
            "400 Bad Request",
            "Not connected",
            f"{outcome.message} Nothing was saved; the form in Slack says more.",
        )


def _page(
    start_response, status: str, title: str, message: str, headers: Sequence[tuple[str, str]] = ()
) -> list[bytes]:
    body = html_page(title, message)
    start_response(
        status,
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *PAGE_HEADERS,
            *headers,
        ],
    )
    return [body]
