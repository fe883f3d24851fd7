"""Categorical encoders fit on the train split only; `features.json` replays them at serving.

Index 0 of every field is out-of-vocabulary (unseen or rarer than `min_count` in train), so a
value never seen in training still maps to a trained row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from htl.storage import read_json, write_json

OOV = 0


@dataclass(frozen=True)
class FeatureEncoder:
    """Vocabulary per categorical field plus the task spec of the targets."""

    vocabularies: dict[str, list[str]]
    chain: tuple[str, ...]
    core: str

    @property
    def fields(self) -> list[str]:
        return list(self.vocabularies)

    @property
    def cardinalities(self) -> list[int]:
        """Rows per field in the embedding table, OOV included."""
        return [len(v) + 1 for v in self.vocabularies.values()]

    @classmethod
    def fit(
        cls,
        train: pd.DataFrame,
        fields: list[str],
        chain: tuple[str, ...],
        core: str,
        min_count: int = 1,
    ) -> FeatureEncoder:
        vocabularies = {}
        for name in fields:
            counts = train[name].astype(str).value_counts(sort=False)
            kept = counts[counts >= min_count].index
            vocabularies[name] = sorted(kept.tolist())
        return cls(vocabularies, tuple(chain), core)

    def encode(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Int32 indices per field (OOV = 0); other columns are left out."""
        out = {}
        for name, vocab in self.vocabularies.items():
            index = pd.Index(vocab)
            codes = index.get_indexer(frame[name].astype(str))
            out[name] = (codes + 1).astype(np.int32)  # -1 (unseen) becomes OOV = 0
        return pd.DataFrame(out, index=frame.index)

    def to_json(self) -> dict[str, Any]:
        return {
            "fields": self.fields,
            "vocabularies": self.vocabularies,
            "cardinalities": self.cardinalities,
            "oov_index": OOV,
            "tasks": {"chain": list(self.chain), "core": self.core},
        }

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> FeatureEncoder:
        raw = read_json(path)
        return cls(
            {k: raw["vocabularies"][k] for k in raw["fields"]},
            tuple(raw["tasks"]["chain"]),
            raw["tasks"]["core"],
        )
