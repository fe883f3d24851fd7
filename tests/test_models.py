"""Model contract, HTLNet's structure (stop-gradient, LEU, τ), Algorithm 1 vs. a dense reference."""

from __future__ import annotations

import math

import pytest
import torch

from htl.gradients import HtlGradient, SummedGradient, algorithm1
from htl.losses import predictions, task_losses
from htl.models.htlnet import HTLNetOptions
from htl.models.registry import MODELS, build_model
from htl.tasks import TaskSpec

CARDS = [7, 5, 11, 3]


def chain(t: int, core_loss: str = "mse") -> TaskSpec:
    return TaskSpec(tuple(f"b{i}" for i in range(t)), "core", core_loss)


def batch(n: int = 32, seed: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    x = torch.stack([torch.randint(0, c, (n,), generator=g) for c in CARDS], 1).int()
    return x, g


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("t", [1, 2, 3])
@pytest.mark.parametrize("core_loss", ["mse", "ziln"])
def test_output_shapes(name: str, t: int, core_loss: str) -> None:
    tasks = chain(t, core_loss)
    model = build_model(name, CARDS, 4, tasks)
    x, _ = batch()
    out = model(x)
    assert list(out) == list(tasks.names)
    for task in tasks.chain:
        assert out[task].shape == (32,)
    assert out["core"].shape == ((32, 3) if core_loss == "ziln" else (32,))
    preds = predictions(out, tasks)
    assert all(preds[k].shape == (32,) for k in tasks.names)
    assert ((preds["b0"] > 0) & (preds["b0"] < 1)).all()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_scales_a_dense_fields_embedding(name: str) -> None:
    model = build_model(name, CARDS, 4, chain(2))
    x, _ = batch()
    ones = torch.ones(x.shape)
    plain, with_ones = model(x).values(), model(x, ones).values()
    assert all(torch.equal(a, b) for a, b in zip(plain, with_ones, strict=True))
    scaled = ones.clone()
    scaled[:, 2] = 3.0
    outputs, _ = model.forward_train(x, scaled)
    changed = zip(model(x).values(), outputs.values(), strict=True)
    assert any(not torch.allclose(a, b) for a, b in changed)


def test_unknown_model_and_option_are_clear() -> None:
    with pytest.raises(ValueError, match="unknown model 'htlnett' \\(did you mean 'htlnet'\\?\\)"):
        build_model("htlnett", CARDS, 4, chain(2))
    with pytest.raises(ValueError, match="unknown option 'gama'.*'gamma'"):
        build_model("htlnet", CARDS, 4, chain(2), {"gama": 0.1})


def test_htlnet_stop_gradient_isolates_towers() -> None:
    """With Eq. 15, a binary task's own loss reaches neither its LEU table nor later IFUs."""
    torch.manual_seed(0)
    model = build_model("htlnet", CARDS, 4, chain(2))
    x, _ = batch()
    out = model(x)
    model.zero_grad()
    out["b0"].sum().backward()
    assert model.label_tables[0].grad is None  # LEU_0 only feeds tower 1
    assert all(p.grad is None for p in model.first_layers[1].parameters())
    assert model.embedding.weight.grad is not None
    model.zero_grad(set_to_none=True)
    out = model(x)
    out["b1"].sum().backward()
    assert model.label_tables[0].grad is not None  # downstream task trains the LEU of task 0
    assert all(p.grad is None for p in model.first_layers[0].parameters())  # tower 0 untouched


def test_htlnet_without_stop_gradient_lets_downstream_reach_upstream_tower() -> None:
    model = build_model("htlnet", CARDS, 4, chain(2), {"stop_gradient": False})
    x, _ = batch()
    model(x)["core"].sum().backward()
    assert model.first_layers[0][0].weight.grad is not None


def test_label_embedding_is_tempered_sigmoid_with_row_index_as_label() -> None:
    model = build_model("htlnet", CARDS, 4, chain(1))
    model.tau.fill_(2.0)
    z = torch.tensor([-4.0, 0.0, 4.0])
    le = model.label_embedding(0, z)
    p = torch.sigmoid(z / 2.0).unsqueeze(1)
    table = model.label_tables[0]
    torch.testing.assert_close(le, p * table[1] + (1 - p) * table[0])


def test_tau_schedule() -> None:
    """The paper's per-step schedule ignores the run's length; the default reaches τ_end at
    the last step of any run."""
    o = HTLNetOptions(tau_schedule="step", tau_start=10.0, tau_decay_steps=100.0)
    assert o.tau(0, 7) == 10.0 and o.tau(100, 7) == 5.0
    assert o.tau(50, 10**6) == pytest.approx(10 * 0.5**0.5)
    s = HTLNetOptions(tau_schedule="step", tau_start=10.0, tau_decay_steps=100.0,
                      tau_staircase=True)  # fmt: skip
    assert s.tau(99, 7) == 10.0 and s.tau(100, 7) == 5.0 and s.tau(250, 7) == 2.5
    run = HTLNetOptions()  # the default: over the run, from τ0 = 10 to τ_end = 1
    assert run.tau_schedule == "run" and run.tau_end == 1.0
    for total in (2, 157, 20_000):
        assert run.tau(0, total) == 10.0 and run.tau(total - 1, total) == pytest.approx(1.0)
    assert run.tau(50, 101) == pytest.approx(10**0.5)  # geometric: halfway is √(τ0·τ_end)
    assert HTLNetOptions(tau_min=2.0).tau(100, 101) == 2.0


def test_hpo_tunes_the_schedule_in_use() -> None:
    from htl.models.registry import resolve

    assert "tau_end" in resolve("htlnet").search_space()
    assert "tau_decay_steps" not in resolve("htlnet").search_space()
    paper = resolve("htlnet", {"tau_schedule": "step"}).search_space()
    assert "tau_decay_steps" in paper and "tau_end" not in paper


def dense_algorithm1(task_grads, core, alpha, gamma, clip):
    """Algorithm 1 line by line in float64 Python loops."""
    core = core.double()
    out = core.clone()
    for g in task_grads.double():
        dot = float(g @ core)
        if dot < 0 and float(core @ core) > 0:
            g = g - alpha * dot / float(core @ core) * core
        w = min(max(float(core.norm()) / float(g.norm()), 1 / clip), clip)
        out += (gamma * w + 1 - gamma) * g
    return out


@pytest.mark.parametrize("case", ["conflict", "agree", "clip_high", "clip_low"])
def test_algorithm1_equals_dense_reference(case: str) -> None:
    g = torch.Generator().manual_seed(1)
    core = torch.randn(50, generator=g, dtype=torch.float64)
    grads = torch.randn(3, 50, generator=g, dtype=torch.float64)
    if case == "conflict":
        grads[0] = -core + 0.1 * grads[0]
    if case == "agree":
        grads = core + 0.1 * grads
    if case == "clip_high":
        grads = grads * 1e-6  # ratio far above C
    if case == "clip_low":
        grads = grads * 1e6  # ratio far below 1/C
    for alpha, gamma, clip in [(0.5, 0.5, 100.0), (1.0, 1.0, 5.0), (0.3, 0.9, 1.0)]:
        got, _ = algorithm1(grads, core, alpha, gamma, clip)
        torch.testing.assert_close(
            got, dense_algorithm1(grads, core, alpha, gamma, clip), rtol=1e-10, atol=1e-10
        )


def test_algorithm1_reduces_to_plain_sum_and_c1_disables_magnitude() -> None:
    g = torch.Generator().manual_seed(2)
    core = torch.randn(20, generator=g, dtype=torch.float64)
    grads = torch.randn(2, 20, generator=g, dtype=torch.float64)
    torch.testing.assert_close(algorithm1(grads, core, 0.0, 0.0, 100.0)[0], core + grads.sum(0))
    projected_only = algorithm1(grads, core, 0.7, 0.0, 100.0)[0]
    torch.testing.assert_close(algorithm1(grads, core, 0.7, 0.8, 1.0)[0], projected_only)


def test_htl_gradient_sets_algorithm1_on_shared_and_plain_grads_elsewhere() -> None:
    torch.manual_seed(0)
    tasks = chain(2)
    model = build_model("htlnet", CARDS, 4, tasks)
    x, g = batch()
    y = {"b0": torch.ones(32), "b1": torch.zeros(32), "core": 50 * torch.rand(32, generator=g)}
    shared = model.shared_parameters()

    losses = task_losses(model(x), y, tasks)
    per_task = [
        torch.autograd.grad(loss, shared[0], retain_graph=True)[0].reshape(-1)
        for loss in losses.values()
    ]
    expected, _ = algorithm1(torch.stack(per_task[:-1]), per_task[-1], 0.5, 0.5, 100.0)
    model.zero_grad()
    HtlGradient(0.5, 0.5, 100.0).backward(losses, shared, None)
    torch.testing.assert_close(model.embedding.weight.grad.reshape(-1), expected)
    htl_head = model.heads[0].weight.grad.clone()

    model.zero_grad()
    SummedGradient().backward(task_losses(model(x), y, tasks), shared, None)
    torch.testing.assert_close(model.heads[0].weight.grad, htl_head)  # towers: plain gradient
    assert not torch.allclose(model.embedding.weight.grad.reshape(-1), expected)


def test_training_loss_falls_for_every_model() -> None:
    tasks = chain(2)
    x, g = batch(512, seed=3)
    signal = (x[:, 0] % 2).float()
    y = {
        "b0": signal,
        "b1": signal * (x[:, 1] % 2).float(),
        "core": 5 * signal * (x[:, 1] % 2).float(),
    }
    for name in MODELS:
        torch.manual_seed(0)
        model = build_model(name, CARDS, 4, tasks)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        first = last = math.nan
        for step in range(60):
            losses = task_losses(model(x), y, tasks)
            total = sum(losses.values())
            opt.zero_grad()
            total.backward()
            opt.step()
            last = float(total.detach())
            first = last if step == 0 else first
        assert last < 0.5 * first, name
