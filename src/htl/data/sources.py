"""Event sources by name: each writes `events.parquet` + `schema.json` for labels_split."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pandas as pd

from htl.artifacts import EVENTS_FILE, SCHEMA_FILE, SUMMARY_FILE
from htl.config import DataConfig
from htl.data.labels import check_columns
from htl.data.schema import EventSchema
from htl.storage import atomic_directory, write_json

Source = Callable[[DataConfig], tuple[pd.DataFrame, EventSchema]]


def _synthetic(data: DataConfig) -> tuple[pd.DataFrame, EventSchema]:
    from htl.data.synthetic import PROFILES

    generate, schema = PROFILES[data.profile]
    events = generate(data.rows, seed=data.seed)
    schema = replace(schema, origin=f"synthetic:{data.profile}")
    check_columns(events, schema, schema.origin)
    return events, schema


def _kuairand(data: DataConfig) -> tuple[pd.DataFrame, EventSchema]:
    from htl.data.kuairand import read_kuairand

    return read_kuairand(data)


def _shoppers(data: DataConfig) -> tuple[pd.DataFrame, EventSchema]:
    from htl.data.shoppers import read_shoppers

    return read_shoppers(data)


def _events(data: DataConfig) -> tuple[pd.DataFrame, EventSchema]:
    from htl.data.events import read_events

    return read_events(data)


SOURCES: dict[str, Source] = {
    "synthetic": _synthetic,
    "kuairand": _kuairand,
    "acquire_valued_shoppers": _shoppers,
    "events": _events,
}


def ingest(data: DataConfig, out_dir: str | Path) -> dict[str, float]:
    """Read the configured source and write events + schema; returns the summary (rows, each
    chain step's rate, the core's mean and std) as flat metrics for tracking."""
    events, schema = SOURCES[data.source](data)
    summary = {"rows": float(len(events))}
    for name in schema.chain:
        summary[f"rate_{name}"] = float(events[name].mean())
    summary[f"mean_{schema.core}"] = float(events[schema.core].mean())
    summary[f"std_{schema.core}"] = float(events[schema.core].std(ddof=0))
    with atomic_directory(out_dir) as tmp:
        events.to_parquet(tmp / EVENTS_FILE, index=False)
        schema.save(tmp / SCHEMA_FILE)
        write_json(tmp / SUMMARY_FILE, summary)
    return summary
