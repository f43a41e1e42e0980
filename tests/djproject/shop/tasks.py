"""Code the tests call remotely to register on_commit callbacks."""

from django.core.mail import send_mail
from django.db import transaction


def notify_on_commit(subject: str) -> None:
    transaction.on_commit(
        lambda: send_mail(subject, "body", "shop@example.com", ["staff@example.com"])
    )


def create_durably(name: str) -> int:
    """Service code that insists on committing its own work (a durable block)."""
    from shop.models import Product

    with transaction.atomic(durable=True):
        return Product.objects.create(name=name, price="1.00").id


def on_commit_database_error(name: str) -> None:
    """Registers a callback that hits a unique constraint after writing a first row."""
    from shop.models import Category

    def callback() -> None:
        Category.objects.create(name=name)
        Category.objects.create(name=name)

    transaction.on_commit(callback)


def on_commit_chain(subject: str) -> None:
    """A callback that registers another callback, as code run after a commit may."""
    transaction.on_commit(lambda: notify_on_commit(subject))


def create_on_commit(name: str) -> None:
    """Registers a callback that writes a row: the data-change report must show it."""
    from shop.models import Category

    transaction.on_commit(lambda: Category.objects.create(name=name))


def create_then_swallow_integrity_error(name: str) -> str:
    """Service code that catches a failed save(): Django marks the transaction for rollback."""
    from django.db import IntegrityError

    from shop.models import Category

    Category.objects.create(name=name)
    try:
        Category.objects.create(name=name)
    except IntegrityError:
        return "swallowed"
    return "saved twice"


# Caught database errors and threads of the service's own (issue 21, defects 2 and 10)
def _probe_missing_table() -> str:
    """A raw-cursor query that fails, caught: as code that probes for a feature does."""
    from django.db import DatabaseError, connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM shop_no_such_table")
    except DatabaseError as exc:
        return type(exc).__name__
    return "no error?"


def count_then_probe_with_the_drivers_cursor() -> str:
    """Counts, then `_probe_missing_table` on the driver's own cursor (Django sees no SQL)."""
    from django.db import connection

    from shop.models import Category

    Category.objects.count()
    cursor = connection.connection.cursor()
    try:
        cursor.execute("SELECT * FROM shop_no_such_table")
    except connection.Database.Error as exc:
        return type(exc).__name__
    finally:
        cursor.close()
    return "no error?"


def probe_then_create(name: str) -> int:
    """Catches a raw cursor's error, then writes: as it would in production (autocommit)."""
    from shop.models import Category

    _probe_missing_table()
    return Category.objects.create(name=name).id


def create_then_probe(name: str) -> str:
    """Writes, then catches a raw cursor's error: the last thing the call does."""
    from shop.models import Category

    Category.objects.create(name=name)
    return _probe_missing_table()


def count_in_asyncio_run(name: str) -> int:
    """Runs coroutines itself, as management commands and task code do."""
    import asyncio

    from shop.models import Category

    async def main() -> int:
        await Category.objects.acreate(name=name)
        return await Category.objects.acount()

    return asyncio.run(main())


def create_in_thread(name: str) -> str:
    """Writes from a plain thread it starts and waits for; returns the thread's outcome."""
    import threading

    from shop.models import Category

    outcome: list[str] = []

    def work() -> None:
        try:
            outcome.append(str(Category.objects.create(name=name).id))
        except Exception as exc:
            outcome.append(f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=work, name="shop-writer")
    thread.start()
    thread.join()
    return outcome[0]


def close_connections_in_thread() -> list[str]:
    """A thread that closes its connections (close_old_connections, connection.close())."""
    import threading

    from django.db import close_old_connections, connection

    def work() -> None:
        close_old_connections()
        connection.close()

    thread = threading.Thread(target=work, name="shop-closer")
    thread.start()
    thread.join()
    return ["closed"]


def start_stray_writer(name: str, outcome_file: str) -> None:
    """Starts a thread that writes after the call returned, and says how it went in a file."""
    import threading
    import time
    from pathlib import Path

    from shop.models import Category

    def work() -> None:
        time.sleep(0.2)  # the call has returned by then
        try:
            Category.objects.create(name=name)
            outcome = "written"
        except Exception as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        Path(outcome_file).write_text(outcome)

    threading.Thread(target=work, name="shop-stray-writer", daemon=True).start()


_pool = None


def create_in_pool(name: str) -> str:
    """Writes through a module-level pool (its worker started by an earlier call)."""
    from concurrent.futures import ThreadPoolExecutor

    from shop.models import Category

    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shop-pool")
    return str(_pool.submit(lambda: Category.objects.create(name=name).id).result())


class FinalizerProbe:
    """Says in a file, when the server drops it, whether that thread held the connections.

    The server's `ConnectionLock` is found among the live objects (test code only).
    """

    def __init__(self, said: str) -> None:
        self.said = said

    def __del__(self) -> None:
        import gc
        import threading
        from pathlib import Path

        from djfire.connection_lock import ConnectionLock

        (lock,) = [o for o in gc.get_objects() if type(o) is ConnectionLock]
        owned = lock._lock._is_owned()
        Path(self.said).write_text(f"{threading.current_thread().name}: owned={owned}")


class StatementCounter:
    """An execute wrapper (``connection.execute_wrapper(counter)``) that counts statements."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        self.count += 1
        return execute(sql, params, many, context)
