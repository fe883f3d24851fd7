"""The champion served by `htl serve` (`mlflow models serve`) in a fresh process: real rows get
the pyfunc's predictions, bad requests a 4xx naming the column, unseen and missing values the
out-of-vocabulary row."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import free_port, registered_dnn, wait_until_up

from htl.steps import run_promote

TARGETS = ["repurchase_1y", "repurchase_1m", "amount_1m"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("serve")
    overrides = {
        "data": {"profile": "kaggle", "rows": 3000, "seed": 0},
        "register": {"model": "dnn", "name": "served"},
    }
    config = registered_dnn(root, overrides)
    assert run_promote(config, root / "splits", root / "blessing", None)["blessed"]
    port = free_port()
    log = (root / "serve.log").open("w")
    command = [sys.executable, "-m", "htl", "serve", "--config", str(root / "config.yaml")]
    proc = subprocess.Popen(
        [*command, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=os.environ
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/ping", proc, root / "serve.log")
        rows = pd.read_parquet(root / "splits" / "test_raw.parquet").drop(columns=TARGETS).head(6)
        yield {"url": url, "rows": rows, "config": config}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def post(url: str, frame: pd.DataFrame) -> tuple[int, dict]:
    records = json.loads(frame.to_json(orient="split", index=False))
    body = json.dumps({"dataframe_split": records}).encode()
    request = urllib.request.Request(
        f"{url}/invocations", body, {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_real_rows_get_the_pyfunc_predictions(served: dict) -> None:
    status, body = post(served["url"], served["rows"])
    assert status == 200
    got = pd.DataFrame(body["predictions"])
    config = served["config"]
    mlflow.set_tracking_uri(config.tracking_uri)
    local = mlflow.pyfunc.load_model(f"models:/{config.register.name}@champion")
    expected = local.predict(served["rows"])
    assert list(got.columns) == TARGETS
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-6)


def test_a_missing_column_is_a_400_naming_it(served: dict) -> None:
    status, body = post(served["url"], served["rows"].drop(columns=["brand"]))
    assert status == 400 and "brand" in body["message"]


def test_a_wrong_dtype_is_a_400_naming_the_column(served: dict) -> None:
    rows = served["rows"].assign(log_calibration_value="lots")
    status, body = post(served["url"], rows)
    assert status == 400 and "log_calibration_value" in body["message"]


def test_unseen_and_missing_values_use_the_out_of_vocabulary_row(served: dict) -> None:
    rows = served["rows"]
    unseen = [rows.assign(brand=987_654_321), rows.assign(brand=-1)]  # two ids never seen
    outputs = [pd.DataFrame(post(served["url"], f)[1]["predictions"]) for f in unseen]
    pd.testing.assert_frame_equal(outputs[0], outputs[1])
    known = pd.DataFrame(post(served["url"], rows)[1]["predictions"])
    assert not known.equals(outputs[0])  # the OOV row is not the rows' own
    status, body = post(served["url"], rows.assign(log_calibration_value=np.nan))
    assert status == 200  # a missing numeric value takes the field's OOV row
    assert all(math.isfinite(v) for row in body["predictions"] for v in row.values())
    status, body = post(served["url"], rows.assign(brand=np.nan))
    assert status == 400 and "brand" in body["message"]  # null in an integer feature, as documented


def test_an_empty_frame_gets_an_empty_answer(served: dict) -> None:
    status, body = post(served["url"], served["rows"].head(0))
    assert status == 200 and body["predictions"] == []


def test_batch_predict_in_chunks_equals_the_pyfunc(served: dict, tmp_path: Path) -> None:
    """`htl predict` over a directory of CSV parts, 7 rows a chunk, keeping an id column."""
    from htl.cli import main

    config = served["config"]
    rows = pd.read_parquet(Path(config.workdir).parent / "splits" / "test_raw.parquet")
    (tmp_path / "in").mkdir()
    for i, start in enumerate(range(0, len(rows), 120)):
        rows.iloc[start : start + 120].to_csv(tmp_path / "in" / f"part-{i}.csv", index=False)
    out = tmp_path / "scores" / "out.parquet"
    command = ["predict", "--config", str(Path(config.workdir).parent / "config.yaml")]
    command += ["--model", f"models:/{config.register.name}@champion", "--input"]
    assert main([*command, str(tmp_path / "in"), "--output", str(out), "--chunk-rows", "7",
                 "--keep", "company"]) == 0  # fmt: skip
    got = pd.read_parquet(out)
    mlflow.set_tracking_uri(config.tracking_uri)
    expected = mlflow.pyfunc.load_model(f"models:/{config.register.name}@champion").predict(rows)
    assert list(got.columns) == ["company", *TARGETS] and len(got) == len(rows)
    assert got["company"].tolist() == rows["company"].tolist()
    # equal up to float32 rounding: a dense value's product is summed in another order when
    # the batch shape changes (7-row chunks against the whole frame)
    np.testing.assert_allclose(got[TARGETS].to_numpy(), expected.to_numpy(), rtol=1e-5, atol=1e-6)
    assert [p.name for p in (tmp_path / "scores").iterdir()] == ["out.parquet"]  # no temp left


def test_batch_predict_reads_and_writes_gs(served: dict, gcs: object, tmp_path: Path) -> None:
    from htl.cli import main

    config = served["config"]
    rows = pd.read_parquet(Path(config.workdir).parent / "splits" / "test_raw.parquet")
    rows.to_parquet(tmp_path / "rows.parquet", index=False)
    gcs.blob("batch/rows.parquet").upload_from_filename(str(tmp_path / "rows.parquet"))
    command = ["predict", "--config", str(Path(config.workdir).parent / "config.yaml")]
    command += ["--model", f"models:/{config.register.name}@champion"]
    command += ["--input", "gs://htl-test/batch/rows.parquet", "--chunk-rows", "100"]
    assert main([*command, "--output", "gs://htl-test/scores/out.parquet"]) == 0
    gcs.blob("scores/out.parquet").download_to_filename(str(tmp_path / "out.parquet"))
    got = pd.read_parquet(tmp_path / "out.parquet")
    expected = mlflow.pyfunc.load_model(f"models:/{config.register.name}@champion").predict(rows)
    # equal up to float32 rounding: a dense value's product is summed in another order when
    # the batch shape changes (7-row chunks against the whole frame)
    np.testing.assert_allclose(got[TARGETS].to_numpy(), expected.to_numpy(), rtol=1e-5, atol=1e-6)
