"""``python -m bench`` as someone runs it by hand: the printed table and the ``--json`` file agree.

Only the quickest benchmark, one round: this checks the runner and its outputs, never a figure.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_writes_its_table_as_json(tmp_path):
    written = tmp_path / "bench.json"
    finished = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--rounds", "1", "--only", "plugins"]
        + ["--json", str(written)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    report = json.loads(written.read_text())

    assert report["run"]["quick"] is True and report["run"]["rounds"] == 1
    assert report["run"]["database"] == "sqlite"
    assert report["run"]["machine"]["cpus"] >= 1
    variants = {(row["benchmark"], row["variant"]): row for row in report["results"]}
    assert len(variants) == 4
    for (benchmark, variant), row in variants.items():
        assert benchmark == "plugins"
        assert row["rounds"] == 1 and row["min"] <= row["median"] <= row["max"]
        assert variant in finished.stdout  # the same rows as the printed table
    for ratio in report["ratios"]:
        top = variants["plugins", ratio["numerator"]]["median"]
        bottom = variants["plugins", ratio["denominator"]]["median"]
        assert abs(ratio["ratio"] - top / bottom) < 1e-9
        assert ratio["met"] == (None if ratio["aim"] is None else ratio["ratio"] <= ratio["aim"])
    assert report["problems"] == [] and report["errors"] == {}


def test_figures_beside_a_value_are_reported_as_their_medians(monkeypatch):
    """A round may say where its time went (the server's CPU per request): each such figure is
    the median over the rounds, printed under the table and kept in the JSON."""
    monkeypatch.syspath_prepend(str(ROOT))  # bench/ is the repository's, not installed
    from bench.benchmark import Benchmark, Measurement, Variant
    from bench.report import Outcome, as_json, render
    from bench.timing import summarise

    rounds = [
        Measurement(70.0, {"409": 0}, {"app CPU ms/request": 17.0, "database CPU ms/request": 4.0}),
        Measurement(75.0, {"409": 0}, {"app CPU ms/request": 15.0, "database CPU ms/request": 5.0}),
        Measurement(72.0, {"409": 0}, {"app CPU ms/request": 30.0}),
    ]
    summary = summarise(rounds)
    assert summary.median == 72.0
    assert summary.extra == {"app CPU ms/request": 17.0, "database CPU ms/request": 4.5}

    variant = Variant("POST /bookings", "bookings/s", lambda: rounds[0], higher_is_better=True)
    outcome = Outcome(
        Benchmark("server", "", prepare=None),
        [variant],
        {"POST /bookings": summary},  # type: ignore[arg-type]
    )
    assert (
        "server/POST /bookings medians: app CPU ms/request 17.0, database CPU ms/request 4.50"
        in render([outcome], 3).splitlines()
    )
    assert as_json([outcome], {})["results"][0]["extra"] == summary.extra
