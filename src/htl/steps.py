"""One function per pipeline step: run the library call on artifact paths and log it to MLflow.

KFP components and `python -m htl <step>` both call these, so a step behaves the same inside
the DAG and alone on files.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from htl import artifacts, tracking
from htl.config import ExperimentConfig

# Each step imports only what it runs: every pipeline task is a fresh process, and import time
# is most of a small task's cost.


def run_configure(
    defaults: dict[str, Any], config: dict[str, Any], overrides: dict[str, Any]
) -> dict[str, Any]:
    """The pipeline run's config: `config`, then `overrides`, deep-merged onto the compiled
    `defaults` (so a partial parameter keeps the rest), validated and checked against the
    registries; inside a Kubernetes pod also checked for a cluster (no store that is a file
    of one pod). Every later task receives the result."""
    import os

    from htl.checks import check, check_cluster
    from htl.config import config_from_dict, config_to_dict, deep_merge

    source = "pipeline parameters 'config' and 'config_overrides'"
    merged = config_from_dict(deep_merge(deep_merge(defaults, config), overrides), source)
    merged = check(merged, source)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        check_cluster(merged, source)
    return config_to_dict(merged)


def run_finalize(
    defaults: dict[str, Any],
    config: dict[str, Any],
    overrides: dict[str, Any],
    parent: str,
    kfp_run_id: str,
    state: str,
    error: str,
) -> list[str]:
    """The DAG's exit handler: on a failed or cancelled run, close its MLflow pipeline run and
    the step runs left RUNNING as FAILED. A config too broken to read opened no run."""
    from htl.config import config_from_dict, deep_merge
    from htl.errors import ConfigError

    try:
        merged = config_from_dict(deep_merge(deep_merge(defaults, config), overrides))
    except ConfigError:
        return []
    return tracking.close_pipeline_run(merged, parent, kfp_run_id, state, error)


def run_ingest(
    config: ExperimentConfig,
    out_dir: str | Path,
    run_name: str | None = None,
    parent: str | None = None,
    kfp_run_id: str = "",
) -> str:
    """Ingest events and return the pipeline's parent MLflow run id: `parent` when the caller
    opened it (`htl run`), else a run opened once the data was read, so a bad input leaves no
    RUNNING run behind."""
    from htl.data.sources import ingest

    try:
        summary = ingest(config.data, out_dir)
    except BaseException as exc:
        if parent:
            tracking.end_run(config, parent, "FAILED", f"step ingest failed: {exc!r}")
        raise
    parent = parent or tracking.start_pipeline_run(config, run_name, kfp_run_id)
    with tracking.step_run(config, parent, "ingest"):
        tracking.log_metrics(summary)
    return parent


def run_labels_split(
    config: ExperimentConfig, events_dir: str | Path, out_dir: str | Path, parent: str | None
) -> dict[str, Any]:
    from htl.data.prepare import prepare_splits
    from htl.storage import read_json, write_json

    with tracking.step_run(config, parent, "labels_split"):
        card = prepare_splits(events_dir, out_dir, config.data)
        references = read_json(Path(out_dir) / artifacts.REFERENCES_FILE)  # Bayes, additive
        if config.data.gbdt_rows:  # the non-deep reference every report shows
            from htl.gbdt import gbdt_reference

            references["gbdt"] = gbdt_reference(out_dir, config.data.gbdt_rows, config.data.seed)
            write_json(Path(out_dir) / artifacts.REFERENCES_FILE, references)
        for name, metrics in references.items():
            tracking.log_metrics({f"{name}/{k}": v for k, v in metrics.items()})
        tracking.log_metrics({f"{s}/rows": float(v["rows"]) for s, v in card["splits"].items()})
        tracking.log_metrics({"chain_violations": float(card["chain_violations"])})
        tracking.log_artifact(Path(out_dir) / artifacts.DATA_CARD_MD)
    return card


def run_hpo(
    config: ExperimentConfig,
    splits_dir: str | Path,
    out_dir: str | Path,
    parent: str | None,
    models: list[str] | None = None,
    worker: int = 0,
) -> dict[str, dict[str, Any]]:
    """Tune each of `models` (default: all) to its study's budget, one MLflow run per study
    with a nested run per trial; writes `<model>.json` and `<model>.study.json`. `worker`:
    this process's index among those sharing the studies (distinct sampler seeds)."""
    from htl.hpo import search_model
    from htl.storage import atomic_directory, write_json

    results, summaries = [], {}
    for model in models or config.models:
        with tracking.step_run(config, parent, f"hpo/{model}", {"htl.model": model}) as run:
            ids = (run.info.experiment_id, run.info.run_id)

            def on_trial(study: Any, trial: Any, model: str = model, ids: tuple = ids) -> None:
                tracking.log_trial(*ids, f"hpo/{model}/trial{trial.number}", trial)

            best, summary = search_model(config, splits_dir, model, on_trial, worker)
            tracking.log_params(best.tuned or {"tuned": "none"})
            importances = summary.get("importances", {})
            tracking.log_metrics(summary | {f"importance/{k}": v for k, v in importances.items()})
        results.append(best)
        summaries[model] = summary
    with atomic_directory(out_dir) as tmp:
        for best in results:
            best.save(artifacts.best_params_path(tmp, best.model))
            write_json(artifacts.study_summary_path(tmp, best.model), summaries[best.model])
    return summaries


def run_plan_training(
    config: ExperimentConfig, params_dirs: list[str | Path], out_dir: str | Path
) -> list[dict[str, Any]]:
    """The studies' fan-in: every entry's best params and study summary in one directory;
    returns the (model, seed) training jobs."""
    import shutil

    from htl.storage import atomic_directory

    with atomic_directory(out_dir) as tmp:
        for directory in params_dirs:
            for path in Path(directory).glob("*.json"):
                shutil.copyfile(path, tmp / path.name)
    missing = [m for m in config.models if not artifacts.best_params_path(out_dir, m).is_file()]
    if missing:
        raise FileNotFoundError(f"no HPO result for {missing} in {list(params_dirs)}")
    return [{"model": m, "seed": s} for m in config.models for s in config.seeds]


def run_train(
    config: ExperimentConfig,
    splits_dir: str | Path,
    params_dir: str | Path,
    model: str,
    seed: int,
    out_dir: str | Path,
    parent: str | None,
) -> dict[str, Any]:
    """Train one (model, seed) with the params HPO chose, logging every epoch. A diverging
    training fails the step (`train.on_divergence: fail`) or leaves `diverged.json` in place of
    the model for the report to list (`report`)."""
    from htl.errors import TrainingDiverged
    from htl.storage import atomic_directory
    from htl.train import checkpoint_location, checkpoint_meta, train_model

    params = artifacts.BestParams.load(artifacts.best_params_path(params_dir, model)).params
    path, key = checkpoint_location(splits_dir, model, seed, params, config.checkpoint_dir)
    previous = checkpoint_meta(path, key).get("mlflow_run_id")  # a killed attempt's run
    tags = {"htl.model": model, "htl.seed": str(seed)}
    with tracking.step_run(config, parent, f"train/{model}/seed{seed}", tags, previous) as run:
        if previous is None:
            tracking.log_params({"model": model, "seed": seed, **asdict(params)})
        # a killed attempt may have logged an epoch its last checkpoint does not hold; the
        # resumed run recomputes it bit for bit, so it is not logged twice
        logged = tracking.last_step(run.info.run_id, "epoch") if previous else 0

        def log_epoch(epoch: int, record: dict[str, float]) -> None:
            if epoch > logged:
                tracking.log_metrics(record, step=epoch)

        try:
            result = train_model(
                splits_dir, model, seed, params, out_dir, on_epoch=log_epoch,
                checkpoint_dir=config.checkpoint_dir,
                checkpoint_meta={"mlflow_run_id": run.info.run_id},
            )  # fmt: skip
        except TrainingDiverged as exc:
            if config.train.on_divergence == "fail":
                raise
            tracking.set_tags({"htl.diverged": str(exc)[:5000]})
            with atomic_directory(out_dir) as tmp:
                artifacts.Diverged(model, seed, str(exc)).save(tmp / artifacts.DIVERGED_FILE)
            return {"model": model, "seed": seed, "diverged": str(exc)}
        tracking.log_metrics(
            {"best_epoch": float(result.best_epoch), "resumed_from_epoch": result.resumed_from}
        )
    return {"model": model, "seed": seed, "best_epoch": result.best_epoch, **result.best_valid}


def run_evaluate(
    config: ExperimentConfig,
    model_dir: str | Path,
    splits_dir: str | Path,
    out_dir: str | Path,
    parent: str | None,
) -> dict[str, Any]:
    from htl.evaluate import evaluate_model
    from htl.storage import atomic_directory

    diverged = Path(model_dir) / artifacts.DIVERGED_FILE
    if diverged.is_file():  # nothing to score; the record carries the reason to the report
        d = artifacts.Diverged.load(diverged)
        record = artifacts.MetricsRecord(d.model, "", d.seed, "test", 0, {}, {}, {}, [], d.reason)
        with atomic_directory(out_dir) as tmp:
            record.save(tmp / artifacts.METRICS_FILE)
        return record.to_json()
    spec = artifacts.ModelSpec.load(Path(model_dir) / artifacts.MODEL_SPEC_FILE)
    tags = {"htl.model": spec.model, "htl.seed": str(spec.seed)}
    with tracking.step_run(config, parent, f"evaluate/{spec.model}/seed{spec.seed}", tags):
        record = evaluate_model(model_dir, splits_dir, out_dir)
        tracking.log_metrics({f"test/{k}": v for k, v in record.metrics.items()})
    return record.to_json()


def run_significance(
    config: ExperimentConfig,
    metrics_dirs: list[str | Path],
    out_dir: str | Path,
    parent: str | None,
    studies_dir: str | Path | None = None,
) -> Path:
    """Aggregate seeds, t-test the reference model, write the report (with each model's HPO
    study from `studies_dir`); its Markdown path."""
    from htl.report import build_report
    from htl.storage import read_json

    studies = {}
    for model in config.models if studies_dir else ():
        path = artifacts.study_summary_path(studies_dir, model)
        if path.is_file():
            studies[model] = read_json(path)

    records = [
        artifacts.MetricsRecord.load(Path(d) / artifacts.METRICS_FILE).to_json()
        for d in metrics_dirs
    ]
    with tracking.step_run(config, parent, "significance"):
        s, title = config.significance, f"{config.name}: test results"
        result = build_report(
            records, s.reference, s.test, s.alpha, title, out_dir, config.models, studies
        )
        for c in result["comparisons"]:
            tracking.log_metrics({f"p/{c['metric']}": c["p"]})
        tracking.log_artifact(out_dir, "report")
    return Path(out_dir) / artifacts.REPORT_MD


def run_register(
    config: ExperimentConfig,
    model_dirs: list[str | Path],
    events_dir: str | Path,
    report_dir: str | Path,
    parent: str | None,
    splits_dir: str | Path | None = None,
) -> int:
    """Register the configured model's best seed with its alias (never @champion); with the
    splits, they are logged as the run's training data and their digest tagged."""
    from htl.data.features import FeatureEncoder
    from htl.registry import lineage, log_training_data, pick_model_dir, register_model

    chosen = pick_model_dir(model_dirs, config.register.model)
    fields = FeatureEncoder.load(chosen / artifacts.FEATURES_FILE).fields
    example = pd.read_parquet(Path(events_dir) / artifacts.EVENTS_FILE, columns=fields).head(5)
    with tracking.step_run(config, parent, "register"):
        tracking.log_artifact(Path(report_dir) / artifacts.REPORT_MD)
        tags = {"pipeline_run": parent or "", **lineage(config, events_dir, chosen)}
        spec = artifacts.ModelSpec.load(chosen / artifacts.MODEL_SPEC_FILE)
        step = f"train/{spec.model}/seed{spec.seed}"
        tags["lineage.training_run"] = tracking.find_step_run(config, parent, step) or "unknown"
        if splits_dir is not None:
            tags["lineage.splits_sha256"] = log_training_data(splits_dir)
        version = register_model(config, chosen, example, tags)
        tracking.log_metrics({"registered_version": float(version)})
    return version


def run_promote(
    config: ExperimentConfig,
    splits_dir: str | Path,
    out_dir: str | Path,
    parent: str | None,
    version: int | None = None,
) -> dict[str, Any]:
    """The champion/challenger gate on `version` (default: @challenger); closes the pipeline
    run, whose last step it is."""
    from htl.promote import promote

    with tracking.step_run(config, parent, "promote"):
        blessing = promote(config, splits_dir, out_dir, version)
        tracking.log_artifact(out_dir, "blessing")
        tracking.log_metrics({"blessed": float(blessing.blessed)})
    if parent:
        tracking.end_pipeline_run(config, parent)
    return blessing.to_json()


def run_rollback(config: ExperimentConfig) -> int:
    """Give @champion back to @previous-champion; the restored version."""
    from htl.promote import rollback

    tracking.use_store(config)
    return rollback(config)
