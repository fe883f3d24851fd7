"""The artifact contract: every file name that crosses a step border, and typed records for what
those files hold (`to_json` / `from_json`), plus saving and loading a model directory.

Steps, evaluation and the registry read artifacts through this module, never through the
module that wrote them. Importing it costs no torch: model I/O imports torch when called.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from htl.config import TrainSpec, parse
from htl.storage import atomic_directory, read_json, write_json
from htl.tasks import TaskSpec

if TYPE_CHECKING:
    from htl.data.features import FeatureEncoder
    from htl.models.base import MultiTaskModel

# ingest -> labels_split
EVENTS_FILE = "events.parquet"
SCHEMA_FILE = "schema.json"
SUMMARY_FILE = "summary.json"
# labels_split -> hpo, train, evaluate, register
SPLITS = ("train", "valid", "test")
RAW_TEST_FILE = "test_raw.parquet"  # the test rows' raw features and targets, for promote
FEATURES_FILE = "features.json"
DATA_CARD_JSON = "data_card.json"
DATA_CARD_MD = "data_card.md"
#: labels_split -> evaluate: test metrics of the reference predictors (Bayes and additive-only
#: when the source knows them, HistGradientBoosting), `{name: {"<task>/<metric>": value}}`
REFERENCES_FILE = "references.json"
# train -> evaluate, register
MODEL_WEIGHTS_FILE = "model.pt"
MODEL_SPEC_FILE = "model.json"
DIVERGED_FILE = "diverged.json"  # instead of the model, under train.on_divergence: report
# evaluate -> significance
PREDICTIONS_FILE = "predictions.parquet"
METRICS_FILE = "metrics.json"
# significance -> register, KFP UI, MLflow
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
GRAD_NORMS_PNG = "grad_norms.png"
EPOCH_TIME_PNG = "epoch_time.png"
METRICS_PNG = "metrics.png"
# promote -> KFP UI, registry tags
BLESSING_JSON = "blessing.json"
BLESSING_MD = "blessing.md"


def split_path(splits_dir: str | Path, name: str) -> Path:
    return Path(splits_dir) / f"{name}.parquet"


def best_params_path(params_dir: str | Path, model: str) -> Path:
    """hpo -> train: one file per entry of `models`."""
    return Path(params_dir) / f"{model}.json"


def study_summary_path(params_dir: str | Path, model: str) -> Path:
    """hpo -> report: the entry's study in numbers (trials by state, best value, importances)."""
    return Path(params_dir) / f"{model}.study.json"


class Record:
    """A frozen dataclass that crosses a step border as JSON, typed again on the way back in
    (a malformed file is a ConfigError naming the file and the key)."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> Self:
        return parse(cls, read_json(path), source=str(path), finite=False)


@dataclass(frozen=True)
class BestParams(Record):
    """hpo's result for one entry: the tuned values, the best validation value of the task
    spec's selection metric (None when nothing was tuned) and the spec training uses."""

    model: str
    tuned: dict[str, Any]
    best_valid_nrmse: float | None
    params: TrainSpec


@dataclass(frozen=True)
class ModelSpec(Record):
    """model.json: what rebuilds a trained model, and how its training went."""

    model: str  # the entry of `models` (a variant's own name)
    architecture: str  # the registered model it built
    seed: int
    cardinalities: list[int]
    embed_dim: int
    tower_dims: list[int]
    tasks: TaskSpec
    options: dict[str, Any]  # resolved: the model's own options and its gradient strategy's
    params: TrainSpec
    best_epoch: int
    best_valid: dict[str, float]
    resumed_from_epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Diverged(Record):
    """diverged.json: a (model, seed) whose training diverged, kept out of the comparison."""

    model: str
    seed: int
    reason: str


@dataclass(frozen=True)
class MetricsRecord(Record):
    """metrics.json: one (model, seed) scored on a split, with the trivial references and the
    training history the report's figures read; `diverged` says why there are no metrics."""

    model: str
    architecture: str
    seed: int
    split: str
    rows: int
    tasks: dict[str, Any]  # {"chain": [...], "core": ...}
    metrics: dict[str, float]
    references: dict[str, dict[str, float]]
    history: list[dict[str, float]] = field(default_factory=list)
    diverged: str = ""


def save_model(
    out_dir: str | Path, model: MultiTaskModel, encoder: FeatureEncoder, spec: ModelSpec
) -> None:
    """Write a model directory atomically: weights, model.json, the encoder it was fit with."""
    import torch

    with atomic_directory(out_dir) as tmp:
        torch.save(model.state_dict(), tmp / MODEL_WEIGHTS_FILE)
        spec.save(tmp / MODEL_SPEC_FILE)
        encoder.save(tmp / FEATURES_FILE)


def load_model(model_dir: str | Path, device: Any = "cpu") -> MultiTaskModel:
    """Rebuild a trained model from its directory (weights loaded with weights_only=True); its
    encoder is `FeatureEncoder.load(model_dir / FEATURES_FILE)`."""
    import torch

    from htl.models.registry import resolve

    model_dir = Path(model_dir)
    spec = ModelSpec.load(model_dir / MODEL_SPEC_FILE)
    recipe = resolve(spec.architecture, spec.options)
    model = recipe.build(spec.cardinalities, spec.embed_dim, spec.tasks, tuple(spec.tower_dims))
    state = torch.load(model_dir / MODEL_WEIGHTS_FILE, map_location=device, weights_only=True)
    model.load_state_dict(state)
    model.to(device).eval()
    return model
