"""What the cancellation policy's tests share (imported by each, as a conftest.py here would clash
with the suite's own): the plugin switched on, a business that can be reached, and bookings
that carry the policy's consent."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from bookwell.core.testing import csrf_token_of

CONSENT = ["cancellation_policy"]
# Tuesday 2 March 2027, 10:00 in Paris (09:00 UTC): 25 hours after the clock's start.
TUESDAY_TEN = "2027-03-02T10:00:00+01:00"
TUESDAY_TEN_UTC = datetime(2027, 3, 2, 9, 0, tzinfo=UTC)
MANAGE_LINK = re.compile(r"(http\S*/book/salon/manage/\S+)")


@pytest.fixture
def policy_on(enable_plugin):
    """The plugin on with its defaults (24 hours, 2 moves, 100% / 0% refunds)."""

    def enable(**settings):
        return enable_plugin("cancellation_policy", **settings)

    enable()
    return enable


@pytest.fixture
def reachable(owner):
    """The business's contact details, as its owner fills them in."""
    answer = owner.submit(
        "/admin/salon/business",
        {
            "name": "Salon",
            "contact_email": "hello@salon.example",
            "phone": "+33 1 23 45 67 89",
            "address": "1 rue de la Paix, Paris",
        },
    )
    assert answer.status_code in (200, 302), answer.text[:500]


@pytest.fixture
def book(client):
    """``book(start=TUESDAY_TEN, who=client)``: a booking with the policy's consent."""

    def make(start=TUESDAY_TEN, who=None, **extra):
        return (who or client).book(start, consents=CONSENT, **extra)

    return make


@pytest.fixture
def manage_cancel(app):
    return lambda booking, then=None: _manage_page_cancel(app, booking, then)


@pytest.fixture
def manage_reschedule(app):
    return lambda booking, start, then=None: _manage_page_reschedule(app, booking, start, then)


def _manage_page_cancel(app, booking, then=None):
    """Cancel through the manage page, as a browser does: the page, its form, the POST; with
    ``then`` called in between (the clock moves on while the page is open)."""
    browser = app.test_client()
    path = f"/book/salon/manage/{booking['reference']}"
    page = browser.get(path, query_string={"token": booking["manage_token"], "step": "cancel"})
    assert page.status_code == 200, page.text[:300]
    if then is not None:
        then()
    return browser.post(
        f"{path}/cancel",
        data={"csrf_token": csrf_token_of(page), "token": booking["manage_token"]},
    )


def _manage_page_reschedule(app, booking, start, then=None):
    browser = app.test_client()
    path = f"/book/salon/manage/{booking['reference']}"
    page = browser.get(
        path,
        query_string={"token": booking["manage_token"], "step": "reschedule", "start": start},
    )
    assert page.status_code == 200, page.text[:300]
    if then is not None:
        then()
    return browser.post(
        f"{path}/reschedule",
        data={"csrf_token": csrf_token_of(page), "token": booking["manage_token"], "start": start},
    )
