"""Verify a provider against its consumers' contracts: Pact replays, fire supplies states.

For each interaction, pact-python's `Verifier` calls its state handler, replays the
request against the provider's live HTTP server and compares the response with the
contract's matching rules: the output, the matching and the results are Pact's own.
The state handler is fire's: it opens a test scope on the provider's fire server (a
transaction on every database), has the server's extension recreate the interaction's
state (``set_up_contract_state``: djfire's `djfire.contracts` puts the ``fire rows``
back with their primary keys, logs in the ``fire:session:<pk>`` users, runs the named
states' handlers), and at the teardown reads the provider's data changes of the replay
and ends the scope, which rolls everything back.

Pact retries a state handler that fails, for minutes, so it never sees one: a state
fire cannot recreate (rows that no longer fit the schema, found before anything is
replayed with ``contract_state_problems``, or a database error while recreating) fails
its interaction in fire's report, and the others still run. Pact gets a copy of each
file with every state's params carrying the interaction's index (``fire_interaction``),
so the handler knows which interaction it sets up; the copy holds only the
interactions whose states fit.

Nothing here imports Django; pact-python is imported only when verifying.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..errors import FireError, ProtocolError
from ..runners.data_changes import format_changes, has_changes
from .files import Contract, ContractFileError, ContractInteraction, contracts_of
from .state_callback import state_callback

if TYPE_CHECKING:
    from ..client.remote import Remote

__all__ = ["Failure", "Verification", "verify_provider"]

#: The key fire adds to each state's params in the copy Pact verifies.
INDEX_PARAM = "fire_interaction"


@dataclass
class Failure:
    """One interaction that did not verify, and what fire knows of it."""

    contract: Contract
    interaction: ContractInteraction
    #: Why: Pact's mismatches, or the state fire could not recreate.
    reasons: list[str]
    #: The provider's data changes during the replay, as `fire.runners.data_changes` shows them.
    changes: str = ""

    def text(self) -> str:
        lines = [f"FAILED {self.contract.consumer} -> {self.contract.provider}: "
                 f"{self.interaction.description}"]  # fmt: skip
        lines += [f"  {reason}" for reason in self.reasons]
        if self.interaction.tests:
            lines.append("  recorded by: " + ", ".join(self.interaction.tests))
        if self.changes:
            lines.append("  the provider's data changes during the replay:")
            lines += [f"    {line}" for line in self.changes.splitlines()]
        return "\n".join(lines)


@dataclass
class Verification:
    """What a verification found: counts, failures, Pact's output and fire's report."""

    provider: str
    contracts: list[Contract]
    verified: int = 0
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pact_output: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures and self.verified > 0

    def summary(self) -> str:
        """``fire: accounts verified 6 interactions of 1 contract (shop): 6 passed in 0.41 s``."""
        consumers = ", ".join(sorted({c.consumer for c in self.contracts}))
        files = len(self.contracts)
        outcome = f"{self.verified - len(self.failures)} passed"
        if self.failures:
            outcome += f", {len(self.failures)} failed"
        return (
            f"fire: {self.provider} verified {self.verified} interactions of {files} "
            f"contract{'s' if files != 1 else ''} ({consumers}): {outcome} "
            f"in {self.seconds:.2f} s"
        )

    def report(self) -> str:
        """fire's part of the output: the failures with their tests and data changes."""
        lines = [failure.text() for failure in self.failures]
        lines += [f"note: {note}" for note in self.notes]
        lines.append(self.summary())
        return "\n".join(lines)


class _States:
    """The state handler Pact calls: a scope per interaction, the state recreated in it."""

    def __init__(self, remote: Remote, interactions: Mapping[int, ContractInteraction]) -> None:
        self.remote = remote
        self.interactions = interactions
        self.current: int | None = None
        #: Interaction index -> why its state could not be recreated.
        self.failed: dict[int, str] = {}
        self.changes: dict[int, dict[str, Any]] = {}
        self.notes: dict[int, list[str]] = {}

    def __call__(self, state: str, action: str, parameters: dict[str, Any] | None) -> None:
        index = (parameters or {}).get(INDEX_PARAM)
        if not isinstance(index, int) or index not in self.interactions:
            return  # Pact's generic state (""), or a state fire did not mark
        try:
            if action == "setup" and self.current != index:
                self._end()
                self._set_up(index)
            elif action == "teardown" and self.current == index:
                self._end()
        except Exception as exc:  # never to Pact, which would retry for minutes
            self.failed.setdefault(index, f"fire could not {action} its state: {_first_line(exc)}")

    def _set_up(self, index: int) -> None:
        interaction = self.interactions[index]
        self.remote.begin_scope("test", data_changes=True)
        self.current = index
        try:
            self.notes[index] = self.remote.call_extension(
                "set_up_contract_state",
                interaction.states,
                sorted(set(interaction.session_markers)),
            )
        except Exception as exc:  # the interaction fails in fire's report, Pact goes on
            self.failed[index] = f"its state could not be recreated: {_first_line(exc)}"

    def _end(self) -> None:
        if self.current is None:
            return
        index, self.current = self.current, None
        try:
            self.changes[index] = self.remote.call_extension("data_changes")
        except Exception:
            pass  # a provider without a capture: no changes shown
        finally:
            self.remote.end_scope()


def verify_provider(
    remote: Remote,
    base_url: str,
    sources: Iterable[str | Path],
    *,
    provider: str,
    out: IO[str] | None = None,
    pact_prints: bool = True,
) -> Verification:
    """Verify `provider` (reached at `base_url`, its fire server at `remote`) against
    every contract in `sources` (files or directories) that names it.

    Pact prints its own output as it verifies; fire's report (failures with their
    tests and data changes, then a summary line) is written to `out` (stdout) and kept
    in the result (Pact's too, in `Verification.pact_output`; with `pact_prints` False,
    Pact's printing goes to /dev/null). Raises `ContractFileError` before anything is
    verified if a file is not a Pact V4 contract, or none names `provider`.
    """
    out = sys.stdout if out is None else out
    started = time.perf_counter()
    contracts: list[Contract] = []
    for source in sources:
        contracts += contracts_of(source, provider)
    verification = Verification(provider, contracts)
    pact_verifier = _verifier_class()
    with tempfile.TemporaryDirectory(prefix="fire-verify-") as folder:
        marked: dict[int, ContractInteraction] = {}
        owner: dict[int, Contract] = {}
        copies = []
        for number, contract in enumerate(contracts):
            problems = _state_problems(remote, provider, contract)
            data = copy.deepcopy(contract.data)
            kept = []
            for interaction, problem in zip(contract.interactions, problems, strict=True):
                verification.verified += 1
                if problem:
                    verification.failures.append(
                        Failure(contract, interaction, [f"its state does not fit: {problem}"])
                    )
                    continue
                key = number * 100_000 + interaction.index
                marked[key], owner[key] = interaction, contract
                raw = data["interactions"][interaction.index]
                for provider_state in raw.get("providerStates") or []:
                    provider_state["params"] = {**(provider_state.get("params") or {}),
                                                INDEX_PARAM: key}  # fmt: skip
                kept.append(raw)
            if kept:
                data["interactions"] = kept
                path = Path(folder) / f"{number}-{contract.path.name}"
                path.write_text(json.dumps(data), encoding="utf-8")
                copies.append(path)
        states = _States(remote, marked)
        if copies:
            with contextlib.nullcontext() if pact_prints else _stdout_discarded():
                verification.pact_output = _run_pact(
                    pact_verifier, provider, base_url, copies, states
                )
            states._end()  # a teardown Pact did not send
            results = _pact_results(verification.pact_output, pact_verifier.last_results)
            for key, interaction in marked.items():
                contract = owner[key]
                reasons = results.get((contract.consumer, interaction.description), [])
                if key in states.failed:
                    reasons = [states.failed[key], *reasons]
                for note in states.notes.get(key) or []:
                    verification.notes.append(f"{interaction.description}: {note}")
                if reasons:
                    changes = states.changes.get(key) or {}
                    shown = format_changes(changes) if has_changes(changes) else ""
                    verification.failures.append(Failure(contract, interaction, reasons, shown))
    verification.failures.sort(key=lambda f: (str(f.contract.path), f.interaction.index))
    verification.seconds = time.perf_counter() - started
    out.write(verification.report() + "\n")
    out.flush()
    return verification


def _state_problems(remote: Remote, provider: str, contract: Contract) -> list[str]:
    """Per interaction, why the provider cannot recreate its state ("" if it can)."""
    try:
        problems: list[str] = remote.call_extension(
            "contract_state_problems", [i.states for i in contract.interactions]
        )
    except ProtocolError as exc:  # "unknown operation"
        raise FireError(
            f"fire server {provider!r} cannot recreate contract states ({exc}): verify "
            "against a djfire runfireserver (djfire in INSTALLED_APPS)"
        ) from None
    return problems


class _PactVerifier:
    """pact-python's `Verifier`, imported when needed, its last results kept."""

    def __init__(self, module: Any) -> None:
        self.module = module
        self.last_results: dict[str, Any] = {}


def _verifier_class() -> _PactVerifier:
    try:
        from pact import verifier
    except ImportError as exc:
        raise FireError(
            "verifying contracts needs pact-python, which is not installed: "
            "`pip install 'djfire[contracts]'` (or `pip install 'pact-python>=4.2,<5'`)"
        ) from exc
    return _PactVerifier(verifier)


def _run_pact(
    pact_verifier: _PactVerifier, provider: str, base_url: str, files: list[Path], states: _States
) -> str:
    """Run Pact's verifier over `files`; its output (it prints it too, as it goes)."""
    os.environ.setdefault("PACT_DO_NOT_TRACK", "true")  # no usage ping from a test run
    sys.stdout.flush()
    host = base_url.split("://", 1)[-1].split("/", 1)[0].rpartition(":")[0].strip("[]")
    verifier = pact_verifier.module.Verifier(provider, host=host or None)
    verifier.add_transport(url=base_url)
    verifier.set_coloured_output(enabled=sys.stdout.isatty())
    for file in files:
        verifier.add_source(file)
    # fire's endpoint, not pact-python's: that one logs each state change to stderr.
    with state_callback(states) as url:
        verifier.state_handler(url, teardown=True, body=True)
        # "Failed to execute verifier": some interaction failed; the results say which.
        with contextlib.suppress(RuntimeError):
            verifier.verify()
    pact_verifier.last_results = verifier.results
    return verifier.output(strip_ansi=True)


@contextlib.contextmanager
def _stdout_discarded() -> Iterator[None]:
    """File descriptor 1 to /dev/null: Pact's core prints there itself, not to sys.stdout."""
    sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)


def _pact_results(output: str, results: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    """(consumer, description) -> Pact's mismatches, as Pact words them, for each failure."""
    failed: dict[tuple[str, str], list[str]] = {}
    for result in results.get("interactionResults") or []:
        if result.get("result") == "Success" or not result.get("mismatch"):
            continue
        mismatch = result["mismatch"]
        reasons = [
            f"{m.get('path') or m.get('type', '')}: {m.get('mismatch', '')}".strip(": ")
            for m in mismatch.get("mismatches") or []
        ]
        if not reasons and mismatch.get("message"):
            reasons = [str(mismatch["message"])]
        failed[result.get("consumer", ""), result.get("description", "")] = reasons or ["failed"]
    return failed


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


__all__ += ["ContractFileError"]
