"""Result rows and their Markdown / JSON rendering."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmarks._load import LoadResult


@dataclass(frozen=True)
class Row:
    """One reported number. ``ratio`` is to the reference measured in the same run (None when not applicable)."""

    scenario: str
    metric: str
    value: float
    unit: str
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""
    shown: str = ""  # replaces the formatted value, e.g. "yes"/"no"


def machine_rows(scenario: str, r: LoadResult) -> list[Row]:
    """Where the rest of the CPU went during a load window: the load generator and everything else.

    Every scenario reports both, so a slow result can be told apart from a busy machine.
    """
    return [
        Row(scenario, "generator CPU (% of one core)", r.generator_cpu_s / r.elapsed_s * 100, "%"),
        Row(
            scenario,
            "other processes' CPU (% of one core)",
            r.other_cpu_s / r.elapsed_s * 100,
            "%",
            note="noise: what the rest of the machine used",
        ),
    ]


def fmt(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| scenario | metric | value | ratio to reference | target | met | note |",
        "|---|---|---:|---:|---|---|---|",
    ]
    for row in rows:
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}"
        met = "" if row.met is None else ("yes" if row.met else "**no**")
        cells = [
            row.scenario,
            row.metric,
            row.shown or f"{fmt(row.value)} {row.unit}".strip(),
            ratio,
            row.target,
            met,
            row.note,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def busiest_other_cpu(rows: list[Row]) -> float:
    """The most CPU (% of one core) that processes outside the benchmark took during any window."""
    return max((row.value for row in rows if row.metric.startswith("other processes")), default=0.0)


def as_json(rows: list[Row]) -> list[dict[str, object]]:
    return [asdict(row) for row in rows]
