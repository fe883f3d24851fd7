"""Models by name: configs and the pipeline refer to names only."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence
from typing import Any

from htl.models.adatt import AdaTT
from htl.models.aitm import AITM
from htl.models.base import DEFAULT_TOWER, MultiTaskModel
from htl.models.dnn import DNN
from htl.models.esmm import ESMM
from htl.models.htlnet import HTLNet
from htl.models.mmoe import MMoE
from htl.models.ple import PLE
from htl.models.shared_bottom import MetaBalanceSharedBottom, SharedBottom
from htl.tasks import TaskSpec

MODEL_BUILDERS: dict[str, type[MultiTaskModel]] = {
    "htlnet": HTLNet,
    "dnn": DNN,
    "shared_bottom": SharedBottom,
    "mmoe": MMoE,
    "ple": PLE,
    "adatt": AdaTT,
    "esmm": ESMM,
    "aitm": AITM,
    "metabalance": MetaBalanceSharedBottom,  # Table 2's "MB": MetaBalance on Shared-Bottom
}


def model_class(name: str) -> type[MultiTaskModel]:
    try:
        return MODEL_BUILDERS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(MODEL_BUILDERS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ValueError(f"unknown model '{name}'{hint}; known: {sorted(MODEL_BUILDERS)}") from None


def make_options(name: str, options: dict[str, Any] | None) -> Any:
    """The model's frozen options dataclass from plain data; unknown keys are errors."""
    cls = model_class(name).Options
    allowed = [f.name for f in dataclasses.fields(cls)]
    for key in options or {}:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(
                f"unknown option '{key}' for model '{name}'{hint}; expected one of {allowed}"
            )
    types = {f.name: f.type for f in dataclasses.fields(cls)}
    coerced = {
        k: float(v) if types[k] == "float" and isinstance(v, int) else v
        for k, v in (options or {}).items()
    }
    return cls(**coerced)


def validate_model_options(name: str, options: dict[str, Any] | None) -> Any:
    """The model's options, checked against what the model can do; raises ValueError."""
    cls = model_class(name)
    o = make_options(name, options)
    if o.gradient != "none" and not cls.shares_parameters:
        raise ValueError(
            f"model '{name}' shares no parameters, so gradient '{o.gradient}' "
            "has nothing to act on; use gradient: none"
        )
    if o.gradient == "htl" and o.gradient_space == "output" and not cls.has_single_backward():
        raise ValueError(
            f"gradient_space 'output' needs HTLNet's single-backward path, not '{name}'"
        )
    return o


def build_model(
    name: str,
    cardinalities: Sequence[int],
    embed_dim: int,
    tasks: TaskSpec,
    options: dict[str, Any] | None = None,
    tower_dims: Sequence[int] = DEFAULT_TOWER,
) -> MultiTaskModel:
    """Construct a registered model with the uniform constructor."""
    options = validate_model_options(name, options)
    return model_class(name)(cardinalities, embed_dim, tasks, tower_dims, options)
