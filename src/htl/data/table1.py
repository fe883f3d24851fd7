"""The paper's Table 1: what each dataset's hybrid targets look like, for the data card."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetStats:
    """Rows, the positive rate of each chain step in order, and the core's mean and std."""

    name: str
    rows: int
    rates: tuple[float, ...]
    core_mean: float
    core_std: float


TABLE1 = {
    "kuairand": DatasetStats("KuaiRand", 1_186_059, (0.1762, 0.0850), 6.94, 18.79),
    "kaggle": DatasetStats("Kaggle-Revenue", 5_041_007, (0.8568, 0.4105), 4.52, 165.69),
    "product": DatasetStats("Product", 19_160_294, (0.0865, 0.0482), 1627.05, 8009.42),
}
