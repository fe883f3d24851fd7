"""The checks a config needs the registries for: model names, each entry's options, the keys
`hpo.fixed` names and the metrics `promote.thresholds` bound. The CLI runs them after loading
a file and the pipeline's first task on its parameter, so a bad entry stops before any work."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path
from typing import Any

from htl.config import STORE_ENV, ConfigError, ExperimentConfig, load_config
from htl.errors import did_you_mean
from htl.metrics import METRICS
from htl.models.registry import MODELS, resolve, tunable_keys


def check(config: ExperimentConfig, source: str = "<config>") -> ExperimentConfig:
    """Raise one ConfigError naming `source` and the key at fault; return the config."""
    known = sorted(MODELS)
    for i, entry in enumerate(config.models):
        architecture = config.architecture(entry)
        if architecture not in MODELS:
            where = (
                f"'model_options.{entry}.model: {architecture}'"
                if architecture != entry
                else f"'models[{i}]: {entry}'"
            )
            raise ConfigError(
                f"{source}: unknown model {where}{did_you_mean(architecture, known)}; "
                f"known: {known} (a variant names its model under 'model_options.<name>.model')"
            )
        try:
            resolve(architecture, config.options_for(entry))
        except ValueError as exc:  # ConfigError included: a mistyped option value
            raise ConfigError(f"{source}: 'model_options.{entry}': {exc}") from exc
    for key in config.promote.thresholds:
        task, _, metric = key.rpartition("/")
        directional = [m.name for m in METRICS if m.higher_is_better is not None]
        if not task or metric not in directional:
            raise ConfigError(
                f"{source}: 'promote.thresholds.{key}' is not '<task>/<metric>' with a metric "
                f"of {directional}{did_you_mean(metric, directional)}"
            )
    if config.train.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                f"{source}: 'train.device' is 'cuda' but this machine has no CUDA device; "
                "use auto (CUDA when present) or cpu"
            )
    tunable = tunable_keys()
    unknown = [k for k in config.hpo.fixed if k not in tunable]
    if unknown:
        raise ConfigError(
            f"{source}: 'hpo.fixed' names {unknown}, which are not tuned; "
            f"tunable: {sorted(tunable)}"
        )
    return config


def check_tracking_reachable(config: ExperimentConfig, source: str = "<config>") -> None:
    """A tracking server that does not answer stops a run before its first step."""
    uri = config.tracking_uri
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=10) as response:
            if response.status == 200:
                return
            problem = f"HTTP {response.status}"
    except OSError as exc:  # URLError, timeouts, refused connections
        problem = str(getattr(exc, "reason", exc))
    raise ConfigError(f"{source}: 'tracking.uri' {uri} does not answer ({problem})")


def load_checked(path: str | Path, overrides: Any = ()) -> ExperimentConfig:
    """`load_config` plus `check`: what the CLI runs before any step."""
    return check(load_config(path, overrides), str(path))


LOOPBACK = ("localhost", "127.", "0.0.0.0", "[::1]")


def cluster_stores(config: ExperimentConfig) -> dict[str, str]:
    """The shared stores a cluster run needs, by config key: the config's value, else its
    environment variable's (STORE_ENV), else "" (then the pods must get it elsewhere)."""
    stores = {"tracking.uri": config.tracking.uri}
    if config.hpo.trials > 0:
        stores["hpo.storage"] = config.hpo.storage
    return {k: v or os.environ.get(STORE_ENV[k], "") for k, v in stores.items()}


def cluster_problems(config: ExperimentConfig) -> list[str]:
    """What stops this config from running on a cluster, where every task is its own pod:
    each store must be a service every pod reaches (not a file of one machine, not loopback),
    set in the config, in its environment variable, or by `cluster.env_secret`; data must be
    reachable from a pod."""
    problems = []
    for key, value in cluster_stores(config).items():
        env = STORE_ENV[key]
        service = (
            "an MLflow tracking server" if key == "tracking.uri" else "a PostgreSQL or MySQL URL"
        )
        if not value:
            if not config.cluster.env_secret:
                problems.append(
                    f"'{key}' is not set; set it (or {env}) to {service}, or name a Kubernetes "
                    f"secret holding {env} in 'cluster.env_secret'"
                )
        elif value.startswith(("sqlite:", "file:")) or "://" not in value:
            problems.append(
                f"'{key}' is {value!r}, a file of one machine; every pod needs {service}"
            )
        elif value.partition("://")[2].rpartition("@")[2].startswith(LOOPBACK):
            problems.append(f"'{key}' is {value!r}: a loopback address, unreachable from a pod")
    data = config.data
    if data.source != "synthetic" and data.path and not data.path.startswith("gs://"):
        problems.append(f"'data.path' is {data.path!r}, a local path; use a gs:// URI")
    root = config.cluster.pipeline_root
    if root and "://" not in root:
        problems.append(f"'cluster.pipeline_root' is {root!r}, a local path; use a gs:// URI")
    return problems


def check_cluster(config: ExperimentConfig, source: str = "<config>") -> ExperimentConfig:
    """Raise one ConfigError listing every cluster problem of `config`; return it."""
    problems = cluster_problems(config)
    if problems:
        listed = "".join(f"\n  - {p}" for p in problems)
        raise ConfigError(f"{source}: cannot run on a cluster:{listed}")
    return config
