"""``python -m bench``: run the benchmarks, print medians, spreads and ratios.

Exits 1 when a benchmark failed or reported a correctness problem; a missed aim is reported but is
not a failure, since figures depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from . import cleanup
from .benchmark import Benchmark, Options
from .report import Outcome, render
from .suite import BENCHMARKS
from .timing import run_interleaved, summarise


def positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run Bookwell's benchmarks, each several rounds interleaved, and print "
        "medians and spreads.",
    )
    parser.add_argument(
        "--rounds", type=positive, default=7, help="rounds per benchmark (default: 7)"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=[benchmark.name for benchmark in BENCHMARKS],
        metavar="NAME",
        help="run only this benchmark (repeatable): "
        + ", ".join(benchmark.name for benchmark in BENCHMARKS),
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="a PostgreSQL server's admin URL; each benchmark creates and drops its own database "
        "there (default: SQLite files in a temporary folder)",
    )
    parser.add_argument(
        "--cleanup-bookings",
        type=positive,
        default=cleanup.DEFAULT_BOOKINGS,
        metavar="N",
        help="ended bookings the cleanup benchmark deletes over its rounds (default: "
        f"{cleanup.DEFAULT_BOOKINGS:,}; the issue's figure is 1000000)",
    )
    return parser.parse_args(argv)


def run(benchmark: Benchmark, options: Options) -> Outcome:
    outcome = Outcome(benchmark)
    started = time.monotonic()
    print(f"{benchmark.name}: {benchmark.description} ...", file=sys.stderr, flush=True)
    try:
        with benchmark.prepare(options) as variants:
            outcome.variants = variants
            results = run_interleaved(variants, options.rounds)
            # Kept even if tearing down fails next: its error is reported beside the figures.
            outcome.summaries = {name: summarise(found) for name, found in results.items()}
    except Exception as error:  # one broken benchmark must not hide the others' figures
        traceback.print_exc(file=sys.stderr)
        outcome.error = f"{type(error).__name__}: {error}"
    print(f"{benchmark.name}: done in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return outcome


def load_average() -> str:
    """The 1-minute load average: on a shared machine, the first thing to look at when figures
    disagree between runs."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except (AttributeError, OSError):  # not every platform has it
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse(argv)
    cleanup.size["bookings"] = arguments.cleanup_bookings
    chosen = [b for b in BENCHMARKS if not arguments.only or b.name in arguments.only]
    database = "postgresql (--database-url)" if arguments.database_url else "sqlite"
    print(
        f"bookwell bench: {arguments.rounds} round(s), database {database}"
        f" (SQLite library {sqlite3.sqlite_version}), Python {platform.python_version()}"
        f" on {platform.machine()} ({os.cpu_count()} CPUs), load average {load_average()}",
        flush=True,  # before the progress lines on stderr, when both go to one terminal or file
    )
    with tempfile.TemporaryDirectory(prefix="bookwell-bench-") as workdir:
        options = Options(arguments.rounds, arguments.database_url, Path(workdir))
        outcomes = [run(benchmark, options) for benchmark in chosen]
    print(render(outcomes, arguments.rounds))
    print(f"load average at the end: {load_average()}")
    return 1 if any(outcome.problems() for outcome in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
