"""DNN: one full single-task model per task (own embedding, own MLP); nothing is shared."""

from __future__ import annotations

import torch
from torch import nn

from htl.models.base import MultiTaskModel
from htl.models.layers import FusedEmbedding, head, mlp, squeeze_head


class DNN(MultiTaskModel):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.embeddings = nn.ModuleList()
        self.towers = nn.ModuleList()
        self.heads = nn.ModuleList()
        for name in self.tasks.names:
            embedding = FusedEmbedding(self.cardinalities, self.embed_dim)
            self.embeddings.append(embedding)
            self.towers.append(mlp(embedding.output_dim, self.tower_dims))
            width = self.tasks.core_outputs if name == self.tasks.core else 1
            self.heads.append(head(self.tower_dims[-1], width))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            name: squeeze_head(h(tower(emb(x))))
            for name, emb, tower, h in zip(
                self.tasks.names, self.embeddings, self.towers, self.heads, strict=False
            )
        }
