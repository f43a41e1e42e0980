"""``manage.py runfireserver``: serve this project to fire clients, on its test databases."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from djfire.lean_imports import django_test_utils
from fire_origin import ForeignFireError, check_fire_package

# First, before djfire.databases imports it too: without jinja2 (djfire.lean_imports).
setup_test_environment = django_test_utils().setup_test_environment
teardown_test_environment = django_test_utils().teardown_test_environment


def _default_address() -> str:
    script = Path(sys.argv[0])
    base = script.resolve().parent if script.name == "manage.py" else Path.cwd()
    return str(base / "fire.sock")


def _parse_http(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise CommandError(f"--http takes HOST:PORT (PORT 0 picks a free one), not {value!r}")
    return host or "127.0.0.1", int(port)


def _log_to_stderr() -> None:
    """Print failing views' tracebacks and djfire's warnings on stderr.

    Django logs view errors to ``django.request``, whose default console handler only
    speaks when DEBUG is on, and test servers run with DEBUG off: without this, a 500
    during a test would leave no trace in the server's output (which the pytest plugin
    shows). djfire warns there about requests that came outside a test, requests that
    waited too long for the database, and scopes rolled back for a departed client.
    """
    formatter = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    for name, level in (("django.request", logging.ERROR), ("djfire", logging.WARNING)):
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(level)
        handler.setFormatter(formatter)
        logging.getLogger(name).addHandler(handler)


class Command(BaseCommand):
    help = (
        "Serve this project to fire clients: create the test databases, isolate each test "
        "in a transaction rolled back at its end, optionally serve HTTP on the same "
        "connections."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        # The first use of fire in the command: another package named fire stops it here.
        try:
            check_fire_package()
        except ForeignFireError as exc:
            if not self._called_from_command_line:
                raise CommandError(str(exc)) from None
            self.stderr.write(f"CommandError: {exc}")  # as Django reports one from handle()
            sys.exit(1)
        from fire.server.options import add_server_arguments

        add_server_arguments(
            parser,
            default_address="fire.sock beside manage.py",
            listeners="a TCP address or the --http address",
        )
        parser.add_argument(
            "--http",
            metavar="HOST:PORT",
            help="also serve the project over HTTP (127.0.0.1:0 picks a port)",
        )
        parser.add_argument(
            "--keepdb", action="store_true", help="reuse the test databases, and keep them at exit"
        )
        parser.add_argument(
            "--rebuild-db",
            action="store_true",
            help="migrate the test databases again and save them as new templates, instead "
            "of cloning the templates there are (four servers started at once rebuild once)",
        )
        parser.add_argument(
            "--lock-timeout",
            type=float,
            default=None,
            metavar="SECONDS",
            help="how long a fire call or HTTP request waits for the database connections "
            "while another holds them, before it fails naming the holder (default: "
            "10)",
        )
        parser.add_argument(
            "--no-data-changes",
            action="store_true",
            help="capture no test's data changes: no triggers, no capture tables, no cost",
        )
        parser.add_argument(
            "--db-suffix",
            default=None,
            help="suffix for test database names (one server per xdist worker)",
        )
        parser.add_argument(
            "--coverage",
            action="store_true",
            help="measure the server with coverage.py from its start (run again under "
            "`coverage run --parallel-mode`), its data written as it stops, for `coverage "
            "combine`",
        )
        parser.add_argument(
            "--coverage-file",
            default=".coverage",
            metavar="DATA_FILE",
            help="with --coverage: the data file its parallel files are named after and "
            "written beside (default: .coverage in the working directory)",
        )
        parser.add_argument(
            "--drop-left-databases",
            action="store_true",
            help="serve nothing: drop the test databases a server started with the same "
            "options left when it died without its teardown (killed by a signal), those a "
            "fire server made and no live one holds; with --keepdb, drop none",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from djfire.startup_gc import resume_after_start

        resume_after_start()  # paused since djfire's app was loaded (djfire.startup_gc)
        if options["coverage"] and not options["drop_left_databases"]:
            from djfire.coverage import measure_from_start

            measure_from_start(options["coverage_file"], self.stderr.write)  # or says why not
        import django
        from django.conf import settings
        from django.core.signals import got_request_exception

        from djfire.caches import LocalCaches
        from djfire.changes import ChangeCapture
        from djfire.checks import check_django_version, live_server_warnings
        from djfire.connection_lock import DEFAULT_LOCK_TIMEOUT
        from djfire.contract_recording import ContractRecorder
        from djfire.contracts import ContractStates
        from djfire.databases import (
            SharedConnections,
            create_test_databases,
            destroy_test_databases,
        )
        from djfire.helpers import DjangoHelpers
        from djfire.isolation import DjangoScopes
        from djfire.live_server import LiveServer
        from djfire.stale import KeptDatabases
        from djfire.templates import Spares
        from djfire.values import django_value_rules
        from fire import FireError, Server
        from fire.extensions import is_loopback, prepare_socket_path
        from fire.net.curve import server_keys
        from fire.runners.supervise import ready_line

        if self._called_from_command_line:
            self._tolerate_lost_reader()
        if options["drop_left_databases"]:
            from djfire.leftovers import drop_left_databases

            drop_left_databases(
                keepdb=options["keepdb"],
                suffix=options["db_suffix"],
                verbosity=options["verbosity"],
                say=self.stdout.write,
            )
            return
        notices = [check_django_version(django.VERSION, sys.executable)]
        verbosity = options["verbosity"]
        if verbosity >= 2:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        address = options["address"] or _default_address()
        http = _parse_http(options["http"]) if options["http"] else None
        if http is not None and not options["allow_remote"] and not is_loopback(http[0]):
            raise CommandError(
                f"refusing to serve HTTP on {http[0]}: --http binds to loopback unless "
                "--allow-remote is given"
            )
        if http is not None:
            notices += live_server_warnings(settings, http[0])
        for notice in filter(None, notices):
            self.stderr.write(f"runfireserver: warning: {notice}")
        keepdb = options["keepdb"]
        limits = {
            "max_message_size": options["max_message_size"],
            "liveness": options["liveness"],
        }
        try:
            curve = (
                server_keys(options["curve_secret"], options["curve_clients"])
                if address.startswith("tcp://")
                else None
            )
            # Checked before the (slow) database set-up: address, keys, a live server there.
            checked = Server(address, curve=curve, allow_remote=options["allow_remote"], **limits)
            if checked.address.path is not None:
                prepare_socket_path(checked.address.path)
        except (FireError, OSError) as exc:
            raise CommandError(str(exc)) from None

        # Stop cleanly on SIGTERM/SIGINT from here on, even while databases are created.
        # SIGINT (Ctrl-C: the terminal's, or the runner's when its run was interrupted)
        # also cancels the spare being made; SIGTERM (a run's end) lets it finish.
        stopping: list[int] = []
        spares: Spares | None = None
        servers: list[Server] = []

        def stop(signum: int, frame: Any) -> None:
            stopping.append(signum)
            for server in servers:
                server.interrupt(signum)  # a call running now ends too
            if signum == signal.SIGINT and spares is not None:
                spares.cancel()  # Ctrl-C: the next start's spare is not worth the wait

        # SIGHUP too: the terminal of a test run closed (a run that was its session's
        # leader ended) must not kill the server before its teardown; unless ignored
        # (nohup).
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            if signal.getsignal(signum) is not signal.SIG_IGN:
                signal.signal(signum, stop)

        setup_test_environment(debug=False)
        databases = create_test_databases(
            keepdb=keepdb,
            verbosity=verbosity,
            suffix=options["db_suffix"],
            rebuild=options["rebuild_db"],
            say=self.stdout.write,
        )
        made = databases.templates.summary() if databases.templates is not None else None
        live = None
        try:
            shared = SharedConnections(options["lock_timeout"] or DEFAULT_LOCK_TIMEOUT)
            capture = ChangeCapture(shared.by_alias, enabled=not options["no_data_changes"])
            capture.install()  # never raises: what it cannot watch it skips, and says
            if verbosity >= 2:
                for alias, skipped in capture.skipped().items():
                    for table, reason in skipped.items():
                        self.stdout.write(f"data changes: {alias}: {table} not watched ({reason})")
            kept = KeptDatabases.of(shared.aliases) if keepdb else None
            if kept is not None:
                got_request_exception.connect(kept.on_request_exception, weak=False)
            annotate = kept.annotate if kept is not None else None
            scopes = DjangoScopes(shared, capture, LocalCaches(), annotate)
            if http is not None:
                live = LiveServer(http[0], http[1], shared, scopes.around_http_request)
                settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, live.host, "localhost"]
                live.start()
            if verbosity >= 1:  # after the project's wsgi.py, whose django.setup() resets logging
                _log_to_stderr()
            helpers = DjangoHelpers(scopes, live.url if live else None, made)
            server = Server(
                address,
                curve=curve,
                allow_remote=options["allow_remote"],
                extensions=[
                    scopes,
                    helpers,
                    ContractRecorder(scopes, live),
                    ContractStates(scopes),
                ],
                values=django_value_rules(),
                **limits,
            )
            servers.append(server)
            try:
                endpoint = server.bind()
            except (FireError, OSError) as exc:
                raise CommandError(str(exc)) from None
            url = live.url if live else None
            self.stdout.write(ready_line(endpoint, url, capture.summary(), made))
            self.stdout.flush()
            if databases.templates is not None:  # the next start's spare, made meanwhile
                spares = databases.templates.make_spares()
            if not stopping:
                server.serve_forever()
            else:
                server.close()
        finally:
            if live is not None:
                live.stop()
            if spares is not None:  # a spare half-made would be left unmarked
                if signal.SIGINT in stopping:
                    spares.cancel()
                spares.join()
            if keepdb:
                databases.claims.release()
            else:
                destroy_test_databases(databases, verbosity=verbosity)
            teardown_test_environment()

    def _tolerate_lost_reader(self) -> None:
        """Output that never fails: a spawned server's output is a pipe to its runner,
        and a runner killed before the server's teardown (rollback, test databases
        dropped, socket removed) must not abort it half-way (`fire.server.output`)."""
        from fire.server.output import tolerate_lost_reader

        tolerate_lost_reader()
        self.stdout, self.stderr = OutputWrapper(sys.stdout), OutputWrapper(sys.stderr)
        self.stderr.style_func = self.style.ERROR
