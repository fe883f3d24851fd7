"""ZILN: its expected value stays finite however extreme the logits (a dense-encoded amount
once overflowed exp(μ + σ²/2) at epoch 1 and took the DAG down), and equals the closed form
where nothing overflows."""

from __future__ import annotations

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
