"""Timing: every row's blocks interleaved, one sample per call, medians in microseconds.

Blocks run round-robin over the rows (floor block 1, fire block 1, …, floor block 2, …)
so a slow spell of the machine hits every row alike and the ratios to the floor stay
fair. Each block begins with untimed calls, so a row does not pay for the one before
it. Each call is timed on its own and a block reports its median, so a garbage
collection or a scheduler hiccup moves a sample, not the result; the row's figure is
the median of its block medians, and the spread of block medians shows the noise.
"""

from __future__ import annotations

import contextlib
import statistics
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from .registry import Call, Case, Env

__all__ = ["Result", "run"]

#: Untimed calls per row before the first block: imports, shapes, caches, branch predictors.
WARMUP_CALLS = 200
#: Before each block, calls // this many untimed: a row whose client polls for its reply
#: ran 10-25 % slower for a whole block when it came right after a row whose client
#: sleeps (its threads still placed for sleeping); a fifth of a block settles it.
BLOCK_WARMUP_SHARE = 5


@dataclass
class Result:
    """One row's measurements (µs), or why it has none."""

    case: Case
    calls: int
    block_medians: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def median(self) -> float | None:
        """The row's figure: the median of its block medians."""
        return statistics.median(self.block_medians) if self.block_medians else None


ExitCallback = Callable[
    [type[BaseException] | None, BaseException | None, TracebackType | None], bool | None
]


def _teardown(result: Result, setup: contextlib.AbstractContextManager[Call]) -> ExitCallback:
    """Exit a row's setup; a failing teardown becomes the row's note, not the run's end."""

    def exit_row(*exc_info: object) -> bool:
        try:
            setup.__exit__(None, None, None)
        except Exception as exc:
            result.error = result.error or f"teardown failed: {_describe(exc)}"
        return False

    return exit_row


def _block(call: Call, calls: int) -> float:
    """Median µs of `calls` individually timed calls, after a fifth as many untimed."""
    clock = time.perf_counter_ns
    for _ in range(calls // BLOCK_WARMUP_SHARE):
        call()
    samples = [0] * calls
    for i in range(calls):
        start = clock()
        call()
        samples[i] = clock() - start
    return statistics.median(samples) / 1000


def _describe(exc: BaseException) -> str:
    return traceback.format_exception_only(exc)[-1].strip()


def run(cases: list[Case], env: Env, blocks: int, scale: float) -> list[Result]:
    """Set every row up, warm it up, then time `blocks` interleaved blocks of each."""
    results = [Result(c, max(1, round(c.calls * scale))) for c in cases]
    calls: dict[int, Call] = {}
    with contextlib.ExitStack() as stack:
        for index, result in enumerate(results):
            try:
                setup = result.case.setup(env)
                call = setup.__enter__()
                stack.push(_teardown(result, setup))
                for _ in range(min(result.calls, WARMUP_CALLS)):
                    call()
            except Exception as exc:
                result.error = f"setup failed: {_describe(exc)}"
                continue
            calls[index] = call
        for _ in range(blocks):
            for index, call in list(calls.items()):
                try:
                    results[index].block_medians.append(_block(call, results[index].calls))
                except Exception as exc:
                    results[index].error = f"failed: {_describe(exc)}"
                    del calls[index]
    return results
