"""AdaTT (Li et al., KDD'23), after the official `mtl_lib.py` (model-spec §2.4).

`variant: sp` (AdaTT-sp, the default): each level has T·m task experts, expert i reading its
own task's input; task k's gate (linear + softmax on its own input) mixes **all** tasks'
experts, and its own experts are added back as a residual (weight 1 when m = 1, free weights
otherwise). `variant: general` (AdaTT with shared experts) adds a shared module whose experts
read the shared input; gates mix task and shared experts, the shared module has its own gate
at every level but the last, and the residual is +1 on a module's own expert weight when every
module has one expert (free weights otherwise). Defaults (§2.8): 2 levels [128], [64], m = 1,
towers [32].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from torch import nn

from htl.config import AT_LEAST_1
from htl.models.base import ModelOptions, MultiTaskModel, Outputs
from htl.models.layers import FusedEmbedding, TaskTowers, gate, mlp


@dataclass(frozen=True)
class AdaTTOptions(ModelOptions):
    variant: Literal["sp", "general"] = "sp"
    levels: Annotated[int, AT_LEAST_1] = 2
    task_experts: Annotated[int, AT_LEAST_1] = 1  # m, per task and level
    shared_experts: Annotated[int, AT_LEAST_1] = 1  # general variant only


class FusionLevel(nn.Module):
    """[B, M, d_in] module inputs -> [B, M', d_out]; M = T (sp) or T+1 (general, shared last)."""

    def __init__(
        self, tasks: int, m: int, shared: int, width: int, dim: int, general: bool, last: bool
    ):
        super().__init__()
        self.tasks, self.m, self.shared = tasks, m, (shared if general else 0)
        self.general, self.last = general, last
        n_experts = tasks * m + self.shared
        self.experts = nn.ModuleList(mlp(width, [dim]) for _ in range(n_experts))
        gated = tasks + (1 if general and not last else 0)
        self.gates = nn.ModuleList(gate(width, n_experts) for _ in range(gated))
        own = max(m, self.shared)
        self.unit_residual = m == 1 and (not general or self.shared == 1)
        bound = math.sqrt(1.0 / own)
        self.self_weights = (
            None
            if self.unit_residual
            else nn.Parameter(torch.empty(gated, own).uniform_(-bound, bound))
        )

    def owners(self) -> list[int]:
        """Which module each expert belongs to (shared experts: module T)."""
        return [i // self.m for i in range(self.tasks * self.m)] + [self.tasks] * self.shared

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        owners = self.owners()
        experts = torch.stack(
            [e(inputs[:, o]) for e, o in zip(self.experts, owners, strict=True)], 1
        )
        gates = torch.stack(
            [torch.softmax(g(inputs[:, k]), dim=-1) for k, g in enumerate(self.gates)], 1
        )  # [B, modules, experts]
        fused = torch.bmm(gates, experts)  # [B, modules, d]
        for k in range(len(self.gates)):
            mine = [i for i, o in enumerate(owners) if o == k]
            if self.unit_residual:
                fused[:, k] = fused[:, k] + experts[:, mine[0]]
            else:
                weights = self.self_weights[k, : len(mine)]
                fused[:, k] = fused[:, k] + torch.einsum("e,bed->bd", weights, experts[:, mine])
        return fused, gates


class AdaTT(MultiTaskModel):
    Options = AdaTTOptions

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        o: AdaTTOptions = self.options
        if o.levels >= len(self.tower_dims):
            raise ValueError(f"levels={o.levels} leaves no tower layer of {self.tower_dims}")
        self.embedding = FusedEmbedding(self.cardinalities, self.embed_dim)
        general = o.variant == "general"
        n = len(self.tasks.names)
        widths = [self.embedding.output_dim, *self.tower_dims[: o.levels]]
        last = o.levels - 1
        self.levels = nn.ModuleList(
            FusionLevel(n, o.task_experts, o.shared_experts, *widths[i : i + 2], general, i == last)
            for i in range(o.levels)
        )
        self.modules_in = n + (1 if general else 0)
        self.task_towers = TaskTowers(self.tasks, widths[-1], self.tower_dims[o.levels :])

    def shared_parameters(self) -> list[nn.Parameter]:
        return [self.embedding.weight, *self.levels.parameters()]

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> Outputs:
        e = self.embedding(x, scale)
        h = e.unsqueeze(1).expand(-1, self.modules_in, -1)  # [B, modules, m*D]
        for level in self.levels:
            h, _ = level(h)
        return self.task_towers(h.unbind(1)[: len(self.tasks.names)])
