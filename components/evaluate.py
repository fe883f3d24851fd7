"""evaluate: a trained model on the test split -> predictions, metrics JSON and KFP Metrics."""

from kfp.dsl import Dataset, Input, Metrics, Model, Output

from htl.components.images import component


@component
def evaluate(
    job: dict,
    model: Input[Model],
    splits: Input[Dataset],
    results: Output[Dataset],
    metrics: Output[Metrics],
) -> None:
    import math

    from htl.config import config_from_dict
    from htl.steps import run_evaluate

    record = run_evaluate(
        config_from_dict(job["config"]), model.path, splits.path, results.path, job["parent_run_id"]
    )
    results.metadata.update({"model": record["model"], "seed": record["seed"]})
    for key, value in record["metrics"].items():
        if math.isfinite(value):
            metrics.log_metric(key.replace("/", "_"), value)
    with open(metrics.path, "w") as handle:  # a file, so local caching can validate the output
        handle.write(str(record["metrics"]))
