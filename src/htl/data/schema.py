"""The event schema that travels with raw events: which column is the time, a feature, a target."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    #: Reference predictors the source knows (synthetic: "bayes", "additive"): a column
    #: `reference_column(name, task)` per task, never a feature.
    references: tuple[str, ...] = ()

    @property
    def targets(self) -> tuple[str, ...]:
        return (*self.chain, self.core)

    @property
    def reference_columns(self) -> tuple[str, ...]:
        return tuple(reference_column(r, t) for r in self.references for t in self.targets)

    @property
    def features(self) -> tuple[str, ...]:
        return (*self.categorical, *self.numeric)

    def summary(self, frame: Any) -> dict[str, Any]:
        """Rows, each chain step's positive rate, the core's mean and population std."""
        stats: dict[str, Any] = {"rows": len(frame)}
        stats.update({f"rate_{c}": float(frame[c].mean()) for c in self.chain})
        stats[f"mean_{self.core}"] = float(frame[self.core].mean())
        stats[f"std_{self.core}"] = float(frame[self.core].std(ddof=0))
        return stats


def reference_column(predictor: str, task: str) -> str:
    """The column of a reference predictor's expected value of `task`."""
    return f"{predictor}__{task}"
