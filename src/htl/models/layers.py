"""Building blocks shared by every model: the fused embedding table and plain MLPs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from htl.tasks import TaskSpec


class FusedEmbedding(nn.Module):
    """One table for all fields with per-field offsets: a single gather per batch.

    Each field's slice is Xavier-uniform initialised on its own (fan = its rows and D), as
    per-field TF variables would be, so the scale does not depend on the total vocabulary.
    """

    def __init__(self, cardinalities: Sequence[int], dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.num_fields = len(cardinalities)
        offsets = torch.tensor([0, *list(cardinalities)[:-1]], dtype=torch.long).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)
        self.weight = nn.Parameter(torch.empty(int(sum(cardinalities)), dim))
        with torch.no_grad():
            for start, rows in zip(offsets.tolist(), cardinalities, strict=False):
                nn.init.xavier_uniform_(self.weight[start : start + rows])

    @property
    def output_dim(self) -> int:
        return self.num_fields * self.dim

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        """[B, m] field indices -> [B, m] rows of the fused table."""
        return x.long() + self.offsets

    def lookup(self, rows: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """[B, m] table rows -> [B, m*D]; each field's vector times its `scale` [B, m] when
        given (a dense numeric field's value: its one row acts as a linear embedding)."""
        e = nn.functional.embedding(rows, self.weight)
        if scale is not None:
            e = e * scale.unsqueeze(-1)
        return e.flatten(1)

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """[B, m] int field indices -> [B, m*D] concatenated embeddings."""
        return self.lookup(self.rows(x), scale)


def mlp(input_dim: int, dims: Sequence[int]) -> nn.Sequential:
    """Linear + ReLU per hidden layer, Xavier init; no BatchNorm or dropout (paper is silent)."""
    layers: list[nn.Module] = []
    for dim in dims:
        linear = nn.Linear(input_dim, dim)
        nn.init.xavier_uniform_(linear.weight)
        nn.init.zeros_(linear.bias)
        layers += [linear, nn.ReLU()]
        input_dim = dim
    return nn.Sequential(*layers)


def head(input_dim: int, outputs: int) -> nn.Linear:
    """Output unit: logits for binary tasks, raw value(s) for the core."""
    linear = nn.Linear(input_dim, outputs)
    nn.init.xavier_uniform_(linear.weight)
    nn.init.zeros_(linear.bias)
    return linear


def squeeze_head(out: torch.Tensor) -> torch.Tensor:
    """[B, 1] -> [B]; multi-output heads ([B, 3] for ZILN) stay as they are."""
    return out.squeeze(-1) if out.shape[-1] == 1 else out


def gate(input_dim: int, choices: int) -> nn.Linear:
    """The logits of a softmax gate over `choices` experts (Xavier weights, zero bias)."""
    return head(input_dim, choices)


class TaskTowers(nn.Module):
    """One MLP tower and output head per task; maps each task's input to its raw output."""

    def __init__(self, tasks: TaskSpec, input_dim: int, dims: Sequence[int]) -> None:
        super().__init__()
        self.names = tasks.names
        width = dims[-1] if dims else input_dim
        self.towers = nn.ModuleList(mlp(input_dim, dims) for _ in tasks.names)
        self.heads = nn.ModuleList(
            head(width, tasks.core_outputs if name == tasks.core else 1) for name in tasks.names
        )

    def forward(self, inputs: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """inputs[t] is task t's input, [B, input_dim]."""
        return {
            name: squeeze_head(h(tower(x)))
            for name, tower, h, x in zip(self.names, self.towers, self.heads, inputs, strict=True)
        }
