"""Chronological train/valid/test split; rows sharing a timestamp never straddle a boundary."""

from __future__ import annotations

import numpy as np
import pandas as pd

from htl.artifacts import SPLITS


def chronological_split(
    frame: pd.DataFrame,
    time_column: str | None,
    fractions: tuple[float, float, float],
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """Order by time (stable), cut at the fractions, move each cut past its tie group.

    Without a time column the order is a seeded permutation instead.
    """
    if time_column is None:
        order = np.random.default_rng(seed).permutation(len(frame))
        times = np.arange(len(frame))
    else:
        order = np.argsort(frame[time_column].to_numpy(), kind="stable")
        times = frame[time_column].to_numpy()[order]
    n = len(frame)
    cuts = [_snap(times, int(round(n * f))) for f in np.cumsum(fractions)[:-1]]
    bounds = [0, *cuts, n]
    return {
        name: frame.iloc[order[bounds[i] : bounds[i + 1]]].reset_index(drop=True)
        for i, name in enumerate(SPLITS)
    }


def _snap(times: np.ndarray, cut: int) -> int:
    """Move a cut inside a group of equal timestamps to the nearer edge of that group."""
    if cut <= 0 or cut >= len(times) or times[cut - 1] != times[cut]:
        return cut
    left = int(np.searchsorted(times, times[cut], side="left"))
    right = int(np.searchsorted(times, times[cut], side="right"))
    return left if cut - left <= right - cut else right
