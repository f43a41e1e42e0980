"""The bench's comparison tables: paired ratios, and paired differences against a budget."""

from __future__ import annotations

import contextlib

from bench.registry import Case, Comparison
from bench.report import comparison, table
from bench.timing import Result


def _result(name: str, medians: list[float], *, in_table: bool = True) -> Result:
    row = Case(name, lambda env: contextlib.nullcontext(lambda: None), in_table=in_table)
    return Result(row, calls=1, block_medians=medians)


def _startup(budget: float) -> Comparison:
    return Comparison(
        title="start-up",
        base_label="off ms",
        other_label="on ms",
        ratio_label="adds ms",
        pairs=(("pytest", "off", "on"),),
        difference=True,
        unit=1000.0,
        budget=budget,
    )


def test_a_difference_is_the_median_of_per_round_differences_in_the_unit() -> None:
    # Rounds: +5 ms, +4 ms, +30 ms (a slow spell hits one run): the median is 5 ms.
    off = _result("off", [700_000, 900_000, 650_000], in_table=False)
    on = _result("on", [705_000, 904_000, 680_000], in_table=False)
    text = comparison(_startup(budget=20), [off, on])
    assert text.splitlines()[-1].split() == ["pytest", "700.0", "705.0", "5.0", "ok"]
    assert "ABOVE BUDGET" in comparison(_startup(budget=4), [off, on])


def test_rows_kept_out_of_the_main_table_show_there_only_when_they_fail() -> None:
    shown, hidden = _result("shown", [1.0]), _result("hidden", [2.0], in_table=False)
    failed = _result("failed", [], in_table=False)
    failed.error = "setup failed: boom"
    text = table([shown, hidden, failed])
    assert "shown" in text and "hidden" not in text
    assert "failed: setup failed: boom" in text
