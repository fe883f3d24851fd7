"""Training-step throughput of every registered model, side by side on the same data.

Each model trains one epoch through the engine (`htl.train.fit`) on the same synthetic
KuaiRand-profile split; samples/s is reported with its ratio to the fastest model. HTLNet is
also measured without its gradient process, so the cost of Algorithm 1 shows as a ratio.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch

from htl.config import DataConfig
from htl.data.features import FeatureEncoder
from htl.data.prepare import FEATURES_FILE, prepare_splits
from htl.data.sources import ingest
from htl.models.registry import MODEL_BUILDERS, build_model
from htl.tasks import TaskSpec
from htl.train import TrainParams, fit, load_split, resolve_device

VARIANTS = [(name, {}) for name in MODEL_BUILDERS] + [("htlnet", {"gradient": "none"})]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        ingest(DataConfig(rows=args.rows), Path(tmp) / "events")
        prepare_splits(Path(tmp) / "events", Path(tmp) / "splits", DataConfig())
        encoder = FeatureEncoder.load(Path(tmp) / "splits" / FEATURES_FILE)
        train = load_split(Path(tmp) / "splits", "train", encoder, device)
        valid = load_split(Path(tmp) / "splits", "valid", encoder, device)
    tasks = TaskSpec(encoder.chain, encoder.core)
    params = TrainParams(epochs=1, batch_size=args.batch_size, lr=1e-3, embed_dim=8, patience=1)
    results = {}
    for name, options in VARIANTS:
        label = name + (
            "" if not options else f" ({', '.join(f'{k}={v}' for k, v in options.items())})"
        )
        best = float("inf")
        for repeat in range(args.repeats):  # min over repeats: the least-disturbed run
            torch.manual_seed(repeat)
            model = build_model(name, encoder.cardinalities, 8, tasks, options).to(device)
            start = time.perf_counter()
            fit(model, train, valid, params, seed=repeat, progress=False)
            if device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        results[label] = len(train) / best
    fastest = max(results.values())
    print(
        f"\nTraining throughput, 1 epoch incl. validation, {len(train):,} rows, "
        f"batch {args.batch_size}, device {device}, {torch.get_num_threads()} threads"
    )
    print(f"{'model':<28} {'samples/s':>12} {'vs fastest':>11}")
    for label, rate in results.items():
        print(f"{label:<28} {rate:>12,.0f} {rate / fastest:>11.2f}")
    htl = results["htlnet"] / results["htlnet (gradient=none)"]
    print(
        f"\nHTLNet with its gradient process (T+1 autograd reference form): "
        f"{htl:.2f}x the samples/s without it"
    )


if __name__ == "__main__":
    main()
