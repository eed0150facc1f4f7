"""`bookwell serve --workers 2` with plugins installed as an author installs them: the guide's
gift cards (a blueprint made at import, so the master and each worker mount the same one), a
plugin whose pages fail at start, and one whose guard never returns. The server starts, serves
the plugin's page, lists the broken one with its reason, and stops without waiting for the
stuck guard's thread. Then what gunicorn must not decide on its own: which forwarded headers
are believed, where its control socket lives, and what a taken port says."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import sqlalchemy
from click.testing import CliRunner
from test_docs import files_shown, write_files

from bookwell.core.cli.root import CONTROL_SOCKET_PATH_LIMIT, main
from bookwell.core.foundation import config

STUCK = """
import time

from bookwell.hooks import Manifest, hookimpl

MANIFEST = Manifest("stuck", "Stuck", "A guard that never returns.", "1.0", "Tests", "tests")


@hookimpl
def before_request(ctx):
    if ctx.request.user_agent == "stuck-test":
        time.sleep(30)
"""
BROKEN_PAGES = """
from bookwell.hooks import Manifest, hookimpl

MANIFEST = Manifest("broken_pages", "Broken", "Pages that fail.", "1.0", "Tests", "tests")


@hookimpl
def routes():
    raise RuntimeError("the pages are not ready")
"""
# Tells which scheme the app saw a request come by (the answer to an `is_secure` question).
SCHEME = """
from bookwell.hooks import Manifest, Refusal, hookimpl

MANIFEST = Manifest("scheme", "Scheme", "Says a request's scheme.", "1.0", "Tests", "tests")


@hookimpl
def before_request(ctx):
    if ctx.request.user_agent == "scheme-test":
        return Refusal(f"scheme={ctx.request.scheme}", "scheme", status=409)
"""
START_LIMIT = 60.0  # seconds for two workers to boot on a busy machine
# Far below gunicorn's graceful timeout (30 s) and the stuck guard's sleep (30 s): a server that
# waited for the stuck thread would not be gone by then.
STOP_LIMIT = 15.0


def install(site: Path, name: str, package: str) -> None:
    """What `pip install` leaves for Bookwell to find: the package and its entry point."""
    info = site / f"{package}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[bookwell.plugins]\n{name} = {package}\n")


@pytest.fixture
def site(tmp_path):
    site = tmp_path / "site"
    shown = files_shown("src/bookwell_gift_cards/")
    write_files(site, {path.removeprefix("src/"): body for path, body in shown.items()})
    install(site, "gift_cards", "bookwell_gift_cards")
    for name, code in (("stuck", STUCK), ("broken_pages", BROKEN_PAGES), ("scheme", SCHEME)):
        write_files(site, {f"bookwell_{name}/__init__.py": code})
        install(site, name, f"bookwell_{name}")
    return site


@pytest.fixture
def bare_environment(tmp_path):
    """The environment of a `bookwell` process: none of the instance's settings but a database
    of the test's own, and a home of its own (gunicorn writes its control socket under
    ``$XDG_RUNTIME_DIR`` or ``~/.gunicorn`` unless told otherwise)."""
    clean = {
        name: value
        for name, value in os.environ.items()
        if name not in config.ENVIRONMENT_KEYS
        and name not in ("BOOKWELL_INSTANCE", "XDG_RUNTIME_DIR", "FORWARDED_ALLOW_IPS")
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
def environment(bare_environment, site):
    return {
        **bare_environment,
        "PYTHONPATH": os.pathsep.join([str(site), bare_environment.get("PYTHONPATH", "")]),
    }


@pytest.fixture
def instance(tmp_path, site, environment, monkeypatch):
    """An instance with tenant salon, which has switched on the gift cards and the stuck guard;
    set up in this process, the plugins found on ``site`` as the server will find them."""
    folder = tmp_path / "instance"
    monkeypatch.syspath_prepend(str(site))
    for name in list(os.environ):
        if name in config.ENVIRONMENT_KEYS:
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", environment["DATABASE_URL"])

    def run(*arguments: str) -> str:
        answer = CliRunner().invoke(main, ["--instance", str(folder), *arguments])
        assert answer.exit_code == 0, answer.output
        return answer.output

    run("init")
    run("tenants", "create", "salon", "--name", "Salon", "--timezone", "Europe/Paris")
    run("plugins", "enable", "gift_cards", "--tenant", "salon")
    run("plugins", "enable", "stuck", "--tenant", "salon")
    run("plugins", "enable", "scheme", "--tenant", "salon")
    listed = {entry["name"]: entry for entry in json.loads(run("plugins", "list", "--json"))}
    assert listed["broken_pages"]["status"] == "broken"
    assert "the pages are not ready" in listed["broken_pages"]["error"]
    assert listed["gift_cards"]["status"] == listed["stuck"]["status"] == "ok"
    for module in ("bookwell_gift_cards", "bookwell_stuck", "bookwell_broken_pages"):
        sys.modules.pop(module, None)
    sys.modules.pop("bookwell_scheme", None)
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bookwell(instance: Path, *arguments: str) -> list[str]:
    return [sys.executable, "-m", "bookwell.core.cli", "--instance", str(instance), *arguments]


def start_serving(instance: Path, environment: dict, log: Path, workers: int):
    """`bookwell serve` in a process of its own, once it answers on /healthz: (process, base)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with log.open("w") as output:
        server = subprocess.Popen(
            bookwell(instance, "serve", "--port", str(port), "--workers", str(workers)),
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
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    return server, base
            except requests.ConnectionError:
                time.sleep(0.2)
    except BaseException:
        stop(server)
        raise


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


def test_two_workers_serve_a_plugins_page_and_stop_without_waiting_for_a_stuck_guard(
    instance, environment, tmp_path
):
    log = tmp_path / "serve.log"
    server, base = start_serving(instance, environment, log, workers=2)
    try:
        # Several times over, so that both workers (each with its own app) answer.
        for _ in range(6):
            page = requests.get(f"{base}/book/salon/gift_cards/", timeout=10)
            assert page.status_code == 200 and "<h1>Gift cards</h1>" in page.text, page.text
        assert "Worker failed to boot" not in log.read_text()
        for _ in range(2):
            stuck = requests.get(
                f"{base}/api/v1/tenants/salon/services",
                headers={"User-Agent": "stuck-test"},
                timeout=20,
            )
            assert stuck.status_code == 503  # the guard overran its limit: refused
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=STOP_LIMIT)
        except subprocess.TimeoutExpired:
            pytest.fail("the server waited for the stuck guard:\n" + log.read_text()[-3000:])
    finally:
        stop(server)


@pytest.mark.parametrize(("trusted_proxies", "seen"), [(None, "http"), ("1", "https")])
def test_a_forwarded_scheme_is_believed_only_as_trusted_proxies_says(
    instance, environment, tmp_path, trusted_proxies, seen
):
    """gunicorn alone would believe X-Forwarded-Proto from 127.0.0.1 (its own default): a local
    client would pass for HTTPS. Only BOOKWELL_TRUSTED_PROXIES decides."""
    if trusted_proxies is not None:
        environment = {**environment, "BOOKWELL_TRUSTED_PROXIES": trusted_proxies}
    server, base = start_serving(instance, environment, tmp_path / "serve.log", workers=1)
    try:
        answer = requests.get(
            f"{base}/api/v1/tenants/salon/services",
            headers={"User-Agent": "scheme-test", "X-Forwarded-Proto": "https"},
            timeout=20,
        )
        plain = requests.get(
            f"{base}/api/v1/tenants/salon/services",
            headers={"User-Agent": "scheme-test"},
            timeout=20,
        )
    finally:
        stop(server)
    assert answer.status_code == plain.status_code == 409, answer.text
    assert answer.json()["error"]["message"] == f"scheme={seen}"
    assert plain.json()["error"]["message"] == "scheme=http"


def test_the_control_socket_is_the_instances_own(instance, environment, tmp_path):
    """gunicorn's control socket (for gunicornc) sits in the instance folder: gunicorn's default
    place is one per user, which every instance on the machine would take from the last."""
    home = Path(environment["HOME"])
    socket_path = instance / "gunicorn.ctl"
    if len(os.fsencode(socket_path)) > CONTROL_SOCKET_PATH_LIMIT:
        pytest.skip("the test's folder is too deep for a Unix socket's path")
    server, _ = start_serving(instance, environment, tmp_path / "serve.log", workers=1)
    try:
        # gunicorn binds the socket, then narrows its mode, then logs this line: the socket is
        # looked at once the line is out, so that a run caught between the two steps is not
        # taken for a wrong mode (a CI run once saw the umask's 0o755 there)
        listening = f"Control socket listening at {socket_path}"
        deadline = time.monotonic() + START_LIMIT
        while listening not in (tmp_path / "serve.log").read_text():
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        mode = socket_path.stat().st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
        assert not (home / ".gunicorn").exists()
    finally:
        stop(server)


@pytest.mark.parametrize("command", [("demo", "--serve"), ("serve",)])
def test_a_taken_port_is_one_line_that_suggests_another(tmp_path, bare_environment, command):
    instance = tmp_path / "instance"
    if command[0] == "serve":
        subprocess.run(bookwell(instance, "init"), env=bare_environment, check=True, timeout=60)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            bookwell(instance, *command, "--port", str(port)),
            env=bare_environment,
            capture_output=True,
            text=True,
            timeout=START_LIMIT,
        )
    assert result.returncode != 0
    assert "serving on" not in result.stdout
    assert result.stderr.splitlines() == [
        f"Error: port {port} on 127.0.0.1 is taken by another program: choose another with --port"
    ]


def test_a_script_exits_without_waiting_for_a_stuck_hook(tmp_path, site, environment):
    """The same without gunicorn: a process whose hook thread is stuck exits when it is done."""
    script = f"""
import sys
import bookwell_stuck
from bookwell.core import create_app
from bookwell.core.pluginhost.host import host_of

app = create_app({{"INSTANCE_PATH": {str(tmp_path / "script")!r}, "SECRET_KEY": "x",
                  "EXTRA_PLUGINS": [bookwell_stuck], "LOAD_ENTRY_POINTS": False,
                  "GUARD_TIMEOUT_SECONDS": 0.2,
                  "DATABASE_URL": {f"sqlite:///{tmp_path / 'script.sqlite3'}"!r}}})
host = host_of(app)
from bookwell.hooks import Context, RequestInfo, TenantInfo
from datetime import datetime, UTC
ctx = Context(tenant=TenantInfo(1, "salon", "Salon", "UTC"), now=datetime.now(UTC),
              request=RequestInfo("127.0.0.1", "stuck-test", "http", "/", "localhost"))
try:
    host.guard("before_request", ctx, {{"stuck": {{}}}})
except Exception as refused:
    print("refused:", refused)
sys.exit(0)
"""
    started = subprocess.Popen(
        [sys.executable, "-c", script],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = started.communicate(timeout=STOP_LIMIT)
    except subprocess.TimeoutExpired:
        started.kill()
        pytest.fail("the process waited for its stuck hook thread")
    assert started.returncode == 0, output
    assert "refused: A safety check (stuck) took too long" in output, output


@pytest.fixture
def limited_instance(tmp_path, database_url, monkeypatch):
    """An instance with tenant salon on this test's database (a SQLite file, or PostgreSQL),
    and the environment its server runs in: 10 logins a minute per address, no Redis."""
    folder = tmp_path / "limited"
    for name in list(os.environ):
        if name in config.ENVIRONMENT_KEYS:
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", database_url)
    for arguments in (
        ["init"],
        ["tenants", "create", "salon", "--name", "Salon", "--timezone", "Europe/Paris"],
    ):
        answer = CliRunner().invoke(main, ["--instance", str(folder), *arguments])
        assert answer.exit_code == 0, answer.output
    clean = {
        name: value
        for name, value in os.environ.items()
        if name not in config.ENVIRONMENT_KEYS and name != "BOOKWELL_INSTANCE"
    }
    return folder, {
        **clean,
        "DATABASE_URL": database_url,
        "BOOKWELL_RATE_LIMITS": "login=10/minute",
        "BOOKWELL_TICK_SECONDS": "3600",
    }


def test_two_workers_without_redis_let_through_the_limit_not_twice_the_limit(
    limited_instance, tmp_path
):
    """Each gunicorn worker used to count alone, in its memory: 10 a minute let 20 through with
    two workers. The guesses go out 10 at a time, so that both workers answer some."""
    folder, environment = limited_instance
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "bookwell.core.cli", "--instance", str(folder)]
    with log.open("w") as output:
        server = subprocess.Popen(
            [*command, "serve", "--port", str(port), "--workers", "2"],
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
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)

        def guess(number: int) -> int:
            return requests.post(
                f"{base}/api/v1/tenants/salon/auth/login",
                json={"email": "owner@example.com", "password": f"guess number {number}"},
                timeout=30,
            ).status_code

        with ThreadPoolExecutor(max_workers=10) as pool:
            statuses = list(pool.map(guess, range(30)))
        assert sorted(statuses) == [401] * 10 + [429] * 20, statuses
        page = requests.get(f"{base}/admin/salon/login", timeout=10)
        assert page.status_code == 200  # reading the login page is free...
        refused = requests.post(f"{base}/admin/salon/login", data={"email": "x@example.com"})
        assert refused.status_code == 429 and "text/html" in refused.headers["Content-Type"]
        assert int(refused.headers["Retry-After"]) >= 1  # ... trying it is not, after 10 tries
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=STOP_LIMIT)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


def test_mail_links_name_the_served_port_and_the_access_log_keeps_no_link_secret(
    instance, environment, tmp_path
):
    """Without BASE_URL the default named port 8000, so a server on another port mailed dead
    links; and the access log wrote each verification (and reset) secret in full."""
    answer = CliRunner().invoke(
        main, ["--instance", str(instance), "tenants", "set", "salon", "--client-accounts"]
    )
    assert answer.exit_code == 0, answer.output
    log = tmp_path / "serve.log"
    server, base = start_serving(instance, environment, log, workers=1)
    try:
        signed_up = requests.post(
            f"{base}/api/v1/tenants/salon/clients",
            json={"name": "Ann", "email": "ann@example.com", "password": "a long passphrase"},
            timeout=20,
        )
        assert signed_up.status_code == 201, signed_up.text
        engine = sqlalchemy.create_engine(environment["DATABASE_URL"])
        with engine.connect() as connection:
            body = connection.scalar(sqlalchemy.text("SELECT text_body FROM outbox_messages"))
        engine.dispose()
        link = re.search(r"http://\S+/account/verify/(\S+)", body)
        assert link is not None, body
        assert link.group(0).startswith(f"{base}/book/salon/account/verify/"), link.group(0)
        opened = requests.get(link.group(0), timeout=20)
        assert opened.status_code == 200
        time.sleep(0.5)  # the access log line is written after the answer
    finally:
        stop(server)
    written = log.read_text()
    assert f"links in e-mail point to {base}" in written
    assert '"GET /book/salon/account/verify/…"' in written
    assert link.group(1) not in written
