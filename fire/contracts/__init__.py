"""Contracts between the services of a run, as Pact V4 files (issue 24).

A full-system run records what each service asks another (``--fire-contracts DIR``):
the recording is `fire.contracts.record` (the runner's half; djfire's
`djfire.contracts` is the provider's), the files are written with pact-python
(`fire.contracts.pact_files`), and ``python -m fire contracts DIR`` says which
versions of an API are still used (`fire.contracts.versions`). The file format is
docs/contracts.md's. Nothing here imports Django or pytest.
"""

__all__ = ["stub"]


def __getattr__(name: str) -> object:
    """``fire.contracts.stub``, imported when used (`fire.contracts.replay`)."""
    if name == "stub":
        from .replay import stub

        return stub
    raise AttributeError(name)
