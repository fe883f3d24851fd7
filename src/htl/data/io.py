"""Reading raw tables where they live: a local file, directory or glob, or the same on gs://.

`gs://` goes through the storage layer (`htl.storage`). CSV (plain or
gzip) and Parquet are told apart by suffix unless a format is given. Every failure names the
file it came from.
"""

from __future__ import annotations

import csv
import fnmatch
import glob
import gzip
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from htl.errors import DataError, closest
from htl.storage import exists, gcs_list, is_gcs, open_binary, split_gcs

TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
GLOB_CHARS = "*?["


def table_format(uri: str, declared: str = "auto") -> str:
    """csv or parquet: the declared format, else the file's suffix."""
    if declared != "auto":
        return declared
    name = uri.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".csv.gz", ".tsv", ".gz")):
        return "csv"
    raise DataError(f"{uri}: cannot tell the format from the name; expected .csv, .csv.gz or "
                    ".parquet, or set the format")  # fmt: skip


def expand(uri: str) -> list[str]:
    """The table files a path names: itself, the table files under a directory (sorted, e.g.
    Parquet parts), or a glob's matches. Raises DataError when nothing is there."""
    files = _expand_gcs(uri) if is_gcs(uri) else _expand_local(uri)
    if not files:
        raise DataError(f"{uri}: no such file, or no .csv/.csv.gz/.parquet files under it")
    return files


def _expand_local(uri: str) -> list[str]:
    if any(c in uri for c in GLOB_CHARS):
        return sorted(p for p in glob.glob(uri) if Path(p).is_file())
    path = Path(uri)
    if path.is_dir():
        return sorted(str(p) for p in path.rglob("*") if p.is_file() and _is_table(p.name))
    return [str(path)] if path.is_file() else []


def _expand_gcs(uri: str) -> list[str]:
    bucket, key = split_gcs(uri)
    if any(c in key for c in GLOB_CHARS):
        prefix = key[: min(key.index(c) for c in GLOB_CHARS if c in key)]
        names = gcs_list(uri, prefix)
        return sorted(f"gs://{bucket}/{n}" for n in names if fnmatch.fnmatchcase(n, key))
    if key and exists(uri):
        return [uri]
    names = gcs_list(uri, key.rstrip("/") + "/" if key else "")
    return sorted(f"gs://{bucket}/{n}" for n in names if _is_table(n.rsplit("/", 1)[-1]))


def _is_table(name: str) -> bool:
    """A table file by suffix; hidden and temporary files (`.x`, `_SUCCESS`) are not."""
    return name.lower().endswith(TABLE_SUFFIXES) and not name.startswith((".", "_"))


def read_table(
    uri: str,
    columns: Sequence[str] | None = None,
    fmt: str = "auto",
    dtype: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """One file as a DataFrame, only `columns` when given (each must be present)."""
    if table_format(uri, fmt) == "parquet":
        frame = _read_parquet(uri, columns)
    else:
        require_columns(uri, columns, csv_header(uri))
        frame = next(read_csv_chunks(uri, columns, None, dtype))
    if frame.empty:
        raise DataError(f"{uri}: no rows (a header alone); expected data rows")
    return frame


def _read_parquet(uri: str, columns: Sequence[str] | None) -> pd.DataFrame:
    try:
        if is_gcs(uri):
            with open_binary(uri) as raw:
                source: Any = io.BytesIO(raw.read())
        else:
            source = uri
        names = pq.read_schema(source).names
        require_columns(uri, columns, names)
        if isinstance(source, io.BytesIO):
            source.seek(0)
        return pd.read_parquet(source, columns=list(columns) if columns else None)
    except DataError:
        raise
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise DataError(f"{uri}: cannot be read as Parquet: {exc}") from exc


def read_csv_chunks(
    uri: str,
    columns: Sequence[str] | None,
    chunk_rows: int | None,
    dtype: dict[str, Any] | None = None,
) -> Iterator[pd.DataFrame]:
    """A CSV (plain or gzip, by magic bytes) in chunks of `chunk_rows` (all at once: None)."""
    with open_binary(uri) as raw:
        stream = _decompressed(raw)
        try:
            reader = pd.read_csv(
                stream,
                usecols=list(columns) if columns else None,
                dtype=dtype,
                chunksize=chunk_rows,
                low_memory=False,
            )
            if chunk_rows is None:
                yield reader
                return
            yield from reader
        except (ValueError, pd.errors.ParserError, OSError, EOFError, UnicodeDecodeError) as exc:
            raise DataError(f"{uri}: cannot be read as CSV: {exc}") from exc


def read_chunks(uri: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Every row of one table file, `chunk_rows` at a time: memory holds one chunk."""
    if table_format(uri) == "csv":
        yield from read_csv_chunks(uri, None, chunk_rows)
        return
    with open_binary(uri) as raw:
        try:
            batches = pq.ParquetFile(raw).iter_batches(batch_size=chunk_rows)
            for batch in batches:
                yield batch.to_pandas()
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{uri}: cannot be read as Parquet: {exc}") from exc


def count_rows(uri: str) -> int | None:
    """Rows of a Parquet file from its footer; None for CSV (unknown without reading it)."""
    if table_format(uri) == "csv":
        return None
    with open_binary(uri) as raw:
        return pq.ParquetFile(raw).metadata.num_rows


def csv_header(uri: str) -> list[str]:
    try:
        with open_binary(uri) as raw:
            line = _decompressed(raw).readline().decode("utf-8-sig")  # an Excel export's BOM
        return [c.strip() for c in next(csv.reader([line]), [])]  # quotes, commas in names
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{uri}: cannot be read as CSV: {exc}") from exc


def _decompressed(raw: IO[bytes]) -> IO[bytes]:
    """Gzip is recognised by its magic bytes, whatever the file is called."""
    buffered = io.BufferedReader(raw) if not hasattr(raw, "peek") else raw
    if buffered.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=buffered)
    return buffered


def require_columns(uri: str, columns: Sequence[str] | None, present: Sequence[str]) -> None:
    """Every wanted column is there, once; a missing one is named with its likely misspelling."""
    twice = sorted({c for c in present if list(present).count(c) > 1} & set(columns or present))
    if twice:
        raise DataError(f"{uri}: duplicate column names {twice}; expected each column once")
    for column in columns or []:
        if column not in present:
            close = closest(column, present)
            hint = f" (found '{close}': misspelled?)" if close else ""
            raise DataError(f"{uri}: missing column '{column}'{hint}; columns: {list(present)}")
