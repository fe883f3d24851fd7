"""The event schema that travels with raw events: which column is the time, a feature, a target."""

from __future__ import annotations

from dataclasses import dataclass

from htl.artifacts import Record


@dataclass(frozen=True)
class EventSchema(Record):
    """Column roles of an event table; `chain` is ordered, `core` is the continuous target."""

    categorical: tuple[str, ...]
    chain: tuple[str, ...]
    core: str
    time: str | None = None
    numeric: tuple[str, ...] = ()
    dataset: str | None = None  # kuairand | kaggle | product: the paper's Table 1 row it mirrors
    origin: str = ""  # where the events came from, for error messages and the data card

    @property
    def targets(self) -> tuple[str, ...]:
        return (*self.chain, self.core)

    @property
    def features(self) -> tuple[str, ...]:
        return (*self.categorical, *self.numeric)
