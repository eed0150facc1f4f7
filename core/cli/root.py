"""The ``bookwell`` command: its group, and the commands that run an instance (``init``,
``serve``, ``worker``, ``tick``, ``demo``); the other groups are modules of their own, added
at the end. Every failure is one line on stderr and a non-zero exit."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import socket
import ssl
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import click

from bookwell.core import schema
from bookwell.core.app.factory import create_app
from bookwell.core.cli.demo import (
    DEMO_OWNER,
    DEMO_SLUG,
    enable_demo_plugins,
    ensure_demo,
    ensure_demo_owner,
)
from bookwell.core.cli.instance import Context, pass_context, require_schema
from bookwell.core.cli.plugin_commands import BookwellGroup
from bookwell.core.foundation import clock, config
from bookwell.core.pluginhost import host as pluginhost
from bookwell.core.storage import db


@click.group(cls=BookwellGroup)
@click.option(
    "--instance",
    envvar="BOOKWELL_INSTANCE",
    type=click.Path(file_okay=False),
    # Eager: `--instance X --help` lists the plugins' commands of X.
    is_eager=True,
    help="Instance folder (config, SQLite database, outbox). Default: ./instance",
)
@click.pass_context
def main(context: click.Context, instance: str | None) -> None:
    """Bookwell: online booking whose every security feature is a plugin. Plugins may add
    commands of their own, as `bookwell <plugin> <command>`."""
    # Finding a plugin's command may have made it already, with its app (plugin_commands).
    if not (isinstance(context.obj, Context) and context.obj.instance == instance):
        context.obj = Context(instance)


def _initialise(ctx: Context) -> bool:
    wrote = config.write_instance_file(config.resolve_instance_path(ctx.instance))
    try:
        failures = schema.upgrade_app(ctx.app, pluginhost.host_of(ctx.app))
    except Exception as error:
        raise click.ClickException(f"cannot create or upgrade the schema: {error}") from error
    for failure in failures:  # core is upgraded: a plugin's tables are its own problem
        click.echo(f"warning: plugin {failure.plugin}: tables not upgraded: {failure.error}")
    return wrote


@main.command()
@pass_context
def init(ctx: Context) -> None:
    """Write the instance config (fresh secrets) and create or upgrade the schema."""
    instance_path = config.resolve_instance_path(ctx.instance)
    wrote = _initialise(ctx)
    where = ctx.app.config["DATABASE_URL"].split("@")[-1]
    click.echo(
        f"{'wrote' if wrote else 'kept'} {instance_path / config.CONFIG_FILE}; "
        f"schema is up to date on {where}"
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--certfile",
    metavar="FILE",
    help="Serve HTTPS with this certificate (PEM, with its chain); needs --keyfile.",
)
@click.option(
    "--keyfile",
    metavar="FILE",
    help="The certificate's private key (PEM, without a passphrase); needs --certfile.",
)
@pass_context
def serve(
    ctx: Context,
    host: str,
    port: int,
    workers: int,
    certfile: str | None,
    keyfile: str | None,
) -> None:
    """Serve the app with gunicorn, over HTTPS with --certfile and --keyfile. Without REDIS_URL,
    each worker process also runs the scheduled work (on_schedule, due mail) every
    BOOKWELL_TICK_SECONDS, under database leases. Forwarded headers are believed only as
    BOOKWELL_TRUSTED_PROXIES says. gunicorn's control socket (for gunicornc) is gunicorn.ctl in
    the instance folder. See docs/deploy.md for serving behind nginx or Caddy."""
    tls = check_tls_files(certfile, keyfile)
    check_port_free(host, port)
    require_schema(ctx.app)
    unprotected = schema.trail_unprotected_from(db.engine_of(ctx.app))
    if unprotected is not None:
        click.echo(
            f"warning: {unprotected}: it could switch off the audit trail's protection; connect "
            "as a role of its own, see docs/deploy.md (two database roles)"
        )
    db.engine_of(ctx.app).dispose()  # no connection of the master may be inherited by workers
    run_gunicorn(ctx.instance, host, port, workers, tls=tls)


def check_tls_files(certfile: str | None, keyfile: str | None) -> tuple[str, str] | None:
    """The certificate and key to serve HTTPS with, checked before anything starts: gunicorn
    would find them wrong only in each worker, as a traceback, while the master retries."""
    if certfile is None and keyfile is None:
        return None
    if certfile is None or keyfile is None:
        raise click.ClickException("--certfile and --keyfile go together: give both, or neither")
    for option, path in (("--certfile", certfile), ("--keyfile", keyfile)):
        try:
            with open(path, "rb"):
                pass
        except FileNotFoundError as error:
            raise click.ClickException(f"{option} {path}: no such file") from error
        except IsADirectoryError as error:
            raise click.ClickException(f"{option} {path}: a folder, not a file") from error
        except OSError as error:
            raise click.ClickException(
                f"{option} {path}: cannot be read ({error.strerror or error})"
            ) from error

    def no_passphrase() -> bytes:
        # Without this, OpenSSL would stop and ask on the terminal; gunicorn's workers cannot.
        raise click.ClickException(
            f"--keyfile {keyfile}: the key has a passphrase; give an unencrypted key, "
            "readable by this user only"
        )

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            certfile, keyfile, password=no_passphrase
        )
    except ssl.SSLError as error:
        reason = error.reason or error.strerror or str(error)
        raise click.ClickException(
            f"cannot serve HTTPS with --certfile {certfile} and --keyfile {keyfile}: they are "
            f"not a PEM certificate and its private key ({reason})"
        ) from error
    return certfile, keyfile


def check_port_free(host: str, port: int) -> None:
    """Stop with one line if nothing could listen on ``host:port``, before anything says it
    serves there (gunicorn would retry for seconds, then fail with a log of its own)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise click.ClickException(f"cannot listen on {host}: {error.strerror}") from error
    family, kind, protocol, _, address = found[0]
    with socket.socket(family, kind, protocol) as probe:
        # As gunicorn binds: a port left in TIME_WAIT by a server just stopped is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise click.ClickException(
                    f"port {port} on {host} is taken by another program: choose another with --port"
                ) from error
            raise click.ClickException(
                f"cannot listen on {host}:{port}: {error.strerror or error}"
            ) from error


# Beyond this, a Unix socket's path does not fit in sockaddr_un (108 bytes with its NUL).
CONTROL_SOCKET_PATH_LIMIT = 100


def control_socket_of(instance: str | None) -> Path | None:
    """Where gunicorn's control socket goes: in the instance folder, as every other file of the
    instance, so that two instances on one machine never take each other's (gunicorn's default,
    ``$XDG_RUNTIME_DIR/gunicorn.ctl`` or ``~/.gunicorn/gunicorn.ctl``, is one for all of them,
    and the last one started takes it). ``None`` when the folder's path is too long for one."""
    path = config.resolve_instance_path(instance) / "gunicorn.ctl"
    return path if len(os.fsencode(path)) <= CONTROL_SOCKET_PATH_LIMIT else None


# Paths that carry a single-use secret (a client's e-mail verification and password reset
# links, staff's and support's reset links, staff invitations: /book/<slug>/account/verify|reset/,
# /admin/<slug>/reset|invite/, /support/reset/): the access log keeps their shape, never the
# secret, which would let anyone who reads the log use a live link.
SECRET_IN_PATH = re.compile(r"(/(?:verify|reset|invite)/)[^/?#]+")


def redacted_path(path: str) -> str:
    return SECRET_IN_PATH.sub(r"\1…", path)


def served_base_url(instance: str | None, host: str, port: int, scheme: str = "http") -> str | None:
    """Where this server's pages are, for the links in its e-mail, when nobody configured
    ``BASE_URL`` (the default names port 8000: a server on another port mailed dead links);
    ``None`` when it is configured."""
    configured = {
        **config.read_instance_file(config.resolve_instance_path(instance)),
        **config.read_environment(),
    }
    if configured.get("BASE_URL"):
        return None
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104 - a name, not a bind
    if ":" in shown:
        shown = f"[{shown}]"
    return f"{scheme}://{shown}:{port}"


def run_gunicorn(
    instance: str | None,
    host: str,
    port: int,
    workers: int,
    tls: tuple[str, str] | None = None,
) -> None:
    from gunicorn.app.base import BaseApplication
    from gunicorn.glogging import Logger

    control_socket = control_socket_of(instance)
    scheme = "https" if tls else "http"
    base_url = served_base_url(instance, host, port, scheme)
    overrides: dict[str, Any] = {"INSTANCE_PATH": instance} if instance else {}
    if base_url is not None:
        overrides["BASE_URL"] = base_url

    class AccessLog(Logger):
        def atoms(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
            found = super().atoms(resp, req, environ, request_time)
            found["U"] = redacted_path(str(found.get("U", "")))
            return found

    class Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("accesslog", "-")
            # The path without its query string: manage tokens travel in `?token=`.
            self.cfg.set("access_log_format", '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(L)ss')
            self.cfg.set("logger_class", AccessLog)
            self.cfg.set("proc_name", "bookwell")
            # gunicorn believes X-Forwarded-Proto (and its kin) from 127.0.0.1 by default: a
            # local client could claim HTTPS. Only the app's ProxyFix, set by
            # BOOKWELL_TRUSTED_PROXIES, decides which forwarded headers count.
            self.cfg.set("forwarded_allow_ips", "")
            self.cfg.set("proxy_allow_ips", "")  # PROXY protocol: off, and trusted from no one
            if tls is not None:
                self.cfg.set("certfile", tls[0])
                self.cfg.set("keyfile", tls[1])
            if control_socket is None:
                self.cfg.set("control_socket_disable", True)
            else:
                self.cfg.set("control_socket", str(control_socket))
                self.cfg.set("control_socket_mode", 0o600)

        def load(self) -> Any:
            # Each worker builds its own app, so no database connection crosses a fork, and
            # starts its own ticker (not the master's: it would have to survive forks); their
            # leases make each tenant's task run in one of them.
            from bookwell.core.scheduling.tickers import start_in_process

            app = create_app(overrides or None)
            # A plugin whose tables are not upgraded is broken here rather than failing later.
            schema.break_plugins_behind(db.engine_of(app), pluginhost.host_of(app))
            start_in_process(app)
            return app

    click.echo(f"serving on {scheme}://{host}:{port}/ with {workers} workers")
    if base_url is not None:
        click.echo(f"links in e-mail point to {base_url} (set BOOKWELL_BASE_URL to change)")
    if control_socket is None:
        click.echo("gunicorn's control socket is off: the instance folder's path is too long")
    Server().run()


@main.command()
@click.option("--serve", "and_serve", is_flag=True, help="Then serve it on 127.0.0.1:8000.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@pass_context
def demo(ctx: Context, and_serve: bool, port: int) -> None:
    """Create the demo business (idempotent) and say where to find it."""
    if and_serve:
        check_port_free("127.0.0.1", port)
    _initialise(ctx)
    with db.write_transaction(ctx.app) as session:
        tenant, created = ensure_demo(session, clock.now(ctx.app))
        slug, tenant_id = tenant.slug, tenant.id
    owner_password = ensure_demo_owner(ctx.app, tenant_id)
    switched_on = enable_demo_plugins(ctx.app, tenant_id) if created else []
    base = f"http://127.0.0.1:{port}" if and_serve else ctx.app.config["BASE_URL"].rstrip("/")
    click.echo(f"{'created' if created else 'found'} the demo business '{slug}' (Europe/Paris)")
    click.echo(f"booking page: {base}/book/{DEMO_SLUG}/")
    click.echo(f"staff pages:  {base}/admin/{DEMO_SLUG}/login")
    click.echo(f"services:     {base}/api/v1/tenants/{DEMO_SLUG}/services")
    click.echo(
        f"availability: {base}/api/v1/tenants/{DEMO_SLUG}/availability"
        "?service_id=1&from=YYYY-MM-DD&to=YYYY-MM-DD"
    )
    click.echo(f"API document: {base}/api/v1/openapi.json")
    if switched_on:
        market = f"{base}/admin/{DEMO_SLUG}/marketplace"
        click.echo(f"plugins on:   {', '.join(switched_on)} (the marketplace: {market})")
    if owner_password is not None:
        click.echo(f"owner login:  {DEMO_OWNER} / {owner_password}  (shown once; keep it)")
    else:
        click.echo(f"owner login:  {DEMO_OWNER} (password as printed when it was created)")
    if and_serve:
        db.engine_of(ctx.app).dispose()
        run_gunicorn(ctx.instance, "127.0.0.1", port, 2)


class ProgressBars:
    """What scheduled work reports with ``ctx.progress``, drawn on a terminal: one line per
    plugin and tenant, redrawn in place (a carriage return) until it is done or another one
    reports. Called from the plugins' threads."""

    WIDTH = 30

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._drawing: tuple[str, str] | None = None

    def __call__(self, plugin: str, tenant: str, done: int, total: int) -> None:
        with self._lock:
            if self._drawing not in (None, (plugin, tenant)):
                self._stream.write("\n")  # keep the other one's last state on its own line
            if total > 0:
                done = max(0, min(done, total))
                filled = self.WIDTH * done // total
                bar = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{total}"
            else:  # a total not known (yet)
                bar = f"{max(done, 0)} done"
            self._stream.write(f"\r{tenant}: {plugin} {bar}")
            finished = 0 < total <= done
            if finished:
                self._stream.write("\n")
            self._drawing = None if finished else (plugin, tenant)
            self._stream.flush()

    def close(self) -> None:
        """End a line left unfinished, so that what follows starts on its own."""
        with self._lock:
            if self._drawing is not None:
                self._stream.write("\n")
                self._stream.flush()
                self._drawing = None


@main.command()
@click.option("--tenant", "slug", default=None, help="Only this tenant.")
@click.option("--now", "now_text", default=None, help="Run as at this ISO-8601 instant.")
@click.option("--dry-run", is_flag=True, help="Plugins report what they would do; nothing changes.")
@click.option("--allow-future", is_flag=True, help="Accept a --now later than the real clock.")
@pass_context
def tick(
    ctx: Context, slug: str | None, now_text: str | None, dry_run: bool, allow_future: bool
) -> None:
    """Run scheduled work (on_schedule, then due mail) once; on a terminal, with the plugins'
    progress."""
    from datetime import datetime

    from bookwell.core.scheduling.schedule import tick as run_tick

    require_schema(ctx.app)
    real_now = clock.now(ctx.app)
    now = real_now
    if now_text is not None:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError as error:
            raise click.BadParameter(
                f"{now_text!r} is not an ISO-8601 instant", param_hint="--now"
            ) from error
        if now.tzinfo is None:
            raise click.BadParameter("give the instant an offset, e.g. +00:00", param_hint="--now")
        if now > real_now and not (dry_run or allow_future):
            raise click.ClickException(
                "--now is in the future: add --dry-run to preview, or --allow-future to really run"
            )
    # Bars only for a person watching: a log or a pipe gets the report lines alone.
    bars = ProgressBars(sys.stdout) if sys.stdout.isatty() else None
    shown = _plugins_log_shown() if dry_run else contextlib.nullcontext()
    try:
        with ctx.app.app_context(), shown:
            reports = run_tick(ctx.app, now, slug=slug, dry_run=dry_run, progress=bars)
    finally:
        if bars is not None:
            bars.close()
    if slug is not None and not reports:
        raise click.ClickException(f"no tenant with the slug {slug!r}")
    prefix = "dry run: " if dry_run else ""
    for report in reports:
        ran = ", ".join(report.plugins) or "nothing scheduled"
        mail = f"; mail sent {report.mail.sent}, failed {report.mail.failed}" if report.mail else ""
        busy = f"; running elsewhere: {', '.join(report.skipped)}" if report.skipped else ""
        click.echo(f"{prefix}{report.tenant} at {now.isoformat()}: {ran}{mail}{busy}")


class _PluginsLog(logging.Handler):
    """On the terminal, what plugins log (from the threads their hooks run in) and what the
    host logs about them (``bookwell.plugins``): a plugin says what it would do in its log."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("log: %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        from_a_hook = (record.threadName or "").startswith(pluginhost.HOOK_THREADS)
        if from_a_hook or record.name == pluginhost.log.name:
            click.echo(self.format(record))


@contextlib.contextmanager
def _plugins_log_shown() -> Iterator[None]:
    root = logging.getLogger()
    handler, level = _PluginsLog(), root.level
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO))
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@main.command()
@click.option("--burst", is_flag=True, help="Enqueue this period's work, run every job, then exit.")
@pass_context
def worker(ctx: Context, burst: bool) -> None:
    """Run the RQ worker and the ticker of scheduled work (needs REDIS_URL)."""
    from bookwell.core.app.jobs import run_worker

    require_schema(ctx.app)
    if not ctx.app.config.get("REDIS_URL"):
        raise click.ClickException(
            "set REDIS_URL to run the worker; without Redis, `bookwell serve` runs scheduled work"
        )
    run_worker(ctx.app, burst=burst)


def _register_command_groups() -> None:
    from bookwell.core.cli.audit import audit
    from bookwell.core.cli.keys import keys_group
    from bookwell.core.cli.mail import mail
    from bookwell.core.cli.plugins import plugins
    from bookwell.core.cli.tenants import tenants
    from bookwell.core.cli.themes import themes_group
    from bookwell.core.cli.users import tokens_group, users_group

    main.add_command(tenants)
    main.add_command(plugins)
    main.add_command(audit)
    main.add_command(users_group)
    main.add_command(tokens_group)
    main.add_command(mail)
    main.add_command(keys_group)
    main.add_command(themes_group)


_register_command_groups()


if __name__ == "__main__":
    main()
