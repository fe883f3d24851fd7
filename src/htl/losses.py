"""Per-task losses (BCE on logits, MSE, ZILN) and the predictions they imply."""

from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F

from htl.tasks import TaskSpec

ZILN_EPS = 1e-7  # Keras epsilon, as in google/lifetime_value
# exp() of more overflows float32 (its max is about 3.4e38 = exp(88.7)); the expected value's
# exponent is capped there, so an extreme logit gives a huge but finite prediction
LOG_FLOAT32_MAX = 88.0


def task_losses(
    outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], tasks: TaskSpec
) -> dict[str, torch.Tensor]:
    """Mean loss per task, in task order; the core last."""
    losses = {
        name: F.binary_cross_entropy_with_logits(outputs[name], targets[name])
        for name in tasks.chain
    }
    core_out, core_y = outputs[tasks.core], training_scale(targets[tasks.core], tasks)
    if tasks.core_loss == "ziln":
        losses[tasks.core] = ziln_loss(core_out, core_y, tasks.core_offset)
    else:
        losses[tasks.core] = F.mse_loss(fitted_core(core_out, tasks), core_y)
    return losses


def training_scale(y: torch.Tensor, tasks: TaskSpec) -> torch.Tensor:
    """The core target on the scale the MSE is computed on."""
    if tasks.core_transform == "log1p":
        return torch.log1p(y)
    if tasks.core_transform == "standardize":
        mean, std = tasks.core_moments
        return (y - mean) / std
    return y


def fitted_core(core: torch.Tensor, tasks: TaskSpec) -> torch.Tensor:
    """An MSE core's raw output plus its train-mean offset: the fit on the training scale."""
    return core + tasks.core_offset[0] if tasks.core_offset else core


def with_core_statistics(tasks: TaskSpec, y: torch.Tensor) -> TaskSpec:
    """The task spec with the train core's statistics: its mean and std, and the head offset
    that starts every model at the train mean of its training-scale target."""
    y = y.double()
    moments = (float(y.mean()), float(y.std(unbiased=False).clamp_min(1e-12)))
    if tasks.core_loss == "ziln":
        positive = y[y > 0]
        share = float((y > 0).double().mean().clamp(1e-6, 1 - 1e-6))
        logs = torch.log(positive) if len(positive) else torch.zeros(1, dtype=y.dtype)
        sigma = float(logs.std(unbiased=False).clamp_min(1e-3)) if len(logs) > 1 else 1.0
        offset = (
            math.log(share / (1 - share)),
            float(logs.mean()),
            sigma + math.log(-math.expm1(-sigma)),
        )
    else:
        offset = (float(training_scale(y, replace(tasks, core_moments=moments)).mean()),)
    return replace(tasks, core_moments=moments, core_offset=offset)


def ziln_loss(
    logits: torch.Tensor, y: torch.Tensor, offset: tuple[float, ...] = ()
) -> torch.Tensor:
    """Zero-inflated lognormal: BCE on y > 0 plus the lognormal NLL of the positive amounts."""
    positive = (y > 0).to(logits.dtype)
    p_logit, mu, sigma = _ziln_parts(logits, offset)
    bce = F.binary_cross_entropy_with_logits(p_logit, positive)
    safe_y = torch.where(y > 0, y, torch.ones_like(y))
    log_y = torch.log(safe_y)
    # the lognormal log-density, written so no intermediate overflows for extreme logits
    log_prob = (
        -(log_y + torch.log(sigma) + 0.5 * math.log(2 * math.pi))
        - 0.5 * ((log_y - mu) / sigma) ** 2
    )
    return bce - (positive * log_prob).mean()


def _ziln_parts(
    logits: torch.Tensor, offset: tuple[float, ...] = ()
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """P(y > 0) logit, μ and σ, each logit plus its train offset (`TaskSpec.core_offset`);
    σ floored at sqrt(eps) as google/lifetime_value does."""
    p, m, s = offset or (0.0, 0.0, 0.0)
    sigma = torch.clamp(F.softplus(logits[:, 2] + s), min=math.sqrt(ZILN_EPS))
    return logits[:, 0] + p, logits[:, 1] + m, sigma


def predictions(outputs: dict[str, torch.Tensor], tasks: TaskSpec) -> dict[str, torch.Tensor]:
    """Probabilities for the chain, the core on the raw target scale: the expected value (MSE,
    ZILN); under `standardize` ŷ·std + mean; under `log1p` the bias-corrected
    expm1(ŷ + σ²/2) (σ² the validation residual variance on the log1p scale), clipped at 0."""
    preds = {name: torch.sigmoid(outputs[name]) for name in tasks.chain}
    core = outputs[tasks.core]
    if tasks.core_loss == "ziln":
        p_logit, mu, sigma = _ziln_parts(core, tasks.core_offset)
        exponent = torch.clamp(mu + sigma**2 / 2, max=LOG_FLOAT32_MAX)
        preds[tasks.core] = torch.sigmoid(p_logit) * torch.exp(exponent)
        return preds
    core = fitted_core(core, tasks)
    if tasks.core_transform == "log1p":
        exponent = torch.clamp(core + tasks.core_residual_variance / 2, max=LOG_FLOAT32_MAX)
        preds[tasks.core] = torch.expm1(exponent).clamp_min(0.0)
    elif tasks.core_transform == "standardize":
        mean, std = tasks.core_moments
        preds[tasks.core] = core * std + mean
    else:
        preds[tasks.core] = core
    return preds
