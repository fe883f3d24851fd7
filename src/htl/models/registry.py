"""Models by name: configs and the pipeline refer to names only.

A registration is a model class plus the gradient strategy it trains with by default;
`metabalance` is Shared-Bottom with the MetaBalance strategy, not a class of its own. An
entry's options (as written under `model_options.<entry>`) split into the model's own options
and the strategy's (`htl.gradients.GradientOptions`), both typed and checked here.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from htl.config import TRAIN_SEARCH_SPACE, coerce
from htl.errors import did_you_mean
from htl.gradients import SEARCH_SPACES, GradientOptions, GradientStrategy, strategy_for
from htl.models.adatt import AdaTT
from htl.models.aitm import AITM
from htl.models.base import DEFAULT_TOWER, ModelOptions, MultiTaskModel
from htl.models.dnn import DNN
from htl.models.esmm import ESMM
from htl.models.htlnet import HTLNet
from htl.models.mmoe import MMoE
from htl.models.ple import PLE
from htl.models.shared_bottom import SharedBottom
from htl.tasks import TaskSpec


@dataclass(frozen=True)
class Registration:
    model: type[MultiTaskModel]
    gradient: str = "none"  # the strategy unless the entry's options name another


MODELS: dict[str, Registration] = {
    "htlnet": Registration(HTLNet, gradient="htl"),
    "dnn": Registration(DNN),
    "shared_bottom": Registration(SharedBottom),
    "mmoe": Registration(MMoE),
    "ple": Registration(PLE),
    "adatt": Registration(AdaTT),
    "esmm": Registration(ESMM),
    "aitm": Registration(AITM),
    "metabalance": Registration(SharedBottom, gradient="metabalance"),  # Table 2's "MB"
}


@dataclass(frozen=True)
class Recipe:
    """A registered model with an entry's options resolved: what to build, how to train it."""

    name: str
    model_class: type[MultiTaskModel]
    options: ModelOptions
    gradient: GradientOptions

    def build(
        self,
        cardinalities: Sequence[int],
        embed_dim: int,
        tasks: TaskSpec,
        tower_dims: Sequence[int] = DEFAULT_TOWER,
    ) -> MultiTaskModel:
        return self.model_class(cardinalities, embed_dim, tasks, tower_dims, self.options)

    def strategy(self) -> GradientStrategy:
        return strategy_for(self.gradient)

    def search_space(self) -> dict[str, list[Any]]:
        """The model's grids, then its strategy's (the training keys are not included)."""
        own = self.model_class.searched(self.options)
        return {**own, **SEARCH_SPACES.get(self.gradient.gradient, {})}


def registration(name: str) -> Registration:
    try:
        return MODELS[name]
    except KeyError:
        hint = did_you_mean(name, MODELS)
        raise ValueError(f"unknown model '{name}'{hint}; known: {sorted(MODELS)}") from None


def resolve(name: str, options: dict[str, Any] | None = None) -> Recipe:
    """Split and type an entry's options; raises ValueError naming the option at fault."""
    reg = registration(name)
    model_fields = [f.name for f in dataclasses.fields(reg.model.Options)]
    gradient_fields = [f.name for f in dataclasses.fields(GradientOptions)]
    allowed = [*model_fields, *gradient_fields]
    for key in options or {}:
        if key not in allowed:
            raise ValueError(
                f"unknown option '{key}' for model '{name}'{did_you_mean(key, allowed)}; "
                f"expected one of {allowed}"
            )
    raw = {"gradient": reg.gradient, **(options or {})}
    model_options = _typed(reg.model.Options, {k: raw[k] for k in model_fields if k in raw})
    gradient = _typed(GradientOptions, {k: raw[k] for k in gradient_fields if k in raw})
    if gradient.gradient != "none" and not reg.model.shares_parameters:
        raise ValueError(
            f"model '{name}' shares no parameters, so gradient '{gradient.gradient}' "
            "has nothing to act on; use gradient: none"
        )
    output_space = gradient.gradient == "htl" and gradient.gradient_space == "output"
    if output_space and not reg.model.has_single_backward():
        raise ValueError(
            f"gradient_space 'output' needs HTLNet's single-backward path, not '{name}'"
        )
    return Recipe(name, reg.model, model_options, gradient)


def _typed(cls: type, raw: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls, include_extras=True)
    return cls(**{k: coerce(hints[k], v, k) for k, v in raw.items()})


def build_model(
    name: str,
    cardinalities: Sequence[int],
    embed_dim: int,
    tasks: TaskSpec,
    options: dict[str, Any] | None = None,
    tower_dims: Sequence[int] = DEFAULT_TOWER,
) -> MultiTaskModel:
    """Construct a registered model with the uniform constructor."""
    return resolve(name, options).build(cardinalities, embed_dim, tasks, tower_dims)


def tunable_keys() -> set[str]:
    """Every key some search space tunes (what `hpo.fixed` may name)."""
    spaces = [TRAIN_SEARCH_SPACE, *SEARCH_SPACES.values()]
    spaces += [reg.model.search_space for reg in MODELS.values()]
    return {k for space in spaces for k in space}
