"""``runfireserver --coverage``: a server you start yourself, measured by coverage.py.

Coverage must start before the project is imported, or the lines that run at import
(models' class bodies, module-level code) would show as never run: by the time a
management command runs, ``manage.py`` has set Django up and imported every app's
models. So ``--coverage`` runs the same command again, in the same process
(``os.execv``, so its pid, output and signals stay the runner's), under ``coverage run
--parallel-mode``, which writes a data file of its own (``.coverage.HOST.pidPID.RANDOM``)
as the server stops normally; ``coverage combine`` then joins it to the tests' data.
A server started under ``coverage run`` already is not started again. A spawned server
needs none of this: the spawner starts it under ``coverage run`` directly
(`fire.runners.supervise`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

__all__ = ["measure_from_start"]


def measure_from_start(data_file: str, say: Callable[[str], object]) -> None:
    """Run this command again under ``coverage run``, its data going to `data_file`
    (parallel names beside it); return only where it is measured already or cannot be.

    Where coverage.py is missing, the data's directory is read-only, or the command was
    not started from a file, `say` gets one warning and the server goes on without
    coverage.
    """
    try:
        import coverage
    except ImportError:
        say(
            "runfireserver: warning: --coverage: coverage.py is not installed in this "
            "environment, so the server runs without it: install djfire[coverage]"
        )
        return
    if coverage.Coverage.current() is not None:  # under coverage run already
        return
    path = os.path.abspath(data_file)
    folder = os.path.dirname(path)
    if not os.access(folder, os.W_OK):
        say(
            f"runfireserver: warning: --coverage: {folder} is read-only, so the server "
            "runs without coverage (its data could not be written): give --coverage-file "
            "PATH in a writable directory"
        )
        return
    script = sys.argv[0]
    if not os.path.isfile(script):
        say(
            f"runfireserver: warning: --coverage: the command was not started from a file "
            f"({script!r}), so the server runs without coverage: start it as `coverage run "
            "--parallel-mode manage.py runfireserver …`"
        )
        return
    options = ["--parallel-mode", f"--data-file={path}"]
    if not coverage.Coverage().get_option("run:source"):  # the project, not fire or Django
        options.append(f"--source={os.path.dirname(os.path.abspath(script))}")
    sys.stdout.flush()
    sys.stderr.flush()
    python = sys.executable
    os.execv(python, [python, "-m", "coverage", "run", *options, *sys.argv])
