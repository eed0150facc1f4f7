"""What the hipaa tests share. HIPAA mode switches ``ssl`` on, so every request of a test goes
over HTTPS (the app's test clients default to ``https://localhost``); and ``two_factor`` for
every staff role, so a staff member signed in before it was switched on sets up an
authenticator app (``enrol``) before the business's pages and API let them further.

Its fixtures (``app``, ``hipaa``) reach a test module by assignment, ``app = hipaa_kit.app``:
a ``conftest.py`` here would take the module name ``conftest`` that core's tests import from."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from flask.testing import FlaskClient

from bookwell.core.testing import STAFF_PASSWORD, api_login, create_user, csrf_token_of

HTTPS = "https://localhost"
SUPPORT_EMAIL = "help@bookwell.example"
STEP = 30  # seconds of a one-time code


class HttpsClient(FlaskClient):
    """A test client whose requests go over HTTPS unless told otherwise."""

    def open(self, *args, **kwargs):
        if not args or isinstance(args[0], str):
            kwargs.setdefault("base_url", HTTPS)
        return super().open(*args, **kwargs)


def code_at(secret: str, clock, steps: int = 0) -> str:
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(clock()) + steps)


def enrol(member, clock) -> str:
    """Set up an authenticator app for ``member`` through two_factor's API; its secret. The
    code that confirmed it is spent, so the clock moves on a step."""
    started = member.api.post("me/totp")
    assert started.status_code == 200, started.json
    secret = parse_qs(urlparse(started.json["otpauth_uri"]).query)["secret"][0]
    confirmed = member.api.post("me/totp/confirm", json={"code": code_at(secret, clock)})
    assert confirmed.status_code == 200, confirmed.json
    clock.advance(seconds=STEP)
    return secret


def fresh_token(app, member, secret: str, clock) -> str:
    """A new API login of an enrolled ``member``, with the app's current code."""
    answer = api_login(app, member.email, business=member.business, otp=code_at(secret, clock))
    assert answer.status_code == 200 and "code" not in answer.json, answer.json
    clock.advance(seconds=STEP)
    return answer.json["token"]


def pages_login(app, member, secret: str, clock):
    """``member`` (enrolled) logs in on the staff login page with the app's current code, as
    ``member.pages`` anew: for when the clock moved past their session."""
    browser = app.test_client()
    slug = member.business.slug
    form = browser.get(f"/admin/{slug}/login")
    first = browser.post(
        f"/admin/{slug}/login",
        data={"csrf_token": csrf_token_of(form), "email": member.email, "password": STAFF_PASSWORD},
    )
    step = browser.post(
        f"/admin/{slug}/login/step",
        data={"csrf_token": csrf_token_of(first), "answer": code_at(secret, clock), "field": "otp"},
    )
    assert step.status_code == 302, step.text[:500]
    clock.advance(seconds=STEP)
    member.pages = browser
    return browser


def add_support_user(app, clock, bookwell_cli) -> str:
    """A platform support user, and an API key of theirs (as ``bookwell tokens create``)."""
    with app.app_context():
        create_user(
            app,
            tenant_id=None,
            email=SUPPORT_EMAIL,
            role="support",
            password=STAFF_PASSWORD,
            now=clock(),
        )
    made = bookwell_cli("tokens", "create", "--support", "--email", SUPPORT_EMAIL)
    assert made.exit_code == 0, made.output
    return made.output.strip().splitlines()[-1]


@pytest.fixture
def app(make_app, bookwell_plugins, bookwell_settings):
    """The test kit's app, its test clients on HTTPS (every fixture's: staff, clients)."""
    built = make_app(plugins=bookwell_plugins, **bookwell_settings)
    built.test_client_class = HttpsClient
    return built


@pytest.fixture
def hipaa(owner, enable_plugin, clock):
    """HIPAA mode on for ``tenant``, its owner (signed in before) enrolled: the settings in
    force, and the owner's authenticator secret as ``hipaa["owner_secret"]``."""
    settings = enable_plugin("hipaa")
    return {**settings, "owner_secret": enrol(owner, clock)}
