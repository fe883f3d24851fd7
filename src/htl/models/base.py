"""The model contract: uniform constructor, `forward(x, scale) -> {task: raw output}`, shared
parameters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from htl.gradients import SharedCut
from htl.tasks import TaskSpec

DEFAULT_TOWER = (128, 64, 32)
Outputs = dict[str, torch.Tensor]  # {task: raw output}, what every model's forward returns


@dataclass(frozen=True)
class ModelOptions:
    """Base of a model's architecture options (a frozen dataclass per model); range checks go
    in `__post_init__` as ValueError naming the option."""


class MultiTaskModel(nn.Module):
    """Base of every model. Subclasses set `Options` and implement `forward`."""

    Options: type = ModelOptions
    shares_parameters: bool = True  # False where `shared_parameters()` is empty (DNN)
    #: HPO's grid per option of this model (Table 6); the training keys are searched for all.
    search_space: ClassVar[dict[str, list[Any]]] = {}

    @classmethod
    def searched(cls, options: ModelOptions) -> dict[str, list[Any]]:
        """The grids HPO searches for these options (default: all of `search_space`)."""
        return cls.search_space

    def __init__(
        self,
        cardinalities: Sequence[int],
        embed_dim: int,
        tasks: TaskSpec,
        tower_dims: Sequence[int] = DEFAULT_TOWER,
        options: object | None = None,
    ) -> None:
        super().__init__()
        self.cardinalities = list(cardinalities)
        self.embed_dim = embed_dim
        self.tasks = tasks
        self.tower_dims = tuple(tower_dims)
        self.options = options if options is not None else self.Options()
        if not isinstance(self.options, self.Options):
            raise TypeError(
                f"{type(self).__name__} takes {self.Options.__name__}, got {self.options!r}"
            )

    def shared_parameters(self) -> list[nn.Parameter]:
        """θ_s: the parameters every task's loss reaches (the gradient strategy works on these)."""
        return []

    def forward_train(
        self, x: torch.Tensor, scale: torch.Tensor | None = None
    ) -> tuple[dict[str, torch.Tensor], SharedCut | None]:
        """Training forward: outputs, plus a `SharedCut` when the model supports the
        single-backward gradient path (HTLNet with stop-gradients). The engine calls it only
        for a strategy that uses the cut; otherwise it calls `forward`."""
        return self(x, scale), None

    @classmethod
    def has_single_backward(cls) -> bool:
        """Whether `forward_train` can return a `SharedCut` (it is overridden for that)."""
        return cls.forward_train is not MultiTaskModel.forward_train

    def auxiliary_losses(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Model-specific loss terms, keyed by the task whose loss they join (AITM's constraint)."""
        return {}

    def on_train_step(self, step: int, total_steps: int) -> None:
        """Called by the engine before each optimiser step `step` (0-based) of the run's
        `total_steps` (epochs × batches; schedules such as HTLNet's τ)."""

    def diagnostics(self, preds: dict[str, torch.Tensor]) -> dict[str, float]:
        """Model-specific numbers the engine logs every epoch beside the validation metrics,
        from the validation predictions (HTLNet: the spread of its LEU label probabilities)."""
        return {}

    def forward(
        self, x: torch.Tensor, scale: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        """{task: raw output} for int field indices x [B, m]; `scale` [B, m] multiplies each
        field's embedding (the values of dense numeric fields, 1 elsewhere)."""
        raise NotImplementedError
