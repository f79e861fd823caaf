"""Web session cookies: signed, expiring, bound to the token's hash, with a CSRF token."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from pitstop.web import sessions

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
TOKEN = uuid.uuid4()
HASH = "a" * 64


def test_a_cookie_round_trips_until_it_expires() -> None:
    cookie = sessions.issue(token_id=TOKEN, token_hash=HASH, now=NOW)
    claim = sessions.parse(cookie, now=NOW + timedelta(hours=1))
    assert claim is not None
    assert claim.token_id == TOKEN
    assert sessions.verify(claim, token_hash=HASH)
    assert sessions.parse(cookie, now=NOW + sessions.LIFETIME) is None


def test_a_cookie_is_bound_to_the_token_hash_and_the_secret() -> None:
    cookie = sessions.issue(token_id=TOKEN, token_hash=HASH, now=NOW, secret="s1")
    claim = sessions.parse(cookie, now=NOW)
    assert claim is not None
    assert not sessions.verify(claim, token_hash="b" * 64, secret="s1")
    assert not sessions.verify(claim, token_hash=HASH, secret="s2")
    assert sessions.verify(claim, token_hash=HASH, secret="s1")


def test_a_tampered_cookie_fails() -> None:
    cookie = sessions.issue(token_id=TOKEN, token_hash=HASH, now=NOW)
    payload, signature = cookie.split(".")
    other = sessions.issue(token_id=uuid.uuid4(), token_hash=HASH, now=NOW).split(".")[0]
    claim = sessions.parse(f"{other}.{signature}", now=NOW)
    assert claim is not None and not sessions.verify(claim, token_hash=HASH)
    for junk in ("", "x", "a.b.c", f"{payload}", "!!!.sig"):
        assert sessions.parse(junk, now=NOW) is None


def test_csrf_token_belongs_to_its_session() -> None:
    a = sessions.parse(sessions.issue(token_id=TOKEN, token_hash=HASH, now=NOW), now=NOW)
    b = sessions.parse(
        sessions.issue(token_id=TOKEN, token_hash=HASH, now=NOW + timedelta(seconds=5)), now=NOW
    )
    assert a is not None and b is not None
    token = sessions.csrf_token(a, token_hash=HASH)
    assert sessions.csrf_ok(a, token, token_hash=HASH)
    assert not sessions.csrf_ok(b, token, token_hash=HASH)
    assert not sessions.csrf_ok(a, None, token_hash=HASH)
    assert not sessions.csrf_ok(a, "", token_hash=HASH)
