"""Metrics exactly as docs/metrics.md defines them; all on the raw target scale.

AUC and Spearman are computed from average ranks with numpy (Mann-Whitney U and Pearson of
ranks, the same definitions scikit-learn and SciPy use, tested against both): every training
and evaluation task is a fresh process, and importing those libraries would cost each one
about a second.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from htl.tasks import TaskSpec

log = logging.getLogger(__name__)

PROB_CLIP = 1e-7


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank (SciPy's `rankdata(method="average")`)."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.r_[True, sorted_values[1:] != sorted_values[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], len(values)] - 1
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = (first[group] + last[group]) / 2 + 1
    return ranks


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney U statistic (ties count one half); NaN with a warning when
    y holds a single class."""
    positive = np.asarray(y) > 0.5
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        log.warning("AUC is undefined for a single class; returning NaN")
        return math.nan
    ranks = average_ranks(np.asarray(p, dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def logloss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities clipped to [1e-7, 1 - 1e-7]."""
    p = np.clip(p.astype(np.float64), PROB_CLIP, 1 - PROB_CLIP)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def nrmse(y: np.ndarray, pred: np.ndarray) -> float:
    """RMSE / std(y) (population std): 1.0 for predicting the mean."""
    return float(np.sqrt(np.mean((y - pred) ** 2)) / np.std(y))


def nmae(y: np.ndarray, pred: np.ndarray) -> float:
    """MAE / mean(y): 1.0 for predicting zero."""
    return float(np.mean(np.abs(y - pred)) / np.mean(y))


def spearman(y: np.ndarray, pred: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); NaN for a constant input."""
    if np.ptp(pred) == 0 or np.ptp(y) == 0:
        log.warning("Spearman is undefined for a constant input; returning NaN")
        return math.nan
    return float(np.corrcoef(average_ranks(y), average_ranks(pred))[0, 1])


def gini(y: np.ndarray, pred: np.ndarray) -> float:
    """Normalised Gini: the model's gain-curve Gini over the perfect ranking's (sign kept).

    Rows are ranked by prediction, descending, with a stable sort so ties keep input order.
    Constant predictions rank nothing: NaN with a warning, as for Spearman.
    """
    if np.ptp(pred) == 0:
        log.warning("Gini is undefined for constant predictions; returning NaN")
        return math.nan

    def raw(order: np.ndarray) -> float:
        gain = np.cumsum(y[order]) / y.sum()
        return 2 * gain.mean() - 1

    model = raw(np.argsort(-pred, kind="stable"))
    perfect = raw(np.argsort(-y, kind="stable"))
    return float(model / perfect)


@dataclass(frozen=True)
class Metric:
    """One metric: how it is computed, shown and ranked. The registry below is the only list;
    evaluation, the t-tests and the report (rows, labels, order, arrows) derive from it."""

    name: str
    label: str
    higher_is_better: bool | None  # None: reported, never ranked or tested
    task: str  # "binary": every chain task; "core": the continuous target
    compute: Callable[[np.ndarray, np.ndarray], float]


#: Every metric, in the report's row order within a task (the paper's Table 2 order).
METRICS: tuple[Metric, ...] = (
    Metric("auc", "AUC", True, "binary", auc),
    Metric("logloss", "Logloss", False, "binary", logloss),
    Metric("nrmse", "NRMSE", False, "core", nrmse),
    Metric("nmae", "NMAE", False, "core", nmae),
    Metric("spearman", "Spearman", True, "core", spearman),
    Metric("gini", "Gini", True, "core", gini),
    Metric("rmse", "RMSE", None, "core", lambda y, p: float(np.sqrt(np.mean((y - p) ** 2)))),
    Metric("mae", "MAE", None, "core", lambda y, p: float(np.mean(np.abs(y - p)))),
)


def evaluate_predictions(
    targets: dict[str, np.ndarray], preds: dict[str, np.ndarray], tasks: TaskSpec
) -> dict[str, float]:
    """`<task>/<metric>` for every task and every metric of its kind; the core in float64."""
    binary = [m for m in METRICS if m.task == "binary"]
    out = {f"{t}/{m.name}": m.compute(targets[t], preds[t]) for t in tasks.chain for m in binary}
    y, p = targets[tasks.core].astype(np.float64), preds[tasks.core].astype(np.float64)
    out |= {f"{tasks.core}/{m.name}": m.compute(y, p) for m in METRICS if m.task == "core"}
    return out


def metric_of(metric_key: str) -> Metric | None:
    """The registry entry of `<task>/<metric>`, or None for a key it does not know."""
    name = metric_key.rsplit("/", 1)[-1]
    return next((m for m in METRICS if m.name == name), None)


#: The references every report shows beside the models, in column order: the Bayes and
#: additive-only predictions (synthetic data only: the generator knows them),
#: HistGradientBoosting per task (`htl.gbdt`, when labels_split computed it) and the constant
#: predictors.
REFERENCE_LABELS = {
    "bayes": "Bayes ceiling",
    "additive": "additive only",
    "gbdt": "HistGradientBoosting",
    "train_mean": "predict train mean",
    "zero": "predict 0",
}
REFERENCES = tuple(REFERENCE_LABELS)


def trivial_references(
    targets: dict[str, np.ndarray], train: dict[str, np.ndarray], tasks: TaskSpec
) -> dict[str, dict[str, float]]:
    """Test metrics of constant predictions: `zero` (the core only; NMAE is then exactly 1)
    and `train_mean` (the train mean of each target, i.e. the base rate of a binary task)."""
    n = len(targets[tasks.core])
    means = {name: float(np.mean(train[name])) for name in tasks.names}
    constant = {name: np.full(n, mean) for name, mean in means.items()}
    with _quiet():
        out = {"train_mean": evaluate_predictions(targets, constant, tasks)}
        zero = {**constant, tasks.core: np.zeros(n)}
        out["zero"] = {
            k: v
            for k, v in evaluate_predictions(targets, zero, tasks).items()
            if k.startswith(f"{tasks.core}/")
        }
    return out


class _quiet:
    """Silence the expected 'undefined for a constant input' warnings of constant predictors."""

    def __enter__(self) -> None:
        self.level = log.level
        log.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        log.setLevel(self.level)


def higher_is_better(metric_key: str) -> bool | None:
    """Direction of `<task>/<metric>`; None for metrics reported without a direction."""
    metric = metric_of(metric_key)
    return None if metric is None else metric.higher_is_better
