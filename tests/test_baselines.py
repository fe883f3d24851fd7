"""Baselines: structure tests that would catch the known defects (model-spec §2, §7), and
PCGrad / MetaBalance against straightforward reference implementations."""

from __future__ import annotations

import pytest
import torch

from htl.gradients import MetaBalance, PCGrad, pcgrad, reference_task_grads
from htl.losses import task_losses
from htl.models.registry import build_model, resolve
from htl.tasks import TaskSpec

CARDS = [6, 9, 4, 30]


def chain(t: int, core_loss: str = "mse") -> TaskSpec:
    return TaskSpec(tuple(f"b{i}" for i in range(t)), "core", core_loss)


def batch(n: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.stack([torch.randint(0, c, (n,), generator=g) for c in CARDS], 1).int()


def targets(n: int = 16) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    y = {f"b{i}": (torch.rand(n, generator=g) < 0.5).float() for i in range(3)}
    y["core"] = 10 * torch.rand(n, generator=g)
    return y


def test_ple_expert_counts_and_gate_widths() -> None:
    model = build_model("ple", CARDS, 4, chain(2), {"specific_experts": 2, "shared_experts": 3})
    first, last = model.levels
    tasks = 3
    for level in (first, last):
        assert len(level.task_experts) == tasks * 2 and len(level.shared_experts) == 3
        assert [g.out_features for g in level.task_gates] == [2 + 3] * tasks
    assert first.shared_gate.out_features == tasks * 2 + 3  # over ALL experts of the level
    assert last.shared_gate is None  # no shared gate at the last level
    assert (
        first.task_experts[0][0].out_features == 128 and last.task_experts[0][0].out_features == 64
    )


def test_ple_and_mmoe_gates_sum_to_one_and_experts_differ() -> None:
    x = batch()
    mmoe = build_model("mmoe", CARDS, 4, chain(2))
    gates = mmoe.gate_weights(mmoe.embedding(x))
    assert gates.shape == (16, 3, 8)
    torch.testing.assert_close(gates.sum(-1), torch.ones(16, 3))
    e = mmoe.embedding(x)
    assert not torch.allclose(mmoe.experts[0](e), mmoe.experts[1](e))  # no constant init
    ple = build_model("ple", CARDS, 4, chain(2))
    e = ple.embedding(x)
    _, shared, gates = ple.levels[0]([e, e, e], e)
    assert shared is not None and len(gates) == 4
    for weights in gates:
        torch.testing.assert_close(weights.sum(-1), torch.ones(16))


def test_adatt_sp_adds_each_tasks_own_expert_as_residual() -> None:
    model = build_model("adatt", CARDS, 4, chain(2))
    level = model.levels[0]
    e = model.embedding(batch())
    h = e.unsqueeze(1).expand(-1, 3, -1)
    fused, gates = level(h)
    experts = torch.stack([ex(h[:, k]) for k, ex in enumerate(level.experts)], 1)
    expected = torch.bmm(gates, experts) + experts  # m = 1: weight-1 residual of the own expert
    torch.testing.assert_close(fused, expected)
    assert gates.shape == (16, 3, 3)  # each task's gate spans all tasks' experts
    general = build_model("adatt", CARDS, 4, chain(2), {"variant": "general"})
    assert len(general.levels[0].gates) == 4 and len(general.levels[1].gates) == 3
    assert general(batch())["core"].shape == (16,)


def test_aitm_constraint_equals_its_formula() -> None:
    model = build_model("aitm", CARDS, 4, chain(3), {"constraint_weight": 0.3})
    outputs = model(batch())
    extra = model.auxiliary_losses(outputs)
    p = {k: torch.sigmoid(outputs[k]) for k in ("b0", "b1", "b2")}
    assert set(extra) == {"b1", "b2"}  # consecutive binary pairs; never the core
    torch.testing.assert_close(extra["b1"], 0.3 * torch.clamp(p["b1"] - p["b0"], min=0).mean())
    torch.testing.assert_close(extra["b2"], 0.3 * torch.clamp(p["b2"] - p["b1"], min=0).mean())
    assert len(model.attentions) == 1  # shared by all tasks, as in AITM_standard
    assert len(build_model("aitm", CARDS, 4, chain(3), {"share_attention": False}).attentions) == 3


def test_aitm_transfers_gradient_upstream() -> None:
    model = build_model("aitm", CARDS, 4, chain(2))
    model(batch())["core"].sum().backward()
    assert model.towers[0][0].weight.grad is not None  # no stop-gradient in AITM


@pytest.mark.parametrize("core_loss", ["mse", "ziln"])
def test_esmm_outputs_are_probability_products(core_loss: str) -> None:
    model = build_model("esmm", CARDS, 4, chain(3, core_loss))
    x = batch()
    z = model.conditional_logits(x)
    out = model(x)
    p = torch.ones(16)
    for name in ("b0", "b1", "b2"):
        p = p * torch.sigmoid(z[name])
        torch.testing.assert_close(torch.sigmoid(out[name]), p, rtol=1e-5, atol=1e-6)
    if core_loss == "mse":
        torch.testing.assert_close(out["core"], p * z["core"])
    else:
        torch.testing.assert_close(
            torch.sigmoid(out["core"][:, 0]), p * torch.sigmoid(z["core"][:, 0])
        )


def test_esmm_on_the_hybrid_chain_matches_a_hand_computed_case(monkeypatch) -> None:
    """model-spec §2.5 by hand: towers z1 = 0.3, z2 = -1.2, z_core = 5 give ŷ1 = σ(0.3),
    ŷ2 = σ(0.3)·σ(-1.2), ŷ_core = ŷ2·5, each supervised with the entire-space label; the core's
    MSE reaches z1 through the product, d ŷ_core / d z1 = ŷ_core·(1 - σ(0.3))."""
    import math

    tasks = TaskSpec(("click", "long_view"), "watch_time")
    model = build_model("esmm", CARDS, 4, tasks)
    z1, z2, zc = (torch.tensor([v], requires_grad=True) for v in (0.3, -1.2, 5.0))
    fixed = {"click": z1, "long_view": z2, "watch_time": zc}
    monkeypatch.setattr(model, "conditional_logits", lambda x, scale=None: fixed)
    out = model(batch(1))
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    click, long_view = sig(0.3), sig(0.3) * sig(-1.2)  # 0.574443, 0.132969
    assert float(torch.sigmoid(out["click"])) == pytest.approx(click, rel=1e-6)
    assert float(torch.sigmoid(out["long_view"])) == pytest.approx(long_view, rel=1e-6)
    assert float(out["watch_time"]) == pytest.approx(long_view * 5.0, rel=1e-6)
    y = {"click": torch.tensor([1.0]), "long_view": torch.tensor([0.0]),
         "watch_time": torch.tensor([2.0])}  # fmt: skip
    losses = task_losses(out, y, tasks)
    assert float(losses["click"]) == pytest.approx(-math.log(click), rel=1e-5)
    assert float(losses["long_view"]) == pytest.approx(-math.log(1 - long_view), rel=1e-5)
    assert float(losses["watch_time"]) == pytest.approx((long_view * 5 - 2) ** 2, rel=1e-5)
    out["watch_time"].sum().backward()
    assert float(z1.grad) == pytest.approx(long_view * 5 * (1 - click), rel=1e-5)
    assert float(zc.grad) == pytest.approx(long_view, rel=1e-5)


def test_model_without_shared_parameters_refuses_a_gradient_strategy() -> None:
    with pytest.raises(ValueError, match="shares no parameters"):
        build_model("dnn", CARDS, 4, chain(2), {"gradient": "pcgrad"})


def reference_pcgrad(grads: list[torch.Tensor], order: list[list[int]]) -> torch.Tensor:
    total = torch.zeros_like(grads[0])
    for i, g in enumerate(grads):
        g = g.clone()
        for j in order[i]:
            if j != i and float(g @ grads[j]) < 0:
                g = g - float(g @ grads[j]) / float(grads[j] @ grads[j]) * grads[j]
        total += g
    return total


def test_pcgrad_equals_reference_including_conflicts() -> None:
    g = torch.Generator().manual_seed(0)
    grads = torch.randn(3, 40, generator=g, dtype=torch.float64)
    grads[1] = -grads[0] + 0.2 * grads[1]  # a strong conflict
    combined, norms = pcgrad(grads)
    fixed = [list(range(3))] * 3
    torch.testing.assert_close(combined, reference_pcgrad(list(grads), fixed))
    assert norms[1, 1] != norms[1, 0]
    agree = grads.abs()  # all pairwise dots positive: nothing to project
    torch.testing.assert_close(pcgrad(agree)[0], agree.sum(0))
    torch.manual_seed(5)
    shuffled, _ = pcgrad(grads, shuffle=True)
    torch.manual_seed(5)
    orders = [torch.randperm(3).tolist() for _ in range(3)]
    torch.testing.assert_close(shuffled, reference_pcgrad(list(grads), orders))


def reference_metabalance(steps, beta, relax):
    """The official loop order (target first), without its defects; per-tensor numbers."""
    moving = None
    results = []
    for per_task in steps:  # per_task[i][k]: gradient of task i (core last) on tensor k
        order = [len(per_task) - 1, *range(len(per_task) - 1)]
        moving = moving or [[0.0] * len(per_task[0]) for _ in per_task]
        summed = [torch.zeros_like(t) for t in per_task[0]]
        for i in order:
            for k, grad in enumerate(per_task[i]):
                moving[i][k] = beta * moving[i][k] + (1 - beta) * float(grad.norm())
                ratio = moving[-1][k] / moving[i][k]
                summed[k] += relax * ratio * grad + (1 - relax) * grad
        results.append(summed)
    return results


def test_metabalance_equals_reference_over_steps() -> None:
    torch.manual_seed(0)
    model = build_model("metabalance", CARDS, 4, chain(2)).double()
    y = {k: v.double() for k, v in targets(32).items()}
    strategy = resolve("metabalance").strategy()
    assert isinstance(strategy, MetaBalance)
    shared = model.shared_parameters()
    steps, got = [], []
    for step in range(3):
        x = batch(32)
        x = x.roll(step, 0)
        losses = task_losses(model(x), y, model.tasks)
        flat = reference_task_grads(losses, shared)
        sizes = [p.numel() for p in shared]
        steps.append(
            [[t.view_as(p) for t, p in zip(f.split(sizes), shared, strict=True)] for f in flat]
        )
        model.zero_grad(set_to_none=True)
        losses = task_losses(model(x), y, model.tasks)
        strategy.backward(losses, shared, None)
        got.append([p.grad.clone() for p in shared])
    for mine, ref in zip(got, reference_metabalance(steps, 0.9, 0.7), strict=True):
        for a, b in zip(mine, ref, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_pcgrad_strategy_sets_shared_grads_and_plain_task_grads() -> None:
    torch.manual_seed(0)
    model = build_model("mmoe", CARDS, 4, chain(2), {"gradient": "pcgrad"})
    x, y = batch(), targets()
    shared = model.shared_parameters()
    losses = task_losses(model(x), y, model.tasks)
    expected, _ = pcgrad(torch.stack(reference_task_grads(losses, shared)))
    model.zero_grad(set_to_none=True)
    PCGrad().backward(task_losses(model(x), y, model.tasks), shared, None)
    torch.testing.assert_close(torch.cat([p.grad.reshape(-1) for p in shared]), expected)
    plain = model.task_towers.heads[0].weight.grad.clone()
    model.zero_grad(set_to_none=True)
    sum(task_losses(model(x), y, model.tasks).values()).backward()
    torch.testing.assert_close(model.task_towers.heads[0].weight.grad, plain)


@pytest.mark.parametrize("strategy", ["pcgrad", "metabalance"])
def test_general_strategies_on_htlnet_reach_the_shared_embedding(strategy: str) -> None:
    """Table 5's HTLNet-Gradient Surgery / HTLNet-MetaBalance: the strategy acts on the
    embedding through the engine's own step, exactly as on the plain graph."""
    from htl.train import train_step

    torch.manual_seed(0)
    model = build_model("htlnet", CARDS, 4, chain(2), {"gradient": strategy})
    x, y = batch(), targets()
    shared = model.shared_parameters()
    per_task = torch.stack(reference_task_grads(task_losses(model(x), y, model.tasks), shared))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # keep the weights as they are
    train_step(model, optimizer, resolve("htlnet", {"gradient": strategy}).strategy(), shared, x, y)
    got = model.embedding.weight.grad.reshape(-1)
    assert got.abs().sum() > 0
    if strategy == "pcgrad":
        torch.testing.assert_close(got, pcgrad(per_task)[0])
    else:  # first step: the moving averages are the norms themselves, scaled by (1 - beta)
        norms = per_task.norm(dim=1)
        scale = 0.7 * norms[-1] / norms + 0.3
        torch.testing.assert_close(got, (scale[:, None] * per_task).sum(0))
