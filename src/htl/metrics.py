"""Metrics exactly as docs/metrics.md defines them; all on the raw target scale."""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

from htl.tasks import TaskSpec

log = logging.getLogger(__name__)

PROB_CLIP = 1e-7

#: True where a larger value is better.
HIGHER_IS_BETTER = {
    "auc": True,
    "logloss": False,
    "nrmse": False,
    "nmae": False,
    "spearman": True,
    "gini": True,
}


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC; NaN (with a warning) when y holds a single class."""
    if np.unique(y).size < 2:
        log.warning("AUC is undefined for a single class; returning NaN")
        return math.nan
    return float(roc_auc_score(y, p))


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
    return float(stats.spearmanr(y, pred)[0])


def gini(y: np.ndarray, pred: np.ndarray) -> float:
    """Normalised Gini: the model's gain-curve Gini over the perfect ranking's (sign kept).

    Rows are ranked by prediction, descending, with a stable sort so ties keep input order.
    """

    def raw(order: np.ndarray) -> float:
        gain = np.cumsum(y[order]) / y.sum()
        return 2 * gain.mean() - 1

    model = raw(np.argsort(-pred, kind="stable"))
    perfect = raw(np.argsort(-y, kind="stable"))
    return float(model / perfect)


def evaluate_predictions(
    targets: dict[str, np.ndarray], preds: dict[str, np.ndarray], tasks: TaskSpec
) -> dict[str, float]:
    """`<task>/<metric>` for every task: AUC and Logloss per binary task, regression on the core."""
    out: dict[str, float] = {}
    for name in tasks.chain:
        out[f"{name}/auc"] = auc(targets[name], preds[name])
        out[f"{name}/logloss"] = logloss(targets[name], preds[name])
    y, p = targets[tasks.core].astype(np.float64), preds[tasks.core].astype(np.float64)
    out[f"{tasks.core}/nrmse"] = nrmse(y, p)
    out[f"{tasks.core}/nmae"] = nmae(y, p)
    out[f"{tasks.core}/spearman"] = spearman(y, p)
    out[f"{tasks.core}/gini"] = gini(y, p)
    out[f"{tasks.core}/rmse"] = float(np.sqrt(np.mean((y - p) ** 2)))
    out[f"{tasks.core}/mae"] = float(np.mean(np.abs(y - p)))
    return out


def higher_is_better(metric_key: str) -> bool | None:
    """Direction of `<task>/<metric>`; None for metrics reported without a direction."""
    return HIGHER_IS_BETTER.get(metric_key.rsplit("/", 1)[-1])
