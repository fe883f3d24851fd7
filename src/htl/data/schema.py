"""The event schema that travels with raw events: which column is the time, a feature, a target."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from htl.storage import read_json, write_json


@dataclass(frozen=True)
class EventSchema:
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

    def save(self, path: str | Path) -> None:
        write_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> EventSchema:
        raw = read_json(path)
        return cls(
            categorical=tuple(raw["categorical"]),
            chain=tuple(raw["chain"]),
            core=raw["core"],
            time=raw.get("time"),
            numeric=tuple(raw.get("numeric", ())),
            dataset=raw.get("dataset"),
            origin=raw.get("origin", ""),
        )
