"""fire's benchmark: fire's call path against the raw ZeroMQ + msgpack floor, in one run.

Absolute microseconds depend on the machine, so every row is also reported as a ratio
to the floor (a raw pyzmq DEALER/ROUTER msgpack echo over the same ipc:// transport),
measured in the same run with its blocks interleaved with the other rows'. Run it with
``make bench`` or ``python -m bench``.

Rows are `Case` objects in a registry, so other packages add their own rows (djfire's
isolated-test-scope and full-system-test calls, ``bench/cases_djfire.py``, on the test
suite's project) without editing this package: see `bench.registry`. A `Comparison` sets
two rows side by side (flush-based ÷ rollback-based isolation) in a table of its own.
"""

from .registry import Case, Comparison, Env, case, compare, note, register, registered

__all__ = ["Case", "Comparison", "Env", "case", "compare", "note", "register", "registered"]
