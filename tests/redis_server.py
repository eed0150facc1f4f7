"""A private redis-server on loopback for the tests that need a real one (`.ci/run` installs the
binary): started on a free port, stoppable and restartable on the same port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis


def binary() -> str:
    """The redis-server binary, or skip the test that wanted one."""
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )
    if found is None:
        pytest.skip("no redis-server binary (`.ci/run` installs one)")
    return found


def wait_until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def answers(url: str) -> bool:
    connection = redis.Redis.from_url(url, socket_timeout=1)
    try:
        return bool(connection.ping())
    except redis.ConnectionError:
        return False
    finally:
        connection.close()


def free_port() -> int:
    """A loopback port nothing listens on (an unreachable Redis, or one to start)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.pidfile = folder / "redis.pid"

    def start(self) -> None:
        subprocess.run(
            [
                binary(),
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--daemonize", "yes"),
                *("--pidfile", str(self.pidfile), "--dir", str(self.folder)),
                *("--logfile", str(self.folder / "redis.log")),
            ],
            check=True,
        )
        wait_until(lambda: answers(self.url))

    def stop(self) -> None:
        wait_until(self.pidfile.exists, 5)
        pid = int(self.pidfile.read_text())
        os.kill(pid, 15)
        wait_until(lambda: not _alive(pid))

    def running(self) -> bool:
        return self.pidfile.exists() and _alive(int(self.pidfile.read_text() or 0))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
