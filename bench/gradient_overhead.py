"""Cost of HTLNet's gradient process: training-step samples/s, side by side on the same data.

Variants of the same HTLNet architecture, same batches, same engine step (`htl.train.
train_step`): without the process (one plain backward), with it on the fast single-backward
path, and with it on the T+1-pass reference path. Variants are interleaved round by round and
the median step time is reported, so background load hits them alike.
"""

from __future__ import annotations

import statistics
import time

import torch

from bench.data import synthetic_split
from htl.models.registry import resolve
from htl.train import train_step

VARIANTS = {
    "without the process": {"gradient": "none", "gradient_impl": "reference"},
    "with the process (fast)": {"gradient": "htl", "gradient_impl": "fast"},
    "with the process (reference, T+1 passes)": {"gradient": "htl", "gradient_impl": "reference"},
}


def run(rows: int, batch_size: int, rounds: int, steps: int, device: torch.device) -> dict:
    train, encoder, tasks = synthetic_split(rows, device)
    setups = {}
    for label, options in VARIANTS.items():
        torch.manual_seed(0)
        recipe = resolve("htlnet", options)
        model = recipe.build(encoder.cardinalities, 16, tasks).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        setups[label] = (model, optimizer, recipe.strategy(), model.shared_parameters())
    times: dict[str, list[float]] = {label: [] for label in VARIANTS}
    generator = torch.Generator(device=device).manual_seed(0)
    for round_ in range(rounds + 1):  # round 0 warms up
        order = torch.randperm(len(train), device=device, generator=generator)
        batches = [order[i * batch_size : (i + 1) * batch_size] for i in range(steps)]
        for label, (model, optimizer, strategy, shared) in setups.items():
            model.train()
            _sync(device)
            start = time.perf_counter()
            for idx in batches:
                y = {k: v[idx] for k, v in train.y.items()}
                train_step(model, optimizer, strategy, shared, train.x[idx], y)
            _sync(device)
            if round_:
                times[label].append((time.perf_counter() - start) / steps)
    rates = {label: batch_size / statistics.median(t) for label, t in times.items()}
    base = rates["without the process"]
    return {"rates": rates, "ratios": {k: v / base for k, v in rates.items()}, "rows": len(train)}


def report(result: dict, batch_size: int, device: torch.device) -> str:
    lines = [
        f"HTLNet training step, T=2 chain, batch {batch_size}, embed dim 16, device {device}, "
        f"{torch.get_num_threads()} threads",
        f"{'variant':<44} {'samples/s':>12} {'vs without':>11}",
    ]
    for label, rate in result["rates"].items():
        lines.append(f"{label:<44} {rate:>12,.0f} {result['ratios'][label]:>11.3f}")
    cost = 1 / result["ratios"]["with the process (fast)"] - 1
    lines.append(f"cost of the gradient process (fast path): {cost:+.1%} time per step")
    return "\n".join(lines)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
