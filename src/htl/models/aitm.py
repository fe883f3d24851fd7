"""AITM (Xi et al., KDD'21) on the hybrid chain, after the official `AITM_standard.py`.

Each task has a tower [128, 64, 32] giving q_t. For t ≥ 1 the transfer p_{t−1} =
ReLU(Dense(32)(ait_{t−1})) carries the previous task's attention output, and
ait_t = Attention([q_t, p_{t−1}]); ait_0 = q_0. Attention: Q, K, V are bias-free K×K maps
(shared by all tasks by default), each item scores itself, softmax over the two items. The
head is Dense(1) on ait_t (3 outputs for a ZILN core). No stop-gradient. The label constraint
λ·mean_b Σ max(ŷ_t − ŷ_{t−1}, 0) applies between consecutive binary tasks (model-spec §2.6);
it is added to the later task's loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn

from htl.config import NON_NEGATIVE
from htl.models.base import ModelOptions, MultiTaskModel, Outputs
from htl.models.layers import FusedEmbedding, head, mlp, squeeze_head


@dataclass(frozen=True)
class AITMOptions(ModelOptions):
    constraint_weight: Annotated[float, NON_NEGATIVE] = 0.6  # λ of AITM.py (AITM_standard: 0.3)
    share_attention: bool = True


class SelfScoredAttention(nn.Module):
    """out = Σ_i softmax_i(⟨Q q_i, K q_i⟩ / √k) · V q_i over the items (dim 1)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.q, self.k, self.v = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        for layer in (self.q, self.k, self.v):
            nn.init.xavier_uniform_(layer.weight)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        scores = (self.q(items) * self.k(items)).sum(-1) / math.sqrt(self.dim)
        return (torch.softmax(scores, dim=1).unsqueeze(-1) * self.v(items)).sum(1)


class AITM(MultiTaskModel):
    Options = AITMOptions

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        o: AITMOptions = self.options
        dim = self.tower_dims[-1]
        n = len(self.tasks.names)
        self.embedding = FusedEmbedding(self.cardinalities, self.embed_dim)
        self.towers = nn.ModuleList(
            mlp(self.embedding.output_dim, self.tower_dims) for _ in range(n)
        )
        self.transfers = nn.ModuleList(mlp(dim, [dim]) for _ in range(n - 1))
        self.attentions = nn.ModuleList(
            SelfScoredAttention(dim) for _ in range(1 if o.share_attention else n - 1)
        )
        self.heads = nn.ModuleList(
            head(dim, self.tasks.core_outputs if m == self.tasks.core else 1)
            for m in self.tasks.names
        )

    def shared_parameters(self) -> list[nn.Parameter]:
        return [self.embedding.weight]

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> Outputs:
        e = self.embedding(x, scale)
        out: dict[str, torch.Tensor] = {}
        ait = None
        for t, name in enumerate(self.tasks.names):
            q = self.towers[t](e)
            if t == 0:
                ait = q
            else:
                attention = self.attentions[0 if self.options.share_attention else t - 1]
                ait = attention(torch.stack([q, self.transfers[t - 1](ait)], 1))
            out[name] = squeeze_head(self.heads[t](ait))
        return out

    def auxiliary_losses(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """λ·mean(max(ŷ_t − ŷ_{t−1}, 0)) for each consecutive pair of binary tasks, on task t."""
        chain, weight = self.tasks.chain, self.options.constraint_weight
        probs = [torch.sigmoid(outputs[name]) for name in chain]
        return {
            chain[t]: weight * torch.relu(probs[t] - probs[t - 1]).mean()
            for t in range(1, len(chain))
        }
