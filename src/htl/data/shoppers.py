"""The `acquire_valued_shoppers` source: Kaggle's transactions as the ZILN recipe's samples.

One sample per (customer, company) over the chosen companies (model-spec §5.2): features from
the first purchase day (the highest-amount line's chain, dept, category, brand, productmeasure;
the company; log of that day's spend), chain repurchase within 1 year → within 1 month, core the
1-month repurchase amount. Returns (amount ≤ 0) are dropped first, as in the ZILN notebook.

The 350M-row file is read in chunks, twice (three times when picking the top N companies):
pass 1 finds each pair's first purchase date, pass 2 aggregates every line against it. Memory
grows with the number of (customer, company) pairs, not with the file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import numpy as np
import pandas as pd
from tqdm import tqdm

from htl.config import DataConfig
from htl.data.io import csv_header, expand, read_csv_chunks, require_columns
from htl.data.schema import EventSchema
from htl.errors import DataError

log = logging.getLogger(__name__)
Frame = TypeVar("Frame", pd.DataFrame, pd.Series)

COLUMNS = ["id", "chain", "dept", "category", "company", "brand", "date", "productmeasure",
           "purchaseamount"]  # fmt: skip
ATTRIBUTES = ["chain", "dept", "category", "brand", "productmeasure"]
KEY = ["id", "company"]
DTYPES = {"id": "int64", "chain": "int64", "dept": "int64", "category": "int64",
          "company": "int64", "brand": "int64", "productmeasure": "string",
          "purchaseamount": "string", "date": "string"}  # fmt: skip

#: `id` (the customer) stays in the events for tracing; as in ZILN it is not a feature.
SHOPPERS_SCHEMA = EventSchema(
    categorical=("company", *ATTRIBUTES),
    chain=("repurchase_1y", "repurchase_1m"),
    core="amount_1m",
    time="start_day",
    numeric=("log_calibration_value",),
    dataset="kaggle",
)


def read_shoppers(data: DataConfig) -> tuple[pd.DataFrame, EventSchema]:
    files = expand(str(data.path))
    if len(files) != 1:
        raise DataError(
            f"{data.path}: expected one transactions.csv(.gz), found {len(files)} files"
        )
    (uri,) = files
    require_columns(uri, COLUMNS, csv_header(uri))
    s = data.shoppers
    companies = list(s.companies) or top_companies(uri, s.top_companies, s.chunk_rows)
    log.info("acquire_valued_shoppers: companies %s", companies)
    starts = first_purchase(uri, companies, s.chunk_rows)
    if s.cohort is not None:
        lo, hi = (_day(pd.Series([d])).iloc[0] for d in s.cohort)
        starts = starts[(starts >= lo) & (starts < hi)]
    if starts.empty:
        raise DataError(f"{uri}: no customer of companies {companies} in the cohort {s.cohort}")
    frame = aggregate(uri, starts, s.chunk_rows, s.month_window)
    return frame, replace(SHOPPERS_SCHEMA, origin=uri)


def _chunks(uri: str, columns: list[str], chunk_rows: int, desc: str):
    dtypes = {c: DTYPES[c] for c in columns}
    for chunk in tqdm(read_csv_chunks(uri, columns, chunk_rows, dtypes), desc=desc, unit="chunk"):
        if "purchaseamount" in chunk:
            text = chunk["purchaseamount"]
            amount = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
            bad = ~np.isfinite(amount)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"{uri}: column 'purchaseamount' is {text.iloc[i]!r} at row {chunk.index[i]}; "
                    "expected a finite amount"
                )
            chunk = chunk.assign(purchaseamount=amount)
            chunk = chunk[amount > 0]  # returns and zero lines are not purchases
        yield chunk


def top_companies(uri: str, n: int, chunk_rows: int) -> list[int]:
    """The n companies with the most purchase lines (ties: the smaller id)."""
    counts: pd.Series | None = None
    for chunk in _chunks(uri, ["company", "purchaseamount"], chunk_rows, "count companies"):
        part = chunk["company"].value_counts()
        counts = part if counts is None else counts.add(part, fill_value=0)
    if counts is None or counts.empty:
        raise DataError(f"{uri}: no purchase lines (purchaseamount > 0)")
    ranked = counts.reset_index().sort_values(["count", "company"], ascending=[False, True])
    return [int(c) for c in ranked["company"].head(n)]


def first_purchase(uri: str, companies: list[int], chunk_rows: int) -> pd.Series:
    """Day number of each (id, company)'s first purchase."""

    def earliest(parts: pd.Series) -> pd.Series:
        return parts.groupby(level=KEY).min()

    starts: list[pd.Series] = []
    wanted = np.asarray(companies, dtype=np.int64)
    for chunk in _chunks(uri, ["id", "company", "date", "purchaseamount"], chunk_rows, "pass 1"):
        chunk = chunk[np.isin(chunk["company"].to_numpy(), wanted)]
        starts.append(_day(chunk["date"], uri).groupby([chunk["id"], chunk["company"]]).min())
        starts = _compact(starts, earliest)
    result = earliest(pd.concat(starts)) if starts else pd.Series(dtype=np.int64)
    if result.empty:
        raise DataError(f"{uri}: no purchase line of companies {companies}")
    return result.rename("start_day")


def aggregate(uri: str, starts: pd.Series, chunk_rows: int, month_window: str) -> pd.DataFrame:
    """Per pair: first-day spend and attributes, spend within 1 year and 1 month after."""
    wanted = starts.index.get_level_values("company").unique().to_numpy()
    sums: list[pd.DataFrame] = []
    firsts: list[pd.DataFrame] = []
    for chunk in _chunks(uri, COLUMNS, chunk_rows, "pass 2"):
        chunk = chunk[np.isin(chunk["company"].to_numpy(), wanted)]
        chunk = chunk.join(starts, on=KEY, how="inner")
        day = _day(chunk["date"], uri)
        offset = day - chunk["start_day"]
        amount = chunk["purchaseamount"]
        month_end = _month_end(chunk["start_day"], month_window)
        parts = pd.DataFrame(
            {
                "id": chunk["id"],
                "company": chunk["company"],
                "calibration_value": amount.where(offset == 0, 0.0),
                "value_1y": amount.where((offset > 0) & (offset <= 365), 0.0),
                "amount_1m": amount.where((offset > 0) & (day <= month_end), 0.0),
            }
        )
        sums = _compact([*sums, parts.groupby(KEY).sum()], _total)
        first = chunk[offset == 0]
        firsts = _compact([*firsts, first.loc[first.groupby(KEY)["purchaseamount"].idxmax()]],
                          _biggest_line)  # fmt: skip
    total = _total(pd.concat(sums))
    first_day = _biggest_line(pd.concat(firsts)).set_index(KEY)[ATTRIBUTES]
    out = total.join(first_day).join(starts).reset_index()
    out["productmeasure"] = out["productmeasure"].fillna("UNKNOWN")
    out["log_calibration_value"] = np.log(out["calibration_value"])
    out["repurchase_1y"] = (out["value_1y"] > 0).astype(np.int8)
    out["repurchase_1m"] = (out["amount_1m"] > 0).astype(np.int8)
    columns = ["id", *SHOPPERS_SCHEMA.features, *SHOPPERS_SCHEMA.targets, "start_day"]
    return out.sort_values(["start_day", "id", "company"], kind="stable")[columns].reset_index(
        drop=True
    )


def _total(parts: pd.DataFrame) -> pd.DataFrame:
    return parts.groupby(level=KEY).sum()


def _biggest_line(lines: pd.DataFrame) -> pd.DataFrame:
    """Each pair's highest-amount first-day line; the earlier line (file order) on ties."""
    ranked = lines.sort_values("purchaseamount", ascending=False, kind="stable")
    return ranked.drop_duplicates(KEY)


def _compact(parts: list[Frame], reduce: Callable[[Frame], Frame]) -> list[Frame]:
    """Per-chunk partial results, merged into one once they outgrow the merged result so far:
    memory stays near the number of pairs and every row is merged O(log chunks) times."""
    if len(parts) > 1 and sum(len(p) for p in parts[1:]) > len(parts[0]):
        return [reduce(pd.concat(parts))]
    return parts


def _day(dates: pd.Series, uri: str = "") -> pd.Series:
    """ISO dates as day numbers since 1970-01-01."""
    parsed = pd.to_datetime(dates, format="%Y-%m-%d", errors="coerce")
    if parsed.isna().any():
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise DataError(
            f"{uri}: column 'date' has {dates.iloc[row]!r} at row {dates.index[row]}; "
            "expected YYYY-MM-DD"
        )
    return pd.Series(parsed.to_numpy().astype("datetime64[D]").astype(np.int64), dates.index)


def _month_end(start_day: pd.Series, window: str) -> pd.Series:
    """The last day counted as "within 1 month" of the first purchase."""
    if window == "calendar":
        start = start_day.to_numpy().astype("datetime64[D]")
        end = (pd.DatetimeIndex(start) + pd.DateOffset(months=1)).to_numpy()
        return pd.Series(end.astype("datetime64[D]").astype(np.int64), start_day.index)
    return start_day + (30 if window == "30d" else 31)
