"""The runner's half of contract recording: collect each test's interactions, group
them by shape, and write the contracts at the end of the run.

A run that records (``--fire-contracts DIR``, the ``fire_contracts`` ini option, or
``FireTestCase.fire_contracts``) has a `Recording` on its runner. At each test's end
the runner tells each provider of the test (a server a consumer's URL was asked of)
that what its recording listeners saw since is that test's (``contract_label``, of
djfire's `djfire.contract_recording`), sent without waiting for the answer; at the end
of the run it takes them all (``labelled_contract_interactions``, one round trip per
provider). The recording keeps the interactions of the tests that passed (a failing
test's requests are no promise), one per request shape (`fire.contracts.shapes`), with
the tests that made it. `Recording.write` writes one Pact V4 file per consumer-provider pair
(`fire.contracts.pact_files`); no interaction, no file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .shapes import path_template, shape

if TYPE_CHECKING:
    from ..client.remote import Remote

__all__ = ["Interaction", "Recording"]


@dataclass
class Interaction:
    """One request shape between two services: its first recording, and its tests."""

    consumer: str
    provider: str
    request: dict[str, Any]
    response: dict[str, Any]
    #: ``{"databases": {alias: {"vendor", "tables"}}}`` when the request arrived.
    rows: dict[str, Any]
    tests: list[str]
    #: The state the first test named (``@pytest.mark.fire(contract_state=…)``), if any.
    state: str | None = None
    #: Body paths matched by equality (``contract_exact``).
    exact: list[str] = field(default_factory=list)

    @property
    def template(self) -> str:
        return path_template(self.request["path"])

    @property
    def description(self) -> str:
        return f"{self.request['method']} {self.template} ({self.tests[0]})"


class Recording:
    """The interactions a run recorded, by shape, and where their files go."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.interactions: dict[tuple[Any, ...], Interaction] = {}
        self.tests = 0  # tests whose interactions were kept
        #: The servers a consumer's URL was asked of (`DjangoRemote.live_url_for`): only
        #: they are asked for what they recorded, and none while there is none.
        self.providers: set[str] = set()
        #: Providers told of a test's end, whose labelled interactions `gather` takes.
        self._labelled: dict[str, Remote] = {}
        #: Each passing test's state name, exact paths and excluded tables/columns.
        self._options: dict[str, tuple[str | None, list[str], list[str]]] = {}

    def add(
        self,
        provider: str,
        recorded: Iterable[dict[str, Any]],
        test: str,
        *,
        state: str | None = None,
        exact: Iterable[str] = (),
    ) -> int:
        """Keep `provider`'s `recorded` interactions of `test`; returns how many there were."""
        count = 0
        for item in recorded:
            count += 1
            self._keep(
                shape(item["consumer"], provider, item),
                Interaction(
                    item["consumer"],
                    provider,
                    item["request"],
                    item["response"],
                    item["state"],
                    [test],
                    state,
                    list(exact),
                ),
            )
        return count

    def collect(
        self,
        remotes: Mapping[str, Remote],
        test: str,
        *,
        passed: bool,
        state: str | None = None,
        exact: Iterable[str] = (),
        exclude: Iterable[str] = (),
    ) -> None:
        """At `test`'s end, before its scopes end: what each provider recorded since is
        `test`'s, kept if it `passed` (`gather` takes it at the run's end).

        Always said, so that a failing test's requests never count for the next one.
        The message is sent without waiting for its answer (read with the next one, as
        a test scope's end is): recording costs a test no round trip. The tables and
        columns `exclude` names (the data-change report's patterns: ``django_session``,
        ``*.updated_at``) are left out of the states' rows.
        """
        if passed:
            self._options[test] = (state, list(exact), list(exclude))
        for provider, remote in remotes.items():
            if remote.closed or provider not in self.providers:
                continue
            remote._send_without_waiting(
                "contract_label", [[test, passed], {}], described=f"contract_label of {test}"
            )
            self._labelled[provider] = remote

    def gather(self) -> None:
        """Take what the providers labelled (one round trip each), into the interactions."""
        kept: set[str] = set()
        for provider, remote in self._labelled.items():
            if remote.closed:  # a server lost: what it recorded went with it
                continue
            for test, item in remote.call_extension("labelled_contract_interactions"):
                state, exact, exclude = self._options.get(test, (None, [], []))
                recorded = _without(item, exclude) if exclude else item
                self.add(provider, [recorded], test, state=state, exact=exact)
                kept.add(test)
        self._labelled.clear()
        self.tests += len(kept)

    def to_data(self) -> dict[str, Any]:
        """What this recording holds, as plain data (a pytest-xdist worker hands it over)."""
        self.gather()
        return {
            "interactions": [asdict(interaction) for interaction in self.interactions.values()],
            "tests": self.tests,
        }

    def merge(self, data: dict[str, Any]) -> None:
        """Add another recording's `to_data` (a worker's) to this one."""
        for item in data.get("interactions", []):
            interaction = Interaction(**item)
            self._keep(shape(interaction.consumer, interaction.provider, item), interaction)
        self.tests += int(data.get("tests", 0))

    def _keep(self, key: tuple[Any, ...], interaction: Interaction) -> None:
        """Keep `interaction` under its shape `key`, its tests joined to those known.

        Whatever order the tests ran or the workers finished in, the same recording
        stands for the shape: the one with the fewest rows in its state (the simplest
        to set up and to read), of the first test by name among equals; its test is
        listed first, the others by name. So the same suite records the same file.
        """
        kept, other = interaction, self.interactions.get(key)
        if other is not None and _rank(other) <= _rank(kept):
            kept, other = other, kept
        first = kept.tests[0]
        tests = set(kept.tests) | set(other.tests if other else ())
        kept.tests = [first, *sorted(tests - {first})]
        self.interactions[key] = kept

    def pairs(self) -> dict[tuple[str, str], list[Interaction]]:
        """(consumer, provider) -> its interactions, by description (then shape)."""
        pairs: dict[tuple[str, str], list[Interaction]] = {}
        ordered = sorted(self.interactions.items(), key=lambda item: (item[1].description, item[0]))
        for _, interaction in ordered:
            pairs.setdefault((interaction.consumer, interaction.provider), []).append(interaction)
        return pairs

    def write(self) -> str:
        """Write a Pact V4 file per consumer-provider pair; the line that says what was
        written, or that nothing was recorded (then no file is written)."""
        self.gather()
        pairs = self.pairs()
        if not pairs:
            return (
                f"fire contracts: nothing recorded, no file written in {self.directory} (no "
                "service called another through a live_url_for(CONSUMER) URL in a passing test)"
            )
        from .pact_files import write_pact

        written = []
        for (consumer, provider), interactions in pairs.items():
            path = write_pact(self.directory, consumer, provider, interactions)
            written.append(f"{path} ({_count(len(interactions), 'interaction')})")
        return f"fire contracts: wrote {', '.join(written)} from {_count(self.tests, 'test')}"


def _without(recorded: dict[str, Any], patterns: list[str]) -> dict[str, Any]:
    """`recorded` with the tables and columns `patterns` name left out of its state."""
    from ..runners.data_changes import exclude

    state = recorded["state"]
    databases = exclude(state.get("databases", {}), patterns)
    return {**recorded, "state": {**state, "databases": databases}}


def _rank(interaction: Interaction) -> tuple[int, str]:
    """Which recording of a shape stands for it: the fewest rows, then the test's name."""
    tables = (
        table
        for database in interaction.rows.get("databases", {}).values()
        for table in database.get("tables", {}).values()
    )
    changes = ("inserted", "updated", "deleted")
    rows = sum(len(table.get(change) or ()) for table in tables for change in changes)
    return rows, interaction.tests[0]


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
