"""Interleaved rounds, loop timing, and the median/spread summary every benchmark reports.

Spread is ``(max - min) / median`` over the rounds: with the handful of rounds a run can afford,
quartiles would rest on one or two samples each, while the full range shows the worst disturbance
plainly.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .benchmark import Measurement, Variant


def seconds_per_call(call: Callable[[], object], calls: int) -> float:
    """Average wall time of ``call`` over ``calls`` back-to-back calls."""
    # Collect before, not during: a collection triggered by an earlier measurement's garbage would
    # otherwise land in this one. Collection caused by the call itself still counts, as it should.
    gc.collect()
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls


def calls_per_measurement(
    call: Callable[[], object], *, target_seconds: float = 0.2, minimum: int = 20
) -> int:
    """How many calls make one measurement last about ``target_seconds`` (never under
    ``minimum``), so that timer resolution and one-off hiccups stay small against it."""
    call()  # untimed: the first call pays for compiling and caching statements
    probe = seconds_per_call(call, minimum)
    return max(minimum, math.ceil(target_seconds / max(probe, 1e-9)))


def run_interleaved(variants: Sequence[Variant], rounds: int) -> dict[str, list[Measurement]]:
    """Measure every variant once per round, rotating who goes first.

    Interleaving spreads slow drifts of the machine (another process, thermal throttling) over all
    variants alike; the rotation keeps any "goes first after a pause" effect off any single one.
    """
    results: dict[str, list[Measurement]] = {variant.name: [] for variant in variants}
    for round_index in range(rounds):
        shift = round_index % len(variants)
        for variant in [*variants[shift:], *variants[:shift]]:
            results[variant.name].append(variant.measure())
    return results


@dataclass(frozen=True)
class Summary:
    median: float
    low: float
    high: float
    rounds: int
    counts: Counter[str]
    extra: dict[str, float] = field(default_factory=dict)  # each figure's median

    @property
    def spread(self) -> float:
        return (self.high - self.low) / self.median if self.median else math.inf


def summarise(measurements: Sequence[Measurement]) -> Summary:
    values = [measurement.value for measurement in measurements]
    counts: Counter[str] = Counter()
    for measurement in measurements:
        counts.update(measurement.counts)
    names = sorted({name for measurement in measurements for name in measurement.extra})
    extra = {
        name: statistics.median(
            measurement.extra[name] for measurement in measurements if name in measurement.extra
        )
        for name in names
    }
    return Summary(statistics.median(values), min(values), max(values), len(values), counts, extra)
