"""Typed experiment config: frozen dataclasses loaded from YAML and validated before any work.

This module is the schema only: it imports no torch, model or optuna, so every pipeline task
can read its config cheaply. Every mistake (unknown or misspelled key, wrong type, bad value)
raises one `ConfigError` naming the file, the key and what was expected. What needs the model
registry (model names, model options, HPO keys) is checked by `htl.checks.check`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from htl.errors import ConfigError, did_you_mean


@dataclass(frozen=True)
class Range:
    """Bounds of a numeric field, written `Annotated[int, Range(1)]`. `parse` checks them, so
    config keys and model options fail with the same message: `'x' must be >= 1, got 0`."""

    low: float
    high: float | None = None
    open_low: bool = False  # `low` itself excluded
    open_high: bool = False

    def holds(self, v: float) -> bool:
        above = v > self.low if self.open_low else v >= self.low
        return above and (
            self.high is None or (v < self.high if self.open_high else v <= self.high)
        )

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.open_low else '>='} {_number(self.low)}"
        left, right = "(["[not self.open_low], ")]"[not self.open_high]
        return f"in {left}{_number(self.low)}, {_number(self.high)}{right}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


SEED_MAX = 2**32 - 1  # numpy's and torch's seeds alike
POSITIVE = Range(0, open_low=True)
NON_NEGATIVE = Range(0)
AT_LEAST_1 = Range(1)


@dataclass(frozen=True)
class EventsConfig:
    """Column roles of an `events` source: any event table the config describes."""

    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()  # encoded by data.numeric_encoding
    chain: tuple[str, ...] = ()  # ordered binary steps
    core: str = ""  # the continuous target
    time: str | None = None  # chronological split on it; none: a seeded random split
    format: Literal["auto", "csv", "parquet"] = "auto"  # auto: by suffix


@dataclass(frozen=True)
class KuaiRandConfig:
    """Which KuaiRand-Pure log to read; `random` is the paper's 1,186,059 rows."""

    log: Literal["random", "standard_4_08_to_4_21", "standard_4_22_to_5_08"] = "random"


@dataclass(frozen=True)
class ShoppersConfig:
    """The ZILN recipe's switches for Kaggle's Acquire Valued Shoppers transactions."""

    companies: tuple[int, ...] = ()  # explicit company ids; empty: the top_companies
    top_companies: Annotated[int, POSITIVE] = 20  # by number of positive transactions
    cohort: tuple[str, str] | None = None  # first purchase in [from, to), e.g. the ZILN paper's
    month_window: Literal["30d", "31d", "calendar"] = "30d"  # the "1 month" after the first buy
    chunk_rows: Annotated[int, Range(1000)] = (
        2_000_000  # CSV rows per chunk; bounds memory on the 350M-row file
    )


@dataclass(frozen=True)
class DataConfig:
    """Where events come from and how they become splits."""

    source: Literal["synthetic", "kuairand", "acquire_valued_shoppers", "events"] = "synthetic"
    path: str | None = None  # local file, directory or glob, or gs://bucket/...
    profile: Literal["kuairand", "kaggle", "product"] = "kuairand"  # synthetic only
    rows: Annotated[int, Range(100)] = 20_000  # synthetic only
    seed: int = 0
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    min_count: int = 1
    buckets: Annotated[int, Range(2)] = 10  # quantile buckets per numeric feature, fit on train
    # dense: one embedding row scaled by the standardised value (measured default,
    # docs/datasets.md); bucketize: `buckets` train quantiles
    numeric_encoding: Literal["bucketize", "dense"] = "dense"
    on_violation: Literal["error", "repair", "drop"] = "error"
    # the MSE core's training scale (metrics stay raw): standardize = (y - mean) / std of
    # train; log1p = log1p(y), predictions back through a bias-corrected expm1
    core_transform: Literal["none", "standardize", "log1p"] = "none"
    gbdt_rows: Annotated[int, NON_NEGATIVE] = 1_000_000  # HistGradientBoosting reference; 0: none
    events: EventsConfig = field(default_factory=EventsConfig)
    kuairand: KuaiRandConfig = field(default_factory=KuaiRandConfig)
    shoppers: ShoppersConfig = field(default_factory=ShoppersConfig)


@dataclass(frozen=True)
class TrainConfig:
    """The training settings of every model; HPO's best values override the tuned ones."""

    epochs: Annotated[int, POSITIVE] = 5
    batch_size: Annotated[int, POSITIVE] = 1024
    lr: Annotated[float, POSITIVE] = 1e-3
    l2: Annotated[float, NON_NEGATIVE] = 0.0
    embed_dim: Annotated[int, POSITIVE] = 8
    patience: Annotated[int, POSITIVE] = 2
    core_loss: Literal["mse", "ziln"] = "mse"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    checkpoint_dir: str | None = None  # default: <workdir>/checkpoints; one file per run
    on_divergence: Literal["fail", "report"] = "fail"  # report: the DAG goes on without it


#: HPO's grid for the training settings of every model: the paper's Table 6 (App. B.1). The
#: entry's own value joins each grid (its defaults are the first trial).
TRAIN_SEARCH_SPACE: dict[str, list[Any]] = {
    "embed_dim": [5, 10, 15, 20],
    "batch_size": [256, 512, 1024, 2048, 4096],
    "lr": [1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2],
    "l2": [1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2],
}


@dataclass(frozen=True)
class TrainSpec(TrainConfig):
    """Everything one training run needs besides data and seed: the training settings, the
    registered model it builds and the entry's options (model and gradient keys, as written
    under `model_options`). Training, HPO, checkpoints and model.json share this one record."""

    architecture: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def with_tuned(self, tuned: dict[str, Any]) -> TrainSpec:
        """Tuned values on top: training keys onto the settings, the rest onto the options."""
        settings = {k: v for k, v in tuned.items() if k in TRAIN_SEARCH_SPACE}
        options = {k: v for k, v in tuned.items() if k not in TRAIN_SEARCH_SPACE}
        return dataclasses.replace(self, **settings, options={**self.options, **options})


@dataclass(frozen=True)
class HpoConfig:
    """Optuna search, one study per model, the same protocol for every model (docs/pipeline.md):
    `trials` finished trials each (the first: the model's defaults), TPE after
    `startup_trials` random ones, each trial up to `epochs` epochs with the objective reported
    every epoch to the `pruner`; the objective is the validation core NRMSE, or with `weights`
    a weighted sum over tasks, averaged over the training `seeds`."""

    trials: Annotated[int, NON_NEGATIVE] = 40
    startup_trials: Annotated[int, AT_LEAST_1] = 10
    epochs: Annotated[int, POSITIVE] = 1
    workers: Annotated[int, AT_LEAST_1] = 1  # processes per study in one hpo task
    pruner: Literal["median", "hyperband", "none"] = "median"
    weights: dict[str, float] = field(default_factory=dict)  # task -> weight; {} = core only
    seeds: tuple[Annotated[int, Range(0, SEED_MAX)], ...] = (0,)
    storage: str | None = None  # default: SQLite under workdir
    seed: int = 0  # the sampler's
    heartbeat_s: Annotated[int, AT_LEAST_1] = 30  # a worker silent for 2x this is dead
    fixed: tuple[str, ...] = ()  # search keys left at the config's value, e.g. [batch_size]


@dataclass(frozen=True)
class TrackingConfig:
    """MLflow store: SQLite under workdir by default, or a server URI."""

    uri: str | None = None
    artifact_root: str | None = None
    experiment: str = "htl"


@dataclass(frozen=True)
class RegisterConfig:
    """Which trained model becomes the registry's challenger, and under what name."""

    model: str = "htlnet"
    name: str = "htl"
    alias: str = "challenger"


@dataclass(frozen=True)
class PromoteConfig:
    """The champion/challenger gate `htl promote` applies before it moves `@champion`.

    `thresholds` bound `<task>/<metric>` on the test split: a minimum for a metric where higher
    is better (AUC), a maximum otherwise (NRMSE). Against a champion, no metric may be worse by
    more than `tolerance` (absolute), and on the primary metric (the selection metric, the core
    NRMSE) a paired one-sided t-test over the test rows' squared errors must find the
    challenger better at `alpha` (`superiority`), or not worse by more than `margin` times
    the champion's mean squared error (`non_inferiority`)."""

    thresholds: dict[str, float] = field(default_factory=dict)
    tolerance: Annotated[float, NON_NEGATIVE] = 0.0
    alpha: Annotated[float, Range(0, 1, open_low=True, open_high=True)] = 0.05
    mode: Literal["superiority", "non_inferiority"] = "superiority"
    margin: Annotated[float, NON_NEGATIVE] = 0.0


@dataclass(frozen=True)
class SignificanceConfig:
    """Seed aggregation and the t-test of the reference model against the best baseline."""

    reference: str = "htlnet"
    test: Literal["student", "welch"] = "student"
    alpha: Annotated[float, Range(0, 1, open_low=True, open_high=True)] = 0.05


@dataclass(frozen=True)
class TaskResources:
    """What one compiled task asks of the cluster: requests (and equal limits), a deadline,
    and retries with exponential backoff (60 s, doubling)."""

    cpu: str = "1"
    memory: str = "4G"
    timeout_s: Annotated[int, POSITIVE] = 3600
    retries: Annotated[int, NON_NEGATIVE] = 0


@dataclass(frozen=True)
class ClusterConfig:
    """How the compiled pipeline's tasks run on Kubeflow (`htl compile`, `htl submit`); local
    runs ignore it. GPU settings apply under `--gpu`. With `checkpoint_pvc`, hpo and train
    mount that claim at CHECKPOINT_MOUNT and keep their checkpoints there, so a retried
    train resumes where the killed attempt stopped. With `env_secret`, every task gets the
    secret's keys as environment variables: the STORE_ENV stores the config leaves unset
    (credentials stay out of the YAML)."""

    pipeline_root: str | None = None  # gs://...; default: the KFP deployment's own
    steps: TaskResources = field(default_factory=TaskResources)
    hpo: TaskResources = field(
        default_factory=lambda: TaskResources("4", "16G", 6 * 3600, retries=2)
    )
    train: TaskResources = field(
        default_factory=lambda: TaskResources("4", "16G", 4 * 3600, retries=2)
    )
    gpu_type: str = "nvidia.com/gpu"
    gpu_toleration: str = "nvidia.com/gpu"  # the taint key GPU nodes carry; "" for none
    checkpoint_pvc: str | None = None
    env_secret: str | None = None  # a secret whose keys (MLFLOW_TRACKING_URI, ...) every task gets


CHECKPOINT_MOUNT = "/mnt/htl-checkpoints"

#: Where a store not set in the config comes from (the pod's environment on a cluster).
STORE_ENV = {
    "tracking.uri": "MLFLOW_TRACKING_URI",
    "hpo.storage": "HTL_OPTUNA_STORAGE",
    "train.checkpoint_dir": "HTL_CHECKPOINT_DIR",
}


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: data, models x seeds, and how to train, tune, track and register."""

    name: str = "htl"
    workdir: str = ".htl"
    models: tuple[str, ...] = ("htlnet", "shared_bottom", "dnn")
    seeds: tuple[Annotated[int, Range(0, SEED_MAX)], ...] = (0, 1, 2)
    model_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    hpo: HpoConfig = field(default_factory=HpoConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    register: RegisterConfig = field(default_factory=RegisterConfig)
    promote: PromoteConfig = field(default_factory=PromoteConfig)
    significance: SignificanceConfig = field(default_factory=SignificanceConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def _store(self, key: str, default: str) -> str:
        """The config's value of a store, else its STORE_ENV variable, else `default` (a file
        under workdir)."""
        section, name = key.split(".")
        value = getattr(getattr(self, section), name) or os.environ.get(STORE_ENV[key])
        return value or default.format(workdir=Path(self.workdir))

    @property
    def tracking_uri(self) -> str:
        return self._store("tracking.uri", "sqlite:///{workdir}/mlflow.db")

    @property
    def artifact_root(self) -> str:
        return self.tracking.artifact_root or str(Path(self.workdir) / "mlartifacts")

    @property
    def optuna_storage(self) -> str:
        return self._store("hpo.storage", "sqlite:///{workdir}/optuna.db")

    @property
    def checkpoint_dir(self) -> str:
        return self._store("train.checkpoint_dir", "{workdir}/checkpoints")

    def architecture(self, entry: str) -> str:
        """The registered model an entry of `models` builds: itself, or a variant's `model`."""
        return str(self.model_options.get(entry, {}).get("model", entry))

    def options_for(self, entry: str) -> dict[str, Any]:
        """The entry's model options, without the variant's `model` key."""
        return {k: v for k, v in self.model_options.get(entry, {}).items() if k != "model"}

    def training_spec(self, entry: str) -> TrainSpec:
        """The entry's training spec before tuning."""
        return TrainSpec(
            **vars(self.train),
            architecture=self.architecture(entry),
            options=self.options_for(entry),
        )


ENTRY_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
GATED_ALIASES = ("champion", "previous-champion")  # moved by `htl promote` alone
ALIAS = re.compile(r"[\w-]{1,255}")


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Read and validate a YAML config; relative workdir and stores resolve against the cwd.

    `overrides` are `dotted.key=value` strings (values parsed as YAML) applied on top, e.g.
    `data.rows=200000` or `seeds=[0,1,2]`; they are validated like the file itself.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return config_from_dict(apply_overrides(raw, overrides, str(path)), source=str(path))


def apply_overrides(raw: Any, overrides: Sequence[str], source: str) -> Any:
    """A copy of `raw` with each `dotted.key=value` set (the value parsed as YAML)."""
    out = copy.deepcopy(raw)
    if overrides and not isinstance(out, dict):
        raise ConfigError(f"{source}: the config must be a mapping to take overrides")
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{source}: override {item!r} is not of the form dotted.key=value")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: override {item!r}: value is not valid YAML") from exc
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            if node.get(part) is None:  # absent, or an empty `section:` in the YAML
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise ConfigError(f"{source}: override {item!r}: '{part}' is not a section")
        node[parts[-1]] = value
    return out


def deep_merge(base: Any, override: Any) -> Any:
    """`override` on top of `base`: mappings merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base.get(key), value)
        return merged
    return copy.deepcopy(override)


def config_from_dict(raw: Any, source: str = "<config>") -> ExperimentConfig:
    """Build and validate a config from plain data (YAML, or the pipeline's JSON parameter)."""
    config = parse(ExperimentConfig, raw, source=source)
    _validate(config, source)
    return dataclasses.replace(config, workdir=str(Path(config.workdir).resolve()))


def config_to_dict(config: ExperimentConfig) -> dict[str, Any]:
    """Plain JSON-able data that `config_from_dict` turns back into the same config.

    Unset optional values (None) are left out: pipeline parameters cannot carry nulls.
    """
    return _plain(dataclasses.asdict(config))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def parse(cls: type, raw: Any, where: str = "", source: str = "", finite: bool = True) -> Any:
    """A frozen dataclass from plain data: unknown keys get a did-you-mean, every value is
    checked against its type hint (ints become floats where a float is wanted; integral floats
    become ints, as a KFP parameter carries every number as a float). Errors name `where`."""
    if not isinstance(raw, dict):
        raise ConfigError(_at(source, f"'{where or 'config'}' must be a mapping, got {raw!r}"))
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            hint = did_you_mean(str(key), names, prefix=f"{where}." if where else "")
            raise ConfigError(
                _at(source, f"unknown key '{_join(where, key)}'{hint}; expected one of {names}")
            )
    values = {k: coerce(hints[k], v, _join(where, k), source, finite) for k, v in raw.items()}
    return cls(**values)


def _at(source: str, message: str) -> str:
    return f"{source}: {message}" if source else message


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else str(key)


def coerce(hint: Any, value: Any, where: str, source: str = "", finite: bool = True) -> Any:
    """`value` as the type `hint` names, or a ConfigError naming `where`; NaN and inf are
    refused unless `finite` is off (records, where an undefined metric is NaN)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Annotated:
        value = coerce(args[0], value, where, source, finite)
        for bound in args[1:]:
            if isinstance(bound, Range) and not bound.holds(value):
                raise ConfigError(_at(source, f"'{where}' must be {bound}, got {value!r}"))
        return value
    if dataclasses.is_dataclass(hint):
        return parse(hint, value, where, source, finite)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return coerce(inner, value, where, source, finite)
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(_at(source, f"'{where}' must be a list, got {value!r}"))
        variable = origin is list or args[-1] is Ellipsis  # list[X], tuple[X, ...]
        if not variable and len(value) != len(args):
            raise ConfigError(_at(source, f"'{where}' must have {len(args)} items, got {value!r}"))
        kinds = [args[0]] * len(value) if variable else args
        items = [
            coerce(k, v, f"{where}[{i}]", source, finite)
            for i, (k, v) in enumerate(zip(kinds, value, strict=True))
        ]
        return items if origin is list else tuple(items)
    if origin is dict:
        if value is None:  # an empty `section:` in YAML
            return {}
        if not isinstance(value, dict):
            raise ConfigError(_at(source, f"'{where}' must be a mapping, got {value!r}"))
        return {
            str(k): coerce(args[1], v, _join(where, k), source, finite) for k, v in value.items()
        }
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        if finite and not math.isfinite(value):
            raise ConfigError(_at(source, f"'{where}' must be a finite number, got {value!r}"))
        return float(value)
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if hint in (int, str, bool) and type(value) is hint:
        return value
    if hint is Any:
        return value
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(_at(source, f"'{where}' is {value!r}; expected one of {list(args)}"))
    raise ConfigError(
        _at(source, f"'{where}' must be {getattr(hint, '__name__', hint)}, got {value!r}")
    )


def _validate(config: ExperimentConfig, source: str) -> None:
    """Everything the schema alone can tell; `htl.checks.check` adds the model registry's."""
    if not config.models:
        raise ConfigError(f"{source}: 'models' is empty; expected at least one model name")
    for i, entry in enumerate(config.models):
        if not ENTRY_NAME.fullmatch(entry):
            raise ConfigError(
                f"{source}: 'models[{i}]' is {entry!r}; names are lower-case letters, digits, "
                "'_' and '-' (they name directories and MLflow runs)"
            )
    if len(set(config.models)) != len(config.models):
        raise ConfigError(f"{source}: 'models' lists a model twice: {list(config.models)}")
    for entry in config.model_options:
        if entry not in config.models:
            raise ConfigError(
                f"{source}: 'model_options.{entry}' names a model not in 'models' "
                f"{list(config.models)}"
            )
    for key, seeds in (("hpo.seeds", config.hpo.seeds), ("seeds", config.seeds)):
        if not seeds or len(set(seeds)) != len(seeds):
            raise ConfigError(
                f"{source}: '{key}' must be non-empty and distinct, got {list(seeds)}"
            )
    for name in ("register.model", "significance.reference"):
        section, key = name.split(".")
        value = getattr(getattr(config, section), key)
        if value not in config.models:
            raise ConfigError(
                f"{source}: '{name}' is {value!r}, which is not in 'models' {list(config.models)}"
            )
    alias = config.register.alias
    if not ALIAS.fullmatch(alias) or alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise ConfigError(
            f"{source}: 'register.alias' is {alias!r}; MLflow reserves 'latest' and 'v<number>' "
            "and allows letters, digits, '_' and '-' only"
        )
    if config.register.alias in GATED_ALIASES:
        raise ConfigError(
            f"{source}: 'register.alias' is {config.register.alias!r}; only `htl promote` moves "
            f"{' and '.join('@' + a for a in GATED_ALIASES)}, after its gate (use challenger)"
        )
    split = config.data.split
    if any(s <= 0 for s in split) or abs(sum(split) - 1.0) > 1e-6:
        raise ConfigError(
            f"{source}: 'data.split' must be three positive fractions summing to 1, "
            f"got {list(split)}"
        )
    _validate_data(config.data, source)
    if config.data.core_transform != "none" and config.train.core_loss != "mse":
        raise ConfigError(
            f"{source}: 'data.core_transform' {config.data.core_transform} needs "
            "'train.core_loss' mse "
            f"(ZILN models the raw amounts), got {config.train.core_loss!r}"
        )


def _validate_data(data: DataConfig, source: str) -> None:
    """What each source needs: a path for real data, declared columns for `events`."""
    if data.source != "synthetic" and not data.path:
        raise ConfigError(
            f"{source}: 'data.source' {data.source!r} reads files: set 'data.path' to a local "
            "path or a gs:// URI"
        )
    if data.source == "events":
        e = data.events
        if not e.chain or not e.core:
            raise ConfigError(
                f"{source}: 'data.events' must declare 'chain' (the binary steps, in order) and "
                f"'core' (the continuous target); got chain={list(e.chain)}, core={e.core!r}"
            )
        if not e.categorical and not e.numeric:
            raise ConfigError(
                f"{source}: 'data.events' declares no features; list 'categorical' and/or "
                "'numeric' columns"
            )
        columns = [*e.categorical, *e.numeric, *e.chain, e.core, *([e.time] if e.time else [])]
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise ConfigError(
                f"{source}: 'data.events' gives columns more than one role: {repeated}"
            )
    s = data.shoppers
    if s.cohort is not None:
        import datetime

        try:
            start, end = (datetime.date.fromisoformat(d) for d in s.cohort)
        except ValueError as exc:
            raise ConfigError(
                f"{source}: 'data.shoppers.cohort' must be two ISO dates [from, to), "
                f"got {list(s.cohort)}"
            ) from exc
        if start >= end:
            raise ConfigError(f"{source}: 'data.shoppers.cohort' is empty: {list(s.cohort)}")
