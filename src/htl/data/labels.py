"""The hybrid label chain: binary steps y1 >= y2 >= ... >= yT, then a continuous core target."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from htl.data.schema import EventSchema
from htl.errors import DataError, closest

FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class LabelReport:
    """What the chain check found and did."""

    rows_in: int
    violations: int
    action: str
    rows_out: int


def check_columns(frame: pd.DataFrame, schema: EventSchema, where: str) -> None:
    """Every schema column present; features hashable, targets numeric and finite."""
    needed = [
        *schema.features,
        *schema.targets,
        *([schema.time] if schema.time else []),
        *schema.reference_columns,
    ]
    for column in needed:
        if column not in frame.columns:
            close = closest(column, frame.columns)
            hint = f" (found '{close}': misspelled?)" if close else ""
            raise DataError(
                f"{where}: missing column '{column}'{hint}; columns: {list(frame.columns)}"
            )
    for column in schema.targets:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            value, row = _first_non_number(frame[column])
            raise DataError(
                f"{where}: column '{column}' has dtype {frame[column].dtype}; expected numbers "
                f"(first bad value {value!r} at row {row})"
            )
        values = frame[column].to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{where}: column '{column}' has {int(bad.sum())} non-finite values "
                f"(first at row {row}: {values[row]}); expected finite numbers"
            )
        _within_float32(values, f"{where}: column '{column}'")
    for column in schema.chain:
        values = frame[column].to_numpy(dtype=np.float64)
        bad = (values != 0) & (values != 1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{where}: column '{column}' has value {values[row]} at row {row}; expected 0 or 1"
            )
    for column in schema.numeric:  # missing values are allowed: they encode as OOV
        if not pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(
            frame[column]
        ):
            value, row = _first_non_number(frame[column])
            raise DataError(
                f"{where}: numeric feature '{column}' has dtype {frame[column].dtype}; expected "
                f"numbers (first bad value {value!r} at row {row})"
            )
        values = frame[column].to_numpy(dtype=np.float64)
        infinite = np.isinf(values)
        if infinite.any():
            row = int(np.flatnonzero(infinite)[0])
            raise DataError(
                f"{where}: numeric feature '{column}' has value {values[row]} at row {row}; "
                "expected finite numbers (a missing value is fine: it encodes as OOV)"
            )
        _within_float32(values, f"{where}: numeric feature '{column}'")
    if schema.time and frame[schema.time].isna().any():
        row = int(np.flatnonzero(frame[schema.time].isna().to_numpy())[0])
        raise DataError(
            f"{where}: time column '{schema.time}' is missing at row {row}; expected a time on "
            "every row"
        )
    if schema.time and pd.api.types.is_float_dtype(frame[schema.time]):
        times = frame[schema.time].to_numpy(dtype=np.float64)
        bad = ~np.isfinite(times)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{where}: time column '{schema.time}' has value {times[row]} at row {row}; "
                "expected a finite time"
            )
    core = frame[schema.core].to_numpy(dtype=np.float64)
    if (core < 0).any():
        row = int(np.flatnonzero(core < 0)[0])
        raise DataError(
            f"{where}: column '{schema.core}' has negative value {core[row]} at row {row}; "
            "expected amounts >= 0"
        )


def _first_non_number(column: pd.Series) -> tuple[object, int]:
    """The first present value that is not a number, and its row."""
    bad = pd.to_numeric(column, errors="coerce").isna() & column.notna()
    rows = np.flatnonzero(bad.to_numpy())
    row = int(rows[0]) if len(rows) else 0
    return column.iloc[row], row


def _within_float32(values: np.ndarray, what: str) -> None:
    """Finite values that would overflow the float32 they are stored in (1e300 -> inf)."""
    beyond = np.abs(np.nan_to_num(values)) > FLOAT32_MAX
    if beyond.any():
        row = int(np.flatnonzero(beyond)[0])
        raise DataError(
            f"{what} has value {values[row]} at row {row}, beyond float32 (|x| <= "
            f"{FLOAT32_MAX:.3g}), the type it is trained in; expected smaller numbers"
        )


def apply_chain(
    frame: pd.DataFrame, schema: EventSchema, on_violation: str, where: str
) -> tuple[pd.DataFrame, LabelReport]:
    """Enforce y_t <= y_{t-1}: `error` stops, `repair` lifts earlier steps, `drop` removes rows."""
    chain = frame[list(schema.chain)].to_numpy(dtype=np.int8)
    broken = (
        (np.diff(chain, axis=1) > 0).any(axis=1)
        if chain.shape[1] > 1
        else np.zeros(len(frame), bool)
    )
    count = int(broken.sum())
    if count and on_violation == "error":
        row = int(np.flatnonzero(broken)[0])
        step = int(np.flatnonzero(np.diff(chain[row]) > 0)[0])
        earlier, later = schema.chain[step], schema.chain[step + 1]
        raise DataError(
            f"{where}: {count} rows break the chain; first at row {row}: "
            f"'{later}'=1 while '{earlier}'=0; expected each step <= the one before "
            "(set data.on_violation to repair or drop to accept them)"
        )
    out = frame
    if count and on_violation == "repair":
        repaired = np.maximum.accumulate(chain[:, ::-1], axis=1)[:, ::-1]
        out = frame.copy()
        out[list(schema.chain)] = repaired
    elif count and on_violation == "drop":
        out = frame.loc[~broken].reset_index(drop=True)
    return out, LabelReport(len(frame), count, on_violation, len(out))
