"""ZILN: its expected value stays finite however extreme the logits (a dense-encoded amount
once overflowed exp(μ + σ²/2) at epoch 1 and took the DAG down), and equals the closed form
where nothing overflows."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from htl.losses import predictions, ziln_loss
from htl.tasks import TaskSpec

TASKS = TaskSpec(("buy",), "amount", "ziln")


@pytest.mark.parametrize("value", [1e4, -1e4, 88.0, 200.0, 1e30])
def test_ziln_prediction_and_loss_stay_finite_for_extreme_logits(value: float) -> None:
    logits = torch.full((4, 3), value)
    out = predictions({"buy": torch.zeros(4), "amount": logits}, TASKS)
    assert torch.isfinite(out["amount"]).all() and (out["amount"] >= 0).all()
    loss = ziln_loss(logits, torch.tensor([0.0, 1.0, 1e3, 1e6]))
    assert torch.isfinite(loss)


def test_ziln_prediction_is_the_closed_form_where_nothing_overflows() -> None:
    logits = torch.tensor([[0.3, 1.2, 0.4], [-2.0, 3.0, -1.0]])
    out = predictions({"buy": torch.zeros(2), "amount": logits}, TASKS)["amount"]
    for row, got in zip(logits.tolist(), out.tolist(), strict=True):
        sigma = max(F.softplus(torch.tensor(row[2])).item(), math.sqrt(1e-7))
        expected = 1 / (1 + math.exp(-row[0])) * math.exp(row[1] + sigma**2 / 2)
        assert got == pytest.approx(expected, rel=1e-5)


# --- core target options: standardize, the head starting at the train mean, log1p ---------


def test_every_model_starts_at_the_train_mean_on_its_training_scale() -> None:
    """With zero raw outputs the prediction is the train mean (MSE, standardize), e^(mean
    log1p + σ²/2) - 1 (log1p) or the train's share of buyers times the log-normal mean of
    their amounts (ZILN): the head's bias starts where the data is, not at 0."""
    from htl.losses import training_scale, with_core_statistics

    g = torch.Generator().manual_seed(0)
    y = torch.where(torch.rand(5000, generator=g) < 0.3, torch.exp(torch.randn(5000, generator=g)
                    + 2), torch.zeros(5000))  # fmt: skip
    zero = {"buy": torch.zeros(3), "amount": torch.zeros(3)}
    for transform in ("none", "standardize"):
        tasks = with_core_statistics(TaskSpec(("buy",), "amount", "mse", transform), y)
        assert tasks.core_moments == pytest.approx((float(y.mean()), float(y.std(False))))
        scaled = training_scale(y, tasks)
        if transform == "standardize":  # the MSE sees a unit-scale target
            assert float(scaled.mean()) == pytest.approx(0, abs=1e-5)
            assert float(scaled.std(False)) == pytest.approx(1, rel=1e-4)
        out = predictions(zero, tasks)["amount"]
        torch.testing.assert_close(out, torch.full((3,), float(y.mean())))
    log1p = with_core_statistics(TaskSpec(("buy",), "amount", "mse", "log1p"), y)
    corrected = dataclasses.replace(log1p, core_residual_variance=0.8)
    out = predictions(zero, corrected)["amount"]
    expected = math.expm1(float(torch.log1p(y.double()).mean()) + 0.4)
    torch.testing.assert_close(out, torch.full((3,), expected), rtol=1e-5, atol=0)
    ziln = with_core_statistics(TASKS, y)
    positive = y[y > 0].double().log()
    p_logit, mu, raw_sigma = ziln.core_offset
    assert 1 / (1 + math.exp(-p_logit)) == pytest.approx(float((y > 0).double().mean()))
    assert mu == pytest.approx(float(positive.mean()))
    assert F.softplus(torch.tensor(raw_sigma)) == pytest.approx(float(positive.std(False)))
    out = predictions({"buy": torch.zeros(3), "amount": torch.zeros(3, 3)}, ziln)["amount"]
    share, sigma = float((y > 0).double().mean()), float(positive.std(False))
    assert float(out[0]) == pytest.approx(share * math.exp(mu + sigma**2 / 2), rel=1e-4)


def test_log1p_is_bias_corrected_with_the_validation_residual_variance() -> None:
    """A log-normal core predicted at its log-mean: plain expm1 gives the median, about
    e^(σ²/2) below the mean; the corrected back-transform gives the mean."""
    from htl.models.registry import build_model
    from htl.train import SplitTensors, with_residual_variance

    g = torch.Generator().manual_seed(1)
    y = torch.expm1(1.5 + 0.9 * torch.randn(20_000, generator=g))
    tasks = with_core_statistics_for(y)
    model = build_model("dnn", [3], 4, tasks)
    for p in model.parameters():  # a model whose core output is 0: the train log-mean
        torch.nn.init.zeros_(p)
    data = SplitTensors(torch.zeros(20_000, 1, dtype=torch.int32),
                        {"buy": torch.zeros(20_000), "amount": y})  # fmt: skip
    with_residual_variance(model, data)
    assert model.tasks.core_residual_variance == pytest.approx(0.81, rel=0.03)
    plain_tasks = dataclasses.replace(model.tasks, core_residual_variance=0.0)
    with torch.no_grad():
        out = predictions(model(data.x), model.tasks)["amount"]
        plain = predictions(model(data.x), plain_tasks)
    assert float(out.mean()) == pytest.approx(float(y.mean()), rel=0.03)
    assert float(plain["amount"].mean()) < 0.8 * float(y.mean())


def with_core_statistics_for(y: torch.Tensor) -> TaskSpec:
    from htl.losses import with_core_statistics

    return with_core_statistics(TaskSpec(("buy",), "amount", "mse", "log1p"), y)
