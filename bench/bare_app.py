"""The floor bookings are compared with: a bare Flask app doing one INSERT per POST, served by
gunicorn with the settings ``bookwell serve`` uses (workers, sync worker class, access log).

Run as ``python -m bench.bare_app DATABASE_URL HOST PORT WORKERS``. On SQLite it writes as
Bookwell does (WAL, ``BEGIN IMMEDIATE``, a busy timeout); on PostgreSQL to a table of its own.
"""

from __future__ import annotations

import sys
from typing import Any

from flask import Flask, jsonify, request
from sqlalchemy import text

from bookwell.core.storage import db

CREATE = (
    "CREATE TABLE IF NOT EXISTS bare_bookings (id {key}, provider_id INTEGER NOT NULL,"
    " starts_at VARCHAR(40) NOT NULL, client_name VARCHAR(200) NOT NULL)"
)
INSERT = text("INSERT INTO bare_bookings (provider_id, starts_at, client_name) VALUES (:p, :s, :n)")


def make_app(database_url: str) -> Flask:
    # Bookwell's own engine settings (WAL, busy timeout, BEGIN IMMEDIATE on SQLite), so the
    # floor pays what any writer on that database pays and nothing more.
    engine = db.build_engine(database_url).execution_options(sqlite_begin="IMMEDIATE")
    app = Flask("bare")

    @app.post("/bookings")
    def book() -> Any:
        body = request.get_json()
        with engine.begin() as connection:
            connection.execute(
                INSERT,
                {"p": body["provider_id"], "s": body["start"], "n": body["client"]["name"]},
            )
        return jsonify(ok=True), 201

    @app.get("/healthz")
    def healthz() -> Any:
        return "ok"

    return app


def create_table(database_url: str) -> None:
    engine = db.build_engine(database_url, pool_size=1)
    key = "SERIAL PRIMARY KEY" if engine.dialect.name == "postgresql" else "INTEGER PRIMARY KEY"
    try:
        with engine.begin() as connection:
            connection.execute(text(CREATE.format(key=key)))
    finally:
        engine.dispose()


def serve(database_url: str, host: str, port: int, workers: int) -> None:
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self) -> None:
            # As bookwell.core.cli.root.run_gunicorn sets them (its logger class only redacts).
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("accesslog", "-")
            self.cfg.set("access_log_format", '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(L)ss')
            self.cfg.set("proc_name", "bare")
            self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            return make_app(database_url)

    create_table(database_url)
    Server().run()


if __name__ == "__main__":
    url, bind_host, bind_port, worker_count = sys.argv[1:5]
    sys.argv = sys.argv[:1]  # gunicorn would read ours as its own
    serve(url, bind_host, int(bind_port), int(worker_count))
