"""Batch scoring with a registered model: read a table in chunks, predict every task, write one
Parquet file whole (a temporary file, then a rename or a single upload to gs://)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mlflow
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from htl.data.io import count_rows, expand, read_chunks
from htl.errors import DataError
from htl.storage import atomic_file, gcs_upload, is_gcs

log = logging.getLogger(__name__)

CHUNK_ROWS = 100_000


def predict_table(
    model_uri: str,
    input_uri: str,
    output_uri: str,
    chunk_rows: int = CHUNK_ROWS,
    keep: Sequence[str] = (),
) -> int:
    """Score every row of `input_uri` (a file, directory or glob; CSV or Parquet; local or
    gs://) with `model_uri`; `output_uri` gets the `keep` columns and one column per task.
    Returns the number of rows written."""
    model = mlflow.pyfunc.load_model(model_uri)
    files = expand(input_uri)
    if is_gcs(output_uri):
        with tempfile.TemporaryDirectory() as tmp:
            rows = _score(model, files, Path(tmp) / "scores.parquet", chunk_rows, keep)
            gcs_upload(Path(tmp) / "scores.parquet", output_uri)
    else:
        with atomic_file(output_uri) as tmp:
            rows = _score(model, files, tmp, chunk_rows, keep)
    log.info("scored %d rows with %s into %s", rows, model_uri, output_uri)
    return rows


def _score(model: Any, files: list[str], out: Path, chunk_rows: int, keep: Sequence[str]) -> int:
    totals = [count_rows(f) for f in files]
    total = None if None in totals else sum(t for t in totals if t is not None)
    rows, writer = 0, None
    try:
        with tqdm(total=total, unit="rows", desc="predict", disable=None) as bar:
            for uri in files:
                for chunk in read_chunks(uri, chunk_rows):
                    missing = [c for c in keep if c not in chunk.columns]
                    if missing:
                        raise DataError(f"{uri}: --keep names missing columns {missing}")
                    preds = model.predict(chunk)
                    for i, column in enumerate(keep):
                        preds.insert(i, column, chunk[column].to_numpy())
                    table = pa.Table.from_pandas(preds, preserve_index=False)
                    writer = writer or pq.ParquetWriter(out, table.schema)
                    writer.write_table(table)
                    rows += len(chunk)
                    bar.update(len(chunk))
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise DataError(f"{files[0]}: no rows to score")
    return rows
