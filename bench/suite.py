"""Every benchmark ``python -m bench`` knows, in the order it runs them. Add new ones here."""

from __future__ import annotations

from . import availability, availability_http, cleanup, logins, plugins, server
from .benchmark import Benchmark

BENCHMARKS: list[Benchmark] = [
    availability.BENCHMARK,
    availability_http.BENCHMARK,
    plugins.BENCHMARK,
    server.BENCHMARK,
    logins.BENCHMARK,
    cleanup.BENCHMARK,
]
