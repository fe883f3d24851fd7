"""MMoE (Ma et al., KDD'18): E expert MLPs on the embedding, one softmax gate per task.

Gates are linear + softmax on the raw embedding (the paper's form); expert outputs are mixed
per task and fed to that task's tower. Defaults from model-spec §2.8: 8 experts of [128, 64],
towers [32].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn

from htl.config import AT_LEAST_1
from htl.models.base import ModelOptions, MultiTaskModel, Outputs
from htl.models.layers import FusedEmbedding, TaskTowers, gate, mlp


@dataclass(frozen=True)
class MMoEOptions(ModelOptions):
    experts: Annotated[int, AT_LEAST_1] = 8
    expert_layers: Annotated[int, AT_LEAST_1] = 2  # of tower_dims: [128, 64] | [32]


class MMoE(MultiTaskModel):
    Options = MMoEOptions
    search_space = {"experts": [4, 8]}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        o: MMoEOptions = self.options
        split = o.expert_layers
        if split >= len(self.tower_dims):
            raise ValueError(f"expert_layers={split} leaves no tower layer of {self.tower_dims}")
        self.embedding = FusedEmbedding(self.cardinalities, self.embed_dim)
        width = self.embedding.output_dim
        self.experts = nn.ModuleList(mlp(width, self.tower_dims[:split]) for _ in range(o.experts))
        self.gates = nn.ModuleList(gate(width, o.experts) for _ in self.tasks.names)
        self.task_towers = TaskTowers(
            self.tasks, self.tower_dims[split - 1], self.tower_dims[split:]
        )

    def shared_parameters(self) -> list[nn.Parameter]:
        return [self.embedding.weight, *self.experts.parameters()]

    def gate_weights(self, e: torch.Tensor) -> torch.Tensor:
        """[B, T+1, E]: each task's softmax over the experts."""
        return torch.stack([torch.softmax(g(e), dim=-1) for g in self.gates], 1)

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> Outputs:
        e = self.embedding(x, scale)
        experts = torch.stack([expert(e) for expert in self.experts], 1)  # [B, E, d]
        mixed = torch.bmm(self.gate_weights(e), experts)  # [B, T+1, d]
        return self.task_towers(mixed.unbind(1))
