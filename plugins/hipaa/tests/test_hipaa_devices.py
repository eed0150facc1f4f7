"""An e-mail to an account at each login from a new device (browser family, operating system
and network); the first login HIPAA mode sees of an account is its baseline."""

from __future__ import annotations

import hipaa_kit
import pytest
from hipaa_kit import STEP, code_at
from sqlalchemy import create_engine, text

from bookwell.core.testing import STAFF_PASSWORD, create_user

# The kit's fixtures: the app on HTTPS, HIPAA mode on with the owner enrolled.
app = hipaa_kit.app
hipaa = hipaa_kit.hipaa

CARLA = "carla@example.com"
CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v} "
    "Safari/537.36"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def carla(app, tenant, clock, bookwell_cli):
    """Carla, a client with an account."""
    assert bookwell_cli("tenants", "set", "salon", "--client-accounts").exit_code == 0
    with app.app_context():
        create_user(
            app,
            tenant_id=tenant.tenant_id,
            email=CARLA,
            role="client",
            password=STAFF_PASSWORD,
            now=clock(),
            name="Carla",
        )


def log_in(app, email, agent, ip, otp=None):
    body = {"email": email, "password": STAFF_PASSWORD, **({"otp": otp} if otp else {})}
    answer = app.test_client().post(
        "/api/v1/tenants/salon/auth/login",
        json=body,
        headers={"User-Agent": agent},
        environ_base={"REMOTE_ADDR": ip},
    )
    assert answer.status_code == 200 and "code" not in answer.json, answer.json
    return answer


def alerts(outbox, to=CARLA):
    return [mail for mail in outbox(kind="hipaa.new_device") if mail.to == to]


def test_a_login_from_a_new_device_is_announced_once(app, carla, hipaa, outbox, audit_trail):
    log_in(app, CARLA, CHROME_LINUX.format(v="126.0.0.0"), "203.0.113.7")
    assert alerts(outbox) == []  # the baseline
    # A browser's update, another address of the same network: the same device.
    log_in(app, CARLA, CHROME_LINUX.format(v="127.0.1.2"), "203.0.113.99")
    assert alerts(outbox) == []

    log_in(app, CARLA, FIREFOX_LINUX, "203.0.113.7")
    (alert,) = alerts(outbox)
    assert alert.subject == "New sign-in to your Salon account"
    assert "Firefox on Linux" in alert.text and "203.0.113.0/24" in alert.text
    assert "change your password" in alert.text
    log_in(app, CARLA, FIREFOX_LINUX, "203.0.113.8")
    assert len(alerts(outbox)) == 1  # known now

    log_in(app, CARLA, SAFARI_IPHONE, "2001:db8:1:2::5")
    assert "Safari on iOS" in alerts(outbox)[-1].text
    assert "2001:db8:1::/48" in alerts(outbox)[-1].text
    log_in(app, CARLA, FIREFOX_LINUX, "198.51.100.20")  # the same browser, another network
    assert len(alerts(outbox)) == 3
    noted = audit_trail(action="plugin.hipaa.device.new")
    assert [entry.details["announced"] for entry in noted] == [False, True, True, True]


def test_the_store_keeps_no_address_or_browser(app, carla, hipaa, plugin_context_for):
    log_in(app, CARLA, FIREFOX_LINUX, "203.0.113.7")
    with plugin_context_for("hipaa") as ctx:
        kept = ctx.store.get(f"devices:{_carla_id(app)}")
    assert len(kept) == 1 and "203.0.113" not in kept[0] and "Firefox" not in kept[0]


def _carla_id(app) -> int:
    engine = create_engine(app.config["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return connection.execute(
                text("SELECT id FROM users WHERE email = :email"), {"email": CARLA}
            ).scalar_one()
    finally:
        engine.dispose()


def test_staff_are_told_too(app, owner, hipaa, outbox, clock):
    secret = hipaa["owner_secret"]
    log_in(app, owner.email, FIREFOX_LINUX, "203.0.113.7", otp=code_at(secret, clock))
    clock.advance(seconds=STEP)
    assert alerts(outbox, owner.email) == []
    log_in(app, owner.email, SAFARI_IPHONE, "192.0.2.10", otp=code_at(secret, clock))
    (alert,) = alerts(outbox, owner.email)
    assert "Safari on iOS" in alert.text


def test_without_hipaa_mode_nobody_is_told(app, carla, outbox):
    log_in(app, CARLA, FIREFOX_LINUX, "203.0.113.7")
    log_in(app, CARLA, SAFARI_IPHONE, "192.0.2.10")
    assert alerts(outbox) == []
