"""Prices are integers in the minor unit of the business's currency, shown with it."""

from __future__ import annotations

import pytest
from conftest import STAFF_PASSWORD, csrf_token_of, log_in_staff
from sqlalchemy import select

from bookwell.core.access.users import create_user
from bookwell.core.foundation.money import check_currency, format_money
from bookwell.core.storage import db
from bookwell.core.storage.models import Tenant


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (4500, "EUR", "€45.00"),
        (4500, "GBP", "£45.00"),
        (4550, "USD", "US$45.50"),
        (4500, "JPY", "JP¥4,500"),  # the yen has no minor unit: 4500 is 4,500 yen
        (0, "CHF", "CHF 0.00"),
    ],
)
def test_amounts_are_shown_in_their_currency(amount, currency, shown):
    assert format_money(amount, currency).replace("\xa0", " ") == shown


def test_a_currency_must_be_an_iso_4217_code():
    assert check_currency(" gbp ") == "GBP"
    for wrong in ("", "EURO", "XQZ", "€"):
        with pytest.raises(ValueError, match="ISO 4217"):
            check_currency(wrong)


def test_the_services_api_says_the_currency(client, business):
    (service,) = client.get("/api/v1/tenants/salon/services").json
    assert service["price_cents"] == 3000 and service["currency"] == "EUR"


def test_the_owner_sets_the_currency_and_the_pages_show_it(app, business, clock):
    with app.app_context():
        create_user(
            app,
            tenant_id=business.tenant_id,
            email="owner@example.com",
            role="owner",
            password=STAFF_PASSWORD,
            now=clock(),
        )
    owner = log_in_staff(app, "owner@example.com")

    def save(currency):
        form = owner.get("/admin/salon/business")
        return owner.post(
            "/admin/salon/business",
            data={
                "csrf_token": csrf_token_of(form),
                "name": "Salon",
                "currency": currency,
            },
        )

    refused = save("ZZZ")
    assert refused.status_code == 422 and "ISO 4217" in refused.text
    assert save("gbp").status_code == 302
    with db.engine_of(app).connect() as connection:
        assert connection.scalar(select(Tenant.currency)) == "GBP"
    assert "£30.00" in app.test_client().get("/book/salon/").text
    assert "£30.00" in owner.get("/admin/salon/services").text


def test_tenants_create_takes_a_currency_and_refuses_a_wrong_one(app):
    from click.testing import CliRunner

    from bookwell.core.cli.root import main

    runner = CliRunner()
    instance = app.instance_path
    url = app.config["DATABASE_URL"]
    env = {"DATABASE_URL": url, "BOOKWELL_INSTANCE": instance}
    made = runner.invoke(
        main,
        [
            "tenants",
            "create",
            "dojo",
            "--name",
            "Dojo",
            "--timezone",
            "Asia/Tokyo",
            "--currency",
            "JPY",
        ],
        env=env,
    )
    assert made.exit_code == 0, made.output
    wrong = runner.invoke(
        main,
        ["tenants", "create", "spa", "--name", "Spa", "--timezone", "UTC", "--currency", "EURO"],
        env=env,
    )
    assert wrong.exit_code != 0 and "ISO 4217" in wrong.output
    with db.engine_of(app).connect() as connection:
        assert connection.scalar(select(Tenant.currency).where(Tenant.slug == "dojo")) == "JPY"
        assert connection.scalar(select(Tenant.id).where(Tenant.slug == "spa")) is None
