"""``python -m bench``: run the benchmarks, print medians, spreads and ratios.

Exits 1 when a benchmark failed or reported a correctness problem; a missed aim is reported but is
not a failure, since figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from . import cleanup
from .benchmark import Benchmark, Options
from .report import Outcome, as_json, render
from .suite import BENCHMARKS
from .timing import run_interleaved, summarise

ROUNDS = 7
QUICK_ROUNDS = 3
QUICK_CLEANUP_BOOKINGS = 5_000


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
        "--rounds",
        type=positive,
        help=f"rounds per benchmark (default: {ROUNDS}, or {QUICK_ROUNDS} with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller data and fewer rounds, under two minutes in all: to spot a regression, "
        "not to quote",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="also write the table, ratios and problems as JSON to PATH",
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
    arguments = parser.parse_args(argv)
    if arguments.rounds is None:
        arguments.rounds = QUICK_ROUNDS if arguments.quick else ROUNDS
    if arguments.quick and arguments.cleanup_bookings == cleanup.DEFAULT_BOOKINGS:
        arguments.cleanup_bookings = QUICK_CLEANUP_BOOKINGS
    return arguments


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


def machine() -> dict[str, object]:
    """Where the figures come from: they mean little without it."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse(argv)
    cleanup.size["bookings"] = arguments.cleanup_bookings
    chosen = [b for b in BENCHMARKS if not arguments.only or b.name in arguments.only]
    database = "postgresql (--database-url)" if arguments.database_url else "sqlite"
    started = datetime.now(UTC)
    load_at_start = load_average()
    print(
        f"bookwell bench: {arguments.rounds} round(s){' (quick)' if arguments.quick else ''},"
        f" database {database} (SQLite library {sqlite3.sqlite_version}),"
        f" Python {platform.python_version()} on {platform.machine()} ({os.cpu_count()} CPUs,"
        f" {cpu_model()}), load average {load_at_start}",
        flush=True,  # before the progress lines on stderr, when both go to one terminal or file
    )
    with tempfile.TemporaryDirectory(prefix="bookwell-bench-") as workdir:
        options = Options(
            arguments.rounds, arguments.database_url, Path(workdir), quick=arguments.quick
        )
        outcomes = [run(benchmark, options) for benchmark in chosen]
    print(render(outcomes, arguments.rounds))
    load_at_end = load_average()
    print(f"load average at the end: {load_at_end}")
    if arguments.json is not None:
        run_facts = {
            "started": started.isoformat(timespec="seconds"),
            "seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
            "rounds": arguments.rounds,
            "quick": arguments.quick,
            "database": "postgresql" if arguments.database_url else "sqlite",
            "machine": machine(),
            "load_average": {"start": load_at_start, "end": load_at_end},
        }
        arguments.json.write_text(json.dumps(as_json(outcomes, run_facts), indent=2) + "\n")
        print(f"written: {arguments.json}")
    return 1 if any(outcome.problems() for outcome in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
