"""The soak's knobs, read once from the environment (the Makefile's `make soak` sets them)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SoakSettings"]

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class SoakSettings:
    """How many tests, from which seed, when to take the first sample, where to report,
    how long the servers get to tear down before what is left counts as left behind."""

    tests: int
    seed: int
    workers: int
    report: Path
    leftover_wait: float

    @classmethod
    def from_environ(cls) -> SoakSettings:
        """SOAK_TESTS (10,000), SOAK_SEED (23), SOAK_REPORT, SOAK_LEFTOVER_WAIT (60 s);
        the worker count is xdist's."""
        return cls(
            tests=int(os.environ.get("SOAK_TESTS", "10000")),
            seed=int(os.environ.get("SOAK_SEED", "23")),
            workers=int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")),
            report=Path(os.environ.get("SOAK_REPORT", HERE / "report" / "soak.json")),
            leftover_wait=float(os.environ.get("SOAK_LEFTOVER_WAIT", "60")),
        )

    @property
    def sample_at(self) -> int:
        """The worker's test after which its servers are first sampled: its share of the
        run's first 10 % (test 500 of each of two workers in a 10,000-test run)."""
        return max(1, self.tests // 10 // self.workers)
