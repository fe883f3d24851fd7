"""The checks a config needs the registries for: model names, each entry's options, the keys
`hpo.fixed` names and the metrics `promote.thresholds` bound. The CLI runs them after loading
a file and the pipeline's first task on its parameter, so a bad entry stops before any work."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

from htl.config import ConfigError, ExperimentConfig, load_config
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
