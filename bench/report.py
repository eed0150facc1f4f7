"""The plain-text report: one table of all variants, then ratios, counts and problems."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .benchmark import Benchmark, Variant
from .timing import Summary


@dataclass
class Outcome:
    """What one benchmark produced in this run."""

    benchmark: Benchmark
    variants: list[Variant] = field(default_factory=list)
    summaries: dict[str, Summary] = field(default_factory=dict)
    error: str | None = None

    def problems(self) -> list[str]:
        found = [f"{self.benchmark.name}: {self.error}"] if self.error else []
        for name, summary in self.summaries.items():
            for counter in self.benchmark.must_stay_zero:
                if summary.counts.get(counter, 0):
                    found.append(
                        f"{self.benchmark.name}/{name}: {counter} = {summary.counts[counter]}"
                        " (must be 0)"
                    )
        return found


def number(value: float) -> str:
    """Three significant figures below 100, whole numbers above: enough to compare, no noise."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def table(rows: Sequence[Sequence[str]], right_aligned: set[int]) -> list[str]:
    """Fixed-width columns under a header line; numbers right-aligned so digits line up."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = [
            cell.rjust(width) if column in right_aligned else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return lines


def render(outcomes: Sequence[Outcome], rounds: int) -> str:
    rows = [
        ["benchmark", "variant", "unit", "median", "min", "max", "spread", "rounds", "one round is"]
    ]
    for outcome in outcomes:
        for variant in outcome.variants:
            summary = outcome.summaries.get(variant.name)
            if summary is None:
                continue
            better = "higher" if variant.higher_is_better else "lower"
            rows.append(
                [
                    outcome.benchmark.name,
                    variant.name,
                    f"{variant.unit} ({better} is better)",
                    number(summary.median),
                    number(summary.low),
                    number(summary.high),
                    f"{summary.spread:.1%}",
                    str(summary.rounds),
                    variant.detail,
                ]
            )
    lines = table(rows, right_aligned={3, 4, 5, 6, 7})
    lines.append(f"spread = (max - min) / median over {rounds} round(s)")

    notes: list[str] = []
    for outcome in outcomes:
        notes.extend(_ratios(outcome))
        notes.extend(_counts(outcome))
    problems = [problem for outcome in outcomes for problem in outcome.problems()]
    if notes:
        lines.append("")
        lines.extend(notes)
    if problems:
        lines.append("")
        lines.append("PROBLEMS (figures above are not to be trusted):")
        lines.extend(f"  {problem}" for problem in problems)
    return "\n".join(lines)


def _ratios(outcome: Outcome) -> list[str]:
    lines = []
    for comparison in outcome.benchmark.comparisons:
        top = outcome.summaries.get(comparison.numerator)
        bottom = outcome.summaries.get(comparison.denominator)
        if top is None or bottom is None or not bottom.median:
            continue
        ratio = top.median / bottom.median
        verdict = ""
        if comparison.aim is not None:
            met = "met" if ratio <= comparison.aim else "NOT met"
            verdict = f"  (aim <= {comparison.aim:g}x: {met})"
        lines.append(
            f"{outcome.benchmark.name}: {comparison.numerator} / {comparison.denominator}"
            f" = {ratio:.2f}x{verdict}"
        )
    return lines


def _counts(outcome: Outcome) -> list[str]:
    lines = []
    for name, summary in outcome.summaries.items():
        if summary.counts:
            listed = ", ".join(f"{key}={value}" for key, value in sorted(summary.counts.items()))
            lines.append(f"{outcome.benchmark.name}/{name} totals over all rounds: {listed}")
    return lines
