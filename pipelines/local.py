"""The embedded default runner: the same DAG through kfp.local, each step in a process of this
interpreter (SubprocessRunner) or in the built image (DockerRunner, e.g. on a podman socket)."""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

from htl.components.images import Images
from htl.config import ConfigError, ExperimentConfig, config_to_dict
from htl.pipelines.training import PIPELINE_NAME, Deployment, make_pipeline

log = logging.getLogger(__name__)

RUNNERS = ("subprocess", "docker")


def run_locally(
    config: ExperimentConfig,
    run_name: str,
    parallelism: int = 2,
    runner: str = "subprocess",
    image: str | None = None,
) -> Path:
    """Run the DAG on this machine; returns the report's Markdown path.

    Pipeline runs that a killed earlier run left RUNNING are closed first (KILLED, with the
    reason). This run's MLflow parent run is opened here and handed to the DAG; on failure it
    is marked FAILED, by its id, and `PipelineFailed` says which task failed (its log, with the
    step's own error, is printed above by kfp).

    With `runner="docker"` every step runs in `image`; the workdir (stores, checkpoints and
    pipeline outputs) is mounted into each container at the same path, and the containers
    run as the caller's uid so the files stay the caller's.
    """
    from kfp import local

    from htl import tracking

    for run_id in tracking.reconcile_stale_runs(config):
        log.warning("closed MLflow run %s, left RUNNING by a killed run", run_id)
    threads = _share_cores(parallelism)
    workdir = Path(config.workdir)
    if runner == "docker":
        image = _check_image(image)
        root = workdir  # kfp.local mounts the pipeline root only: the stores must be inside
        network = "host" if config.tracking_uri.startswith("http") else "none"
        env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        deployment = Deployment(images=Images(image, image), env=env)
        local.init(
            runner=local.DockerRunner(network_mode=network, user=f"{os.getuid()}:{os.getgid()}"),
            pipeline_root=str(root),
        )
    else:
        root = workdir / "pipeline_root"
        deployment = Deployment()
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    root.mkdir(parents=True, exist_ok=True)
    parent = tracking.start_pipeline_run(config, run_name)
    pipeline = make_pipeline(config_to_dict(config), parallelism, deployment)
    started = time.time()
    try:
        pipeline(run_name=run_name, parent_run_id=parent)
    except BaseException as exc:  # a failed task, or Ctrl-C
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
        tracking.end_run(config, parent, "FAILED", f"the DAG failed: {message[-2000:]}")
        if isinstance(exc, RuntimeError):
            raise PipelineFailed(message) from exc
        raise
    return _report_of_run(root, started)


class PipelineFailed(RuntimeError):
    """The local DAG finished with a failed task."""


def _report_of_run(root: Path, started: float) -> Path:
    """The Markdown report the run that started at `started` wrote under `root`."""
    reports = [
        p
        for p in root.glob(f"{PIPELINE_NAME}-*/**/significance/report_markdown")
        if p.stat().st_mtime >= started
    ]
    if not reports:
        raise PipelineFailed(f"the run finished but wrote no report under {root}")
    return max(reports, key=lambda p: p.stat().st_mtime)


def _check_image(image: str | None) -> str:
    """The image to run every step in (`--image`, else HTL_IMAGE), present on the engine."""
    import docker

    image = image or os.environ.get("HTL_IMAGE")
    if not image:
        raise ConfigError("--runner docker needs an image: --image REF or HTL_IMAGE (make images)")
    try:
        client = docker.from_env()
        client.images.get(image)
    except docker.errors.ImageNotFound:
        raise ConfigError(
            f"image {image!r} is not on the container engine; build it with make images"
        ) from None
    except docker.errors.DockerException as exc:
        raise ConfigError(
            f"no container engine answers at DOCKER_HOST={os.environ.get('DOCKER_HOST', '')!r} "
            f"({exc}); start one (images/with-podman.sh starts podman's)"
        ) from None
    return image


def _share_cores(parallelism: int) -> str:
    """Give each concurrent task its share of the cores (tasks inherit this environment).

    Every task is a process whose torch and BLAS would otherwise each start one thread per
    core; with `parallelism` tasks at once they oversubscribe the cores, and their spinning
    threads slow training several-fold. An explicit OMP_NUM_THREADS is left as it is.
    Returns the thread count, for containers, which inherit nothing.
    """
    threads = max(1, (os.cpu_count() or 1) // max(1, parallelism))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(threads))
    return os.environ["OMP_NUM_THREADS"]
