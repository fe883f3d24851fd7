"""Batch scoring with a registered model: read a table in chunks, predict every task, write one
Parquet file whole (a temporary file, then a rename or a single upload to gs://)."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import mlflow
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from htl.data.io import count_rows, expand, read_chunks
from htl.errors import DataError
from htl.storage import gcs_upload, is_gcs

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
    totals = [count_rows(f) for f in files]
    total = None if None in totals else sum(t for t in totals if t is not None)
    target = Path(output_uri) if not is_gcs(output_uri) else None
    directory = target.parent if target is not None else None
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".predict-", suffix=".parquet.tmp", dir=directory)
    os.close(fd)
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
                    writer = writer or pq.ParquetWriter(tmp, table.schema)
                    writer.write_table(table)
                    rows += len(chunk)
                    bar.update(len(chunk))
        if writer is None:
            raise DataError(f"{input_uri}: no rows to score")
        writer.close()
        writer = None
        if target is not None:
            os.replace(tmp, target)
        else:
            gcs_upload(tmp, output_uri)
    finally:
        if writer is not None:
            writer.close()
        Path(tmp).unlink(missing_ok=True)
    log.info("scored %d rows with %s into %s", rows, model_uri, output_uri)
    return rows
