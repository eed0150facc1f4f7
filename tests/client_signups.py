"""A client's sign-up as a person makes it, for the tests of any area: the business turns client
accounts on, the person signs up through the API, then opens the link of the e-mail (read from
the outbox) and types the password chosen at sign-up."""

from __future__ import annotations

import re

from sqlalchemy import select

from bookwell.core.storage import db
from bookwell.core.storage.models import OutboxMessage, Tenant

CSRF_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def accounts_on(app, tenant_id: int, on: bool = True) -> None:
    with db.write_transaction(app) as session:
        session.get(Tenant, tenant_id).client_accounts = on


def sign_up(client, email, password, name="Ann", slug="salon"):
    body = {"name": name, "email": email, "password": password}
    return client.post(f"/api/v1/tenants/{slug}/clients", json=body)


def newest_link(app, to: str, kind: str = "verify", slug: str = "salon") -> str:
    """The path of the newest ``/book/<slug>/account/<kind>/...`` link e-mailed to ``to``."""
    with db.fresh_session(app) as session:
        texts = session.scalars(
            select(OutboxMessage.text_body)
            .where(OutboxMessage.to_address == to)
            .order_by(OutboxMessage.id.desc())
        ).all()
    pattern = re.compile(rf"/book/{re.escape(slug)}/account/{kind}/[A-Za-z0-9_-]+")
    for text in texts:
        found = pattern.search(text)
        if found:
            return found.group(0)
    raise AssertionError(f"no {kind} link was e-mailed to {to}")


def confirm(client, path: str, password: str):
    """Open a verification link and type ``password``: the answer to that POST."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    token = CSRF_TOKEN.search(page.text).group(1)
    return client.post(path, data={"csrf_token": token, "password": password})


def signed_up(app, client, email, password, name="Ann", slug="salon"):
    """Sign up and confirm the address with the chosen password; the confirmation's answer."""
    response = sign_up(client, email, password, name=name, slug=slug)
    assert response.status_code == 201, response.json
    confirmed = confirm(
        app.test_client(), newest_link(app, email.strip().lower(), slug=slug), password
    )
    assert confirmed.status_code == 302, confirmed.text
    return confirmed
