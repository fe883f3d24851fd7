"""The embedded default runner: the same DAG through kfp.local's SubprocessRunner."""

from __future__ import annotations

import logging
from pathlib import Path

from htl.config import ExperimentConfig, config_to_dict
from pipelines.training import make_pipeline

log = logging.getLogger(__name__)


def run_locally(config: ExperimentConfig, run_name: str, parallelism: int = 2) -> Path:
    """Run the DAG in this interpreter's environment; returns the report's Markdown path.

    On failure the MLflow pipeline run is marked FAILED and kfp's error is re-raised.
    """
    from kfp import local

    root = Path(config.workdir) / "pipeline_root"
    root.mkdir(parents=True, exist_ok=True)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    pipeline = make_pipeline(config_to_dict(config), parallelism=parallelism)
    try:
        task = pipeline(run_name=run_name)
    except Exception:
        _mark_failed(config, run_name)
        raise
    return Path(task.output.path)


def _mark_failed(config: ExperimentConfig, run_name: str) -> None:
    from htl import tracking

    try:
        tracking.fail_pipeline_run(config, run_name)
    except Exception as exc:  # the pipeline's own error is the one to show
        log.warning("could not mark MLflow run %s as failed: %s", run_name, exc)
