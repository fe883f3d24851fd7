"""The checks a config needs the model registry for: model names, each entry's options and
the keys `hpo.fixed` names. The CLI runs them after loading a file and the pipeline's first
task runs them on its parameter, so a bad entry stops before any work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from htl.config import ConfigError, ExperimentConfig, load_config
from htl.errors import did_you_mean
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
    tunable = tunable_keys()
    unknown = [k for k in config.hpo.fixed if k not in tunable]
    if unknown:
        raise ConfigError(
            f"{source}: 'hpo.fixed' names {unknown}, which are not tuned; "
            f"tunable: {sorted(tunable)}"
        )
    return config


def load_checked(path: str | Path, overrides: Any = ()) -> ExperimentConfig:
    """`load_config` plus `check`: what the CLI runs before any step."""
    return check(load_config(path, overrides), str(path))
