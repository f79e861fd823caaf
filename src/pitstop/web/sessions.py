"""Web sessions and CSRF tokens, without a table of their own.

Signing in with an API token sets a cookie that carries the token's *id* and an expiry, signed
with HMAC-SHA256. The signing key is derived from the token's stored hash (plus an optional
server secret), so:

- the token itself never travels again after the sign-in, and is never stored in the browser;
- every request looks the token up by id, so revoking or expiring the token ends its sessions
  at once, and a session never outlives its token;
- any replica can check any cookie (no per-process secret), and a restart logs nobody out.

The CSRF token is a second HMAC over the same session, sent in every form and in the htmx
``X-CSRF-Token`` header; an attacker's page can neither read the cookie nor compute it. The
sign-in form, which comes before any session, carries an HMAC of a random value kept in a
short-lived sign-in cookie instead (double submit), on top of the ``Origin`` check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

COOKIE = "pitstop_session"
LIFETIME = timedelta(hours=8)
# Before there is a session, the sign-in form is bound to a random value in this cookie.
LOGIN_COOKIE = "pitstop_login"
LOGIN_LIFETIME = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Claim:
    """What a session cookie says before it is checked against the token table."""

    token_id: uuid.UUID
    expires: int  # Unix seconds
    payload: str
    signature: str


def _key(token_hash: str, secret: str) -> bytes:
    return hashlib.sha256(f"pitstop-web-session|{secret}|{token_hash}".encode()).digest()


def _mac(key: bytes, purpose: str, payload: str) -> str:
    digest = hmac.new(key, f"{purpose}|{payload}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def issue(*, token_id: uuid.UUID, token_hash: str, now: datetime, secret: str = "") -> str:
    """A cookie value for a session that starts ``now``."""
    expires = int((now + LIFETIME).timestamp())
    raw = json.dumps({"t": str(token_id), "e": expires}, separators=(",", ":")).encode()
    payload = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return f"{payload}.{_mac(_key(token_hash, secret), 'session', payload)}"


def parse(value: str | None, *, now: datetime) -> Claim | None:
    """The claim in a cookie, or None when it is malformed or past its expiry. The signature
    is checked later, once the token's hash is known (``verify``)."""
    if not value or value.count(".") != 1:
        return None
    payload, signature = value.split(".")
    try:
        body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        token_id = uuid.UUID(str(body["t"]))
        expires = int(body["e"])
    except (ValueError, KeyError, TypeError):
        return None
    if expires <= int(now.timestamp()):
        return None
    return Claim(token_id=token_id, expires=expires, payload=payload, signature=signature)


def verify(claim: Claim, *, token_hash: str, secret: str = "") -> bool:
    expected = _mac(_key(token_hash, secret), "session", claim.payload)
    return hmac.compare_digest(expected, claim.signature)


def csrf_token(claim: Claim, *, token_hash: str, secret: str = "") -> str:
    return _mac(_key(token_hash, secret), "csrf", claim.payload)


def login_nonce() -> str:
    """The value of a new sign-in cookie."""
    return secrets.token_urlsafe(24)


def login_csrf(nonce: str, *, secret: str = "") -> str:
    """The sign-in form's CSRF token: an HMAC of the sign-in cookie, which another site can
    neither read nor set (HttpOnly, SameSite=Strict)."""
    return _mac(hashlib.sha256(f"pitstop-login|{secret}".encode()).digest(), "login", nonce)


def login_csrf_ok(nonce: str | None, sent: str | None, *, secret: str = "") -> bool:
    if not nonce or not sent:
        return False
    return hmac.compare_digest(login_csrf(nonce, secret=secret), sent)


def csrf_ok(claim: Claim, sent: str | None, *, token_hash: str, secret: str = "") -> bool:
    if not sent:
        return False
    return hmac.compare_digest(csrf_token(claim, token_hash=token_hash, secret=secret), sent)
