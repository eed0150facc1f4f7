"""What a benchmark is: a prepared set of variants, measured round by round by the runner."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Options:
    """What the command line chose, handed to every benchmark's ``prepare``."""

    rounds: int
    # None: a SQLite file in a scratch folder. Otherwise a PostgreSQL server's admin URL, on which
    # each benchmark creates (and afterwards drops) a database of its own.
    database_url: str | None
    workdir: Path
    # ``--quick``: the same measurements on smaller data and fewer calls, so that the whole run
    # takes under two minutes; its figures are for spotting regressions, not for the README.
    quick: bool = False


@dataclass(frozen=True)
class Measurement:
    """One round of one variant: the figure, plus event counts worth reporting (e.g. 409s)."""

    value: float
    counts: Mapping[str, int] = field(default_factory=dict)
    # Figures beside the value, reported as their medians over the rounds (e.g. the server's
    # CPU time per request): where the value's time went, measured in the same round.
    extra: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Variant:
    """One thing being measured; ``measure`` runs once per round and must be repeatable."""

    name: str
    unit: str
    measure: Callable[[], Measurement]
    higher_is_better: bool = False
    detail: str = ""  # what one measurement consists of, e.g. "mean of 40 calls"


@dataclass(frozen=True)
class Comparison:
    """``numerator``'s median over ``denominator``'s, both from the same run."""

    numerator: str
    denominator: str
    aim: float | None = None  # the ratio we want to stay at or under


# A context manager, so that whatever a benchmark starts (servers, databases) is torn down even
# when a round raises.
Prepare = Callable[[Options], contextlib.AbstractContextManager[list[Variant]]]


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    prepare: Prepare
    comparisons: tuple[Comparison, ...] = ()
    # Counters that must sum to zero over all rounds, or the run is reported as failed.
    must_stay_zero: tuple[str, ...] = ()
