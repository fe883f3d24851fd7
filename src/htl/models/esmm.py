"""ESMM (Ma et al., SIGIR'18) extended to the hybrid chain (model-spec §2.5).

Towers over a shared embedding; every output is an entire-space quantity: ŷ¹ = σ(z₁),
ŷᵗ = ŷᵗ⁻¹·σ(zₜ), and the core ŷ = ŷᵀ·g(z_core) with g the identity (default) or softplus.
All are supervised with the entire-space labels. Binary outputs are returned as the logits of
those product probabilities (computed in log space), so the shared BCE-with-logits loss
applies; a ZILN core has its P(y > 0) logit chained the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from htl.models.base import ModelOptions, MultiTaskModel, Outputs
from htl.models.layers import FusedEmbedding, TaskTowers

LOG_P_MAX = -1e-7  # keeps logit(p) finite as p -> 1


@dataclass(frozen=True)
class ESMMOptions(ModelOptions):
    core_activation: Literal["identity", "softplus"] = "identity"  # g, the conditional core


def logit_from_log_prob(log_p: torch.Tensor) -> torch.Tensor:
    """logit(p) = log p − log(1 − p), stable for log p close to 0."""
    log_p = log_p.clamp(max=LOG_P_MAX)
    return log_p - torch.log(-torch.expm1(log_p))


class ESMM(MultiTaskModel):
    Options = ESMMOptions

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.embedding = FusedEmbedding(self.cardinalities, self.embed_dim)
        self.task_towers = TaskTowers(self.tasks, self.embedding.output_dim, self.tower_dims)

    def shared_parameters(self) -> list[nn.Parameter]:
        return [self.embedding.weight]

    def conditional_logits(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> Outputs:
        """Each tower's own output: z_t (P(step t | step t−1)) and the core's raw output."""
        e = self.embedding(x, scale)
        return self.task_towers([e] * len(self.tasks.names))

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> Outputs:
        z = self.conditional_logits(x, scale)
        out: dict[str, torch.Tensor] = {}
        log_p = torch.zeros_like(z[self.tasks.chain[0]])
        for name in self.tasks.chain:
            log_p = log_p + F.logsigmoid(z[name])
            out[name] = logit_from_log_prob(log_p)
        core = z[self.tasks.core]
        if self.tasks.core_loss == "ziln":
            p_logit = logit_from_log_prob(log_p + F.logsigmoid(core[:, 0]))
            out[self.tasks.core] = torch.cat([p_logit.unsqueeze(1), core[:, 1:]], 1)
        else:
            value = F.softplus(core) if self.options.core_activation == "softplus" else core
            out[self.tasks.core] = torch.exp(log_p) * value
        return out
