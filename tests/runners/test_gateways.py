"""Servers started through execnet gateways: another virtualenv, ssh, and dying gateways.

The ssh tests reach their own ``sshd`` (the ``ssh_config`` fixture of this directory's
conftest); they are skipped where openssh-server is missing (CI installs it).
"""

from __future__ import annotations

import os
import signal
import site
import sys
import time
from pathlib import Path

import pytest

import fire
from djfire.launch import RUNFIRESERVER
from fire.runners.spawn import ServerSpec, SpawnedServer, parse_spawn_spec
from fire.testing import shared_remote

from ..conftest import MANAGE, make_venv, scratch_dir

GONE_WITHIN = 60.0  # a generous bound for a process to be stopped: a wait, not a measure


def shop_spec(gateway: str | None, **options: str | None) -> ServerSpec:
    spec = ServerSpec(
        name="shop",
        program=MANAGE,
        launcher=RUNFIRESERVER,
        gateway=gateway,
        env={
            "DJFIRE_TEST_DB": "sqlite",
            "DJFIRE_TEST_DIR": scratch_dir("fire-db-"),
        },
    )
    for key, value in options.items():
        setattr(spec, key, value)
    return spec


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + GONE_WITHIN
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


@pytest.fixture(scope="module")
def second_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second virtualenv, its own prefix and interpreter, that sees this one's packages."""
    root = tmp_path_factory.mktemp("venv") / "service"
    lines = "".join(f"import site; site.addsitedir({path!r})\n" for path in site.getsitepackages())
    make_venv(root, "parent_venv.pth", lines)
    return root


def test_a_server_in_another_virtualenv_through_a_popen_gateway(second_venv: Path) -> None:
    python = second_venv / "bin" / "python"
    spec = parse_spawn_spec(f"shop={MANAGE}:gateway=popen//python={python}")
    spec.env = shop_spec(None).env
    server = SpawnedServer(spec).start()
    try:
        assert server.address.endswith("shop.sock")  # this host: a Unix socket
        with fire.connect(server.address) as shop:
            assert shop.module("sys").prefix == str(second_venv)
            assert shop.info()["pid"] == server.pid
            with shop.scope():
                product = shop.module("shop.factories").ProductFactory(name="lamp")
                assert shop.module("shop.models").Product.objects.get().name == product.name
        assert server.url is not None and server.url.startswith("http://127.0.0.1:")
    finally:
        assert server.stop() == 0  # SIGTERM: a clean exit, test databases destroyed
    assert not alive(server.pid or 0)
    assert any("Destroying test database" in line for line in server.output)


def test_a_dying_gateway_never_leaves_its_server_running() -> None:
    server = SpawnedServer(shop_spec(f"popen//python={sys.executable}")).start()
    assert server.pid is not None and alive(server.pid)
    gateway_pid = server._gateway.remote_exec("import os; channel.send(os.getpid())").receive()
    os.kill(gateway_pid, signal.SIGKILL)
    try:
        assert wait_gone(server.pid), "the server outlived its gateway"
    finally:
        server.stop(timeout=5)


def test_a_closed_channel_stops_the_server() -> None:
    server = SpawnedServer(shop_spec(f"popen//python={sys.executable}")).start()
    assert server.pid is not None
    server._gateway.exit()  # as when the test run ends without stopping its servers
    try:
        assert wait_gone(server.pid), "the server outlived its channel"
    finally:
        server.stop(timeout=5)


def test_a_gateway_that_cannot_start_is_a_clear_error() -> None:
    spec = shop_spec("popen//python=/no/such/python")
    server = SpawnedServer(spec)
    with pytest.raises(fire.FireError, match="cannot open the execnet gateway"):
        server.start()
    assert not Path(server.address).parent.exists()  # its socket's directory went too


# -- ssh --------------------------------------------------------------------------------


def test_a_server_through_an_ssh_gateway_is_reached_over_curve_tcp(ssh_config: Path) -> None:
    gateway = f"ssh=127.0.0.1//ssh_config={ssh_config}//python={sys.executable}"
    spec = shop_spec(gateway)
    server = SpawnedServer(spec).start()
    try:
        assert server.address.startswith("tcp://127.0.0.1:")
        assert server.client_keys is not None  # made for this run
        with pytest.raises(fire.FireError, match="needs CURVE keys"):
            fire.connect(server.address)
        shop = shared_remote("shop-over-ssh", server.address, curve=server.client_keys)
        with shop.scope():
            shop.module("shop.factories").ProductFactory(name="lamp")
            assert shop.module("shop.models").Product.objects.count() == 1
        assert shop.info()["pid"] == server.pid
        shop.close()
    finally:
        assert server.stop() == 0
    assert not alive(server.pid or 0)


def test_a_broken_ssh_connection_stops_the_remote_server(ssh_config: Path) -> None:
    gateway = f"ssh=127.0.0.1//ssh_config={ssh_config}//python={sys.executable}"
    server = SpawnedServer(shop_spec(gateway)).start()
    assert server.pid is not None
    ssh_client = server._gateway._io.popen  # the local ssh process of the gateway
    ssh_client.kill()
    try:
        assert wait_gone(server.pid), "the remote server outlived its ssh connection"
    finally:
        server.stop(timeout=5)


def test_the_pytest_plugin_spawns_through_an_ssh_gateway(
    pytester: pytest.Pytester, ssh_config: Path
) -> None:
    pytester.makepyfile(
        test_shop="""
        def test_makes_a_product(fire_remote):
            shop = fire_remote("shop")
            assert shop.module("shop.factories").ProductFactory(name="lamp").name == "lamp"

        def test_sees_nothing_of_the_previous_test(fire_remote):
            assert fire_remote("shop").module("shop.models").Product.objects.count() == 0
        """
    )
    gateway = f"ssh=127.0.0.1//ssh_config={ssh_config}//python={sys.executable}"
    result = pytester.runpytest(f"--fire-spawn=shop={MANAGE}:gateway={gateway}")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"  shop: spawned from {MANAGE} (gateway ssh=127.0.0.1*"])


def test_xdist_workers_on_another_host_each_start_their_own_servers(
    pytester: pytest.Pytester, ssh_config: Path, tmp_path: Path
) -> None:
    """pytest-xdist workers reached over ssh (`--tx ssh=…`, the code already there: no
    rsync) spawn their own servers on their host, with test databases of their own."""
    pytester.makepyfile(
        test_workers="""
        import os
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_own_database(fire_remotes, n):
            shop = fire_remotes["shop"]
            name = str(shop.module("django.db").connection.settings_dict["NAME"])
            assert name.endswith("_" + os.environ["PYTEST_XDIST_WORKER"])
            assert shop.info()["pid"] != os.getpid()
            shop.module("shop.factories").ProductFactory()
            assert shop.module("shop.models").Product.objects.count() == 1
        """
    )
    worker = (
        f"ssh=127.0.0.1//ssh_config={ssh_config}//python={sys.executable}"
        f"//chdir={pytester.path}"
        # The environment of the worker's host (ssh does not pass this one on).
        f"//env:DJFIRE_TEST_DB=sqlite-file//env:DJFIRE_TEST_DIR={tmp_path}"
    )
    result = pytester.runpytest_subprocess(
        "--dist", "load", "--tx", f"2*{worker}", f"--fire-spawn=shop={MANAGE}", "-v"
    )
    result.assert_outcomes(passed=4)
    # both workers took tests, each with its own server and test databases
    result.stdout.fnmatch_lines(["[[]gw0[]] *PASSED*"])
    result.stdout.fnmatch_lines(["[[]gw1[]] *PASSED*"])
