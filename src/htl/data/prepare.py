"""labels_split: raw events -> checked hybrid labels -> chronological splits -> encoded Parquet."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from htl.artifacts import (
    DATA_CARD_JSON,
    DATA_CARD_MD,
    EVENTS_FILE,
    FEATURES_FILE,
    RAW_TEST_FILE,
    REFERENCES_FILE,
    SCHEMA_FILE,
    SPLITS,
    split_path,
)
from htl.config import DataConfig
from htl.data.features import FeatureEncoder
from htl.data.labels import apply_chain, check_columns
from htl.data.schema import EventSchema, reference_column
from htl.data.split import chronological_split
from htl.data.table1 import TABLE1
from htl.errors import DataError
from htl.metrics import REFERENCE_LABELS, evaluate_predictions, trivial_references
from htl.storage import atomic_directory, atomic_write_text, write_json
from htl.tasks import TaskSpec


def prepare_splits(events_dir: str | Path, out_dir: str | Path, data: DataConfig) -> dict[str, Any]:
    """Check and split the events, fit encoders on train, write everything atomically."""
    events_path = Path(events_dir) / EVENTS_FILE
    schema_path = Path(events_dir) / SCHEMA_FILE
    for path in (events_path, schema_path):
        if not path.is_file():
            raise DataError(f"{path}: file not found; expected the ingest step's output")
    schema = EventSchema.load(schema_path)
    try:
        events = pd.read_parquet(events_path)
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise DataError(f"{events_path}: cannot be read as Parquet: {exc}") from exc
    where = f"{events_path} (from {schema.origin})" if schema.origin else str(events_path)
    check_columns(events, schema, where)
    totals = schema.summary(events)
    labelled, report = apply_chain(events, schema, data.on_violation, where)
    del events  # splits copy the rows; at 19M rows the original is worth freeing
    splits = chronological_split(labelled, schema.time, data.split, seed=data.seed)
    del labelled
    for name, frame in splits.items():
        if frame.empty:
            raise DataError(
                f"{where}: the {name} split is empty ({report.rows_out} rows, fractions "
                f"{list(data.split)}); expected rows in every split"
            )
    for column in schema.targets:
        values = splits["train"][column]
        if values.nunique() < 2:
            raise DataError(
                f"{where}: target '{column}' is constant ({values.iloc[0]}) in the train split; "
                "expected at least two distinct values to learn from"
            )
    encoder = FeatureEncoder.fit(
        splits["train"],
        list(schema.categorical),
        schema.chain,
        schema.core,
        data.min_count,
        numeric=list(schema.numeric),
        buckets=data.buckets,
        core_transform=data.core_transform,
        numeric_encoding=data.numeric_encoding,
    )
    references = _reference_metrics(schema, splits)
    card = _card(schema, report, splits, encoder, totals)
    card["references"] = references
    with atomic_directory(out_dir) as tmp:
        for name, frame in splits.items():
            targets = {c: frame[c].to_numpy(dtype=np.float32) for c in schema.targets}
            encoded = encoder.encode(frame).assign(**encoder.value_columns(frame), **targets)
            encoded.to_parquet(split_path(tmp, name), index=False)
        raw_columns = [*schema.features, *schema.targets]
        splits["test"][raw_columns].to_parquet(tmp / RAW_TEST_FILE, index=False)
        encoder.save(tmp / FEATURES_FILE)
        write_json(tmp / DATA_CARD_JSON, card)
        write_json(tmp / REFERENCES_FILE, {k: references[k] for k in schema.references})
        atomic_write_text(tmp / DATA_CARD_MD, _card_markdown(card))
    return card


def _reference_metrics(
    schema: EventSchema, splits: dict[str, pd.DataFrame]
) -> dict[str, dict[str, float]]:
    """Test metrics of the source's reference predictors (the Bayes and additive-only
    predictions of a synthetic profile) and of the constant predictors."""
    tasks = TaskSpec(schema.chain, schema.core)
    test, train = splits["test"], splits["train"]
    targets = {t: test[t].to_numpy(dtype=np.float64) for t in schema.targets}
    out = {
        name: evaluate_predictions(
            targets,
            {t: test[reference_column(name, t)].to_numpy(dtype=np.float64) for t in tasks.names},
            tasks,
        )
        for name in schema.references
    }
    trivial = trivial_references(
        targets, {t: train[t].to_numpy(dtype=np.float64) for t in schema.targets}, tasks
    )
    return {**out, **trivial}


def _card(schema, report, splits, encoder, totals) -> dict[str, Any]:
    card: dict[str, Any] = {
        "origin": schema.origin,
        "rows": report.rows_in,
        "chain": list(schema.chain),
        "core": schema.core,
        "core_transform": encoder.core_transform,
        "time": schema.time,
        "chain_violations": report.violations,
        "on_violation": report.action,
        "rows_after_labels": report.rows_out,
        "all": totals,
        "fields": dict(zip(encoder.fields, encoder.cardinalities, strict=False)),
        "numeric_buckets": {k: len(v) + 1 for k, v in encoder.boundaries.items()},
        "numeric_dense": {k: {"mean": m, "std": sd} for k, (m, sd) in encoder.dense.items()},
        "splits": {},
    }
    if schema.dataset in TABLE1:
        card["table1"] = _table1(schema, totals)
    for name, frame in splits.items():
        stats = schema.summary(frame)
        if schema.time:
            stats["time_min"] = int(frame[schema.time].min())
            stats["time_max"] = int(frame[schema.time].max())
        card["splits"][name] = stats
    return card


def _table1(schema: EventSchema, totals: dict[str, Any]) -> dict[str, Any]:
    """This data beside the paper's Table 1 row it mirrors: value, paper, relative gap."""
    paper = TABLE1[str(schema.dataset)]
    pairs = {
        "rows": (totals["rows"], paper.rows),
        **{
            f"rate_{c}": (totals[f"rate_{c}"], rate)
            for c, rate in zip(schema.chain, paper.rates, strict=True)
        },
        f"mean_{schema.core}": (totals[f"mean_{schema.core}"], paper.core_mean),
        f"std_{schema.core}": (totals[f"std_{schema.core}"], paper.core_std),
    }
    return {
        "dataset": paper.name,
        "rows": {k: {"data": d, "paper": p, "gap": d / p - 1} for k, (d, p) in pairs.items()},
    }


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:.4f}"


def _references_markdown(card: dict[str, Any]) -> list[str]:
    """The reference predictors' test metrics: the ceiling (when the source knows it) beside
    the constant predictions."""
    references = card.get("references", {})
    keys = [k for k in next(iter(references.values()), {}) if not k.endswith(("/rmse", "/mae"))]
    if not keys:
        return []
    lines = ["## Reference predictors on the test split", "",
             "| predictor | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]  # fmt: skip
    for name, metrics in references.items():
        cells = [f"{metrics[k]:.4f}" if math.isfinite(metrics.get(k, math.nan)) else "—"
                 for k in keys]  # fmt: skip
        lines.append(f"| {REFERENCE_LABELS.get(name, name)} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _card_markdown(card: dict[str, Any]) -> str:
    chain = " → ".join([*card["chain"], card["core"]])
    lines = [
        "# Data card",
        "",
        f"- source: {card['origin']}",
        f"- rows: {card['rows']} ({card['rows_after_labels']} after the chain check)",
        f"- chain: {chain} (core transform for training: {card['core_transform']}; metrics "
        "are on the raw scale)",
        f"- chain violations (a later step 1 with an earlier step 0): "
        f"{card['chain_violations']} (on_violation: {card['on_violation']})",
        f"- fields: {len(card['fields'])}, vocabulary sizes incl. OOV: "
        + ", ".join(f"{k}={v}" for k, v in card["fields"].items()),
        "",
    ]
    if "table1" in card:
        t = card["table1"]
        lines += [f"## Against the paper's Table 1 ({t['dataset']})", "",
                  "| statistic | this data | Table 1 | gap |", "|---|---:|---:|---:|"]  # fmt: skip
        for key, row in t["rows"].items():
            lines.append(
                f"| {key} | {_number(row['data'])} | {_number(row['paper'])} | {row['gap']:+.1%} |"
            )
        lines += [""]
    lines += _references_markdown(card)
    lines += ["## Splits", ""]
    columns = [k for k in card["splits"]["train"] if k not in ("time_min", "time_max")]
    lines.append("| split | " + " | ".join(columns) + " |")
    lines.append("|---|" + "---|" * len(columns))
    for name in SPLITS:
        stats = card["splits"][name]
        cells = [
            f"{stats[c]:.4f}" if isinstance(stats[c], float) else str(stats[c]) for c in columns
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
