"""Every answer, page or API, carries the security headers."""

import pytest


@pytest.mark.parametrize(
    "path",
    [
        "/healthz",
        "/admin/salon/login",
        "/support/login",
        "/api/v1/tenants/salon/services",
        "/api/v1/nothing",
    ],
)
def test_every_answer_carries_a_strict_policy(client, business, path):
    headers = client.get(path).headers
    policy = headers["Content-Security-Policy"]
    assert "unsafe-inline" not in policy
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
