"""Compile the DAG to KFP pipeline-spec YAML for a cluster (UI upload, `kfp run create`,
`htl submit`), after checking that nothing in it belongs to the compiling machine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kfp import compiler

from htl.checks import check_cluster, cluster_stores
from htl.components.images import Images
from htl.config import CHECKPOINT_MOUNT, STORE_ENV, ConfigError, ExperimentConfig, config_to_dict
from htl.pipelines.training import Deployment, make_pipeline, portable_defaults


def check_images(images: Images | None, gpu: bool) -> Images:
    """Image references a cluster can pull: set, and not podman's local-only `localhost/`."""
    if images is None or not images.cpu:
        raise ConfigError(
            "no image for the cluster: set HTL_IMAGE (and HTL_GPU_IMAGE for --gpu) to images "
            "pushed to a registry the cluster pulls from (make images && make push REGISTRY=...)"
        )
    if gpu and images.gpu == images.cpu:
        raise ConfigError("--gpu: set HTL_GPU_IMAGE to the CUDA image (images/build.sh cuda)")
    for name, ref in (("HTL_IMAGE", images.cpu), ("HTL_GPU_IMAGE", images.gpu)):
        if ref.startswith("localhost/"):
            raise ConfigError(
                f"{name} is {ref!r}, an image only this machine has; push it "
                "(make push REGISTRY=...) and set the pushed reference"
            )
    return images


def cluster_defaults(config: ExperimentConfig) -> dict[str, Any]:
    """The config compiled into the YAML: portable (no workdir), with each store the compile
    environment supplies written in, and the checkpoint volume's path when one is mounted."""
    out = portable_defaults(config_to_dict(config))
    for key, value in cluster_stores(config).items():
        section, name = key.split(".")
        if value:
            out.setdefault(section, {})[name] = value
    if config.cluster.checkpoint_pvc and not config.train.checkpoint_dir:
        out.setdefault("train", {})["checkpoint_dir"] = CHECKPOINT_MOUNT
    return out


def compile_pipeline(
    config: ExperimentConfig,
    output: str | Path,
    parallelism: int = 4,
    gpu: bool = False,
    images: Images | None = None,
    source: str = "<config>",
) -> Path:
    """Check `config` and the images for a cluster, then write the YAML with the config as
    the compiled defaults and the `cluster` section's task settings."""
    check_cluster(config, source)
    images = check_images(images or Images.from_env(), gpu)
    defaults = cluster_defaults(config)
    unset = tuple(STORE_ENV[k] for k, v in cluster_stores(config).items() if not v)
    deployment = Deployment(cluster=config.cluster, images=images, gpu=gpu, secret_env=unset)
    pipeline = make_pipeline(
        defaults, parallelism, deployment, pipeline_root=config.cluster.pipeline_root
    )
    return _write(pipeline, Path(output))


def compile_prediction(output: str | Path, images: Images | None = None) -> Path:
    """Write the `htl-prediction` batch-scoring pipeline's YAML, its task in HTL_IMAGE."""
    from htl.pipelines.prediction import make_prediction_pipeline

    images = check_images(images or Images.from_env(), gpu=False)
    return _write(make_prediction_pipeline(images), Path(output))


def _write(pipeline: object, output: Path) -> Path:
    tmp = output.with_name(f".{output.stem}.tmp.yaml")  # kfp insists on a .yaml suffix
    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline, str(tmp))
    os.replace(tmp, output)
    return output
