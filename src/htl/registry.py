"""MLflow model registry: a pyfunc that serves raw features, registration and aliases."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

import htl
from htl.artifacts import (
    EVENTS_FILE,
    FEATURES_FILE,
    MODEL_SPEC_FILE,
    MODEL_WEIGHTS_FILE,
    SPLITS,
    ModelSpec,
    load_model,
    split_path,
)
from htl.config import ExperimentConfig, config_to_dict

log = logging.getLogger(__name__)


class HtlPyfunc(mlflow.pyfunc.PythonModel):
    """Raw feature columns in, one prediction column per task out (probabilities, core value).

    Every feature is encoded with the training vocabularies: an unseen value maps to the field's
    out-of-vocabulary row, and so does a missing (NaN) value of a numeric or string feature.
    The signature keeps integer features integer, so MLflow refuses a null there (HTTP 400
    naming the column); send any id outside the vocabulary instead. An empty frame gets an
    empty frame.
    """

    def load_context(self, context: Any) -> None:
        from htl.data.features import FeatureEncoder

        model_dir = Path(context.artifacts["model_dir"])
        self.model = load_model(model_dir)
        self.encoder = FeatureEncoder.load(model_dir / FEATURES_FILE)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        import torch

        from htl.train import SplitTensors, predict

        if model_input.empty:
            return pd.DataFrame(
                {name: pd.Series(dtype="float32") for name in self.model.tasks.names}
            )
        x = torch.from_numpy(self.encoder.encode(model_input).to_numpy(copy=True))
        values = self.encoder.values(model_input)
        scale = None if values is None else torch.from_numpy(values)
        preds = predict(self.model, SplitTensors(x, {}, scale))
        return pd.DataFrame({name: value.float().numpy() for name, value in preds.items()})


def pick_model_dir(model_dirs: list[str | Path], model: str) -> Path:
    """The seed of `model` with the best value of the selection metric on validation."""
    candidates = []
    for d in model_dirs:
        if not (Path(d) / MODEL_SPEC_FILE).is_file():
            continue  # a diverged training left no model
        spec = ModelSpec.load(Path(d) / MODEL_SPEC_FILE)
        if spec.model == model:
            value = spec.best_valid[spec.tasks.selection_metric]
            candidates.append((value, spec.seed, Path(d)))
    if not candidates:
        raise ValueError(
            f"no trained '{model}' among {len(model_dirs)} model directories (every seed diverged?)"
        )
    return min(candidates)[2]


def register_model(
    config: ExperimentConfig, model_dir: str | Path, example: pd.DataFrame, tags: dict[str, str]
) -> int:
    """Log the model as a pyfunc in the active run, register it and set the configured alias."""
    spec = ModelSpec.load(Path(model_dir) / MODEL_SPEC_FILE)
    # The widest types, so a request of any integer or float width passes the schema (a CSV
    # reads int64 where the events had int32).
    widths = {c: "int64" for c in example if pd.api.types.is_integer_dtype(example[c])}
    widths |= {c: "float64" for c in example if pd.api.types.is_float_dtype(example[c])}
    example = example.astype(widths)
    local = HtlPyfunc()
    local.load_context(type("Context", (), {"artifacts": {"model_dir": str(model_dir)}})())
    signature = infer_signature(example, local.predict(None, example))
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=HtlPyfunc(),  # unloaded: the weights travel as the model_dir artifact
        artifacts={"model_dir": str(model_dir)},
        code_paths=[str(Path(htl.__file__).parent)],
        signature=signature,
        input_example=example,
        pip_requirements=[
            f"{n}=={metadata.version(n).split('+')[0]}" for n in SERVING_REQUIREMENTS
        ],
        registered_model_name=config.register.name,
    )
    version = int(info.registered_model_version)
    client = MlflowClient()
    client.set_registered_model_alias(config.register.name, config.register.alias, version)
    for key, value in {"model": spec.model, "seed": str(spec.seed), **tags}.items():
        client.set_model_version_tag(config.register.name, str(version), key, value)
    log.info(
        "registered %s version %d as @%s", config.register.name, version, config.register.alias
    )
    return version


def lineage(
    config: ExperimentConfig, events_dir: str | Path, model_dir: str | Path
) -> dict[str, str]:
    """Version tags that say where a registered model came from: digests of the events, the
    encoder (the split's vocabularies), the weights and the config; the code revision and
    image (`HTL_GIT_SHA`, `HTL_IMAGE`, else git / none) and the KFP run (`KFP_RUN_ID`)."""
    config_text = json.dumps(config_to_dict(config), sort_keys=True).encode()
    return {
        "lineage.events_sha256": _sha256(Path(events_dir) / EVENTS_FILE),
        "lineage.features_sha256": _sha256(Path(model_dir) / FEATURES_FILE),
        "lineage.weights_sha256": _sha256(Path(model_dir) / MODEL_WEIGHTS_FILE),
        "lineage.config_sha256": hashlib.sha256(config_text).hexdigest(),
        "lineage.code_revision": os.environ.get("HTL_GIT_SHA") or _git_revision(),
        "lineage.image": os.environ.get("HTL_IMAGE", "none (local run)"),
        "lineage.kfp_run_id": os.environ.get("KFP_RUN_ID", "none"),
    }


def log_training_data(splits_dir: str | Path) -> str:
    """Log the train/valid/test splits as the active run's dataset input (a reference with a
    digest, not a copy) and return that digest."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    paths = [split_path(splits_dir, name) for name in SPLITS]
    digest = _sha256(*paths)
    source = resolve_dataset_source(str(Path(splits_dir).resolve()))
    mlflow.log_input(MetaDataset(source, name="splits", digest=digest[:16]), context="training")
    return digest


def _sha256(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):  # noqa: B023
                digest.update(block)
    return digest.hexdigest()


def _git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(htl.__file__).parent, capture_output=True,
            text=True, timeout=10, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()


#: Every distribution the pyfunc's code path imports (htl.artifacts, htl.config, htl.train,
#: htl.data.features, htl.models): what `mlflow models serve` installs without this venv.
SERVING_REQUIREMENTS = ("torch", "numpy", "pandas", "pyarrow", "mlflow", "tqdm", "pyyaml")
