"""Event sources by name: each writes `events.parquet` + `schema.json` for labels_split."""

from __future__ import annotations

import importlib
from dataclasses import replace
from pathlib import Path

import pandas as pd

from htl.artifacts import EVENTS_FILE, SCHEMA_FILE, SUMMARY_FILE
from htl.config import DataConfig
from htl.data.labels import check_columns
from htl.data.schema import EventSchema
from htl.storage import atomic_directory, write_json

#: `data.source` -> the reader of that source, `(module, function)`, imported when used.
SOURCES = {
    "kuairand": ("htl.data.kuairand", "read_kuairand"),
    "acquire_valued_shoppers": ("htl.data.shoppers", "read_shoppers"),
    "events": ("htl.data.events", "read_events"),
}


def read_source(data: DataConfig) -> tuple[pd.DataFrame, EventSchema]:
    """The configured source's events, checked against its schema."""
    if data.source != "synthetic":
        module, function = SOURCES[data.source]
        return getattr(importlib.import_module(module), function)(data)
    from htl.data.synthetic import PROFILES

    generate, schema = PROFILES[data.profile]
    events = generate(data.rows, seed=data.seed)
    schema = replace(schema, origin=f"synthetic:{data.profile}")
    check_columns(events, schema, schema.origin)
    return events, schema


def ingest(data: DataConfig, out_dir: str | Path) -> dict[str, float]:
    """Read the configured source and write events + schema; returns the summary (rows, each
    chain step's rate, the core's mean and std) as flat metrics for tracking."""
    events, schema = read_source(data)
    summary = {k: float(v) for k, v in schema.summary(events).items()}
    with atomic_directory(out_dir) as tmp:
        events.to_parquet(tmp / EVENTS_FILE, index=False)
        schema.save(tmp / SCHEMA_FILE)
        write_json(tmp / SUMMARY_FILE, summary)
    return summary
