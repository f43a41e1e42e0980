"""fire's rivals on fire's three operations: RPyC, Pyro5 and execnet, in the same rounds.

Each rival does what fire's rows do (a simple call of ``operator.add(1, 2)``, the
3-attribute chain ``bench.targets.outer.inner.add(1, 2)``, the 10,000 items of a remote
``range``) the way its documentation shows, and the row's name says how where it is not
fire's line. A rival that cannot refer to a range gets the items as a list returned whole
by `bench.rivals.items`; fire's row doing the same is here too, so such rows are set
beside it, not beside fire's iteration:

- RPyC, classic mode (``SlaveService``): the same lines as fire's, on netrefs. Every
  attribute read and every call is a round trip, and so is every item of an iteration;
  ``rpyc.classic.obtain`` copies a remote list in one pickle instead.
- Pyro5: methods of an exposed object only (`bench.rivals.Service`), with its default
  serializer (serpent) and with msgpack, fire's. No chain crosses the wire: the method
  reads it on the server.
- execnet: a ``remote_exec`` loop (`bench.rivals.execnet_loop`) answering
  ``(module, attributes, args)`` messages on a channel.

Servers run in processes of their own, on Unix sockets as fire's ipc:// does (RPyC,
Pyro5); execnet's popen gateway is a child process on pipes. RPyC and Pyro5 come with
the ``bench`` extra (``make bench`` installs it); a rival that is not installed is
skipped with a note. The rows are reported, not judged (no targets), and a comparison
table sets each beside fire's row for the same operation ("where fire stands").
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from typing import Any

from .cases import chain_call, list_range, simple_call
from .registry import Call, Case, Comparison, Env, case, compare, note

#: Rivals print after fire's rows (10-31) and before djfire's (40 on), in registration order.
ORDER = 35

#: ``(what, fire's row, the rival's row)`` for the comparison, filled as rows register.
_PAIRS: list[tuple[str, str, str]] = []


@case("fire: rivals.items(10000) (the list returned whole)", calls=50, order=31)
def whole_list(env: Env) -> Iterator[Call]:
    rivals = env.fire_remote().module("bench.rivals")
    yield lambda: rivals.items(10000)


#: What each operation returns, from fire and from every rival.
EXPECTED: dict[str, object] = {
    simple_call.name: 3,
    chain_call.name: 3,
    list_range.name: list(range(10000)),
    whole_list.name: list(range(10000)),
}


def _row(
    operation: Case, rival: str, name: str, calls: int
) -> Callable[[Callable[[Env], Iterator[Call]]], Case]:
    """Register a rival's row for one of fire's operations, and pair it with fire's row.

    The row's first call is checked against the operation's result: a rival's way that
    returned something else (a proxy, an error value) would time the wrong thing, so
    the row fails with a note instead. Rows whose name says how they differ from fire's
    line may take fewer `calls` per block (RPyC's chain is ten times slower than fire's,
    its iteration a thousand times): a block stays a fraction of a second.
    """
    expected = EXPECTED[operation.name]

    def register(setup: Callable[[Env], Iterator[Call]]) -> Case:
        def checked(env: Env) -> Iterator[Call]:
            with contextlib.closing(setup(env)) as generator:
                call = next(generator)
                result = call()
                if result != expected:
                    raise RuntimeError(f"returned {result!r:.80}, not {expected!r:.80}")
                yield call

        row = case(f"{rival}: {name}", calls=calls, order=ORDER)(checked)
        _PAIRS.append((row.name, operation.name, row.name))
        return row

    return register


def _installed(rival: str, module: str) -> bool:
    """Whether `module` can be imported; if not, a note says the rival's rows are skipped."""
    if importlib.util.find_spec(module) is not None:
        return True
    note(
        f"{rival} rows skipped: {module} is not installed (the bench extra: "
        "pip install -e '.[bench]'; make bench installs it)"
    )
    return False


def _server(env: Env, library: str) -> str:
    """Start ``python -m bench.rivals LIBRARY`` on a Unix socket, once per run.

    Returns the ready line's last word: Pyro5's is the daemon's URI.
    """

    def start() -> str:
        path = env.tmpdir / f"{library}.sock"
        argv = [sys.executable, "-m", "bench.rivals", library, str(path)]
        return env.spawn(argv, f"{library} server ready").ready_line.rpartition(" ")[2]

    return env.shared(library, start)


def _rpyc(env: Env) -> Any:
    """One RPyC classic connection per run, to a ``SlaveService`` on a Unix socket."""

    def connect() -> Any:
        import rpyc

        _server(env, "rpyc")
        connection = rpyc.classic.unix_connect(str(env.tmpdir / "rpyc.sock"))
        env.stack.callback(connection.close)  # before the server stops: the stack unwinds
        return connection

    return env.shared("rpyc connection", connect)


def _register_rpyc() -> None:
    @_row(simple_call, "RPyC", "op.add(1, 2)", calls=300)
    def add(env: Env) -> Iterator[Call]:
        op = _rpyc(env).modules.operator
        yield lambda: op.add(1, 2)

    @_row(chain_call, "RPyC", "targets.outer.inner.add(1, 2)", calls=150)
    def chain(env: Env) -> Iterator[Call]:
        targets = _rpyc(env).modules["bench.targets"]
        yield lambda: targets.outer.inner.add(1, 2)

    @_row(list_range, "RPyC", "list(range(10000)) (a round trip per item)", calls=1)
    def iterate(env: Env) -> Iterator[Call]:
        numbers = _rpyc(env).modules.builtins.range(10000)
        yield lambda: list(numbers)

    @_row(whole_list, "RPyC", "obtain(rivals.items(10000)) (a netref's pickled copy)", calls=50)
    def obtain(env: Env) -> Iterator[Call]:
        from rpyc.utils.classic import obtain

        rivals = _rpyc(env).modules["bench.rivals"]
        yield lambda: obtain(rivals.items(10000))


def _register_pyro5(serializer: str, rival: str, calls: dict[str, int]) -> None:
    def proxy(env: Env) -> Any:
        """A proxy of its own per row (a connection each), speaking `serializer`."""
        import Pyro5.api

        service = Pyro5.api.Proxy(_server(env, "pyro5"))
        service._pyroSerializer = serializer  # Pyro5's documented per-proxy setting
        env.stack.callback(service._pyroRelease)
        return service

    @_row(simple_call, rival, "service.add(1, 2) (an exposed method)", calls=calls["add"])
    def add(env: Env) -> Iterator[Call]:
        service = proxy(env)
        yield lambda: service.add(1, 2)

    @_row(
        chain_call,
        rival,
        "service.outer_inner_add(1, 2) (the chain read in the method)",
        calls=calls["chain"],
    )
    def chain(env: Env) -> Iterator[Call]:
        service = proxy(env)
        yield lambda: service.outer_inner_add(1, 2)

    @_row(whole_list, rival, "service.items(10000) (the list returned whole)", calls=calls["items"])
    def items(env: Env) -> Iterator[Call]:
        service = proxy(env)
        yield lambda: service.items(10000)


def _execnet(env: Env) -> Callable[..., Any]:
    """``call(module, attributes, *args)`` through one popen gateway's ``remote_exec`` loop."""

    def start() -> Callable[..., Any]:
        import execnet

        from .rivals import execnet_loop

        pythonpath = env.server_environ()["PYTHONPATH"]
        gateway = execnet.makegateway(
            f"popen//python={sys.executable}//env:PYTHONPATH={pythonpath}"
        )
        env.stack.callback(gateway.exit)
        channel = gateway.remote_exec(execnet_loop)
        env.stack.callback(channel.close)

        def call(module: str, attributes: tuple[str, ...], *args: object) -> Any:
            channel.send((module, attributes, args))
            return channel.receive()

        return call

    return env.shared("execnet", start)


def _register_execnet() -> None:
    @_row(simple_call, "execnet", "operator.add(1, 2) (a remote_exec loop, over pipes)", calls=1000)
    def add(env: Env) -> Iterator[Call]:
        call = _execnet(env)
        yield lambda: call("operator", ("add",), 1, 2)

    @_row(chain_call, "execnet", "targets.outer.inner.add(1, 2) (read in the loop)", calls=1000)
    def chain(env: Env) -> Iterator[Call]:
        call = _execnet(env)
        yield lambda: call("bench.targets", ("outer", "inner", "add"), 1, 2)

    @_row(whole_list, "execnet", "rivals.items(10000) (the list returned whole)", calls=5)
    def items(env: Env) -> Iterator[Call]:
        call = _execnet(env)
        yield lambda: call("bench.rivals", ("items",), 10000)


def _register_all() -> None:
    if _installed("RPyC", "rpyc"):
        _register_rpyc()
    if _installed("Pyro5", "Pyro5"):
        _register_pyro5("serpent", "Pyro5", {"add": 500, "chain": 500, "items": 5})
        _register_pyro5("msgpack", "Pyro5 msgpack", {"add": 1000, "chain": 1000, "items": 50})
    if _installed("execnet", "execnet"):
        _register_execnet()
    operations = [simple_call.name, chain_call.name, list_range.name, whole_list.name]
    compare(
        Comparison(
            title=(
                "Where fire stands: each rival ÷ fire on the same operation, the median of "
                "per-round ratios\n"
                "(3.00: fire is 3x faster; a list returned whole is set beside fire's "
                "rivals.items(10000), every other row beside fire's line;\n"
                " RPyC and Pyro5 on Unix sockets as fire's ipc://, execnet on its popen "
                "gateway's pipes)"
            ),
            base_label="fire µs",
            other_label="rival µs",
            ratio_label="rival ÷ fire",
            pairs=tuple(sorted(_PAIRS, key=lambda pair: operations.index(pair[1]))),
        )
    )


_register_all()
