"""Compile the DAG to KFP pipeline-spec YAML, for a KFP host (UI upload, `kfp run create`)."""

from __future__ import annotations

import os
from pathlib import Path

from kfp import compiler

from htl.config import ExperimentConfig, config_to_dict
from htl.pipelines.training import make_pipeline


def compile_pipeline(
    config: ExperimentConfig, output: str | Path, parallelism: int = 4, gpu: bool = False
) -> Path:
    """Write the YAML with `config` as the default of the pipeline's `config` parameter."""
    pipeline = make_pipeline(config_to_dict(config), parallelism=parallelism, gpu=gpu)
    return _write(pipeline, Path(output))


def compile_prediction(output: str | Path) -> Path:
    """Write the `htl-prediction` batch-scoring pipeline's YAML."""
    from htl.pipelines.prediction import prediction_pipeline

    return _write(prediction_pipeline, Path(output))


def _write(pipeline: object, output: Path) -> Path:
    tmp = output.with_name(f".{output.stem}.tmp.yaml")  # kfp insists on a .yaml suffix
    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline, str(tmp))
    os.replace(tmp, output)
    return output
