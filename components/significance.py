"""significance: every (model, seed) metric record -> mean ± std, t-tests, the report; for the
KFP UI the report as a self-contained HTML page, the Markdown table and aggregate Metrics."""

from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Output

from htl.components.images import component


@component
def significance(
    config: dict,
    parent_run_id: str,
    results: Input[list[Dataset]],
    studies: Input[Artifact],
    report: Output[Artifact],
    report_markdown: Output[Markdown],
    report_html: Output[HTML],
    metrics: Output[Metrics],
) -> None:
    """`metrics`: the mean of every model and metric (`<model>/<task>_<metric>`) and the
    reference model's p-value against the best baseline on each (`p/<task>_<metric>`)."""
    import json
    import math
    import shutil
    from pathlib import Path

    from htl.artifacts import REPORT_HTML, RESULTS_JSON
    from htl.config import config_from_dict
    from htl.steps import run_significance

    markdown = run_significance(
        config_from_dict(config),
        [r.path for r in results],
        report.path,
        parent_run_id,
        studies.path,
    )
    shutil.copyfile(markdown, report_markdown.path)
    shutil.copyfile(Path(report.path) / REPORT_HTML, report_html.path)
    result = json.loads((Path(report.path) / RESULTS_JSON).read_text())
    for model, by_metric in result["summary"].items():
        for key, stats in by_metric.items():
            if stats["mean"] is not None and math.isfinite(stats["mean"]):
                metrics.log_metric(f"{model}/{key.replace('/', '_')}", stats["mean"])
    for c in result["comparisons"]:
        if c["p"] is not None and math.isfinite(c["p"]):
            metrics.log_metric(f"p/{c['metric'].replace('/', '_')}", c["p"])
    with open(metrics.path, "w") as handle:  # a file, so local caching can validate the output
        json.dump(metrics.metadata, handle)
