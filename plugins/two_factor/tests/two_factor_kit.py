"""What the two_factor tests share: enrolling an account through the API, and the codes its
app would show at the clock's time."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pyotp

from bookwell.core.testing import STAFF_PASSWORD, api_login

STEP = 30  # seconds


def secret_of(uri: str) -> str:
    return parse_qs(urlparse(uri).query)["secret"][0]


def code_at(secret: str, clock, steps: int = 0) -> str:
    """The app's code at the clock's time, ``steps`` 30-second steps later (or earlier)."""
    return pyotp.TOTP(secret).generate_otp(pyotp.TOTP(secret).timecode(clock()) + steps)


def enrol(api, clock) -> tuple[str, list[str]]:
    """Set up an app through the API for the account of ``api`` (a ``BearerClient``, such as
    ``member.api``): its secret and recovery codes. The code that confirmed it is spent, so the
    clock moves on a step for the next one."""
    started = api.post("me/totp")
    assert started.status_code == 200, started.json
    secret = secret_of(started.json["otpauth_uri"])
    confirmed = api.post("me/totp/confirm", json={"code": code_at(secret, clock)})
    assert confirmed.status_code == 200, confirmed.json
    clock.advance(seconds=STEP)
    return secret, confirmed.json["recovery_codes"]


def login(app, member, otp: str | None = None, password: str = STAFF_PASSWORD):
    return api_login(app, member.email, password, business=member.business, otp=otp)


def error_code(answer) -> str:
    return answer.json["error"]["code"]
