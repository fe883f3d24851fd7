"""Training throughput of every registered model through the engine, on the same data.

Each model trains one epoch (`htl.train.fit`, validation included) on the same synthetic
KuaiRand-profile split; samples/s is the best of the repeats, with its ratio to the fastest.
"""

from __future__ import annotations

import time

import torch

from bench.data import synthetic_split
from htl.config import TrainSpec
from htl.models.registry import MODELS, build_model
from htl.train import fit


def run(rows: int, batch_size: int, repeats: int, device: torch.device) -> dict[str, float]:
    train, encoder, tasks = synthetic_split(rows, device)
    valid, _, _ = synthetic_split(rows, device, "valid")
    rates = {}
    for name in MODELS:
        params = TrainSpec(
            epochs=1, batch_size=batch_size, lr=1e-3, embed_dim=8, patience=1, architecture=name
        )
        best = float("inf")
        for repeat in range(repeats):
            torch.manual_seed(repeat)
            model = build_model(name, encoder.cardinalities, 8, tasks).to(device)
            start = time.perf_counter()
            fit(model, train, valid, params, seed=repeat, progress=False)
            if device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        rates[name] = len(train) / best
    return rates


def report(rates: dict[str, float], rows: int, batch_size: int, device: torch.device) -> str:
    fastest = max(rates.values())
    lines = [
        f"Engine throughput, 1 epoch incl. validation, {rows:,} rows, batch {batch_size}, "
        f"device {device}, {torch.get_num_threads()} threads",
        f"{'model':<16} {'samples/s':>12} {'vs fastest':>11}",
    ]
    lines += [f"{m:<16} {r:>12,.0f} {r / fastest:>11.2f}" for m, r in rates.items()]
    return "\n".join(lines)
