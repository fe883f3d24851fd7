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

    Pipeline runs that a killed earlier run left RUNNING are closed first (KILLED, with the
    reason). This run's MLflow parent run is opened here and handed to the DAG; on failure it
    is marked FAILED, by its id, and `PipelineFailed` says which task failed (its log, with the
    step's own error, is printed above by kfp).
    """
    from kfp import local

    from htl import tracking

    for run_id in tracking.reconcile_stale_runs(config):
        log.warning("closed MLflow run %s, left RUNNING by a killed run", run_id)
    parent = tracking.start_pipeline_run(config, run_name)
    _share_cores(parallelism)
    root = Path(config.workdir) / "pipeline_root"
    root.mkdir(parents=True, exist_ok=True)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    pipeline = make_pipeline(config_to_dict(config), parallelism=parallelism)
    try:
        task = pipeline(run_name=run_name, parent_run_id=parent)
    except BaseException as exc:  # a failed task, or Ctrl-C
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
        tracking.end_run(config, parent, "FAILED", f"the DAG failed: {message[-2000:]}")
        if isinstance(exc, RuntimeError):
            raise PipelineFailed(message) from exc
        raise
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
