"""HPO with and without pruning, side by side: the same data, budget, sampler seed and model;
wall time of each and the best validation value each found.

python -m bench.hpo [--rows N] [--trials T] [--epochs E] [--model M] [--pruner median]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
import time
from pathlib import Path

from htl.config import HpoConfig, config_from_dict
from htl.data.prepare import prepare_splits
from htl.data.sources import ingest
from htl.hpo import run_worker, summarize
from htl.train import load_training_data

log = logging.getLogger("bench.hpo")


def run(rows: int, trials: int, epochs: int, model: str, pruner: str) -> dict[str, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = config_from_dict(
            {
                "name": "bench-hpo",
                "workdir": str(root / "work"),
                "models": [model],
                "seeds": [0],
                "significance": {"reference": model},
                "register": {"model": model},
                "data": {"rows": rows, "seed": 0},
                "hpo": {"trials": trials, "epochs": epochs, "startup_trials": 5},
            }
        )
        ingest(base.data, root / "events")
        prepare_splits(root / "events", root / "splits", base.data)
        data = load_training_data(root / "splits", base.train.core_loss, "cpu")
        results: dict[str, dict] = {"noise": {"std": seed_noise(base, model, data, epochs)}}
        for name in (pruner, "none"):
            hpo: HpoConfig = dataclasses.replace(base.hpo, pruner=name)
            config = dataclasses.replace(
                base, hpo=hpo, workdir=str(root / name), name=f"bench-{name}"
            )
            Path(config.workdir).mkdir(parents=True)
            started = time.perf_counter()
            study = run_worker(config, model, data)
            seconds = time.perf_counter() - started
            epochs_run = sum(t.user_attrs.get("htl.epochs", 0) for t in study.get_trials())
            results[name] = {"seconds": seconds, "epochs": epochs_run, **summarize(study)}
        return results


def seed_noise(config, model: str, data, epochs: int, seeds: int = 3) -> float:
    """The sample std over seeds of the default configuration's best validation objective:
    the scale below which two best values do not differ."""
    import statistics

    import torch

    from htl.models.registry import resolve
    from htl.train import fit

    params = dataclasses.replace(config.training_spec(model), epochs=epochs)
    values = []
    for seed in range(seeds):
        torch.manual_seed(seed)
        recipe = resolve(params.architecture, params.options)
        net = recipe.build(data.encoder.cardinalities, params.embed_dim, data.tasks)
        result = fit(net, data.train, data.valid, params, seed=seed, progress=False)
        values.append(result.best_valid[data.tasks.selection_metric])
    return statistics.stdev(values)


def report(results: dict[str, dict], rows: int, trials: int, epochs: int, model: str) -> str:
    noise = results.pop("noise")["std"]
    pruned, plain = (results[k] for k in results)
    names = list(results)
    lines = [
        f"HPO, {model}, {rows:,} rows, {trials} trials of up to {epochs} epochs, CPU",
        "| pruner | wall time | epochs trained | pruned trials | best valid objective |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in names:
        r = results[name]
        lines.append(
            f"| {name} | {r['seconds']:.1f} s | {r['epochs']} | {r['pruned']} | "
            f"{r['best_value']:.5f} |"
        )
    lines.append(
        f"ratio: {plain['seconds'] / pruned['seconds']:.2f}x less time with {names[0]}; "
        f"best value {pruned['best_value'] - plain['best_value']:+.5f} against none; "
        f"seed noise (std of the defaults' best value over 3 seeds) {noise:.5f}"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hpo", description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--model", default="shared_bottom")
    parser.add_argument("--pruner", default="median", choices=["median", "hyperband"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("htl").setLevel(logging.WARNING)
    results = run(args.rows, args.trials, args.epochs, args.model, args.pruner)
    log.info("%s", report(results, args.rows, args.trials, args.epochs, args.model))


if __name__ == "__main__":
    main()
