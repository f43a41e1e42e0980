"""Run on the shop server (imported there as ``bench.system_probe``): in-process timings.

The system section compares a fire call that touches the database with the same ORM
call made in the server's own process; these functions time the in-process side, on
the server, inside the caller's test scope (so what they create is rolled back).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

__all__ = ["in_process_us", "median_us"]


def median_us(call: Callable[[], object], times: int) -> float:
    """Median µs of `call` over `times` calls in a row."""
    clock = time.perf_counter_ns
    samples = []
    for _ in range(times):
        start = clock()
        call()
        samples.append(clock() - start)
    return statistics.median(samples) / 1000


def in_process_us(times: int) -> dict[str, float]:
    """Median µs of the typical test's two service-side steps, made in-process."""
    from shop.factories import ProductFactory
    from shop.models import Product

    return {
        "factory": median_us(lambda: ProductFactory(name="bench"), times),
        "count": median_us(Product.objects.count, times),
    }
