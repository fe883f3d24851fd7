"""Measurements behind the defaults of the comparison (docs/datasets.md, docs/model.md): the
same library calls as the pipeline (ingest, labels_split with its references, train,
evaluate), on a synthetic profile, with variants of the data or training settings side by
side and every metric next to the Bayes, additive-only and trivial references.

    python -m bench.comparison encoding            # numeric encoding: buckets vs dense
    python -m bench.comparison leu                 # LEU τ schedules and noise
    python -m bench.comparison ceiling             # every model against the references
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
from pathlib import Path
from typing import Any

from htl.config import config_from_dict, deep_merge
from htl.data.prepare import prepare_splits
from htl.data.sources import ingest
from htl.evaluate import evaluate_model
from htl.train import train_model

log = logging.getLogger("bench.comparison")
KEYS = {
    "kuairand": ("click/auc", "long_view/auc", "watch_time/nrmse"),
    "kaggle": ("repurchase_1y/auc", "repurchase_1m/auc", "amount_1m/nrmse"),
    "product": ("click/auc", "purchase/auc", "amount/nrmse"),
}
BASE: dict[str, Any] = {
    "train": {"epochs": 4, "batch_size": 512, "lr": 0.002, "embed_dim": 8, "patience": 2,
              "device": "cpu"},
}  # fmt: skip


def measure(
    profile: str, rows: int, variants: dict[str, dict[str, Any]], models: list[str],
    seeds: list[int], workdir: Path,
) -> dict[str, Any]:  # fmt: skip
    """Test metrics per (variant, model): mean over seeds, and the references of its splits."""
    out: dict[str, Any] = {}
    for name, overrides in variants.items():
        raw = deep_merge(BASE, {"models": models, "register": {"model": models[0]},
                                "significance": {"reference": models[0]}, **overrides})  # fmt: skip
        raw = deep_merge(raw, {"data": {"profile": profile, "rows": rows, "seed": 0}})
        config = config_from_dict(raw, f"variant {name}")
        events, splits = workdir / name / "events", workdir / name / "splits"
        ingest(config.data, events)
        card = prepare_splits(events, splits, config.data)
        row: dict[str, Any] = {"references": card["references"]}
        for model in models:
            scores: dict[str, list[float]] = {}
            for seed in seeds:
                model_dir = workdir / name / f"{model}-{seed}"
                train_model(splits, model, seed, config.training_spec(model), model_dir)
                record = evaluate_model(model_dir, splits, workdir / name / f"eval-{model}-{seed}")
                for key, value in record.metrics.items():
                    scores.setdefault(key, []).append(value)
                leu = {k: v for k, v in record.history[-1].items() if k.startswith("leu/")}
                for key, value in leu.items():
                    scores.setdefault(key, []).append(value)
            row[model] = {k: statistics.fmean(v) for k, v in scores.items()}
            log.info("%s %s: %s", name, model, {k: round(row[model][k], 4) for k in KEYS[profile]})
        out[name] = row
    return out


def table(profile: str, results: dict[str, Any], extra: tuple[str, ...] = ()) -> str:
    keys = (*KEYS[profile], *extra)
    lines = ["| variant | model | " + " | ".join(keys) + " |", "|---|---|" + "---:|" * len(keys)]
    for variant, row in results.items():
        for model, metrics in row.items():
            if model == "references":
                continue
            cells = [f"{metrics[k]:.4f}" if k in metrics else "" for k in keys]
            lines.append(f"| {variant} | {model} | " + " | ".join(cells) + " |")
        for ref in ("bayes", "additive", "train_mean"):
            metrics = row["references"].get(ref, {})
            cells = [f"{metrics[k]:.4f}" if k in metrics else "" for k in keys]
            lines.append(f"| {variant} | *{ref}* | " + " | ".join(cells) + " |")
    return "\n".join(lines)


EXPERIMENTS = {
    "encoding": lambda: [
        (
            profile,
            {
                "buckets10": {"data": {"numeric_encoding": "bucketize", "buckets": 10}},
                "buckets50": {"data": {"numeric_encoding": "bucketize", "buckets": 50}},
                "dense": {"data": {"numeric_encoding": "dense"}},
            },
            ["dnn", "htlnet"],
            (),
        )
        for profile in ("kuairand", "kaggle", "product")
    ],  # fmt: skip
    "leu": lambda: [
        (
            "kuairand",
            {
                "step-paper": {"model_options": {"htlnet": {"tau_schedule": "step"}}},
                "run-end1": {"model_options": {"htlnet": {"tau_schedule": "run", "tau_end": 1.0}}},
                "run-end0.5": {
                    "model_options": {"htlnet": {"tau_schedule": "run", "tau_end": 0.5}}
                },
                "run-end1-noise": {
                    "model_options": {
                        "htlnet": {"tau_schedule": "run", "tau_end": 1.0, "leu_noise": "logistic"}
                    }
                },
            },
            ["htlnet"],
            ("leu/click/p05", "leu/click/p95", "leu/long_view/p05", "leu/long_view/p95", "leu/tau"),
        )
    ],  # fmt: skip
    "ceiling": lambda: [
        (
            "kuairand",
            {"default": {}},
            ["dnn", "shared_bottom", "mmoe", "ple", "esmm", "aitm", "htlnet"],
            (),
        )
    ],  # fmt: skip
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS))
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--models", nargs="+", help="instead of the experiment's models")
    parser.add_argument("--epochs", type=int, default=BASE["train"]["epochs"])
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("htl").setLevel(logging.WARNING)
    BASE["train"]["epochs"] = args.epochs
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for profile, variants, models, extra in EXPERIMENTS[args.experiment]():
            results[profile] = measure(
                profile, args.rows, variants, args.models or models, args.seeds,
                Path(tmp) / profile,
            )  # fmt: skip
            print(f"\n{profile}, {args.rows:,} rows, seeds {args.seeds}\n")
            print(table(profile, results[profile], extra))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
