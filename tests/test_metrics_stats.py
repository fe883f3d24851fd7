"""Metrics against scikit-learn/SciPy and hand-computed cases; t-tests and report rendering."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import log_loss, mean_absolute_error, mean_squared_error, roc_auc_score

from htl import metrics
from htl.stats import two_sample_t
from htl.tasks import TaskSpec

rng = np.random.default_rng(0)
Y_BIN = rng.integers(0, 2, 500).astype(float)
P = np.clip(0.3 * Y_BIN + 0.7 * rng.random(500), 0, 1)
Y = np.exp(rng.normal(1, 1, 500)) * (rng.random(500) < 0.6)
PRED = Y * 0.5 + rng.random(500)


def test_binary_metrics_match_sklearn() -> None:
    assert metrics.auc(Y_BIN, P) == pytest.approx(roc_auc_score(Y_BIN, P))
    assert metrics.logloss(Y_BIN, P) == pytest.approx(log_loss(Y_BIN, np.clip(P, 1e-7, 1 - 1e-7)))
    # clipping keeps a confident mistake finite
    assert math.isfinite(metrics.logloss(np.array([1.0, 0.0]), np.array([0.0, 1.0])))


def test_regression_metrics_match_definitions() -> None:
    rmse = math.sqrt(mean_squared_error(Y, PRED))
    assert metrics.nrmse(Y, PRED) == pytest.approx(rmse / Y.std(ddof=0))
    assert metrics.nmae(Y, PRED) == pytest.approx(mean_absolute_error(Y, PRED) / Y.mean())
    assert metrics.spearman(Y, PRED) == pytest.approx(sps.spearmanr(Y, PRED).statistic)
    # trivial references
    assert metrics.nrmse(Y, np.full_like(Y, Y.mean())) == pytest.approx(1.0)
    assert metrics.nmae(Y, np.zeros_like(Y)) == pytest.approx(1.0)


def test_gini_hand_cases() -> None:
    y = np.array([0.0, 1.0, 3.0, 6.0])
    assert metrics.gini(y, y) == pytest.approx(1.0)
    assert metrics.gini(y, -y) < 0  # inverse ranking keeps its sign
    # hand-computed: order by pred desc = [1, 6, 0, 3]; gains 0.1, 0.7, 0.7, 1.0 -> raw 0.25
    # perfect gains 0.6, 0.9, 1.0, 1.0 -> raw 0.75; normalised 1/3
    assert metrics.gini(y, np.array([0.5, 4.0, 0.1, 2.0])) == pytest.approx(0.25 / 0.75)
    # ties keep input order (stable sort): tied predictions rank their rows as given
    tied = np.array([1.0, 1.0, 0.0, 0.0])
    assert metrics.gini(y, tied) == pytest.approx(metrics.gini(y, -np.arange(4.0)))


def test_degenerate_inputs_give_nan_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    assert math.isnan(metrics.auc(np.ones(5), np.linspace(0, 1, 5)))
    assert math.isnan(metrics.spearman(Y[:10], np.ones(10)))
    assert math.isnan(metrics.gini(Y[:10], np.ones(10)))
    assert caplog.text.count("undefined") == 3


def test_constant_predictions_score_as_chance() -> None:
    const = np.full(len(Y_BIN), 0.3)
    assert metrics.auc(Y_BIN, const) == pytest.approx(0.5) == roc_auc_score(Y_BIN, const)
    assert metrics.logloss(Y_BIN, const) == pytest.approx(log_loss(Y_BIN, const))
    # every tie counts one half: a prediction with one tied pair off the diagonal
    assert metrics.auc(np.array([0, 1, 0, 1.0]), np.array([0.1, 0.5, 0.5, 0.9])) == 0.875


def slow_gini(y: np.ndarray, pred: np.ndarray) -> float:
    """google/lifetime_value's normalised Gini, written out with a loop and a stable sort."""

    def gain_gini(order: list[int]) -> float:
        total, running, gains = float(sum(y)), 0.0, []
        for i in order:
            running += y[i]
            gains.append(running / total)
        return 2 * sum(gains) / len(gains) - 1

    by_pred = sorted(range(len(y)), key=lambda i: -pred[i])  # Python's sort is stable
    by_true = sorted(range(len(y)), key=lambda i: -y[i])
    return gain_gini(by_pred) / gain_gini(by_true)


@pytest.mark.parametrize("seed", range(3))
def test_gini_matches_slow_reference_with_ties(seed: int) -> None:
    g = np.random.default_rng(seed)
    y = np.round(g.exponential(size=200) * (g.random(200) < 0.5), 1)
    pred = np.round(y + g.normal(size=200), 0)  # many ties
    assert metrics.gini(y, pred) == pytest.approx(slow_gini(y, pred), abs=1e-12)


def test_trivial_references_are_the_documented_constants() -> None:
    tasks = TaskSpec(("click",), "watch", "mse")
    g = np.random.default_rng(1)
    train = {"click": (g.random(400) < 0.2).astype(float), "watch": g.exponential(5, 400)}
    test = {"click": (g.random(100) < 0.2).astype(float), "watch": g.exponential(5, 100)}
    refs = metrics.trivial_references(test, train, tasks)
    base_rate = train["click"].mean()
    mean = np.full(100, train["watch"].mean())
    assert refs["train_mean"]["click/auc"] == pytest.approx(0.5)
    assert refs["train_mean"]["click/logloss"] == pytest.approx(
        log_loss(test["click"], np.full(100, base_rate))
    )
    assert refs["train_mean"]["watch/nrmse"] == pytest.approx(
        math.sqrt(mean_squared_error(test["watch"], mean)) / test["watch"].std()
    )
    assert refs["zero"]["watch/nmae"] == pytest.approx(1.0)
    assert "click/auc" not in refs["zero"]  # predicting 0 is a reference for the core only


def test_t_test_matches_scipy_and_welch_differs() -> None:
    a, b = [0.71, 0.72, 0.70, 0.73], [0.69, 0.70, 0.68, 0.66]
    t, p = two_sample_t(a, b)
    ref = sps.ttest_ind(a, b)
    assert (t, p) == pytest.approx((ref.statistic, ref.pvalue))
    tw, pw = two_sample_t(a, b, equal_var=False)
    assert pw == pytest.approx(sps.ttest_ind(a, b, equal_var=False).pvalue) and pw != p
    assert all(math.isnan(v) for v in two_sample_t([0.7], b))


@pytest.mark.parametrize("seed", range(5))
def test_rank_based_auc_and_spearman_match_references_with_ties(seed: int) -> None:
    g = np.random.default_rng(seed)
    y = g.integers(0, 2, 300).astype(float)
    p = np.round(g.random(300) + 0.2 * y, 1)  # heavy ties
    assert metrics.auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    v = np.round(g.exponential(size=300), 1)
    assert metrics.spearman(v, p) == pytest.approx(sps.spearmanr(v, p).statistic, abs=1e-12)
    np.testing.assert_allclose(metrics.average_ranks(p), sps.rankdata(p))
