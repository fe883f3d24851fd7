"""Our engine against torch-rechub and DeepCTR-Torch, and against a minimal hand-written loop.

Same data (the synthetic KuaiRand profile: 12 categorical fields, click → long view → watch
time), same embedding dim (8), same layer sizes, batch and optimiser (Adam, lr 1e-3). Each
peer is driven the way its README does it, because that is what its users run:

- torch-rechub 0.9.0: `SparseFeature`s, `DataGenerator(x, y).generate_dataloader(...)` (a
  DataLoader over a per-sample dict dataset), `MTLTrainer(...)`; one epoch of its training
  loop (`train_one_epoch`, the loop its `fit` runs) is timed.
- DeepCTR-Torch 0.3.0: `SparseFeat`s, `model.compile("adam", loss=[...])`,
  `model.fit(x, y, batch_size, epochs=1)`.
- htl: one epoch of the engine's loop (`htl.train.run_epoch`: tensors on the device, a
  randperm and slices, the gradient strategy, losses kept on the device).
- hand-written: the same model object, a randperm, slices, forward, summed losses, backward,
  Adam step, nothing else.

Only training is timed (no validation pass); runners take turns round by round and the best
of the repeats is kept. The peers
are installed in the benchmark's own directory (`make bench` puts them in .bench-peers/ and on
PYTHONPATH), never as project dependencies. torch-rechub's AITM has sigmoid outputs for every
task, so its "regression" head is scored through a sigmoid: the compute is the same, the
model is not a sensible regressor, and only its speed is compared. ESMM is not compared:
both peers' ESMM is the two-task click/conversion form, not the hybrid chain.
"""

from __future__ import annotations

import importlib.util
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from bench.data import synthetic_split
from htl.models.registry import build_model, resolve
from htl.train import SplitTensors, run_epoch

EMBED = 8
LR = 1e-3
#: our model name -> (our tower_dims, our options); the peers are configured to the same sizes
MODELS = {
    "shared_bottom": ((128, 64, 32), {}),
    "mmoe": ((128, 64, 32), {"experts": 8}),
    "ple": ((128, 128, 32), {}),  # the peers' PLE experts have one width at every level
    "aitm": ((128, 64, 32), {}),
    "metabalance": ((128, 64, 32), {}),
    "dnn": ((128, 64, 32), {}),
    "adatt": ((128, 64, 32), {}),
    "esmm": ((128, 64, 32), {}),
    "htlnet": ((128, 64, 32), {"gradient": "none"}),  # the process's cost: gradient_overhead
}
#: torch-rechub 0.9.0's MetaBalance (`adaptive_params={"method": "metabalance"}`) cannot run:
#: its `train_one_epoch` never assigns `loss` on that path (UnboundLocalError), so MB has no peer.
RECHUB = {"shared_bottom", "mmoe", "ple", "aitm"}
DEEPCTR = {"shared_bottom", "mmoe", "ple"}


def available() -> bool:
    return all(importlib.util.find_spec(m) for m in ("torch_rechub", "deepctr_torch"))


def run(rows: int, batch_size: int, repeats: int) -> dict[str, dict[str, float]]:
    torch.manual_seed(0)
    train, encoder, tasks = synthetic_split(rows, torch.device("cpu"))
    x_np = {f: train.x[:, i].numpy().astype(np.int64) for i, f in enumerate(encoder.fields)}
    y_np = np.stack([train.y[t].numpy() for t in tasks.names], 1)
    cards = dict(zip(encoder.fields, encoder.cardinalities, strict=True))
    results: dict[str, dict[str, float]] = {}
    for name, (towers, options) in MODELS.items():
        runners: dict[str, Callable[[], None]] = {
            "htl": _ours(name, towers, options, train, encoder.cardinalities, tasks, batch_size),
            "hand-written": _hand(
                name, towers, options, train, encoder.cardinalities, tasks, batch_size
            ),
        }
        if name in RECHUB:
            runners["torch-rechub"] = _rechub(name, cards, x_np, y_np, batch_size)
        if name in DEEPCTR:
            runners["DeepCTR-Torch"] = _deepctr(name, cards, x_np, y_np, batch_size)
        best = dict.fromkeys(runners, float("inf"))
        for _ in range(repeats):  # round-robin, so background load hits every runner alike
            for label, fn in runners.items():
                start = time.perf_counter()
                fn()
                best[label] = min(best[label], time.perf_counter() - start)
        results[name] = {label: len(train) / seconds for label, seconds in best.items()}
    return results


def report(results: dict[str, dict[str, float]], rows: int, batch_size: int) -> str:
    lines = [
        f"Training samples/s, one epoch, {rows:,} rows, batch {batch_size}, CPU "
        f"{torch.get_num_threads()} threads",
        f"{'model':<14} {'htl':>10} {'hand':>10} {'rechub':>10} {'deepctr':>10} "
        f"{'htl/best peer':>14} {'htl/hand':>9}",
    ]
    for name, r in results.items():
        peers = [r[k] for k in ("torch-rechub", "DeepCTR-Torch") if k in r]
        cells = [
            f"{r[k]:>10,.0f}" if k in r else f"{'-':>10}" for k in ("torch-rechub", "DeepCTR-Torch")
        ]
        vs_peer = f"{r['htl'] / max(peers):>14.2f}" if peers else f"{'-':>14}"
        lines.append(
            f"{name:<14} {r['htl']:>10,.0f} {r['hand-written']:>10,.0f} {' '.join(cells)} "
            f"{vs_peer} {r['htl'] / r['hand-written']:>9.2f}"
        )
    return "\n".join(lines)


def _ours(name, towers, options, train: SplitTensors, cards, tasks, batch_size):
    def epoch() -> None:
        recipe = resolve(name, options)
        model = recipe.build(cards, EMBED, tasks, towers)
        optimizer = torch.optim.Adam(model.parameters(), lr=LR)
        generator = torch.Generator().manual_seed(0)
        strategy, shared = recipe.strategy(), model.shared_parameters()
        run_epoch(model, optimizer, strategy, shared, train, batch_size, generator)

    return epoch


def _hand(name, towers, options, train: SplitTensors, cards, tasks, batch_size):
    """Plain summed-loss training of the same architecture (MetaBalance's strategy is not
    part of it, so for `metabalance` the ratio also shows that strategy's cost)."""
    name = "shared_bottom" if name == "metabalance" else name

    def epoch() -> None:
        model = build_model(name, cards, EMBED, tasks, options, towers)
        optimizer = torch.optim.Adam(model.parameters(), lr=LR)
        order = torch.randperm(len(train))
        ys = [train.y[t] for t in tasks.names]
        for start in range(0, len(train), batch_size):
            idx = order[start : start + batch_size]
            out = model(train.x[idx])
            loss = F.mse_loss(out[tasks.core], ys[-1][idx])
            for t, task in enumerate(tasks.chain):
                loss = loss + F.binary_cross_entropy_with_logits(out[task], ys[t][idx])
            for extra in model.auxiliary_losses(out).values():  # AITM's constraint
                loss = loss + extra
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return epoch


def _rechub(name, cards, x, y, batch_size):
    from torch_rechub.basic.features import SparseFeature
    from torch_rechub.models.multi_task import AITM, MMOE, PLE, SharedBottom
    from torch_rechub.trainers import MTLTrainer
    from torch_rechub.utils.data import DataGenerator

    task_types = ["classification", "classification", "regression"]
    towers = [{"dims": [32]}] * 3

    def epoch() -> None:
        features = [SparseFeature(f, vocab_size=c, embed_dim=EMBED) for f, c in cards.items()]
        if name == "shared_bottom":
            model = SharedBottom(features, task_types, {"dims": [128, 64]}, towers)
        elif name == "mmoe":
            model = MMOE(features, task_types, 8, {"dims": [128, 64]}, towers)
        elif name == "ple":
            model = PLE(features, task_types, 2, 1, 1, {"dims": [128]}, towers)
        else:
            model = AITM(features, 3, {"dims": [128, 64, 32]}, [{"dims": []}] * 3)
        train_dl, _, _ = DataGenerator(x, y).generate_dataloader(
            x_val=x, y_val=y, x_test=x, y_test=y, batch_size=batch_size
        )
        with tempfile.TemporaryDirectory() as tmp:
            trainer = MTLTrainer(
                model, task_types=task_types, optimizer_params={"lr": LR, "weight_decay": 0},
                n_epoch=1, device="cpu", model_path=tmp,
            )  # fmt: skip
            trainer.train_one_epoch(train_dl)

    return epoch


def _deepctr(name, cards, x, y, batch_size):
    from deepctr_torch.inputs import SparseFeat
    from deepctr_torch.models.multitask import MMOE, PLE, SharedBottom

    kwargs = {
        "task_types": ("binary", "binary", "regression"),
        "task_names": ("click", "long_view", "watch_time"),
        "device": "cpu",
    }

    def epoch() -> None:
        columns = [SparseFeat(f, c, embedding_dim=EMBED) for f, c in cards.items()]
        if name == "shared_bottom":
            model = SharedBottom(columns, (128, 64), (32,), **kwargs)
        elif name == "mmoe":
            model = MMOE(columns, 8, (128, 64), (), (32,), **kwargs)
        else:
            model = PLE(columns, 1, 1, 2, (128,), (), (32,), **kwargs)
        model.compile("adam", loss=["binary_crossentropy", "binary_crossentropy", "mse"])
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)

    return epoch
