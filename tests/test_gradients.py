"""The fast gradient path against the T+1 reference, gradient spaces, and learning for T = 1..3."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from htl.config import TrainSpec
from htl.gradients import (
    HtlGradient,
    SummedGradient,
    algorithm1,
    reference_task_grads,
    table_grads,
)
from htl.losses import task_losses
from htl.models.registry import build_model
from htl.tasks import TaskSpec
from htl.train import SplitTensors, fit, score

CARDS = [3, 4, 50, 200]  # low-cardinality fields repeat rows within every batch


def chain(t: int) -> TaskSpec:
    return TaskSpec(tuple(f"b{i}" for i in range(t)), "core")


def data(n: int, seed: int = 0, cards: list[int] = CARDS) -> tuple[torch.Tensor, dict]:
    g = torch.Generator().manual_seed(seed)
    x = torch.stack([torch.randint(0, c, (n,), generator=g) for c in cards], 1).int()
    y = {f"b{i}": (torch.rand(n, generator=g) < 0.4).float() for i in range(3)}
    y["core"] = 30 * torch.rand(n, generator=g)
    return x, y


def model_and_losses(t: int, options: dict | None = None, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model("htlnet", CARDS, 4, chain(t), options)
    x, y = data(64)
    return model, x, y


@pytest.mark.parametrize("t", [1, 2, 3])
def test_fast_per_task_table_gradients_equal_reference_exactly(t: int) -> None:
    model, x, y = model_and_losses(t)
    tasks = model.tasks
    reference = reference_task_grads(task_losses(model(x), y, tasks), [model.embedding.weight])
    outputs, cut = model.forward_train(x)
    assert cut is not None and len(cut.inputs) == t + 1
    torch.stack(list(task_losses(outputs, y, tasks).values())).sum().backward()
    fast = table_grads(cut).flatten(1)
    for got, want in zip(fast, reference, strict=True):
        assert torch.equal(got, want)  # bit for bit


@pytest.mark.parametrize("t", [1, 2, 3])
@pytest.mark.parametrize("space", ["table", "output"])
def test_fast_htl_step_equals_reference_step(t: int, space: str) -> None:
    grads = {}
    for impl in ("fast", "reference"):
        if impl == "reference" and space == "output":
            continue
        model, x, y = model_and_losses(t, {"gradient_impl": impl, "gradient_space": space})
        strategy = HtlGradient(0.5, 0.5, 10.0, space, impl)
        # as the engine does: the strategy says whether it reads the cut or the plain graph
        outputs, cut = model.forward_train(x) if strategy.uses_cut else (model(x), None)
        norms = strategy.backward(
            task_losses(outputs, y, model.tasks), model.shared_parameters(), cut
        )
        grads[impl] = ({n: p.grad.clone() for n, p in model.named_parameters()}, norms)
    if space == "output":
        return
    fast, reference = grads["fast"], grads["reference"]
    for name, value in reference[0].items():
        torch.testing.assert_close(fast[0][name], value, rtol=1e-6, atol=1e-8, msg=name)
    torch.testing.assert_close(fast[1], reference[1])


def test_output_space_differs_from_table_space_only_with_repeated_rows() -> None:
    def embedding_grad(space: str, x: torch.Tensor, y: dict) -> torch.Tensor:
        torch.manual_seed(0)
        model = build_model("htlnet", cards, 4, chain(2), {"gradient_space": space})
        outputs, cut = model.forward_train(x)
        HtlGradient(1.0, 1.0, 100.0, space).backward(task_losses(outputs, y, model.tasks), [], cut)
        return model.embedding.weight.grad

    cards = [3, 4, 50, 200]
    x, y = data(64, cards=cards)
    assert not torch.allclose(embedding_grad("table", x, y), embedding_grad("output", x, y))
    cards = [8, 8]  # one row per field value, and every value once: no repeated rows
    x = torch.stack([torch.randperm(8), torch.randperm(8)], 1).int()
    y = {k: v[:8] for k, v in y.items()}
    torch.testing.assert_close(embedding_grad("table", x, y), embedding_grad("output", x, y))


def test_summed_gradient_through_the_cut_equals_plain_backward() -> None:
    model, x, y = model_and_losses(2, {"gradient": "none"})
    task_losses_plain = task_losses(model(x), y, model.tasks)
    torch.stack(list(task_losses_plain.values())).sum().backward()
    plain = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    outputs, cut = model.forward_train(x)
    norms = SummedGradient().backward(task_losses(outputs, y, model.tasks), [], cut)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, plain[name], rtol=1e-6, atol=1e-8, msg=name)
    assert norms.shape == (3, 2) and torch.equal(norms[:, 0], norms[:, 1])


def test_without_stop_gradient_uses_the_reference_path() -> None:
    model, x, y = model_and_losses(2, {"stop_gradient": False})
    outputs, cut = model.forward_train(x)
    assert cut is None
    losses = task_losses(outputs, y, model.tasks)
    per_task = reference_task_grads(losses, model.shared_parameters())
    expected, _ = algorithm1(torch.stack(per_task[:-1]), per_task[-1], 0.5, 0.5, 100.0)
    HtlGradient(0.5, 0.5, 100.0).backward(losses, model.shared_parameters(), cut)
    torch.testing.assert_close(model.embedding.weight.grad.reshape(-1), expected)


def test_ifu_kernels_learn_only_from_downstream_tasks() -> None:
    model, x, _ = model_and_losses(3)
    outputs = model(x)
    outputs["b1"].sum().backward()  # task 1 reads IFU_0 (over task 0) and nothing later
    assert model.rep_fusion[0].h1.weight.grad is not None
    assert model.label_fusion[0].h1.weight.grad is not None
    assert model.rep_fusion[1].h1.weight.grad is None  # IFU_1 feeds task 2 only
    assert model.label_tables[1].grad is None  # LEU_1 feeds task 2 only


def test_shared_bottom_with_algorithm1_balances_embedding_and_bottom() -> None:
    torch.manual_seed(0)
    model = build_model("shared_bottom", CARDS, 4, chain(2), {"gradient": "htl"})
    x, y = data(64)
    shared = model.shared_parameters()
    assert len(shared) == 1 + 4  # the embedding, two Linear layers (weight + bias)
    outputs, cut = model.forward_train(x)
    assert cut is None
    losses = task_losses(outputs, y, model.tasks)
    per_task = reference_task_grads(losses, shared)
    expected, _ = algorithm1(torch.stack(per_task[:-1]), per_task[-1], 0.5, 0.5, 100.0)
    HtlGradient(0.5, 0.5, 100.0).backward(losses, shared, cut)
    got = torch.cat([p.grad.reshape(-1) for p in shared])
    torch.testing.assert_close(got, expected)


def chain_problem(t: int, n: int, seed: int) -> SplitTensors:
    """Binary steps driven by the features; the core grows with the last step reached."""
    g = np.random.default_rng(seed)
    x = g.integers(0, 20, size=(n, 4))
    score_ = (x[:, 0] % 5 - 2) + (x[:, 1] % 3 - 1) + g.normal(0, 0.5, n)
    y, alive = {}, np.ones(n)
    for i in range(t):
        alive = alive * (score_ - 0.6 * i + g.normal(0, 0.7, n) > 0)
        y[f"b{i}"] = torch.tensor(alive, dtype=torch.float32)
    core = (1 + alive * (5 + 2 * (x[:, 2] % 4))) * np.exp(g.normal(0, 0.3, n))
    y["core"] = torch.tensor(core, dtype=torch.float32)
    return SplitTensors(torch.tensor(x, dtype=torch.int32), y)


@pytest.mark.parametrize("t", [1, 2, 3])
def test_htlnet_learns_the_chain(t: int) -> None:
    train, valid = chain_problem(t, 6000, 0), chain_problem(t, 2000, 1)
    torch.manual_seed(0)
    model = build_model("htlnet", [20] * 4, 8, chain(t), {"tau_decay_steps": 100.0})
    params = TrainSpec(epochs=8, batch_size=256, lr=0.003, patience=3, architecture="htlnet")
    result = fit(model, train, valid, params, seed=0, progress=False)
    metrics = score(model, valid)
    # a constant predicts at best 1.0; the Bayes predictor E[core | x] reaches about 0.69
    assert metrics["core/nrmse"] < 0.8
    for i in range(t):
        assert metrics[f"b{i}/auc"] > 0.9
    assert "grad_norm/core/before" in result.history[0]
    first = result.history[0]
    assert first["grad_norm/b0/before"] != first["grad_norm/b0/after"]  # the process acts
    assert first["grad_norm/core/before"] == first["grad_norm/core/after"]  # G_core untouched


def test_output_space_is_refused_where_it_cannot_apply() -> None:
    with pytest.raises(ValueError, match="needs gradient_impl 'fast'"):
        build_model(
            "htlnet", CARDS, 4, chain(2), {"gradient_space": "output", "gradient_impl": "reference"}
        )
    with pytest.raises(ValueError, match="needs HTLNet's single-backward path"):
        build_model(
            "shared_bottom", CARDS, 4, chain(2), {"gradient": "htl", "gradient_space": "output"}
        )
    model = build_model("shared_bottom", CARDS, 4, chain(2), {"gradient": "htl"})
    x, y = data(16)
    outputs, cut = model.forward_train(x)
    strategy = HtlGradient(0.5, 0.5, 100.0, space="output")  # the strategy's own guard
    with pytest.raises(ValueError, match="single-backward path"):
        strategy.backward(task_losses(outputs, y, model.tasks), model.shared_parameters(), cut)


@pytest.mark.parametrize("t", [1, 2])
def test_fast_gradients_with_dense_field_scales_equal_reference(t: int) -> None:
    """A dense numeric field multiplies its row by the value: ∂L/∂row = Σ value · ∂L/∂e."""
    model, x, y = model_and_losses(t)
    g = torch.Generator().manual_seed(5)
    scale = torch.ones(x.shape, dtype=torch.float32)
    scale[:, 1] = torch.randn(x.shape[0], generator=g)  # field 1 is dense
    losses = task_losses(model(x, scale), y, model.tasks)
    reference = reference_task_grads(losses, [model.embedding.weight])
    outputs, cut = model.forward_train(x, scale)
    torch.stack(list(task_losses(outputs, y, model.tasks).values())).sum().backward()
    for got, want in zip(table_grads(cut).flatten(1), reference, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
    assert not torch.equal(reference[0], reference_task_grads(
        task_losses(model(x), y, model.tasks), [model.embedding.weight]
    )[0])  # the scale matters  # fmt: skip
