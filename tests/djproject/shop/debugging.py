"""Service code that a remote debugger stops in (tests/runners/test_remote_pdb.py)."""

from django.http import HttpResponse

from shop.models import Product


def fail_with_local(name: str) -> None:
    """Fails in the service, with locals that only the service's frame has."""
    local_variable = f"seen in the service: {name}"
    products = Product.objects.count()
    raise ValueError(f"failed beside {products} product(s) ({len(local_variable)})")


def stop_at_breakpoint(request):
    """A view that stops at breakpoint() and answers once it goes on."""
    local_variable = "stopped in a view"
    breakpoint()
    return HttpResponse(f"went on after the breakpoint: {local_variable}")


def count_with_local(name: str) -> str:
    """What a test's pdb steps into (``s`` on the call): locals only the service has."""
    local_variable = f"stepped into: {name}"
    products = Product.objects.count()
    return f"{local_variable} ({products} products)"
