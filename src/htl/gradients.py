"""Gradient strategies: turn per-task losses into `.grad` on every parameter.

`none` is the plain summed gradient. `htl` is HTLNet's Algorithm 1 on the gradient of the
shared parameters θ_s (model-spec §1.3, A8, A10): each binary task's gradient is partially
projected off G_core when they conflict (α), then rescaled towards ‖G_core‖ (γ, clip C);
G_core itself is never changed. L2 (Adam's coupled weight decay) is added after, by the
optimiser. Norms and dot products are global over θ_s flattened into one vector.

Two exact ways to get the per-task gradients:
- the reference: T+1 `autograd.grad(L_t, θ_s)` passes; any θ_s, any architecture;
- the fast path (model-spec §6.1): when the model hands each tower its own detached copy of
  the embedding output (a `SharedCut`, valid under Eq. 15's stop-gradients), one backward of
  the summed loss gives every ∂L_t/∂e; summing those per table row gives the table-space
  gradients with the same accumulation order as the embedding's own backward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch
from torch import nn

from htl.config import AT_LEAST_1, Range

EPS = 1e-12


@dataclass(frozen=True)
class GradientOptions:
    """Which gradient strategy a model entry trains with, and its settings. Written beside the
    model's own options under `model_options.<entry>`; the model itself never sees them."""

    gradient: Literal["none", "htl", "pcgrad", "metabalance"] = "none"
    alpha: Annotated[float, Range(0, 1)] = 0.5  # htl: relax factor of the projection (Eq. 16)
    gamma: Annotated[float, Range(0, 1)] = 0.5  # htl: relax factor of the magnitude (Eq. 17)
    clip: Annotated[float, AT_LEAST_1] = 100.0  # htl: C, the ratio is clipped to [1/C, C]
    gradient_space: Literal["table", "output"] = "table"  # htl: output is model-spec A8's ablation
    gradient_impl: Literal["fast", "reference"] = "fast"  # htl: reference = T+1 autograd passes
    pcgrad_shuffle: bool = False  # pcgrad: random projection order (paper) vs fixed (official)
    metabalance_beta: Annotated[float, Range(0, 1, open_high=True)] = 0.9  # moving average
    metabalance_relax: Annotated[float, Range(0, 1)] = 0.7  # metabalance: relax factor r

    def __post_init__(self) -> None:
        if self.gradient_space == "output" and self.gradient_impl != "fast":
            raise ValueError("gradient_space 'output' needs gradient_impl 'fast'")


@dataclass(frozen=True)
class SharedCut:
    """What a model exposes for the single-backward path: the table, the looked-up rows and,
    per task, the detached copy of the embedding output that task's tower read."""

    weight: nn.Parameter  # [M, D]
    rows: torch.Tensor  # [B, m] global row indices
    output: torch.Tensor  # [B, m*D], the lookup itself (still attached to `weight`)
    inputs: list[torch.Tensor]  # per task, a detached copy of `output` (requires_grad)
    scale: torch.Tensor | None = None  # [B, m] per-field multipliers of the lookup (dense fields)


class GradientStrategy:
    """Turns per-task losses into `.grad`. The engine asks `uses_cut` whether to run the
    model's single-backward forward (`forward_train`, a `SharedCut`) or its plain graph, and
    saves `state_dict()` in every checkpoint."""

    uses_cut: bool = False

    def backward(
        self, losses: dict[str, torch.Tensor], shared: list[nn.Parameter], cut: SharedCut | None
    ) -> torch.Tensor | None:  # pragma: no cover - abstract
        """Set `.grad` on every parameter the losses reach (core loss last). Returns the
        per-task shared-gradient norms [T+1, 2] (before, after) when it knows them."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to continue exactly (empty for stateless strategies)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` saved."""


class SummedGradient(GradientStrategy):
    """Plain multi-task training: backward of the summed losses (with a cut, it also measures
    each task's shared-gradient norm for Fig. 5 at no extra backward)."""

    uses_cut = True

    def backward(
        self, losses: dict[str, torch.Tensor], shared: list[nn.Parameter], cut: SharedCut | None
    ) -> torch.Tensor | None:
        _total(losses).backward()
        if cut is None:
            return None
        cut.output.backward(torch.stack([e.grad for e in cut.inputs]).sum(0))
        _, per_row = rows_grads(cut)  # rows not in the batch have zero gradient
        norms = per_row.flatten(1).norm(dim=1)  # for Fig. 5's "without" curve
        return torch.stack([norms, norms], 1)


@dataclass(frozen=True)
class HtlGradient(GradientStrategy):
    """Algorithm 1; the fast path when the model offers a cut and `impl` allows it."""

    alpha: float
    gamma: float
    clip: float
    space: str = "table"
    impl: str = "fast"

    @property
    def uses_cut(self) -> bool:  # type: ignore[override]
        return self.impl == "fast"

    def backward(
        self, losses: dict[str, torch.Tensor], shared: list[nn.Parameter], cut: SharedCut | None
    ) -> torch.Tensor:
        if cut is not None and self.impl == "fast":
            return self._fast(losses, cut)
        if self.space == "output":
            raise ValueError(
                "gradient_space 'output' needs a model with a single-backward path "
                "(HTLNet with stop_gradient on)"
            )
        per_task = torch.stack(reference_task_grads(losses, shared))
        _total(losses).backward()
        combined, norms = self._combine(per_task)
        _assign(shared, combined)
        return norms

    def _combine(self, per_task: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return algorithm1(per_task[:-1], per_task[-1], self.alpha, self.gamma, self.clip)

    def _fast(self, losses: dict[str, torch.Tensor], cut: SharedCut) -> torch.Tensor:
        _total(losses).backward()  # towers, LEU, IFU: their plain gradients; e_t.grad per task
        if self.space == "output":
            combined, norms = self._combine(torch.stack([e.grad.reshape(-1) for e in cut.inputs]))
            cut.output.backward(combined.view_as(cut.output))
            return norms
        unique, per_row = rows_grads(cut)
        combined, norms = self._combine(per_row.flatten(1))
        grad = torch.zeros_like(cut.weight)
        grad[unique] = combined.view(len(unique), -1)
        cut.weight.grad = grad
        return norms


def algorithm1(
    task_grads: torch.Tensor, core_grad: torch.Tensor, alpha: float, gamma: float, clip: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """G_s = G_core + Σ_t s_t·(G_t − c_t·G_core) for task_grads [T, P] and core_grad [P].

    c_t = α·(G_t·G_core)/‖G_core‖² when G_t·G_core < 0 (else 0); s_t = γ·w_t + 1 − γ with
    w_t = clip(‖G_core‖ / ‖G_t after projection‖, 1/C, C). Vectorised, no host sync.
    Also returns each task's norm before and after, [T+1, 2], the core last.
    """
    core_sq = core_grad.dot(core_grad)
    dots = task_grads @ core_grad
    conflict = (dots < 0) & (core_sq > 0)
    coef = torch.where(conflict, alpha * dots / (core_sq + EPS), torch.zeros_like(dots))
    projected = task_grads - coef.unsqueeze(1) * core_grad
    ratio = core_sq.sqrt() / (projected.norm(dim=1) + EPS)
    scale = gamma * ratio.clamp(1.0 / clip, clip) + 1.0 - gamma
    adjusted = scale.unsqueeze(1) * projected
    core_norm = core_sq.sqrt().reshape(1)
    norms = torch.stack(
        [
            torch.cat([task_grads.norm(dim=1), core_norm]),
            torch.cat([adjusted.norm(dim=1), core_norm]),
        ],
        1,
    )
    return core_grad + adjusted.sum(0), norms


def reference_task_grads(
    losses: dict[str, torch.Tensor], shared: list[nn.Parameter]
) -> list[torch.Tensor]:
    """Per-task gradients of θ_s, flattened: T+1 full autograd passes (the test reference)."""
    return [torch.cat([g.reshape(-1) for g in grads]) for grads in _task_grads(losses, shared)]


def _task_grads(
    losses: dict[str, torch.Tensor], shared: list[nn.Parameter]
) -> list[list[torch.Tensor]]:
    """Per task, ∂L_t/∂p for every shared tensor p (zeros where L_t does not reach p)."""
    return [
        [
            torch.zeros_like(p) if g is None else g
            for g, p in zip(
                torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True),
                shared,
                strict=True,
            )
        ]
        for loss in losses.values()
    ]


def rows_grads(cut: SharedCut) -> tuple[torch.Tensor, torch.Tensor]:
    """The U table rows this batch looked up, and each task's gradient on them, [T+1, U, D]:
    ∂L_t/∂e summed per row in occurrence order (the embedding backward's own order). Every
    other row's gradient is zero, so norms and dot products need only these."""
    unique, inverse = torch.unique(cut.rows.reshape(-1), return_inverse=True)
    dim = cut.weight.shape[1]
    out = cut.weight.new_zeros(len(cut.inputs), len(unique), dim)
    for t, e in enumerate(cut.inputs):
        grad = e.grad.reshape(-1, dim)
        if cut.scale is not None:  # e = scale · row, so ∂L/∂row = scale · ∂L/∂e
            grad = grad * cut.scale.reshape(-1, 1)
        out[t].index_add_(0, inverse, grad)
    return unique, out


def table_grads(cut: SharedCut) -> torch.Tensor:
    """Per-task table-space gradients [T+1, M, D], dense (for tests and inspection)."""
    unique, per_row = rows_grads(cut)
    full = per_row.new_zeros(len(cut.inputs), *cut.weight.shape)
    full[:, unique] = per_row
    return full


def _total(losses: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.stack(list(losses.values())).sum()


def _assign(params: list[nn.Parameter], flat: torch.Tensor) -> None:
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


@dataclass(frozen=True)
class PCGrad(GradientStrategy):
    """PCGrad (Yu et al., NeurIPS'20) on θ_s: each task's gradient is projected off every other
    task's **original** gradient it conflicts with, in a fixed order (official TF) or a random
    one (the paper); the projected gradients are **summed** (model-spec §3.2)."""

    shuffle: bool = False

    def backward(
        self, losses: dict[str, torch.Tensor], shared: list[nn.Parameter], cut: SharedCut | None
    ) -> torch.Tensor:
        per_task = torch.stack(reference_task_grads(losses, shared))
        _total(losses).backward()
        combined, norms = pcgrad(per_task, self.shuffle)
        _assign(shared, combined)
        return norms


def pcgrad(grads: torch.Tensor, shuffle: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ_i g_i^PC for grads [T, P]; also each task's norm before and after, [T, 2]."""
    n = grads.shape[0]
    squares = (grads * grads).sum(1)
    projected = []
    for i in range(n):
        g = grads[i]
        order = torch.randperm(n).tolist() if shuffle else range(n)
        for j in order:
            if j == i:
                continue
            dot = g @ grads[j]
            g = g - torch.where(dot < 0, dot / (squares[j] + EPS), torch.zeros_like(dot)) * grads[j]
        projected.append(g)
    out = torch.stack(projected)
    return out.sum(0), torch.stack([grads.norm(dim=1), out.norm(dim=1)], 1)


class MetaBalance(GradientStrategy):
    """MetaBalance (He et al., WWW'22) with the core task as the target (model-spec §3.3).

    Per shared **tensor**: m_i ← β·m_i + (1−β)·‖∇L_i‖ (no bias correction), then
    ∇L_i ← (r·m_core/m_i + 1 − r)·∇L_i, summed over tasks. Every gradient is computed before
    any update (no `break`, no optimiser step in between, unlike the official example).
    """

    def __init__(self, beta: float, relax: float) -> None:
        self.beta, self.relax = beta, relax
        self.moving: torch.Tensor | None = None  # [T+1, tensors]

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The moving averages, so a resumed run continues them (the engine's checkpoint)."""
        return {} if self.moving is None else {"moving": self.moving.detach().clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.moving = state.get("moving")

    def backward(
        self, losses: dict[str, torch.Tensor], shared: list[nn.Parameter], cut: SharedCut | None
    ) -> torch.Tensor:
        per_task = _task_grads(losses, shared)
        _total(losses).backward()
        norms = torch.stack([torch.stack([g.norm() for g in grads]) for grads in per_task])
        previous = torch.zeros_like(norms) if self.moving is None else self.moving.to(norms.device)
        self.moving = self.beta * previous + (1 - self.beta) * norms
        positive = self.moving > 0
        ratio = torch.where(positive, self.moving[-1:] / self.moving.clamp_min(EPS), 0.0)
        scale = self.relax * ratio + 1 - self.relax  # [T+1, tensors]; the core's row is 1
        for k, p in enumerate(shared):
            p.grad = sum(scale[i, k] * per_task[i][k] for i in range(len(per_task)))
        total_before = norms.pow(2).sum(1).sqrt()
        total_after = (scale * norms).pow(2).sum(1).sqrt()
        return torch.stack([total_before, total_after], 1)


#: What HPO searches per strategy (Table 6's grids for Algorithm 1's α, γ, C).
SEARCH_SPACES: dict[str, dict[str, list[Any]]] = {
    "htl": {  # Table 6
        "alpha": [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0],
        "gamma": [1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 1e-1, 5e-1, 1.0],
        "clip": [1.0, 5.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0],
    },
    "metabalance": {  # its paper searches the relax factor r over (0, 1]
        "metabalance_relax": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
    },
}


def strategy_for(options: GradientOptions) -> GradientStrategy:
    """The strategy the options name, with its settings."""
    name, o = options.gradient, options
    if name == "htl":
        return HtlGradient(o.alpha, o.gamma, o.clip, o.gradient_space, o.gradient_impl)
    if name == "pcgrad":
        return PCGrad(options.pcgrad_shuffle)
    if name == "metabalance":
        return MetaBalance(options.metabalance_beta, options.metabalance_relax)
    return SummedGradient()
