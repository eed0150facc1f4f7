"""Behind a reverse proxy that ends TLS, ``X-Forwarded-Proto`` says how the browser came. It
counts only when the operator said how many proxies stand in front
(``BOOKWELL_TRUSTED_PROXIES``): anyone can send the header, so by default it is ignored."""

from __future__ import annotations

import pytest

SERVICES = "/api/v1/tenants/salon/services"
FROM_A_PROXY = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


def booking_body(business):
    return {
        "service_id": business.service_id,
        "provider_id": business.provider_id,
        "start": "2027-03-02T10:00:00+01:00",
        "client": {"name": "Ann", "email": "ann@example.com"},
    }


class TestByDefault:
    def test_a_forwarded_https_is_ignored_and_the_read_still_redirected(
        self, enable_plugin, client
    ):
        enable_plugin("ssl")
        answer = client.http.get(SERVICES, headers=FROM_A_PROXY)
        assert answer.status_code == 308
        assert answer.headers["Location"] == "https://localhost" + SERVICES
        assert "Strict-Transport-Security" not in answer.headers

    def test_a_forwarded_https_does_not_let_a_change_through(self, enable_plugin, client):
        enable_plugin("ssl")
        answer = client.http.post(
            client.bookings_url, json=booking_body(client.business), headers=FROM_A_PROXY
        )
        assert answer.status_code == 403
        assert answer.json["error"]["code"] == "https_required"


class TestWithOneTrustedProxy:
    @pytest.fixture
    def bookwell_settings(self):
        return {"TRUSTED_PROXIES": 1}

    def test_a_forwarded_https_is_believed_no_redirect_and_hsts_sent(self, enable_plugin, client):
        enable_plugin("ssl")
        answer = client.http.get(SERVICES, headers=FROM_A_PROXY)
        assert answer.status_code == 200
        assert answer.headers["Strict-Transport-Security"] == "max-age=31536000"
        booked = client.http.post(
            client.bookings_url, json=booking_body(client.business), headers=FROM_A_PROXY
        )
        assert booked.status_code == 201, booked.json

    def test_a_forwarded_http_is_redirected_to_the_forwarded_host(self, enable_plugin, client):
        enable_plugin("ssl")
        answer = client.http.get(
            SERVICES + "?x=1",
            headers={"X-Forwarded-Proto": "http", "X-Forwarded-Host": "book.example.com"},
        )
        assert answer.status_code == 308
        assert answer.headers["Location"] == "https://book.example.com" + SERVICES + "?x=1"
