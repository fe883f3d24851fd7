"""Metrics against scikit-learn/SciPy and hand-computed cases; t-tests and report rendering."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import log_loss, mean_absolute_error, mean_squared_error, roc_auc_score

from htl import metrics
from htl.report import render_markdown
from htl.stats import collect, compare, summarize, two_sample_t

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
    # ties keep input order (stable sort): all-equal predictions rank rows as given
    assert metrics.gini(y, np.zeros(4)) == pytest.approx(metrics.gini(y, -np.arange(4.0)))


def test_degenerate_inputs_give_nan_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    assert math.isnan(metrics.auc(np.ones(5), np.linspace(0, 1, 5)))
    assert math.isnan(metrics.spearman(Y[:10], np.ones(10)))
    assert "undefined" in caplog.text


def test_t_test_matches_scipy_and_welch_differs() -> None:
    a, b = [0.71, 0.72, 0.70, 0.73], [0.69, 0.70, 0.68, 0.66]
    t, p = two_sample_t(a, b)
    ref = sps.ttest_ind(a, b)
    assert (t, p) == pytest.approx((ref.statistic, ref.pvalue))
    tw, pw = two_sample_t(a, b, equal_var=False)
    assert pw == pytest.approx(sps.ttest_ind(a, b, equal_var=False).pvalue) and pw != p
    assert all(math.isnan(v) for v in two_sample_t([0.7], b))


def records() -> list[dict]:
    out = []
    for seed in range(3):
        out.append(
            {
                "model": "htlnet",
                "seed": seed,
                "metrics": {"c/auc": 0.80 + 0.001 * seed, "w/nrmse": 0.90 + 0.001 * seed},
            }
        )
        out.append(
            {
                "model": "mmoe",
                "seed": seed,
                "metrics": {"c/auc": 0.70 + 0.001 * seed, "w/nrmse": 0.80 + 0.05 * seed},
            }
        )
        out.append(
            {
                "model": "dnn",
                "seed": seed,
                "metrics": {"c/auc": 0.75 + 0.001 * seed, "w/nrmse": 0.95 + 0.001 * seed},
            }
        )
    return out


def test_best_baseline_respects_metric_direction() -> None:
    comparisons = {c.metric: c for c in compare(collect(records()), "htlnet")}
    assert comparisons["c/auc"].baseline == "dnn"  # higher AUC is better
    assert comparisons["w/nrmse"].baseline == "mmoe"  # lower NRMSE is better
    ref = sps.ttest_ind([0.8, 0.801, 0.802], [0.75, 0.751, 0.752])
    assert comparisons["c/auc"].p == pytest.approx(ref.pvalue)


def test_markdown_bolds_best_and_stars_significant_reference() -> None:
    values = collect(records())
    md = render_markdown(
        summarize(values), compare(values, "htlnet"), "htlnet", "student", 0.05, "T"
    )
    auc_row = next(line for line in md.splitlines() if line.startswith("| c | AUC ↑"))
    cells = [c.strip() for c in auc_row.strip("|").split("|")][2:]
    assert cells[0] == "**0.8010 ± 0.0010***"  # best mean, and p <= 0.05 against dnn
    assert not cells[1].startswith("**") and not cells[2].startswith("**")
    nrmse_row = next(line for line in md.splitlines() if line.startswith("| w | NRMSE ↓"))
    cells = [c.strip() for c in nrmse_row.strip("|").split("|")][2:]
    assert cells[2] == "**0.8500 ± 0.0500**"  # mmoe has the lowest mean
    assert cells[0] == "0.9010 ± 0.0010"  # worse, and p > 0.05: no bold, no star


def test_star_only_when_reference_is_significantly_better() -> None:
    worse = [
        {"model": "htlnet", "seed": s, "metrics": {"c/auc": 0.60 + 0.001 * s}} for s in range(3)
    ] + [{"model": "dnn", "seed": s, "metrics": {"c/auc": 0.70 + 0.001 * s}} for s in range(3)]
    values = collect(worse)
    (comparison,) = compare(values, "htlnet")
    assert comparison.p < 0.05 and comparison.verdict(0.05) == "worse"
    md = render_markdown(summarize(values), [comparison], "htlnet", "student", 0.05, "T")
    row = next(line for line in md.splitlines() if line.startswith("| c | AUC"))
    assert "*" not in row.replace("**", "")
    assert "| worse |" in md


@pytest.mark.parametrize("seed", range(5))
def test_rank_based_auc_and_spearman_match_references_with_ties(seed: int) -> None:
    g = np.random.default_rng(seed)
    y = g.integers(0, 2, 300).astype(float)
    p = np.round(g.random(300) + 0.2 * y, 1)  # heavy ties
    assert metrics.auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    v = np.round(g.exponential(size=300), 1)
    assert metrics.spearman(v, p) == pytest.approx(sps.spearmanr(v, p).statistic, abs=1e-12)
    np.testing.assert_allclose(metrics.average_ranks(p), sps.rankdata(p))
