"""The embedded default runner: the same DAG through kfp.local's SubprocessRunner."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from htl.config import ExperimentConfig, config_to_dict
from htl.pipelines.training import make_pipeline

log = logging.getLogger(__name__)


def run_locally(config: ExperimentConfig, run_name: str, parallelism: int = 2) -> Path:
    """Run the DAG in this interpreter's environment; returns the report's Markdown path.

    On failure the MLflow pipeline run is marked FAILED and `PipelineFailed` says which task
    failed (its log, with the step's own error, is printed above by kfp).
    """
    from kfp import local

    _share_cores(parallelism)
    root = Path(config.workdir) / "pipeline_root"
    root.mkdir(parents=True, exist_ok=True)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    pipeline = make_pipeline(config_to_dict(config), parallelism=parallelism)
    try:
        task = pipeline(run_name=run_name)
    except RuntimeError as exc:
        _mark_failed(config, run_name)
        raise PipelineFailed(re.sub(r"\x1b\[[0-9;]*m", "", str(exc))) from exc
    return Path(task.output.path)


class PipelineFailed(RuntimeError):
    """The local DAG finished with a failed task."""


def _share_cores(parallelism: int) -> None:
    """Give each concurrent task its share of the cores (tasks inherit this environment).

    Every task is a process whose torch and BLAS would otherwise each start one thread per
    core; with `parallelism` tasks at once they oversubscribe the cores, and their spinning
    threads slow training several-fold. An explicit OMP_NUM_THREADS is left as it is.
    """
    threads = max(1, (os.cpu_count() or 1) // max(1, parallelism))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(threads))


def _mark_failed(config: ExperimentConfig, run_name: str) -> None:
    from htl import tracking

    try:
        tracking.fail_pipeline_run(config, run_name)
    except Exception as exc:  # the pipeline's own error is the one to show
        log.warning("could not mark MLflow run %s as failed: %s", run_name, exc)
