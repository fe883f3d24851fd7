"""The `events` source: any event table whose column roles the config declares.

CSV, gzip CSV or Parquet; one file, a directory of parts or a glob; local or gs://. Each file
is checked on its own, so an error names the file, the column and the value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from htl.config import DataConfig
from htl.data.io import expand, read_table
from htl.data.labels import check_columns
from htl.data.schema import EventSchema
from htl.errors import DataError


def read_events(data: DataConfig) -> tuple[pd.DataFrame, EventSchema]:
    """Every file under `data.path`, only the declared columns, checked and concatenated."""
    roles = {k: v for k, v in vars(data.events).items() if k != "format"}
    schema = EventSchema(**roles, origin=str(data.path))
    columns = [*schema.features, *schema.targets, *([schema.time] if schema.time else [])]
    parts = []
    for uri in expand(str(data.path)):
        frame = read_table(uri, columns, data.events.format)
        if schema.time:
            frame[schema.time] = time_values(frame[schema.time], uri, schema.time)
        check_columns(frame, schema, uri)
        parts.append(frame[columns])
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    if frame.empty:
        raise DataError(f"{data.path}: no rows; expected events")
    return frame, schema


def time_values(column: pd.Series, where: str, name: str) -> pd.Series:
    """Numbers as they are (epoch ms, days, ...); dates and timestamps as epoch milliseconds."""
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column):
        return column
    try:
        stamps = pd.to_datetime(column, utc=True, format="mixed")
    except (ValueError, TypeError) as exc:
        raise DataError(
            f"{where}: column '{name}' has a value that is neither a number nor a date "
            f"({exc}); expected a time"
        ) from exc
    if stamps.isna().any():
        row = int(np.flatnonzero(stamps.isna().to_numpy())[0])
        raise DataError(
            f"{where}: column '{name}' is missing at row {row}; expected a time on every row"
        )
    naive = stamps.dt.tz_localize(None).to_numpy()  # UTC wall time
    return pd.Series(naive.astype("datetime64[ms]").astype(np.int64), column.index)
