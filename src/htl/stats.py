"""Seed aggregation and the two-sample t-test of the reference model against the best baseline."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from htl.metrics import higher_is_better


@dataclass(frozen=True)
class Comparison:
    """Reference vs. the best baseline on one metric (best by mean, in the metric's direction)."""

    metric: str
    reference: str
    reference_mean: float
    baseline: str
    baseline_mean: float
    t: float
    p: float
    higher_is_better: bool

    def verdict(self, alpha: float) -> str:
        """'better' / 'worse' when p <= alpha, in the metric's direction; else 'no difference'."""
        if math.isnan(self.p) or self.p > alpha:
            return "no significant difference"
        ahead = self.reference_mean > self.baseline_mean
        return "better" if ahead == self.higher_is_better else "worse"


def collect(records: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """{model: {metric: [value per seed, in seed order]}} from evaluate's metric records."""
    out: dict[str, dict[str, list[float]]] = {}
    for record in sorted(records, key=lambda r: (r["model"], r["seed"])):
        per_model = out.setdefault(record["model"], {})
        for metric, value in record["metrics"].items():
            per_model.setdefault(metric, []).append(float(value))
    return out


def summarize(
    values: dict[str, dict[str, list[float]]],
) -> dict[str, dict[str, tuple[float, float, int]]]:
    """(mean, sample std, n) per model and metric; std is NaN for a single seed."""
    return {
        model: {
            m: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else math.nan, len(v))
            for m, v in metrics.items()
        }
        for model, metrics in values.items()
    }


def compare(
    values: dict[str, dict[str, list[float]]], reference: str, test: str = "student"
) -> list[Comparison]:
    """Per directional metric: t-test of `reference` against the baseline with the best mean."""
    baselines = [m for m in values if m != reference]
    if reference not in values or not baselines:
        return []
    out = []
    for metric, ref_values in values[reference].items():
        direction = higher_is_better(metric)
        if direction is None:
            continue
        means = {b: float(np.mean(values[b][metric])) for b in baselines}
        best = (max if direction else min)(means, key=means.get)
        t, p = two_sample_t(ref_values, values[best][metric], equal_var=(test == "student"))
        out.append(
            Comparison(
                metric, reference, float(np.mean(ref_values)), best, means[best], t, p, direction
            )
        )
    return out


def two_sample_t(a: list[float], b: list[float], equal_var: bool = True) -> tuple[float, float]:
    """Two-sided two-sample t-test (Student, or Welch); NaN when either side has < 2 values."""
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    result = sps.ttest_ind(a, b, equal_var=equal_var)
    return float(result.statistic), float(result.pvalue)
