"""A case's figures as a table: samples per row and column, medians, spread and ratios; printed
as markdown and kept as JSON."""

import statistics
from dataclasses import dataclass, field
from typing import Any


def fmt(value: float) -> str:
    if value != value:  # nan
        return "-"
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def ratio_text(value: float) -> str:
    if value != value:
        return ""
    return f"{value:.2f}x" if value >= 0.01 else f"1/{1 / value:,.0f}x" if value else "0x"


@dataclass
class Table:
    """Rows are figures ("drain (jobs/s)"), columns are kinds ("arq", "pw"); each cell keeps its
    samples, one per round. Ratios are each column's median over the baseline column's."""

    case: str
    title: str
    columns: list[str]
    baseline: str | None = None
    notes: list[str] = field(default_factory=list)
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, column: str, figures: dict[str, float]) -> None:
        for row, value in figures.items():
            self.samples.setdefault(row, {}).setdefault(column, []).append(float(value))

    def median(self, row: str, column: str) -> float:
        values = self.samples.get(row, {}).get(column)
        return statistics.median(values) if values else float("nan")

    def ratio(self, row: str, column: str) -> float:
        if self.baseline is None or column == self.baseline:
            return float("nan")
        base = self.median(row, self.baseline)
        return self.median(row, column) / base if base else float("nan")

    def cell(self, row: str, column: str) -> str:
        values = self.samples.get(row, {}).get(column)
        if not values:
            return ""
        text = fmt(statistics.median(values))
        if len(values) > 1:
            text += f" ({fmt(min(values))}-{fmt(max(values))})"
        ratio = ratio_text(self.ratio(row, column))
        return f"{text} **{ratio}**" if ratio else text

    def markdown(self) -> str:
        lines = [
            f"### {self.title}",
            "",
            "| | " + " | ".join(self.columns) + " |",
            ("|---" * (len(self.columns) + 1) + "|"),
        ]
        lines += [
            f"| {row} | " + " | ".join(self.cell(row, c) for c in self.columns) + " |"
            for row in self.samples
        ]
        if self.baseline is not None:
            lines += [
                "",
                (
                    "Median (min-max) over the rounds; **bold**: the median over "
                    f"{self.baseline}'s in the same run."
                ),
            ]
        lines += [f"{'' if self.baseline else chr(10)}{note}" for note in self.notes]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "title": self.title,
            "columns": self.columns,
            "baseline": self.baseline,
            "notes": self.notes,
            "rows": {
                row: {
                    column: {
                        "median": statistics.median(values),
                        "min": min(values),
                        "max": max(values),
                        "samples": values,
                        "ratio": None if (r := self.ratio(row, column)) != r else r,
                    }
                    for column, values in cells.items()
                }
                for row, cells in self.samples.items()
            },
        }
