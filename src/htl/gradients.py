"""Gradient strategies: turn per-task losses into `.grad` on every parameter.

`none` is the plain summed gradient. `htl` is HTLNet's Algorithm 1 on the table-space gradient
of the shared parameters θ_s (model-spec §1.3, A8, A10): each binary task's gradient is
partially projected off G_core when they conflict (α), then rescaled towards ‖G_core‖
(γ, clip C); G_core itself is never changed. L2 (Adam's coupled weight decay) is added after,
by the optimiser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

EPS = 1e-12


class GradientStrategy(Protocol):
    def backward(self, losses: dict[str, torch.Tensor], shared: list[nn.Parameter]) -> None:
        """Set `.grad` on every parameter that the losses reach; the core loss comes last."""


class SummedGradient:
    """Plain multi-task training: backward of the summed losses."""

    def backward(self, losses: dict[str, torch.Tensor], shared: list[nn.Parameter]) -> None:
        torch.stack(list(losses.values())).sum().backward()


@dataclass(frozen=True)
class HtlGradient:
    """Algorithm 1 with T+1 autograd passes over θ_s (the exact reference form)."""

    alpha: float
    gamma: float
    clip: float

    def backward(self, losses: dict[str, torch.Tensor], shared: list[nn.Parameter]) -> None:
        per_task = [
            _flat(torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True), shared)
            for loss in losses.values()
        ]
        torch.stack(list(losses.values())).sum().backward()
        combined = algorithm1(
            torch.stack(per_task[:-1]), per_task[-1], self.alpha, self.gamma, self.clip
        )
        offset = 0
        for p in shared:
            n = p.numel()
            p.grad = combined[offset : offset + n].view_as(p).clone()
            offset += n


def algorithm1(
    task_grads: torch.Tensor, core_grad: torch.Tensor, alpha: float, gamma: float, clip: float
) -> torch.Tensor:
    """G_s = G_core + Σ_t s_t·(G_t − c_t·G_core) for task_grads [T, P] and core_grad [P].

    c_t = α·(G_t·G_core)/‖G_core‖² when G_t·G_core < 0 (else 0); s_t = γ·w_t + 1 − γ with
    w_t = clip(‖G_core‖ / ‖G_t after projection‖, 1/C, C). Vectorised, no host sync.
    """
    core_sq = core_grad.dot(core_grad)
    dots = task_grads @ core_grad
    conflict = (dots < 0) & (core_sq > 0)
    coef = torch.where(conflict, alpha * dots / (core_sq + EPS), torch.zeros_like(dots))
    projected = task_grads - coef.unsqueeze(1) * core_grad
    ratio = core_sq.sqrt() / (projected.norm(dim=1) + EPS)
    scale = gamma * ratio.clamp(1.0 / clip, clip) + 1.0 - gamma
    return core_grad + (scale.unsqueeze(1) * projected).sum(0)


def _flat(grads: tuple[torch.Tensor | None, ...], params: list[nn.Parameter]) -> torch.Tensor:
    return torch.cat(
        [
            (g if g is not None else torch.zeros_like(p)).reshape(-1)
            for g, p in zip(grads, params, strict=False)
        ]
    )


def strategy_for(options: object) -> GradientStrategy:
    """The strategy a model's options ask for (`gradient`, with α, γ, C); default `none`."""
    name = getattr(options, "gradient", "none")
    if name == "htl":
        return HtlGradient(options.alpha, options.gamma, options.clip)
    if name == "none":
        return SummedGradient()
    raise ValueError(f"unknown gradient strategy '{name}'; expected 'none' or 'htl'")
