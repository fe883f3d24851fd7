"""The comparison report: Markdown (KFP UI, MLflow), CSV and JSON from seed-level metrics."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from htl.metrics import higher_is_better
from htl.stats import Comparison, collect, compare, summarize
from htl.storage import atomic_directory, atomic_write_text, write_json

REPORT_MD = "report.md"
METRIC_LABELS = {
    "auc": "AUC",
    "logloss": "Logloss",
    "nrmse": "NRMSE",
    "nmae": "NMAE",
    "spearman": "Spearman",
    "gini": "Gini",
}


def build_report(
    records: list[dict[str, Any]],
    reference: str,
    test: str,
    alpha: float,
    title: str,
    out_dir: str | Path,
) -> dict[str, Any]:
    """Aggregate the records, run the t-tests and write report.md, results.csv, results.json."""
    if not records:
        raise ValueError("no metric records to report on")
    values = collect(records)
    summary = summarize(values)
    comparisons = compare(values, reference, test)
    markdown = render_markdown(summary, comparisons, reference, test, alpha, title)
    result = {
        "title": title,
        "reference": reference,
        "test": test,
        "alpha": alpha,
        "summary": {
            m: {k: {"mean": v[0], "std": v[1], "n": v[2]} for k, v in s.items()}
            for m, s in summary.items()
        },
        "comparisons": [{**asdict(c), "verdict": c.verdict(alpha)} for c in comparisons],
    }
    with atomic_directory(out_dir) as tmp:
        atomic_write_text(tmp / REPORT_MD, markdown)
        atomic_write_text(tmp / "results.csv", _csv(summary))
        write_json(tmp / "results.json", _finite(result))
    return result


def render_markdown(
    summary: dict[str, dict[str, tuple[float, float, int]]],
    comparisons: list[Comparison],
    reference: str,
    test: str,
    alpha: float,
    title: str,
) -> str:
    models = (
        [reference, *sorted(m for m in summary if m != reference)]
        if reference in summary
        else sorted(summary)
    )
    metrics = [k for k in summary[models[0]] if higher_is_better(k) is not None]
    significant = {c.metric for c in comparisons if c.verdict(alpha) == "better"}
    seeds = sorted({v[2] for s in summary.values() for v in s.values()})
    lines = [
        f"# {title}",
        "",
        f"Test split; mean ± std over {'/'.join(map(str, seeds))} seeds per model. "
        f"↑ higher is better, ↓ lower is better; **bold** is the best mean; "
        f"`*` marks {reference} significantly better than the best baseline (p ≤ {alpha}, "
        f"two-sided {test.capitalize()} t-test over seeds).",
        "",
        "| task | metric | " + " | ".join(models) + " |",
        "|---|---|" + "---|" * len(models),
    ]
    for key in metrics:
        task, metric = key.rsplit("/", 1)
        up = higher_is_better(key)
        means = {m: summary[m][key][0] for m in models}
        ranked = [m for m in models if not math.isnan(means[m])]
        best = (max if up else min)(ranked, key=means.get) if ranked else None
        cells = []
        for m in models:
            mean, std, _ = summary[m][key]
            cell = f"{mean:.4f} ± {std:.4f}"
            if m == reference and key in significant:
                cell += "*"
            cells.append(f"**{cell}**" if m == best else cell)
        arrow = "↑" if up else "↓"
        lines.append(f"| {task} | {METRIC_LABELS[metric]} {arrow} | " + " | ".join(cells) + " |")
    if comparisons:
        lines += [
            "",
            f"## {reference} vs. the best baseline per metric",
            "",
            f"| metric | {reference} | best baseline | baseline mean | t | p | {reference} is |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in comparisons:
            lines.append(
                f"| {c.metric} | {c.reference_mean:.4f} | {c.baseline} | {c.baseline_mean:.4f} "
                f"| {c.t:.3f} | {c.p:.4f} | {c.verdict(alpha)} |"
            )
    return "\n".join(lines) + "\n"


def _csv(summary: dict[str, dict[str, tuple[float, float, int]]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["model", "metric", "mean", "std", "n"])
    for model, metrics in sorted(summary.items()):
        for metric, (mean, std, n) in metrics.items():
            writer.writerow([model, metric, mean, std, n])
    return buffer.getvalue()


def _finite(value: Any) -> Any:
    """JSON has no NaN: write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
