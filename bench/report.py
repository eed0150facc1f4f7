"""The plain-text report: one table of all variants, then ratios, counts and problems."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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
        notes.extend(_extra(outcome))
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


def ratios(outcome: Outcome) -> list[dict[str, Any]]:
    """Each comparison whose two variants were measured: the ratio of their medians, and whether
    it met its aim (``None`` when it has none)."""
    found = []
    for comparison in outcome.benchmark.comparisons:
        top = outcome.summaries.get(comparison.numerator)
        bottom = outcome.summaries.get(comparison.denominator)
        if top is None or bottom is None or not bottom.median:
            continue
        ratio = top.median / bottom.median
        found.append(
            {
                "benchmark": outcome.benchmark.name,
                "numerator": comparison.numerator,
                "denominator": comparison.denominator,
                "ratio": ratio,
                "aim": comparison.aim,
                "met": None if comparison.aim is None else ratio <= comparison.aim,
            }
        )
    return found


def _ratios(outcome: Outcome) -> list[str]:
    lines = []
    for found in ratios(outcome):
        verdict = ""
        if found["aim"] is not None:
            verdict = f"  (aim <= {found['aim']:g}x: {'met' if found['met'] else 'NOT met'})"
        lines.append(
            f"{found['benchmark']}: {found['numerator']} / {found['denominator']}"
            f" = {found['ratio']:.2f}x{verdict}"
        )
    return lines


def as_json(outcomes: Sequence[Outcome], run: Mapping[str, Any]) -> dict[str, Any]:
    """The same table, ratios and problems as :func:`render`, for a machine to read
    (``--json PATH``); ``run`` says where and how it was measured."""
    results = []
    for outcome in outcomes:
        for variant in outcome.variants:
            summary = outcome.summaries.get(variant.name)
            if summary is None:
                continue
            results.append(
                {
                    "benchmark": outcome.benchmark.name,
                    "variant": variant.name,
                    "unit": variant.unit,
                    "higher_is_better": variant.higher_is_better,
                    "median": summary.median,
                    "min": summary.low,
                    "max": summary.high,
                    "spread": summary.spread,
                    "rounds": summary.rounds,
                    "detail": variant.detail,
                    "counts": dict(sorted(summary.counts.items())),
                    "extra": summary.extra,
                }
            )
    return {
        "run": dict(run),
        "results": results,
        "ratios": [found for outcome in outcomes for found in ratios(outcome)],
        "errors": {o.benchmark.name: o.error for o in outcomes if o.error is not None},
        "problems": [problem for outcome in outcomes for problem in outcome.problems()],
    }


def _extra(outcome: Outcome) -> list[str]:
    lines = []
    for name, summary in outcome.summaries.items():
        if summary.extra:
            listed = ", ".join(f"{key} {number(value)}" for key, value in summary.extra.items())
            lines.append(f"{outcome.benchmark.name}/{name} medians: {listed}")
    return lines


def _counts(outcome: Outcome) -> list[str]:
    lines = []
    for name, summary in outcome.summaries.items():
        if summary.counts:
            listed = ", ".join(f"{key}={value}" for key, value in sorted(summary.counts.items()))
            lines.append(f"{outcome.benchmark.name}/{name} totals over all rounds: {listed}")
    return lines
