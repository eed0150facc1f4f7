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
