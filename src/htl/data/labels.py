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
        what = f"{where}: column '{column}'"
        values = _numbers(frame[column], what, booleans=True)
        _refuse(what, values, ~np.isfinite(values), "has {count} non-finite values (first at "
                "row {row}: {value}); expected finite numbers")  # fmt: skip
        _within_float32(values, what)
    for column in schema.chain:
        values = frame[column].to_numpy(dtype=np.float64)
        _refuse(f"{where}: column '{column}'", values, (values != 0) & (values != 1),
                "has value {value} at row {row}; expected 0 or 1")  # fmt: skip
    for column in schema.numeric:  # missing values are allowed: they encode as OOV
        what = f"{where}: numeric feature '{column}'"
        values = _numbers(frame[column], what, booleans=False)
        _refuse(what, values, np.isinf(values), "has value {value} at row {row}; expected "
                "finite numbers (a missing value is fine: it encodes as OOV)")  # fmt: skip
        _within_float32(values, what)
    if schema.time:
        what = f"{where}: time column '{schema.time}'"
        missing = frame[schema.time].isna().to_numpy()
        _refuse(what, missing, missing, "is missing at row {row}; expected a time on every row")
        if pd.api.types.is_float_dtype(frame[schema.time]):
            times = frame[schema.time].to_numpy(dtype=np.float64)
            _refuse(what, times, ~np.isfinite(times),
                    "has value {value} at row {row}; expected a finite time")  # fmt: skip
    core = frame[schema.core].to_numpy(dtype=np.float64)
    _refuse(f"{where}: column '{schema.core}'", core, core < 0,
            "has negative value {value} at row {row}; expected amounts >= 0")  # fmt: skip


def _refuse(what: str, values: np.ndarray, bad: np.ndarray, problem: str) -> None:
    """A DataError `<what> <problem>` at the first row where `bad` holds; `problem` may name
    `{row}`, `{value}` (the value there) and `{count}` (how many rows are bad)."""
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        detail = problem.format(row=row, value=values[row], count=int(bad.sum()))
        raise DataError(f"{what} {detail}")


def _numbers(column: pd.Series, what: str, booleans: bool) -> np.ndarray:
    """The column as float64, or a DataError naming its first value that is not a number."""
    if not pd.api.types.is_numeric_dtype(column) or (
        not booleans and pd.api.types.is_bool_dtype(column)
    ):
        bad = pd.to_numeric(column, errors="coerce").isna() & column.notna()
        rows = np.flatnonzero(bad.to_numpy())
        row = int(rows[0]) if len(rows) else 0
        raise DataError(
            f"{what} has dtype {column.dtype}; expected numbers (first bad value "
            f"{column.iloc[row]!r} at row {row})"
        )
    return column.to_numpy(dtype=np.float64)


def _within_float32(values: np.ndarray, what: str) -> None:
    """Finite values that would overflow the float32 they are stored in (1e300 -> inf)."""
    _refuse(what, values, np.abs(np.nan_to_num(values)) > FLOAT32_MAX, "has value {value} at "
            f"row {{row}}, beyond float32 (|x| <= {FLOAT32_MAX:.3g}), the type it is trained "
            "in; expected smaller numbers")  # fmt: skip


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
