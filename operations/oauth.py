"""OAuth sign-in: the apps' settings, the state of each attempt, and the credentials it yields.

A connect / re-connect modal offers "Sign in with Facebook/Google" as a URL button. Rendering
that button records an attempt (`storage.models.OAuthState`): who, for which source and
purpose, which modal to update, and the PKCE verifier. The browser then goes through
`/oauth/<source>/start` and comes back to `/oauth/<source>/callback` (`connbot/oauth.py`,
where the platform exchanges happen), on whichever replica; the callback claims the attempt
once, and the credentials go through the same Make a new connection / Re-connect as pasted ones.

Settings, read from the environment each time they are needed (a missing one hides the
button of that source and makes its routes answer 404):

    CONNBOT_PUBLIC_URL            the https base URL where /oauth/... reaches this app
    CONNBOT_FACEBOOK_APP_ID       the Facebook app (Facebook Login)
    CONNBOT_FACEBOOK_APP_SECRET
    CONNBOT_GOOGLE_CLIENT_ID      the Google OAuth client (type "Web application")
    CONNBOT_GOOGLE_CLIENT_SECRET
    CONNBOT_GOOGLE_DEVELOPER_TOKEN  Google Ads needs one; a signed-in login brings none
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlencode, urlsplit

from sqlalchemy import delete, select, update

from core.credentials import Credentials
from core.errors import ConnbotError
from engine.context import Context
from operations.dml import changed_rows
from storage.models import OAuthState, SyncMode
from storage.repositories import Connections

log = logging.getLogger(__name__)

ENV_PUBLIC_URL = "CONNBOT_PUBLIC_URL"
START_PATH = "/oauth/{source}/start"
CALLBACK_PATH = "/oauth/{source}/callback"

# Long enough to read the form and sign in, short enough that a leaked link soon dies.
STATE_TTL = timedelta(minutes=10)
# Expired attempts are kept a while, so a late click is told "expired" rather than "unknown".
KEEP_EXPIRED = timedelta(days=1)


@dataclass(frozen=True)
class _AppSpec:
    platform: str  # "Facebook", shown on the button
    id_env: str
    secret_env: str
    pkce: bool  # the platform checks a PKCE code verifier
    also_required: tuple[str, ...] = ()


_SPECS: Mapping[str, _AppSpec] = {
    # Facebook offers PKCE only in its OIDC flow (in testing), not for Marketing API tokens.
    "facebook_ads": _AppSpec("Facebook", "CONNBOT_FACEBOOK_APP_ID", "CONNBOT_FACEBOOK_APP_SECRET", pkce=False),
    "google_ads": _AppSpec(
        "Google",
        "CONNBOT_GOOGLE_CLIENT_ID",
        "CONNBOT_GOOGLE_CLIENT_SECRET",
        pkce=True,
        also_required=("CONNBOT_GOOGLE_DEVELOPER_TOKEN",),
    ),
}


@dataclass(frozen=True)
class OAuthApp:
    """Our app at one platform, for one source."""

    source: str
    platform: str
    client_id: str
    client_secret: str = field(repr=False)
    public_url: str
    pkce: bool

    @property
    def redirect_uri(self) -> str:
        return self.public_url + CALLBACK_PATH.format(source=self.source)

    def start_url(self, state: str) -> str:
        return self.public_url + START_PATH.format(source=self.source) + "?" + urlencode({"state": state})


def oauth_app(source: str, env: Mapping[str, str] | None = None) -> OAuthApp | None:
    """The sign-in app of a source; None when the source has none or a setting is missing."""
    env = os.environ if env is None else env
    spec = _SPECS.get(source)
    if spec is None:
        return None
    values = {
        name: env.get(name, "").strip() for name in (ENV_PUBLIC_URL, spec.id_env, spec.secret_env, *spec.also_required)
    }
    if not all(values.values()):
        return None
    public_url = values[ENV_PUBLIC_URL].rstrip("/")
    parts = urlsplit(public_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        log.warning("%s is not an http(s) base URL; sign-in buttons are hidden", ENV_PUBLIC_URL)
        return None
    return OAuthApp(source, spec.platform, values[spec.id_env], values[spec.secret_env], public_url, spec.pkce)


def code_challenge(verifier: str) -> str:
    """PKCE S256: BASE64URL(SHA256(verifier)) without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


class Purpose(StrEnum):
    NEW = "new"
    RECONNECT = "reconnect"


@dataclass(frozen=True)
class Offer:
    """A recorded attempt and the URL of its button."""

    id: int
    button: str  # "Sign in with Facebook"
    url: str


def offer_sign_in(
    ctx: Context,
    *,
    team_id: str,
    user_id: str,
    source: str,
    purpose: Purpose,
    slack_meta: str,
    connection_id: int | None = None,
    view_id: str | None = None,
    sync_mode: str = SyncMode.ALL,
) -> Offer | None:
    """Records an attempt for a modal about to be shown; None when the source has no sign-in."""
    app = oauth_app(source)
    if app is None:
        return None
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64) if app.pkce else None  # 86 characters, within 43..128
    with ctx.db.begin() as session:
        now = ctx.clock.now()
        session.execute(delete(OAuthState).where(OAuthState.expires_at < now - KEEP_EXPIRED))
        row = OAuthState(
            state_hash=_hash(state),
            team_id=team_id,
            user_id=user_id,
            source=source,
            purpose=purpose,
            connection_id=connection_id,
            sync_mode=sync_mode,
            view_id=view_id,
            slack_meta=slack_meta,
            code_verifier=ctx.vault.encrypt(Credentials({"code_verifier": verifier})) if verifier else None,
            created_at=now,
            expires_at=now + STATE_TTL,
        )
        session.add(row)
        session.flush()
        return Offer(row.id, f"Sign in with {app.platform}", app.start_url(state))


def attach_view(ctx: Context, offer_id: int, view_id: str) -> None:
    """The modal's id, known once views.open has answered."""
    with ctx.db.begin() as session:
        session.execute(update(OAuthState).where(OAuthState.id == offer_id).values(view_id=view_id))


def note_choice(
    ctx: Context,
    team_id: str,
    user_id: str,
    view_id: str,
    *,
    sync_mode: SyncMode | None = None,
    confirm_business: bool | None = None,
    slack_meta: str | None = None,
) -> None:
    """A choice made in the modal, kept for a sign-in still to come (the URL button submits
    nothing): the account sync, the consent to switch business accounts, or the form's routing
    with a choice of its own (ids and flags only)."""
    values = {"sync_mode": sync_mode, "confirm_business": confirm_business, "slack_meta": slack_meta}
    with ctx.db.begin() as session:
        session.execute(
            update(OAuthState)
            .where(
                OAuthState.view_id == view_id,
                OAuthState.team_id == team_id,
                OAuthState.user_id == user_id,
                OAuthState.used_at.is_(None),
            )
            .values({k: v for k, v in values.items() if v is not None})
        )


class SignInRefused(ConnbotError):
    """A state that cannot be used (unknown, expired, already used); says what to do instead."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SignIn:
    """An attempt as the flow needs it; the verifier is in clear only here."""

    team_id: str
    user_id: str
    source: str
    purpose: Purpose
    connection_id: int | None
    sync_mode: str
    confirm_business: bool
    view_id: str | None
    slack_meta: str
    code_verifier: str | None = field(repr=False)


def pending(ctx: Context, source: str, state: str) -> SignIn:
    """The attempt a start link refers to, still usable; else SignInRefused."""
    now = ctx.clock.now()
    with ctx.db.begin() as session:
        row = session.scalars(select(OAuthState).where(OAuthState.state_hash == _hash(state))).first()
        return _sign_in(ctx, _usable(row, source, now))


def claim(ctx: Context, source: str, state: str) -> SignIn:
    """Uses the attempt up, atomically: of two callbacks with one state (a reload, a replay,
    two replicas), one gets it and the other SignInRefused."""
    now = ctx.clock.now()
    with ctx.db.begin() as session:
        claimed = changed_rows(
            session,
            update(OAuthState)
            .where(
                OAuthState.state_hash == _hash(state),
                OAuthState.source == source,
                OAuthState.used_at.is_(None),
                OAuthState.expires_at > now,
            )
            .values(used_at=now),
        )
        row = session.scalars(select(OAuthState).where(OAuthState.state_hash == _hash(state))).first()
        if not claimed:
            _usable(row, source, now)
            raise SignInRefused(_ALREADY_USED, "used")  # claimed by another request meanwhile
        assert row is not None  # the row just claimed, in this unit of work
        return _sign_in(ctx, row)


_AGAIN = "Open the form in Slack again (Make a new connection or Re-connect) and use its sign-in button."
_ALREADY_USED = f"This sign-in link was already used. {_AGAIN}"


def _usable(row: OAuthState | None, source: str, now: datetime) -> OAuthState:
    """The attempt, if it can still be used; else SignInRefused, which says why."""
    if row is None or row.source != source:
        raise SignInRefused(f"This sign-in link is not valid. {_AGAIN}", "unknown")
    if row.used_at is not None:
        raise SignInRefused(_ALREADY_USED, "used")
    if row.expires_at <= now:
        minutes = int(STATE_TTL.total_seconds() // 60)
        raise SignInRefused(f"This sign-in link expired: links work for {minutes} minutes. {_AGAIN}", "expired")
    return row


def _sign_in(ctx: Context, row: OAuthState) -> SignIn:
    verifier = ctx.vault.decrypt(row.code_verifier)["code_verifier"] if row.code_verifier else None
    return SignIn(
        row.team_id,
        row.user_id,
        row.source,
        Purpose(row.purpose),
        row.connection_id,
        row.sync_mode,
        row.confirm_business,
        row.view_id,
        row.slack_meta,
        verifier,
    )


def sign_in_values(ctx: Context, sign_in: SignIn, obtained: Mapping[str, str]) -> dict[str, str]:
    """The credential values to check and store. A re-connect keeps what the sign-in does not
    bring (a Google login customer ID, a developer token) from the credentials in use."""
    if sign_in.purpose is not Purpose.RECONNECT:
        return dict(obtained)
    if sign_in.connection_id is None:  # a re-connect is offered from a connection's card only
        raise SignInRefused(f"This sign-in link is not valid. {_AGAIN}", "unknown")
    with ctx.db.begin() as session:
        connection = Connections(session, sign_in.team_id).get(sign_in.connection_id)
        ciphertext = connection.credentials
    kept = ctx.vault.decrypt(ciphertext).to_dict() if ciphertext else {}
    return {**kept, **obtained}
