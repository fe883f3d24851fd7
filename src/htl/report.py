"""The comparison report in the paper's Table 2 layout: Markdown (KFP UI, MLflow), HTML, CSV,
JSON and the figures, from seed-level metric records.

Rows are task × metric with ↑/↓ for direction, columns are models (baselines in config
order, the reference last), cells are mean ± std over seeds. Per row the best mean is bold and
the second underlined (ranked on the displayed 4-decimal value, so equal-looking cells get the
same mark); `*` marks the winner of the t-test between the reference and the best baseline
when p ≤ α. The references (HistGradientBoosting per task, predict zero, predict the train
mean) sit in their own columns and are never ranked.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from htl import metrics, plots
from htl.artifacts import (
    EPOCH_TIME_PNG,
    GRAD_NORMS_PNG,
    METRICS_PNG,
    REPORT_HTML,
    REPORT_MD,
    RESULTS_CSV,
    RESULTS_JSON,
)
from htl.metrics import REFERENCE_LABELS, REFERENCES, higher_is_better, metric_of
from htl.stats import Comparison, collect, compare, summarize
from htl.storage import atomic_directory, atomic_write_text, write_json

DIGITS = 4


@dataclass(frozen=True)
class Cell:
    mean: float
    std: float
    n: int
    rank: int | None  # 1 best, 2 second, None otherwise or NaN
    star: bool


@dataclass(frozen=True)
class Row:
    task: str
    metric: str  # `<task>/<metric>`
    higher_is_better: bool
    cells: dict[str, Cell]
    references: dict[str, float]

    @property
    def label(self) -> str:
        arrow = "↑" if self.higher_is_better else "↓"
        return f"{metric_of(self.metric).label}{arrow}"


@dataclass(frozen=True)
class Table:
    models: list[str]
    rows: list[Row]
    references: list[str]


def build_report(
    records: list[dict[str, Any]],
    reference: str,
    test: str,
    alpha: float,
    title: str,
    out_dir: str | Path,
    order: Sequence[str] = (),
    studies: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Aggregate the records, run the t-tests, write every format and figure atomically;
    with `studies`, each model's HPO study in numbers after the table.

    Records of diverged trainings (`diverged` set) stay out of the table and the tests; the
    report lists them, and the tests' seed counts show what each model kept."""
    diverged = [r for r in records if r.get("diverged")]
    records = [r for r in records if not r.get("diverged")]
    if not records:
        raise ValueError(f"no metric records to report on ({len(diverged)} runs diverged)")
    values = collect(records)
    summary = summarize(values)
    comparisons = compare(values, reference, test)
    models = model_order(summary, reference, order)
    tasks = records[0].get("tasks", {})
    task_order = [*tasks.get("chain", []), *([tasks["core"]] if "core" in tasks else [])]
    table = build_table(
        summary, comparisons, models, alpha, records[0].get("references", {}), task_order
    )
    caption = _caption(summary, reference, test, alpha, table.references)
    gaps = ceiling_gaps(table)
    result = {
        "title": title,
        "reference": reference,
        "test": test,
        "alpha": alpha,
        "models": models,
        "summary": {
            m: {k: {"mean": v[0], "std": v[1], "n": v[2]} for k, v in s.items()}
            for m, s in summary.items()
        },
        "values": values,
        "references": records[0].get("references", {}),
        "comparisons": [{**asdict(c), "verdict": c.verdict(alpha)} for c in comparisons],
        "ceiling_gaps": gaps,
    }
    if diverged:
        result["diverged"] = [
            {"model": r["model"], "seed": r["seed"], "reason": r["diverged"]} for r in diverged
        ]
    with atomic_directory(out_dir) as tmp:
        tasks_shown = list(dict.fromkeys(r.task for r in table.rows))
        made = {
            METRICS_PNG: plots.plot_metrics(
                summary, [r.metric for r in table.rows], models, tmp / METRICS_PNG
            ),
            GRAD_NORMS_PNG: plots.plot_grad_norms(records, tasks_shown, tmp / GRAD_NORMS_PNG),
            EPOCH_TIME_PNG: plots.plot_epoch_time(records, models, tmp / EPOCH_TIME_PNG),
        }
        figures = [name for name, drawn in made.items() if drawn]
        markdown = render_markdown(table, comparisons, reference, alpha, title, caption)
        extra = ceiling_markdown(gaps) + _diverged_markdown(diverged)
        extra += studies_markdown(studies or {})
        atomic_write_text(tmp / REPORT_MD, markdown + extra)
        atomic_write_text(
            tmp / REPORT_HTML, render_html(table, title, caption, [tmp / f for f in figures])
        )
        atomic_write_text(tmp / RESULTS_CSV, render_csv(table))
        hpo = {"hpo": studies} if studies else {}
        write_json(tmp / RESULTS_JSON, _finite({**result, "figures": figures, **hpo}))
    return result


def model_order(summary: dict[str, Any], reference: str, order: Sequence[str] = ()) -> list[str]:
    """Baselines in config order (then any others by name), the reference last, as Table 2."""
    known = [m for m in order if m in summary]
    rest = sorted(m for m in summary if m not in known)
    models = [m for m in (*known, *rest) if m != reference]
    return [*models, reference] if reference in summary else models


def build_table(
    summary: dict[str, dict[str, tuple[float, float, int]]],
    comparisons: list[Comparison],
    models: list[str],
    alpha: float,
    references: dict[str, dict[str, float]],
    task_order: Sequence[str] = (),
) -> Table:
    """Rank each row's means in the metric's direction and place the significance stars.

    Rows follow the chain, then the core (`task_order`; first appearance without it), each
    task's metrics in the registry's order (`htl.metrics.METRICS`, the paper's).
    """
    by_metric = {c.metric: c for c in comparisons}
    keys = [k for k in summary[models[0]] if higher_is_better(k) is not None]
    tasks = list(dict.fromkeys([*task_order, *(k.rsplit("/", 1)[0] for k in keys)]))
    metric_order = [m.name for m in metrics.METRICS]
    keys.sort(
        key=lambda k: (tasks.index(k.rsplit("/", 1)[0]), metric_order.index(k.rsplit("/", 1)[1]))
    )
    rows = []
    for key in keys:
        up = bool(higher_is_better(key))
        means = {m: summary[m][key][0] if key in summary[m] else math.nan for m in models}
        ranks = rank_values(means, up)
        starred = _starred(by_metric.get(key), alpha)
        cells = {
            m: Cell(*summary[m].get(key, (math.nan, math.nan, 0)), ranks.get(m), m == starred)
            for m in models
        }
        refs = {r: references[r][key] for r in REFERENCES if key in references.get(r, {})}
        rows.append(Row(key.rsplit("/", 1)[0], key, up, cells, refs))
    used = [r for r in REFERENCES if any(r in row.references for row in rows)]
    return Table(models, rows, used)


def rank_values(means: dict[str, float], higher_is_better: bool) -> dict[str, int]:
    """1 for the best displayed value, 2 for the second; ties share a rank; NaN is unranked."""
    shown = {m: round(v, DIGITS) for m, v in means.items() if math.isfinite(v)}
    distinct = sorted(set(shown.values()), reverse=higher_is_better)[:2]
    return {m: distinct.index(v) + 1 for m, v in shown.items() if v in distinct}


def _starred(comparison: Comparison | None, alpha: float) -> str | None:
    """The model whose cell gets `*`: the winner of a significant test, else none."""
    if comparison is None:
        return None
    winners = {"better": comparison.reference, "worse": comparison.baseline}
    return winners.get(comparison.verdict(alpha))


def _caption(
    summary: dict[str, Any], reference: str, test: str, alpha: float, references: list[str]
) -> str:
    seeds = sorted({v[2] for s in summary.values() for v in s.values()})
    noun = "seed" if seeds == [1] else "seeds"
    why = ": the generator knows the Bayes ceiling and the additive-only prediction"
    return (
        f"Test split; mean ± std over {'/'.join(map(str, seeds))} {noun} per model. "
        f"↑ higher is better, ↓ lower is better. Best in **bold**, second underlined. "
        f"`*`: p ≤ {alpha} in a two-sided two-sample {test.capitalize()} t-test over seeds "
        f"between {reference} and the best baseline, on the better of the two. "
        f"The references on the right ({', '.join(REFERENCE_LABELS[r] for r in references)}) "
        f"are not ranked{why if 'bayes' in references else ''}."
    )


def _cell_text(cell: Cell, bold: tuple[str, str] = ("**", "**"), escape=str) -> str:
    """mean ± std (and the star), the best in `bold`, the second underlined."""
    if not math.isfinite(cell.mean):
        return escape("—")
    std = f" ± {cell.std:.{DIGITS}f}" if math.isfinite(cell.std) else ""
    text = escape(f"{cell.mean:.{DIGITS}f}{std}{'*' if cell.star else ''}")
    return {1: f"{bold[0]}{text}{bold[1]}", 2: f"<u>{text}</u>"}.get(cell.rank, text)


def _plain(value: float) -> str:
    return f"{value:.{DIGITS}f}" if math.isfinite(value) else "—"


def render_markdown(
    table: Table,
    comparisons: list[Comparison],
    reference: str,
    alpha: float,
    title: str,
    caption: str,
) -> str:
    refs = [REFERENCE_LABELS[r] for r in table.references]
    lines = [
        f"# {title}",
        "",
        caption,
        "",
        "| task | metric | " + " | ".join([*table.models, *refs]) + " |",
        "|---|---|" + "---:|" * (len(table.models) + len(refs)),
    ]
    for row in table.rows:
        cells = [_cell_text(row.cells[m]) for m in table.models]
        cells += [_plain(row.references.get(r, math.nan)) for r in table.references]
        lines.append(f"| {row.task} | {row.label} | " + " | ".join(cells) + " |")
    if comparisons:
        lines += [
            "",
            f"## {reference} vs. the best baseline per metric",
            "",
            f"| metric | {reference} | best baseline | baseline mean | seeds | t | p "
            f"| {reference} is |",
            "|---|---|---|---|---|---|---|---|",
        ]
        cells = {row.metric: row.cells for row in table.rows}
        for c in comparisons:
            seeds = f"{cells[c.metric][c.reference].n}/{cells[c.metric][c.baseline].n}"
            lines.append(
                f"| {c.metric} | {c.reference_mean:.4f} | {c.baseline} | {c.baseline_mean:.4f} "
                f"| {seeds} | {c.t:.3f} | {c.p:.4f} | {c.verdict(alpha)} |"
            )
    return "\n".join(lines) + "\n"


#: Shown beside the models in the distance-from-the-ceiling table.
BENCHMARKS = ("additive", "gbdt", "train_mean")


def ceiling_gaps(table: Table) -> dict[str, dict[str, float]]:
    """Per ranked metric with a Bayes reference, how far each model's mean (and each other
    reference) is from it, in the metric's units, positive = worse than the ceiling."""
    gaps: dict[str, dict[str, float]] = {}
    for row in table.rows:
        if "bayes" not in row.references:
            continue
        bayes, sign = row.references["bayes"], 1 if row.higher_is_better else -1
        values = {m: row.cells[m].mean for m in table.models}
        values |= {r: row.references[r] for r in BENCHMARKS if r in row.references}
        gaps[row.metric] = {k: sign * (bayes - v) for k, v in values.items()}
    return gaps


def ceiling_markdown(gaps: dict[str, dict[str, float]]) -> str:
    """The distance-from-the-ceiling table of `ceiling_gaps` (synthetic data only: real data
    has no ceiling)."""
    if not gaps:
        return ""
    columns = list(next(iter(gaps.values())))
    labels = [REFERENCE_LABELS.get(c, c) for c in columns]
    lines = [
        "", "## How far from the ceiling", "",
        "The Bayes ceiling minus each mean (for ↓ metrics the mean minus the ceiling): 0 is the "
        "best any predictor can do in expectation; a model with a smaller gap than the "
        "additive-only one learned interactions the additive part does not hold.", "",
        "| metric | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(columns),
    ]  # fmt: skip
    for metric, row in gaps.items():
        cells = [f"{row[c]:+.4f}" if math.isfinite(row[c]) else "—" for c in columns]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _diverged_markdown(diverged: list[dict[str, Any]]) -> str:
    """The runs left out because their training diverged (`train.on_divergence: report`)."""
    if not diverged:
        return ""
    lines = ["", "## Diverged trainings, not in the table or the tests", ""]
    lines += ["| model | seed | why |", "|---|---|---|"]
    lines += [f"| {r['model']} | {r['seed']} | {r['diverged']} |" for r in diverged]
    return "\n".join(lines) + "\n"


def studies_markdown(studies: dict[str, dict[str, Any]]) -> str:
    """Each model's HPO study: trials by state, best validation objective, the parameters that
    mattered most (fANOVA importances)."""
    if not studies:
        return ""
    lines = ["", "## Hyperparameter search", ""]
    lines += ["| model | finished | pruned | failed | best valid objective | most important |"]
    lines += ["|---|---|---|---|---|---|"]
    for model, s in studies.items():
        best = s.get("best_value")
        top = sorted(s.get("importances", {}).items(), key=lambda kv: -kv[1])[:3]
        lines.append(
            f"| {model} | {s.get('finished', 0)} | {s.get('pruned', 0)} | {s.get('failed', 0)} | "
            f"{'—' if best is None else f'{best:.4f}'} | "
            f"{', '.join(f'{k} {v:.2f}' for k, v in top) or '—'} |"
        )
    return "\n".join(lines) + "\n"


def render_html(table: Table, title: str, caption: str, figures: Sequence[Path]) -> str:
    """A self-contained page (figures embedded as data URIs, so the KFP UI shows it whole):
    the same table with <b>/<u>, then the figures."""
    esc = html.escape
    refs = [REFERENCE_LABELS[r] for r in table.references]
    head = "".join(f"<th>{esc(h)}</th>" for h in ["task", "metric", *table.models, *refs])
    body = []
    for row in table.rows:
        cells = [f"<td>{_cell_text(row.cells[m], ('<b>', '</b>'), esc)}</td>" for m in table.models]
        cells += [
            f'<td class="ref">{_plain(row.references.get(r, math.nan))}</td>'
            for r in table.references
        ]
        body.append(f"<tr><td>{esc(row.task)}</td><td>{esc(row.label)}</td>{''.join(cells)}</tr>")
    caption_html = esc(caption).replace("**bold**", "<b>bold</b>").replace("`*`", "<code>*</code>")
    images = "".join(
        f'<p><img src="data:image/png;base64,{base64.b64encode(f.read_bytes()).decode()}" '
        f'alt="{esc(f.name)}"></p>'
        for f in figures
    )
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>"
        "body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
        "td:first-child,td:nth-child(2){text-align:left}td.ref{color:#777}"
        "</style></head><body>\n"
        f"<h1>{esc(title)}</h1>\n<p>{caption_html}</p>\n"
        f"<table><thead><tr>{head}</tr></thead><tbody>\n"
        + "\n".join(body)
        + f"\n</tbody></table>\n{images}\n</body></html>\n"
    )


def render_csv(table: Table) -> str:
    """Long form, one line per (row, model or reference): what a notebook wants."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["task", "metric", "direction", "model", "mean", "std", "n", "rank", "star"])
    for row in table.rows:
        direction = "up" if row.higher_is_better else "down"
        metric = row.metric.rsplit("/", 1)[1]
        for m, c in row.cells.items():
            writer.writerow(
                [row.task, metric, direction, m, c.mean, c.std, c.n, c.rank or "", int(c.star)]
            )
        for r, value in row.references.items():
            writer.writerow([row.task, metric, direction, f"reference:{r}", value, "", "", "", 0])
    return buffer.getvalue()


def _finite(value: Any) -> Any:
    """JSON has no NaN: write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
