"""What the two_factor tests share: enrolling an account through the API, and the codes its
app would show at the clock's time."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pyotp
import segno

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


def qr_modules(svg: str) -> set[tuple[int, int]]:
    """The dark modules ``(column, row)`` of a QR code segno drew as SVG: its one dark path is
    rows of horizontal runs (``M x y``, ``m dx dy``, ``h length``), one module high."""
    path = re.search(r'class="qrline"[^>]* d="([^"]+)"', svg)
    assert path, svg[:300]
    x = y = 0.0
    dark = set()
    for command, first, second in re.findall(r"([MmHh])(-?[\d.]+)(?: (-?[\d.]+))?", path.group(1)):
        if command == "M":
            x, y = float(first), float(second)
        elif command == "m":
            x, y = x + float(first), y + float(second)
        else:
            dark.update((int(x) + i, int(y)) for i in range(int(float(first))))
            x += float(first)
    return dark


def encodes(svg: str, text: str) -> bool:
    """Whether the QR code ``svg`` reads ``text`` (drawn as the plugin draws it)."""
    matrix = segno.make(text, error="m").matrix
    border = 4  # segno's quiet zone, in modules
    expected = {
        (column + border, row + border)
        for row, line in enumerate(matrix)
        for column, module in enumerate(line)
        if module
    }
    return qr_modules(svg) == expected
