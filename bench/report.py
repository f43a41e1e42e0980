"""The table: median µs per call, the spread of block medians, the ratio to the floor.

The ratio is the median, over rounds, of the row's block median divided by the floor's
block median in the same round: the machine's slow and fast spells (other processes on
a 2-core box) cancel out of each pair, so the ratio is steadier than either figure.
Comparison tables (`bench.registry.Comparison`) pair two rows the same way: flush-based
isolation against rollback-based, say, block by block in the same rounds.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from .registry import Comparison
from .timing import Result

__all__ = ["comparison", "table"]


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def paired_ratio(row: Result, floor: Result | None) -> float | None:
    """Median over rounds of row / floor, each pair measured back to back."""
    if floor is None:
        return None
    pairs = zip(row.block_medians, floor.block_medians, strict=False)
    ratios = [mine / base for mine, base in pairs if base > 0]
    return statistics.median(ratios) if ratios else None


def paired_difference(row: Result, base: Result) -> float | None:
    """Median over rounds of row - base (µs), each pair measured back to back."""
    pairs = zip(row.block_medians, base.block_medians, strict=False)
    differences = [mine - theirs for mine, theirs in pairs]
    return statistics.median(differences) if differences else None


def table(results: Sequence[Result]) -> str:
    """Render the results; rows above their target say so, failed rows say why."""
    floor = next((r for r in results if r.case.floor), None)
    header = ("case", "calls", "median µs", "block spread µs", "x floor", "target", "")
    rows: list[tuple[str, ...]] = [header]
    notes: list[str] = []
    for result in results:
        if not (result.case.in_table or result.error):
            continue
        median = result.median
        ratio = paired_ratio(result, floor)
        spread = "-"
        if result.block_medians:
            spread = f"{min(result.block_medians):.1f}..{max(result.block_medians):.1f}"
        target = result.case.target
        verdict = ""
        if result.error:
            verdict = "see note"
            notes.append(f"{result.case.name}: {result.error}")
        elif ratio is not None and target is not None:
            verdict = "ok" if ratio <= target else "ABOVE TARGET"
        rows.append(
            (
                result.case.name,
                f"{len(result.block_medians)}x{result.calls}",
                _cell(median, ".1f"),
                spread,
                _cell(ratio, ".2f"),
                "" if target is None else f"≤ {target:.2f}",
                verdict,
            )
        )
    lines = _render(rows)
    lines += [f"note: {note}" for note in notes]
    return "\n".join(lines)


def comparison(spec: Comparison, results: Sequence[Result]) -> str:
    """Render one comparison: each pair's two medians and their paired ratio (other ÷ base).

    With ``spec.difference`` the last figure is the paired difference (other - base) in
    ``spec.unit``, marked "ok" or "ABOVE BUDGET" against ``spec.budget``. Pairs whose rows
    were not run (filtered out with -k) are left out; a pair with a failed row shows "-"
    (the main table's note says why).
    """
    by_name = {r.case.name: r for r in results}
    header = ("what", spec.base_label, spec.other_label, spec.ratio_label, "")
    rows: list[tuple[str, ...]] = [header]
    for what, base_name, other_name in spec.pairs:
        base, other = by_name.get(base_name), by_name.get(other_name)
        if base is None and other is None:
            continue
        figure, verdict = None, ""
        if base is not None and other is not None and not (base.error or other.error):
            if spec.difference:
                figure = _scaled(paired_difference(other, base), spec.unit)
                if figure is not None and spec.budget is not None:
                    verdict = "ok" if figure <= spec.budget else "ABOVE BUDGET"
            else:
                figure = paired_ratio(other, base)
        rows.append(
            (
                what,
                _cell(_scaled(base.median if base else None, spec.unit), ".1f"),
                _cell(_scaled(other.median if other else None, spec.unit), ".1f"),
                _cell(figure, ".1f" if spec.difference else ".2f"),
                verdict,
            )
        )
    if len(rows) == 1:
        return ""
    return "\n".join([spec.title, *_render(rows)])


def _scaled(value: float | None, unit: float) -> float | None:
    return None if value is None else value / unit


def _render(rows: list[tuple[str, ...]]) -> list[str]:
    """Align the rows: the first column left, the last as is, the others right; rule under row 0."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for number, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:-1], widths[1:-1], strict=True)]
        cells.append(row[-1])
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("-" * len(lines[0]))
    return lines
