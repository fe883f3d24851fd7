"""Feature encoders fit on the train split only; `features.json` replays them at serving.

Categorical fields get a vocabulary (values seen at least `min_count` times in train); numeric
fields get bucket boundaries at train quantiles, or stay dense: one embedding row scaled by the
value standardised with the train mean and std (`values`). Index 0 of every field is
out-of-vocabulary (unseen, rarer than `min_count`, or missing), so any value still maps to a
trained row.
Integer columns are encoded with sorted arrays and `searchsorted`, never through Python
strings: 19M rows encode in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from htl.storage import read_json, write_json

OOV = 0
VALUE_SUFFIX = "__value"  # split column holding a dense field's standardised value


@dataclass(frozen=True)
class FeatureEncoder:
    """Vocabulary per categorical field, boundaries per bucketized numeric field, the tasks."""

    vocabularies: dict[str, list[str]]
    chain: tuple[str, ...]
    core: str
    boundaries: dict[str, list[float]] = field(default_factory=dict)
    core_transform: str = "none"
    dense: dict[str, tuple[float, float]] = field(default_factory=dict)  # field: (mean, std)

    @property
    def fields(self) -> list[str]:
        return [*self.vocabularies, *self.boundaries, *self.dense]

    @property
    def cardinalities(self) -> list[int]:
        """Rows per field in the embedding table, OOV included (a dense field: OOV + 1)."""
        return (
            [len(v) + 1 for v in self.vocabularies.values()]
            + [len(b) + 2 for b in self.boundaries.values()]
            + [2] * len(self.dense)
        )

    @classmethod
    def fit(
        cls,
        train: pd.DataFrame,
        fields: list[str],
        chain: tuple[str, ...],
        core: str,
        min_count: int = 1,
        numeric: list[str] | None = None,
        buckets: int = 10,
        core_transform: str = "none",
        numeric_encoding: str = "bucketize",
    ) -> FeatureEncoder:
        vocabularies = {name: _vocabulary(train[name], min_count) for name in fields}
        numeric = numeric or []
        if numeric_encoding == "dense":
            dense = {name: _moments(train[name]) for name in numeric}
            return cls(vocabularies, tuple(chain), core, {}, core_transform, dense)
        boundaries = {name: _quantiles(train[name], buckets) for name in numeric}
        return cls(vocabularies, tuple(chain), core, boundaries, core_transform)

    def encode(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Int32 indices per field (OOV = 0); other columns are left out."""
        out = {
            name: _lookup(frame[name], vocab, self._int_keys[name])
            for name, vocab in self.vocabularies.items()
        }
        for name, edges in self.boundaries.items():
            values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
            index = np.searchsorted(np.asarray(edges), values, side="right") + 1
            out[name] = np.where(np.isnan(values), OOV, index).astype(np.int32)
        for name in self.dense:
            values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
            out[name] = np.where(np.isnan(values), OOV, 1).astype(np.int32)
        return pd.DataFrame(out, index=frame.index)

    @cached_property
    def _int_keys(self) -> dict[str, np.ndarray | None]:
        """Per field, its vocabulary as sorted int64 keys when every entry is an integer (so
        integer columns encode by `searchsorted`); computed once, not on every serving call."""
        return {name: _int_array(vocab) for name, vocab in self.vocabularies.items()}

    def value_columns(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """`<field>__value` float32 columns for the splits, one per dense field."""
        values = self.values(frame)
        if values is None:
            return {}
        return {f"{n}{VALUE_SUFFIX}": values[:, self.fields.index(n)] for n in self.dense}

    def scale_from_split(self, split: pd.DataFrame) -> np.ndarray | None:
        """The [N, fields] multipliers back from a split's `<field>__value` columns."""
        if not self.dense:
            return None
        out = np.ones((len(split), len(self.fields)), dtype=np.float32)
        for name in self.dense:
            out[:, self.fields.index(name)] = split[f"{name}{VALUE_SUFFIX}"].to_numpy()
        return out

    def values(self, frame: pd.DataFrame) -> np.ndarray | None:
        """Per-field multipliers [N, fields] float32: the standardised value of each dense field
        (1 where it is missing, so its OOV row counts as is), 1 for every other field; None
        when there is no dense field."""
        if not self.dense:
            return None
        out = np.ones((len(frame), len(self.fields)), dtype=np.float32)
        for name, (mean, std) in self.dense.items():
            values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
            scaled = (values - mean) / std
            out[:, self.fields.index(name)] = np.where(np.isnan(values), 1.0, scaled)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "fields": self.fields,
            "vocabularies": self.vocabularies,
            "boundaries": self.boundaries,
            "dense": {k: {"mean": m, "std": sd} for k, (m, sd) in self.dense.items()},
            "cardinalities": self.cardinalities,
            "oov_index": OOV,
            "tasks": {
                "chain": list(self.chain),
                "core": self.core,
                "core_transform": self.core_transform,
            },
        }

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> FeatureEncoder:
        raw = read_json(path)
        boundaries = raw.get("boundaries", {})
        dense = raw.get("dense", {})
        return cls(
            {k: raw["vocabularies"][k] for k in raw["fields"] if k in raw["vocabularies"]},
            tuple(raw["tasks"]["chain"]),
            raw["tasks"]["core"],
            {k: [float(v) for v in boundaries[k]] for k in raw["fields"] if k in boundaries},
            raw["tasks"].get("core_transform", "none"),
            {k: (float(dense[k]["mean"]), float(dense[k]["std"])) for k in raw["fields"]
             if k in dense},
        )  # fmt: skip


def _vocabulary(column: pd.Series, min_count: int) -> list[str]:
    """Values seen at least `min_count` times, sorted in their own type, written as strings.

    Whole numbers are kept as integers even in a float column (ints that gained a NaN in a
    join), so "7" in training matches 7 at serving.
    """
    whole = _whole_numbers(column)
    if whole is not None:
        values, counts = np.unique(whole[0][whole[1]], return_counts=True)
        return [str(v) for v in values[counts >= min_count].tolist()]
    counts = column.dropna().astype(str).value_counts(sort=False)
    return sorted(counts[counts >= min_count].index.tolist())


def _lookup(column: pd.Series, vocab: list[str], keys: np.ndarray | None) -> np.ndarray:
    """1-based index into `vocab`, OOV for anything else (missing values included); `keys` is
    the vocabulary as sorted ints, or None when it holds anything else."""
    whole = _whole_numbers(column)
    if whole is not None and keys is not None:
        values, present = whole
        pos = np.searchsorted(keys, values).clip(max=max(len(keys) - 1, 0))
        found = present & (len(keys) > 0)
        found[found] = keys[pos[found]] == values[found]
        return np.where(found, pos + 1, OOV).astype(np.int32)
    strings = column.astype(str).where(column.notna(), None)
    codes = pd.Index(vocab).get_indexer(strings)
    return (codes + 1).astype(np.int32)  # -1 (unseen) becomes OOV = 0


def _whole_numbers(column: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """(int64 values, present mask) of an integer column or a float column of whole numbers;
    None for anything else."""
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return None
    if pd.api.types.is_integer_dtype(dtype):
        present = column.notna().to_numpy()
        return column.fillna(0).to_numpy().astype(np.int64, copy=False), present
    if pd.api.types.is_float_dtype(dtype):
        values = column.to_numpy(dtype=np.float64)
        present = ~np.isnan(values)
        if (
            np.all(values[present] == np.floor(values[present]))
            and (np.abs(values[present]) < 2**53).all()
        ):
            return np.where(present, values, 0).astype(np.int64), present
    return None


def _int_array(vocab: list[str]) -> np.ndarray | None:
    """The vocabulary as int64 (sorted as ints at fit), or None if an entry is not an int."""
    try:
        keys = [int(v) for v in vocab]
    except ValueError:
        return None
    if any(str(k) != v for k, v in zip(keys, vocab, strict=True)):
        return None
    return np.array(keys, dtype=np.int64)


def _moments(column: pd.Series) -> tuple[float, float]:
    """Train mean and std of a numeric column (std 1 when it is constant or empty)."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return 0.0, 1.0
    std = float(values.std())
    return float(values.mean()), std if std > 0 else 1.0


def _quantiles(column: pd.Series, buckets: int) -> list[float]:
    """Distinct inner quantile edges of the train values (NaN ignored)."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return []
    edges = np.quantile(values, np.linspace(0, 1, buckets + 1)[1:-1])
    return [float(v) for v in np.unique(edges)]
