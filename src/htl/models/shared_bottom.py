"""Shared-Bottom (Caruana 1997): embedding -> shared MLP -> per-task tower -> head."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn

from htl.config import AT_LEAST_1
from htl.models.base import ModelOptions, MultiTaskModel, Outputs
from htl.models.layers import FusedEmbedding, TaskTowers, mlp


@dataclass(frozen=True)
class SharedBottomOptions(ModelOptions):
    """How many of the tower's hidden layers are shared (model-spec §2.8: [128, 64] | [32]).

    With `gradient: htl` this is the paper's "HTLNet w/o Architecture": Algorithm 1 on
    θ_s = embedding + bottom (model-spec A9), by the T+1-pass reference path; with
    `gradient: metabalance` (the registered `metabalance`) Table 2's "MB".
    """

    bottom_layers: Annotated[int, AT_LEAST_1] = 2


class SharedBottom(MultiTaskModel):
    Options = SharedBottomOptions

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        split = self.options.bottom_layers
        if split >= len(self.tower_dims):
            raise ValueError(f"bottom_layers={split} leaves no tower layer of {self.tower_dims}")
        self.embedding = FusedEmbedding(self.cardinalities, self.embed_dim)
        self.bottom = mlp(self.embedding.output_dim, self.tower_dims[:split])
        self.task_towers = TaskTowers(
            self.tasks, self.tower_dims[split - 1], self.tower_dims[split:]
        )

    def shared_parameters(self) -> list[nn.Parameter]:
        return [self.embedding.weight, *self.bottom.parameters()]

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> Outputs:
        shared = self.bottom(self.embedding(x, scale))
        return self.task_towers([shared] * len(self.tasks.names))
