"""A registered model loads in a fresh virtualenv that has only its logged requirements (slow:
it installs torch, pandas, pyarrow and mlflow; `make test-slow`)."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from conftest import registered_dnn


@pytest.mark.slow
def test_the_model_loads_with_only_its_logged_requirements(tmp_path: Path) -> None:
    config = registered_dnn(tmp_path, {"register": {"model": "dnn", "name": "envs"}})
    mlflow.set_tracking_uri(config.tracking_uri)
    local = mlflow.artifacts.download_artifacts(
        "models:/envs@challenger", dst_path=str(tmp_path / "m")
    )
    requirements = Path(local) / "requirements.txt"
    assert {"torch", "pandas", "mlflow", "tqdm", "pyyaml"} <= {
        line.split("==")[0] for line in requirements.read_text().split() if "==" in line
    }
    env = tmp_path / "env"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)], check=True
    )
    rows = pd.read_parquet(tmp_path / "splits" / "test_raw.parquet").head(5)
    rows.to_parquet(tmp_path / "rows.parquet")
    code = (
        "import sys, json, mlflow, pandas as pd\n"
        f"model = mlflow.pyfunc.load_model({str(local)!r})\n"
        f"out = model.predict(pd.read_parquet({str(tmp_path / 'rows.parquet')!r}))\n"
        "print(json.dumps({'columns': list(out.columns), 'htl': [m for m in sys.modules "
        "if m == 'htl'], 'path': sys.modules['htl'].__file__}))\n"
    )
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["columns"] == ["click", "long_view", "watch_time"]
    assert str(local) in result["path"]  # htl came with the model, not from this checkout
    assert sys.prefix not in result["path"]
