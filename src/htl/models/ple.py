"""PLE (Tang et al., RecSys'20): stacked CGC levels of task-specific and shared experts.

Task k's gate mixes its own experts and the shared ones, reading task k's input; every level
but the last also has a shared gate over **all** experts of the level, reading the shared
input, whose output is the next level's shared input (model-spec §2.3). Level 1's inputs are
all the embedding. Defaults (§2.8): 2 levels with experts [128] then [64], 1 specific and 1
shared expert per level, towers [32]. One level is CGC.
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
class PLEOptions(ModelOptions):
    levels: Annotated[int, AT_LEAST_1] = 2  # each takes one of tower_dims; the rest: towers
    specific_experts: Annotated[int, AT_LEAST_1] = 1
    shared_experts: Annotated[int, AT_LEAST_1] = 1


class CGCLevel(nn.Module):
    """One extraction level: [B, T+1, d_in] task inputs + [B, d_in] shared input."""

    def __init__(self, tasks: int, width: int, dim: int, specific: int, shared: int, last: bool):
        super().__init__()
        self.tasks, self.specific, self.last = tasks, specific, last
        self.task_experts = nn.ModuleList(mlp(width, [dim]) for _ in range(tasks * specific))
        self.shared_experts = nn.ModuleList(mlp(width, [dim]) for _ in range(shared))
        self.task_gates = nn.ModuleList(gate(width, specific + shared) for _ in range(tasks))
        n_all = tasks * specific + shared
        self.shared_gate = None if last else gate(width, n_all)

    def forward(
        self, task_inputs: list[torch.Tensor], shared_input: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor | None, list[torch.Tensor]]:
        """Returns the task outputs, the next shared input (None at the last level) and the
        gate weights (for tests and inspection)."""
        shared = [expert(shared_input) for expert in self.shared_experts]
        own = [
            [self.task_experts[k * self.specific + j](task_inputs[k]) for j in range(self.specific)]
            for k in range(self.tasks)
        ]
        outputs, gates = [], []
        for k in range(self.tasks):
            weights = torch.softmax(self.task_gates[k](task_inputs[k]), dim=-1)  # [B, s + sh]
            experts = torch.stack([*own[k], *shared], 1)  # [B, s + sh, d]
            outputs.append(torch.bmm(weights.unsqueeze(1), experts).squeeze(1))
            gates.append(weights)
        next_shared = None
        if self.shared_gate is not None:
            weights = torch.softmax(self.shared_gate(shared_input), dim=-1)  # [B, T*s + sh]
            experts = torch.stack([e for group in own for e in group] + shared, 1)
            next_shared = torch.bmm(weights.unsqueeze(1), experts).squeeze(1)
            gates.append(weights)
        return outputs, next_shared, gates


class PLE(MultiTaskModel):
    Options = PLEOptions

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        o: PLEOptions = self.options
        if o.levels >= len(self.tower_dims):
            raise ValueError(f"levels={o.levels} leaves no tower layer of {self.tower_dims}")
        self.embedding = FusedEmbedding(self.cardinalities, self.embed_dim)
        n = len(self.tasks.names)
        widths = [self.embedding.output_dim, *self.tower_dims[: o.levels]]
        self.levels = nn.ModuleList(
            CGCLevel(
                n, widths[i], widths[i + 1], o.specific_experts, o.shared_experts, i == o.levels - 1
            )
            for i in range(o.levels)
        )
        self.task_towers = TaskTowers(self.tasks, widths[-1], self.tower_dims[o.levels :])

    def shared_parameters(self) -> list[nn.Parameter]:
        return [self.embedding.weight, *self.levels.parameters()]

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> Outputs:
        e = self.embedding(x, scale)
        task_inputs, shared = [e] * len(self.tasks.names), e
        for level in self.levels:
            task_inputs, shared, _ = level(task_inputs, shared)
        return self.task_towers(task_inputs)
