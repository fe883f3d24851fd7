"""DNN: one full single-task model per task (own embedding, own MLP); nothing is shared."""

from __future__ import annotations

import torch
from torch import nn

from htl.models.base import MultiTaskModel, Outputs
from htl.models.layers import FusedEmbedding, TaskTowers


class DNN(MultiTaskModel):
    shares_parameters = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.embeddings = nn.ModuleList(
            FusedEmbedding(self.cardinalities, self.embed_dim) for _ in self.tasks.names
        )
        self.task_towers = TaskTowers(self.tasks, self.embeddings[0].output_dim, self.tower_dims)

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> Outputs:
        return self.task_towers([embedding(x, scale) for embedding in self.embeddings])
