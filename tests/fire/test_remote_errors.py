"""Exceptions raised by remote code, re-raised locally with their type, args and frames.

In memory (a server's dispatcher in this process): what is checked is the description
of an exception and its rebuilding, not the socket that carries it.
"""

from __future__ import annotations

import inspect
import traceback
import unittest
from typing import Any

import pytest
import remote_helpers
from servers import ExchangeCounter

import fire

HELPERS_FILE = inspect.getsourcefile(remote_helpers)


@pytest.fixture
def remote(memory_remote: fire.Remote) -> fire.Remote:
    """In memory (conftest.memory_remote): this module checks logic, not sockets."""
    return memory_remote


def line_of(marker: str) -> int:
    """The line of remote_helpers.py holding `marker` (where a helper raises)."""
    lines, _ = inspect.getsourcelines(remote_helpers)
    return next(i for i, line in enumerate(lines, 1) if marker in line)


def test_except_keyerror_catches_a_remote_keyerror(helpers: Any) -> None:
    with pytest.raises(KeyError) as raised:
        helpers.fail_key("missing")
    exc = raised.value
    assert isinstance(exc, fire.RemoteError)
    assert isinstance(exc, LookupError)
    assert exc.remote_type == "builtins.KeyError"
    assert exc.args == ("missing",)
    assert exc.remote_args == ("missing",)
    assert exc.server == "shared"


def test_remote_keyerror_from_a_builtin_function(remote: fire.Remote) -> None:
    try:
        remote.module("operator").getitem({}, "x")
    except KeyError as exc:
        assert exc.remote_type == "builtins.KeyError"
        assert exc.args == ("x",)
    else:
        pytest.fail("no KeyError")


def test_remote_traceback_text_names_the_remote_code(helpers: Any) -> None:
    with pytest.raises(KeyError) as raised:
        helpers.fail_key("k")
    text = raised.value.remote_traceback
    assert "remote_helpers.py" in text
    assert "fail_key" in text
    assert "KeyError: 'k'" in text
    assert "fire/server/loop.py" not in text  # fire's dispatch frames are skipped


def test_traceback_frames_point_to_the_remote_file_and_line(helpers: Any) -> None:
    with pytest.raises(KeyError) as raised:
        helpers.fail_key("k")
    frames = traceback.extract_tb(raised.value.__traceback__)
    remote_frames = [f for f in frames if f.filename == HELPERS_FILE]
    assert [(f.name, f.lineno) for f in remote_frames] == [
        ("fail_key", line_of("# fail_key raises here"))
    ]
    assert frames[-1].name == "fail_key"  # the innermost frame is the remote one


def test_remote_frames_are_in_pytest_output(helpers: Any) -> None:
    with pytest.raises(fire.RemoteError) as raised:
        helpers.raise_not_found("page")
    rendered = str(raised.getrepr(style="long", abspath=True))
    assert f"{HELPERS_FILE}:{line_of('# raise_not_found raises here')}: NotFound" in rendered
    assert "raise NotFound(what, 404)" in rendered


def test_custom_hierarchy_is_caught_by_its_remote_base(remote: fire.Remote, helpers: Any) -> None:
    app_error = remote.exception("remote_helpers.AppError")
    not_found = remote.exception("remote_helpers.NotFound")
    other_error = remote.exception("remote_helpers.OtherError")
    assert issubclass(not_found, app_error)
    assert not issubclass(not_found, other_error)
    with pytest.raises(app_error) as raised:
        helpers.raise_not_found("page")
    exc = raised.value
    assert type(exc) is not_found
    assert type(exc).__name__ == "NotFound"
    assert exc.remote_type == "remote_helpers.NotFound"
    assert exc.args == ("page", 404)
    with pytest.raises(app_error):
        helpers.raise_app_error("plain app error")
    with pytest.raises(fire.RemoteError) as raised_plain:
        helpers.raise_app_error("not other")
    assert not isinstance(raised_plain.value, other_error)


def test_multiple_inheritance_does_not_leak_into_base_classes(
    remote: fire.Remote, helpers: Any
) -> None:
    with pytest.raises(KeyError):
        helpers.raise_missing_item("k")  # MissingItem(AppError, KeyError)
    with pytest.raises(fire.RemoteError) as raised:
        helpers.raise_app_error("plain")
    assert not isinstance(raised.value, KeyError)  # AppError is no KeyError on the server


def test_exception_lookup_of_a_non_exception_is_refused(remote: fire.Remote) -> None:
    with pytest.raises(fire.FireError, match="is not an exception class"):
        remote.exception("remote_helpers.Thing")
    with pytest.raises(fire.FireError, match=r"cannot import 'no_such_module\.Error'"):
        remote.exception("no_such_module.Error")


def test_exception_args_that_are_not_plain_are_left_out(helpers: Any) -> None:
    with pytest.raises(ValueError, match="Thing named inside") as raised:
        helpers.raise_unplain_args()
    assert raised.value.remote_args is None
    assert raised.value.remote_type == "builtins.ValueError"


def test_note_names_the_server_and_remote_type(helpers: Any) -> None:
    with pytest.raises(KeyError) as raised:
        helpers.fail_key("k")
    assert "(raised by builtins.KeyError on fire server 'shared')" in raised.value.__notes__


def test_remote_sys_exit_neither_ends_the_client_nor_the_server(remote: fire.Remote) -> None:
    with pytest.raises(fire.RemoteError) as raised:
        remote.module("sys").exit(3)
    assert not isinstance(raised.value, SystemExit)
    assert raised.value.remote_type == "builtins.SystemExit"
    assert remote.module("os").path.join("still", "serving") == "still/serving"


def test_connection_is_usable_after_a_remote_exception(helpers: Any) -> None:
    for _ in range(3):
        with pytest.raises(KeyError):
            helpers.fail_key("again")
    assert helpers.echo("fine") == "fine"


# -- remote exception classes reached through proxies are local classes -----------------


def test_an_exception_class_read_through_a_proxy_is_the_local_class(
    remote: fire.Remote, helpers: Any, exchanges: ExchangeCounter
) -> None:
    with exchanges.counting():
        not_found = helpers.NotFound
        app_error = helpers.AppError
    assert exchanges.count == 0  # the module's shape says they are exception classes
    assert not_found is remote.exception("remote_helpers.NotFound")
    assert issubclass(not_found, app_error) and issubclass(not_found, fire.RemoteError)
    try:
        helpers.raise_not_found("page")
    except helpers.NotFound as exc:
        assert type(exc) is not_found
    with pytest.raises(helpers.AppError):
        helpers.raise_not_found("page")
    with pytest.raises(fire.RemoteError) as raised:
        helpers.raise_app_error("an AppError is no NotFound")
    assert not isinstance(raised.value, helpers.NotFound)


def test_unittest_assert_raises_takes_a_remote_exception_class(helpers: Any) -> None:
    case = unittest.TestCase()
    with case.assertRaises(helpers.MissingItem):
        helpers.raise_missing_item("k")
    with case.assertRaises(helpers.AppError):  # the mirrored base catches its subclass
        helpers.raise_missing_item("k")
    with case.assertRaises(KeyError):  # MissingItem(AppError, KeyError)
        helpers.raise_missing_item("k")


def test_exception_classes_arrive_as_local_classes_in_any_result(
    remote: fire.Remote, helpers: Any
) -> None:
    errors = helpers.errors()  # a dict of classes, not an attribute read
    assert errors["not_found"] is helpers.NotFound
    assert issubclass(errors["key"], KeyError)
    assert remote.module("builtins").KeyError is errors["key"]
    before = remote.info()["refs"]
    for _ in range(3):
        helpers.errors()
    assert remote.info()["refs"] == before  # no server reference is kept for them
