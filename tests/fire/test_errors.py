"""Local classes for remote exceptions, built from the remote MRO (no server needed)."""

from __future__ import annotations

import pytest

import fire
from fire.errors import (
    WIRE_ERRORS,
    FireError,
    ProtocolError,
    RemoteError,
    ServerUnavailable,
    error_from_wire,
    error_to_wire,
    remote_exception_class,
)


def hierarchy(*classes: str) -> list[list[object]]:
    """The wire form for a single-inheritance chain: each class's base is the next one."""
    return [
        [name, [classes[i + 1]] if i + 1 < len(classes) else []] for i, name in enumerate(classes)
    ]


KEY_ERROR = hierarchy(
    "builtins.KeyError", "builtins.LookupError", "builtins.Exception", "builtins.BaseException"
)


def test_public_error_hierarchy() -> None:
    for error in (fire.ServerUnavailable, fire.ProtocolError, fire.AuthenticationError):
        assert issubclass(error, fire.FireError)
    assert not issubclass(fire.RemoteError, fire.FireError)
    assert fire.RemoteError is RemoteError
    # fire never shadows builtins such as TimeoutError or ConnectionError.
    assert not issubclass(fire.ServerUnavailable, OSError)


def test_remote_builtin_exception_subclasses_the_builtin() -> None:
    cls = remote_exception_class(KEY_ERROR)
    assert issubclass(cls, RemoteError)
    assert issubclass(cls, KeyError)
    assert issubclass(cls, LookupError)
    assert cls.remote_type == "builtins.KeyError"
    assert cls.__name__ == "KeyError"
    with pytest.raises(KeyError):
        raise cls("missing")


def test_classes_are_cached_by_dotted_name() -> None:
    assert remote_exception_class(KEY_ERROR) is remote_exception_class(KEY_ERROR)


def test_custom_hierarchy_mirrors_the_remote_bases() -> None:
    tail = ["builtins.ValueError", "builtins.Exception", "builtins.BaseException"]
    base = remote_exception_class(hierarchy("shop.errors.ShopError", *tail))
    child = remote_exception_class(
        hierarchy("shop.errors.OutOfStock", "shop.errors.ShopError", *tail)
    )
    assert issubclass(child, base)
    assert issubclass(child, ValueError)
    assert issubclass(child, RemoteError)
    assert child.__module__ == "shop.errors"
    assert child.__qualname__ == "OutOfStock"
    assert child.remote_type == "shop.errors.OutOfStock"
    with pytest.raises(base):
        raise child("sold out")


def test_multiple_inheritance_keeps_each_class_its_own_bases() -> None:
    cls = remote_exception_class(
        [
            ["app.errors.Missing", ["app.errors.AppError", "builtins.KeyError"]],
            ["app.errors.AppError", ["builtins.Exception"]],
            ["builtins.KeyError", ["builtins.LookupError"]],
            ["builtins.LookupError", ["builtins.Exception"]],
            ["builtins.Exception", ["builtins.BaseException"]],
            ["builtins.BaseException", ["builtins.object"]],
        ]
    )
    app_error = remote_exception_class([["app.errors.AppError", ["builtins.Exception"]]])
    assert issubclass(cls, app_error) and issubclass(cls, KeyError)
    assert not issubclass(app_error, KeyError)


def test_nested_class_names_read_as_the_remote_dotted_name() -> None:
    cls = remote_exception_class(
        hierarchy(
            "app.models.User.DoesNotExist",
            "django.core.exceptions.ObjectDoesNotExist",
            "builtins.Exception",
        )
    )
    assert cls.__name__ == "DoesNotExist"
    # Tracebacks print module + qualname: the remote dotted name.
    assert f"{cls.__module__}.{cls.__qualname__}" == "app.models.User.DoesNotExist"


def test_exceptions_outside_exception_become_plain_remote_errors() -> None:
    cls = remote_exception_class(hierarchy("builtins.SystemExit", "builtins.BaseException"))
    assert issubclass(cls, RemoteError)
    assert not issubclass(cls, SystemExit)  # a remote sys.exit() must not end the client
    assert cls.remote_type == "builtins.SystemExit"


def test_empty_hierarchy_falls_back_to_exception() -> None:
    cls = remote_exception_class([])
    assert issubclass(cls, RemoteError)
    assert cls.remote_type == "builtins.Exception"


# -- fire errors on the wire (fire.errors.WIRE_ERRORS) ------------------------------------------


def test_the_wire_kinds_never_change() -> None:
    """Kinds are protocol: an older peer reads these names. The one place they are spelled
    outside fire.errors, to see a rename fail here."""
    assert {kind: cls.__name__ for kind, cls in WIRE_ERRORS.items()} == {
        "FireError": "FireError",
        "ServerUnavailable": "ServerUnavailable",
        "HandshakeRequired": "HandshakeRequired",
        "ServerBusy": "ServerBusy",
        "ProtocolError": "ProtocolError",
        "AuthenticationError": "AuthenticationError",
    }


@pytest.mark.parametrize("cls", list(WIRE_ERRORS.values()), ids=lambda cls: cls.__name__)
def test_every_error_comes_back_as_its_class(cls: type[FireError]) -> None:
    error = error_from_wire(error_to_wire(cls("it went wrong")), "shop", "/tmp/shop.sock")
    assert type(error) is cls
    if isinstance(error, ServerUnavailable):
        assert str(error) == "it went wrong (server 'shop' at /tmp/shop.sock)"
        assert error.address == "/tmp/shop.sock"
    else:
        assert str(error) == "it went wrong (server 'shop')"


def test_a_subclass_without_a_kind_travels_as_its_base() -> None:
    class TooLarge(ProtocolError):
        pass

    class ExtensionError(FireError):
        pass

    assert error_to_wire(TooLarge("big")) == [ProtocolError.wire_kind, "big"]
    assert error_to_wire(ExtensionError("no")) == [FireError.wire_kind, "no"]


@pytest.mark.parametrize("body", [["NewerServersError", "what"], "just text", [1, 2, 3], None])
def test_an_unknown_kind_or_shape_comes_back_as_a_fire_error(body: object) -> None:
    error = error_from_wire(body, "shop", "/tmp/shop.sock")
    assert type(error) is FireError
    assert str(error).endswith("(server 'shop')")
