"""The layer rules hold: import contracts (import-linter), and a cheap config path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    """`lint-imports` with the contracts in pyproject.toml: no kfp in the library, no
    mlflow/optuna/google-cloud in its core, Google Cloud only in the storage layer, no cycles."""
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Contracts: 4 kept, 0 broken." in proc.stdout, proc.stdout


def test_loading_and_validating_a_config_imports_no_torch_optuna_or_mlflow() -> None:
    code = (
        "import json, sys\n"
        "from htl.config import load_config\n"
        "config = load_config('configs/demo.yaml')\n"
        "print(json.dumps({'models': list(config.models), "
        "'loaded': [m for m in ('torch', 'optuna', 'mlflow', 'kfp') if m in sys.modules]}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    result = json.loads(proc.stdout)
    assert result["models"][0] == "htlnet"  # it really loaded the file
    assert result["loaded"] == []


def test_the_registry_checks_still_stop_a_bad_entry_before_any_step(tmp_path: Path) -> None:
    """The schema loads without the registry, so the CLI must still run `check`: a mistyped
    model option is one line naming the file and the key, exit code 2."""
    config = tmp_path / "c.yaml"
    config.write_text("models: [htlnet, mmoe]\nmodel_options:\n  mmoe: {experts: '8'}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "htl", "ingest", "--config", str(config), "--output", "x"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert f"{config}: 'model_options.mmoe': 'experts' must be int, got '8'" in proc.stderr
    assert not (tmp_path / "x").exists()
