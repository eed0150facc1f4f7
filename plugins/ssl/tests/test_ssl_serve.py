"""For real: `bookwell serve --certfile --keyfile` in a process of its own, serving HTTPS with a
certificate made for the test, and a business with ``ssl`` on answering over it with HSTS."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from bookwell.core.testing import self_signed_certificate

START_LIMIT = 60.0  # seconds for a worker to boot on a busy machine


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def environment(tmp_path):
    """A `bookwell` process's environment: none of this machine's Bookwell settings, a database
    and a home of the test's own."""
    clean = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("BOOKWELL_")
        and name not in ("DATABASE_URL", "REDIS_URL", "XDG_RUNTIME_DIR", "FORWARDED_ALLOW_IPS")
    }
    home = tmp_path / "home"
    home.mkdir()
    return {
        **clean,
        "HOME": str(home),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite3'}",
        "BOOKWELL_TICK_SECONDS": "3600",
    }


@pytest.fixture
def instance(tmp_path, environment):
    """Businesses salon (with ``ssl`` on) and spa (without), made as an operator would."""
    folder = tmp_path / "instance"
    for arguments in (
        ("init",),
        ("tenants", "create", "salon", "--name", "Salon", "--timezone", "Europe/Paris"),
        ("tenants", "create", "spa", "--name", "Spa", "--timezone", "Europe/Paris"),
        ("plugins", "enable", "ssl", "--tenant", "salon", "--set", "hsts_max_age=63072000"),
    ):
        subprocess.run(  # noqa: S603 - our own command, arguments of the test
            bookwell(folder, *arguments),
            env=environment,
            check=True,
            capture_output=True,
            timeout=START_LIMIT,
        )
    return folder


def bookwell(instance: Path, *arguments: str) -> list[str]:
    # The installed `bookwell` command, as an operator runs it (beside this Python).
    command = Path(sys.executable).with_name("bookwell")
    return [str(command), "--instance", str(instance), *arguments]


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


def test_serve_speaks_https_itself_and_the_business_sends_hsts(instance, environment, tmp_path):
    cert, key = self_signed_certificate(tmp_path / "tls", "127.0.0.1")
    port = free_port()
    base = f"https://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    command = ["serve", "--port", str(port), "--workers", "1"]
    with log.open("w") as output:
        server = subprocess.Popen(  # noqa: S603 - our own command, arguments of the test
            bookwell(instance, *command, "--certfile", str(cert), "--keyfile", str(key)),
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_LIMIT
        while True:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no answer on /healthz:\n" + log.read_text()
            try:
                if requests.get(f"{base}/healthz", verify=cert, timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        page = requests.get(f"{base}/book/salon/", verify=cert, timeout=20)
        assert page.status_code == 200, page.text[:500]
        assert page.headers["Strict-Transport-Security"] == "max-age=63072000"
        other = requests.get(f"{base}/book/spa/", verify=cert, timeout=20)
        assert other.status_code == 200 and "Strict-Transport-Security" not in other.headers
        # The same port never answers in the clear: plain HTTP gets no page at all.
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/book/salon/", timeout=20)
    finally:
        stop(server)
    said = log.read_text()
    assert f"serving on https://127.0.0.1:{port}/" in said
    assert f"links in e-mail point to https://127.0.0.1:{port}" in said
