"""The Table 2 report: ranks per direction, bold/underline/stars in the right cells, every format
and figure written."""

from __future__ import annotations

import base64
import csv
import json
import math
from pathlib import Path

import pytest
from scipy import stats as sps

from htl.plots import epoch_curves
from htl.report import build_report, rank_values
from htl.stats import collect, compare

ORDER = ("dnn", "mmoe", "ple", "htlnet")


def record(model: str, seed: int, auc: float, nrmse: float, **extra: object) -> dict:
    return {
        "model": model,
        "seed": seed,
        "metrics": {"c/auc": auc, "c/logloss": 1 - auc, "w/nrmse": nrmse},
        "references": {
            "train_mean": {"c/auc": 0.5, "c/logloss": 0.6, "w/nrmse": 1.0},
            "zero": {"w/nrmse": 1.2},
        },
        **extra,
    }


def records() -> list[dict]:
    """htlnet best on AUC (significantly), mmoe best on NRMSE (not significantly)."""
    out = []
    for s in range(3):
        out += [
            record("htlnet", s, 0.80 + 0.001 * s, 0.90 + 0.001 * s),
            record("mmoe", s, 0.70 + 0.001 * s, 0.80 + 0.05 * s),
            record("dnn", s, 0.75 + 0.001 * s, 0.95 + 0.001 * s),
            record("ple", s, 0.60 + 0.001 * s, 0.97 + 0.001 * s),
        ]
    return out


def row_cells(markdown: str, prefix: str) -> list[str]:
    line = next(line for line in markdown.splitlines() if line.startswith(prefix))
    return [c.strip() for c in line.strip("|").split("|")][2:]


def test_table2_marks_best_second_and_significance(tmp_path: Path) -> None:
    build_report(records(), "htlnet", "student", 0.05, "T", tmp_path, order=ORDER)
    md = (tmp_path / "report.md").read_text()
    header = row_cells(md, "| task |")
    assert header == ["dnn", "mmoe", "ple", "htlnet", "predict train mean", "predict 0"]
    auc = row_cells(md, "| c | AUC↑")
    assert auc[3] == "**0.8010 ± 0.0010***"  # best, and p <= 0.05 against dnn
    assert auc[0] == "<u>0.7510 ± 0.0010</u>"  # second
    assert auc[1] == "0.7010 ± 0.0010" and auc[2] == "0.6010 ± 0.0010"
    assert auc[4:] == ["0.5000", "—"]  # references, never ranked
    logloss = row_cells(md, "| c | Logloss↓")  # lower is better: the same order
    assert logloss[3].startswith("**0.1990") and logloss[0].startswith("<u>0.2490")
    nrmse = row_cells(md, "| w | NRMSE↓")
    assert nrmse[1] == "**0.8500 ± 0.0500**"  # lowest mean; p > 0.05 so no star anywhere
    assert nrmse[3] == "<u>0.9010 ± 0.0010</u>"
    assert nrmse[4:] == ["1.0000", "1.2000"]
    assert "*" not in "".join(nrmse).replace("**", "")


def test_star_goes_to_the_baseline_when_the_reference_is_significantly_worse(
    tmp_path: Path,
) -> None:
    rows = [record("htlnet", s, 0.60 + 0.001 * s, 0.9 - 0.01 * s) for s in range(3)]
    rows += [record("dnn", s, 0.70 + 0.001 * s, 0.9 + 0.01 * s) for s in range(3)]
    result = build_report(rows, "htlnet", "student", 0.05, "T", tmp_path, order=ORDER)
    md = (tmp_path / "report.md").read_text()
    auc = row_cells(md, "| c | AUC↑")
    assert auc == ["**0.7010 ± 0.0010***", "<u>0.6010 ± 0.0010</u>", "0.5000", "—"]
    verdicts = {c["metric"]: c["verdict"] for c in result["comparisons"]}
    assert verdicts["c/auc"] == "worse"
    assert "| c/auc | 0.6010 | dnn | 0.7010 |" in md


def test_ranks_share_ties_on_the_displayed_value_and_skip_nan() -> None:
    means = {"a": 0.81231, "b": 0.81234, "c": 0.7, "d": math.nan, "e": 0.6}
    assert rank_values(means, True) == {"a": 1, "b": 1, "c": 2}
    assert rank_values(means, False) == {"e": 1, "c": 2}


def test_html_csv_json_agree_with_the_markdown(tmp_path: Path) -> None:
    result = build_report(records(), "htlnet", "welch", 0.05, "T", tmp_path, order=ORDER)
    page = (tmp_path / "report.html").read_text()
    assert "<b>0.8010 ± 0.0010*</b>" in page and "<u>0.7510 ± 0.0010</u>" in page
    rows = list(csv.DictReader((tmp_path / "results.csv").read_text().splitlines()))
    auc = {r["model"]: r for r in rows if r["metric"] == "auc"}
    assert auc["htlnet"]["rank"] == "1" and auc["htlnet"]["star"] == "1"
    assert auc["dnn"]["rank"] == "2" and auc["ple"]["rank"] == ""
    assert float(auc["reference:train_mean"]["mean"]) == 0.5
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["models"] == list(ORDER) and saved["test"] == "welch"
    welch = sps.ttest_ind([0.8, 0.801, 0.802], [0.75, 0.751, 0.752], equal_var=False)
    (auc_test,) = [c for c in saved["comparisons"] if c["metric"] == "c/auc"]
    assert auc_test["p"] == pytest.approx(welch.pvalue)
    assert saved["values"]["mmoe"]["w/nrmse"] == pytest.approx([0.80, 0.85, 0.90])
    assert result["comparisons"][0]["baseline"] == compare(collect(records()), "htlnet")[0].baseline


def test_figures_are_written_from_the_training_history(tmp_path: Path) -> None:
    def history(after: float) -> list[dict]:
        return [
            {
                "epoch": float(e),
                "time/epoch_seconds": 1.0 + e,
                "grad_norm/c/before": 2.0 * e,
                "grad_norm/c/after": after * e,
                "grad_norm/w/before": 5.0 * e,
                "grad_norm/w/after": after * e,
            }
            for e in (1, 2)
        ]

    short = [{"epoch": 1.0, "time/epoch_seconds": 0.5}]
    rows = [
        record("htlnet", s, 0.8 + 0.01 * s, 0.9 - 0.01 * s, history=history(1.0)) for s in (0, 1)
    ]
    rows += [record("dnn", s, 0.7 + 0.01 * s, 0.95 + 0.02 * s, history=short) for s in (0, 1)]
    build_report(rows, "htlnet", "student", 0.05, "T", tmp_path, order=ORDER)
    for name in ("metrics.png", "grad_norms.png", "epoch_time.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert json.loads((tmp_path / "results.json").read_text())["figures"] == [
        "metrics.png",
        "grad_norms.png",
        "epoch_time.png",
    ]
    page = (tmp_path / "report.html").read_text()
    embedded = (tmp_path / "grad_norms.png").read_bytes()  # self-contained: the PNG itself
    assert f'<img src="data:image/png;base64,{base64.b64encode(embedded).decode()}"' in page
    assert 'alt="grad_norms.png"' in page


def test_no_history_means_no_training_figures(tmp_path: Path) -> None:
    build_report(records(), "htlnet", "student", 0.05, "T", tmp_path, order=ORDER)
    assert not (tmp_path / "grad_norms.png").exists()
    assert not (tmp_path / "epoch_time.png").exists()
    assert (tmp_path / "metrics.png").exists()


def test_epoch_curves_average_seeds_per_epoch_including_early_stops() -> None:
    rows = [
        {"model": "m", "history": [{"epoch": 1.0, "grad_norm/c/after": 1.0},
                                   {"epoch": 2.0, "grad_norm/c/after": 3.0}]},
        {"model": "m", "history": [{"epoch": 1.0, "grad_norm/c/after": 2.0}]},
    ]  # fmt: skip
    curve = epoch_curves(rows, "grad_norm/")["m"]["grad_norm/c/after"]
    assert curve.tolist() == [1.5, 3.0]


def test_rows_follow_the_chain_then_the_paper_metric_order(tmp_path: Path) -> None:
    rows = [
        {
            "model": m,
            "seed": s,
            "tasks": {"chain": ["z_click"], "core": "a_watch"},
            "metrics": {"a_watch/gini": 0.5 + s, "a_watch/nrmse": 0.9 + s, "z_click/auc": 0.7 + s},
        }
        for m in ("htlnet", "dnn")
        for s in (0, 1)
    ]
    build_report(rows, "htlnet", "student", 0.05, "T", tmp_path)
    lines = [line for line in (tmp_path / "report.md").read_text().splitlines() if "↑ |" in line
             or "↓ |" in line]  # fmt: skip
    assert [line.split("|")[1:3] for line in lines[:3]] == [
        [" z_click ", " AUC↑ "],
        [" a_watch ", " NRMSE↓ "],
        [" a_watch ", " Gini↑ "],
    ]


def test_a_metric_added_to_the_registry_reaches_evaluation_tests_and_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adding a metric is one entry in `htl.metrics.METRICS`: nothing else to keep in step."""
    import numpy as np

    from htl import metrics
    from htl.tasks import TaskSpec

    brier = metrics.Metric(
        "brier", "Brier", False, "binary", lambda y, p: float(np.mean((p - y) ** 2))
    )
    monkeypatch.setattr(metrics, "METRICS", (*metrics.METRICS[:2], brier, *metrics.METRICS[2:]))
    tasks = TaskSpec(("c",), "w")
    y = {"c": np.array([0.0, 1.0, 1.0, 0.0]), "w": np.array([0.0, 2.0, 3.0, 0.0])}
    p = {"c": np.array([0.1, 0.9, 0.6, 0.2]), "w": np.array([0.5, 2.0, 2.5, 0.0])}
    scored = metrics.evaluate_predictions(y, p, tasks)
    assert scored["c/brier"] == pytest.approx((0.01 + 0.01 + 0.16 + 0.04) / 4)
    runs = []
    for model, shift in (("htlnet", 0.0), ("dnn", 0.3)):
        for seed in range(3):
            moved = {"c": np.clip(p["c"] + shift + 0.01 * seed, 0, 1), "w": p["w"] + 0.1 * seed}
            runs.append({"model": model, "seed": seed, "tasks": {"chain": ["c"], "core": "w"},
                         "metrics": metrics.evaluate_predictions(y, moved, tasks)})  # fmt: skip
    result = build_report(runs, "htlnet", "student", 0.05, "T", tmp_path, order=("dnn",))
    assert "c/brier" in {c["metric"] for c in result["comparisons"]}
    md = (tmp_path / "report.md").read_text()
    rows = [line.split("|")[2].strip() for line in md.splitlines() if line.startswith("| c |")]
    assert rows == ["AUC↑", "Logloss↓", "Brier↓"]  # the registry's order and direction


def test_the_distance_from_the_ceiling_is_shown_when_the_data_has_one(tmp_path: Path) -> None:
    ceiling = {"bayes": {"c/auc": 0.9, "c/logloss": 0.1, "w/nrmse": 0.7},
               "additive": {"c/auc": 0.72, "c/logloss": 0.3, "w/nrmse": 0.93}}  # fmt: skip
    with_ceiling = [{**r, "references": {**r["references"], **ceiling}} for r in records()]
    result = build_report(with_ceiling, "htlnet", "student", 0.05, "T", tmp_path, order=ORDER)
    gaps = result["ceiling_gaps"]
    assert gaps["c/auc"]["htlnet"] == pytest.approx(0.9 - 0.801)  # ↑: ceiling minus the mean
    assert gaps["w/nrmse"]["mmoe"] == pytest.approx(0.85 - 0.7)  # ↓: the mean minus ceiling
    assert gaps["c/auc"]["additive"] == pytest.approx(0.18)
    assert gaps["w/nrmse"]["train_mean"] == pytest.approx(0.3)
    md = (tmp_path / "report.md").read_text()
    assert "## How far from the ceiling" in md
    assert row_cells(md, "| task |")[4:6] == ["Bayes ceiling", "additive only"]
    assert "| c/auc | +0.1490 | +0.1990 | +0.2990 | +0.0990 | +0.1800 | +0.4000 |" in md
    build_report(records(), "htlnet", "student", 0.05, "T", tmp_path / "real", order=ORDER)
    assert "ceiling" not in (tmp_path / "real" / "report.md").read_text()  # real data: none
