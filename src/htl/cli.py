"""Run one pipeline step alone on artifact files: `python -m htl <step> ...` (or `htl <step>`).

Each step reads the directories an earlier step wrote and writes its own, exactly as inside
the DAG; `--parent` attaches its MLflow run to an existing pipeline run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Callable, Sequence

from htl.checks import load_checked
from htl.config import ExperimentConfig
from htl.errors import USER_ERRORS, ConfigError

log = logging.getLogger(__name__)


def add_step_commands(sub: argparse._SubParsersAction) -> None:
    """Register the seven step subcommands on a parser (shared with the `htl` CLI)."""

    def step(
        name: str, help_text: str, handler: Callable[[argparse.Namespace], object]
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--config", required=True, help="experiment YAML")
        p.add_argument("--output", required=True, help="directory to write (replaced atomically)")
        p.add_argument("--parent", help="MLflow run id of the pipeline run to nest under")
        p.set_defaults(handler=handler)
        return p

    p = sub.add_parser(
        "ingest", help="read the configured source into events.parquet + schema.json"
    )
    p.add_argument("--config", required=True)
    p.add_argument("--output", required=True)
    p.set_defaults(handler=_ingest)
    p = step(
        "labels-split", "hybrid labels, chronological split, encoders fit on train", _labels_split
    )
    p.add_argument("--events", required=True, help="ingest output directory")
    p = step(
        "hpo",
        "Optuna search per model to its budget; best params as <model>.json. Several "
        "processes with the same --model share its study (workers on one storage)",
        _hpo,
    )
    p.add_argument("--splits", required=True)
    p.add_argument("--model", action="append", help="an entry of models (repeatable; default all)")
    p.add_argument(
        "--worker",
        type=int,
        default=0,
        help="this process's index among those sharing the studies (0, 1, ...): its sampler "
        "seed is hpo.seed + worker, so workers do not repeat each other's random trials",
    )
    p = step("train", "train one (model, seed)", _train)
    p.add_argument("--splits", required=True)
    p.add_argument("--params", required=True, help="hpo output directory")
    p.add_argument("--model", required=True)
    p.add_argument("--seed", type=int, required=True)
    p = step("evaluate", "score a trained model on the test split", _evaluate)
    p.add_argument("--model-dir", required=True)
    p.add_argument("--splits", required=True)
    p = step("significance", "seed aggregation, t-tests and the report", _significance)
    p.add_argument("--metrics", nargs="+", required=True, help="evaluate output directories")
    p.add_argument("--params", default=None, help="hpo output directory (its studies reported)")
    p = sub.add_parser("register", help="register the configured model in MLflow with its alias")
    p.add_argument("--config", required=True)
    p.add_argument("--models", nargs="+", required=True, help="train output directories")
    p.add_argument("--events", required=True)
    p.add_argument("--report", required=True, help="significance output directory")
    p.add_argument("--splits", default=None, help="labels-split output: logged as training data")
    p.add_argument("--parent")
    p.set_defaults(handler=_register)
    p = sub.add_parser(
        "promote",
        help="gate @challenger (or --version) against @champion; --rollback restores the last",
    )
    p.add_argument("--config", required=True)
    p.add_argument("--splits", help="labels-split output directory (its test rows are scored)")
    p.add_argument("--output", help="directory for blessing.json + blessing.md")
    p.add_argument("--version", type=int, default=None, help="default: the register alias's")
    p.add_argument("--parent")
    p.add_argument("--rollback", action="store_true", help="@previous-champion back to @champion")
    p.set_defaults(handler=_promote)
    p = sub.add_parser(
        "predict", help="batch-score a table (CSV/Parquet, local or gs://) with a registered model"
    )
    p.add_argument("--model", required=True, help="e.g. models:/htl@champion")
    p.add_argument("--input", required=True, help="file, directory or glob; local or gs://")
    p.add_argument("--output", required=True, help="Parquet file to write; local or gs://")
    p.add_argument("--config", help="take the tracking/registry URI from this config")
    p.add_argument("--chunk-rows", type=int, default=100_000, help="rows held in memory at once")
    p.add_argument("--keep", nargs="*", default=[], help="input columns to copy to the output")
    p.set_defaults(handler=_predict)
    p = sub.add_parser("serve", help="serve models:/<register.name>@champion over HTTP (MLflow)")
    p.add_argument("--config", required=True)
    p.add_argument("--alias", default="champion", help="which version to serve")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5001)
    p.set_defaults(handler=_serve)


def _ingest(a: argparse.Namespace) -> object:
    from htl.steps import run_ingest

    return {"parent_run_id": run_ingest(load_checked(a.config), a.output)}


def _labels_split(a: argparse.Namespace) -> object:
    from htl.steps import run_labels_split

    return run_labels_split(load_checked(a.config), a.events, a.output, a.parent)


def _hpo(a: argparse.Namespace) -> object:
    from htl.steps import run_hpo

    config = _with_entries(a.config, a.model or [])
    return run_hpo(config, a.splits, a.output, a.parent, a.model, a.worker)


def _train(a: argparse.Namespace) -> object:
    from htl.steps import run_train

    config = _with_entries(a.config, [a.model])
    return run_train(config, a.splits, a.params, a.model, a.seed, a.output, a.parent)


def _with_entries(path: str, models: list[str]) -> ExperimentConfig:
    """The checked config, once every `--model` is one of its entries."""
    config = load_checked(path)
    for model in models:
        if model not in config.models:
            raise ConfigError(f"{path}: --model {model!r} is not in 'models' {list(config.models)}")
    return config


def _evaluate(a: argparse.Namespace) -> object:
    from htl.steps import run_evaluate

    return run_evaluate(load_checked(a.config), a.model_dir, a.splits, a.output, a.parent)


def _significance(a: argparse.Namespace) -> object:
    from htl.steps import run_significance

    config = load_checked(a.config)
    return str(run_significance(config, a.metrics, a.output, a.parent, a.params))


def _register(a: argparse.Namespace) -> object:
    from htl.steps import run_register

    config = load_checked(a.config)
    return {"version": run_register(config, a.models, a.events, a.report, a.parent, a.splits)}


def _promote(a: argparse.Namespace) -> object:
    from htl.steps import run_promote, run_rollback

    config = load_checked(a.config)
    if a.rollback:
        return {"champion": run_rollback(config)}
    if not a.splits or not a.output:
        raise ConfigError("htl promote needs --splits and --output (or --rollback)")
    return run_promote(config, a.splits, a.output, a.parent, a.version)


def _predict(a: argparse.Namespace) -> object:
    from htl.predict import predict_table

    if a.config:
        from htl.tracking import point_mlflow

        point_mlflow(load_checked(a.config).tracking_uri)
    rows = predict_table(a.model, a.input, a.output, a.chunk_rows, a.keep)
    return {"rows": rows, "output": a.output}


def _serve(a: argparse.Namespace) -> object:
    """Replace this process with `mlflow models serve` on the configured registry."""
    import os

    config = load_checked(a.config)
    uri = f"models:/{config.register.name}@{a.alias}"
    os.environ["MLFLOW_TRACKING_URI"] = os.environ["MLFLOW_REGISTRY_URI"] = config.tracking_uri
    # mlflow starts `uvicorn` by name: find it beside this interpreter, also when the venv
    # is not activated
    os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]])
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", uri]
    command += ["--env-manager", "local", "-h", a.host, "-p", str(a.port)]
    log.info("serving %s on http://%s:%d/invocations", uri, a.host, a.port)
    sys.stderr.flush()
    os.execv(sys.executable, command)


def run_handler(args: argparse.Namespace) -> int:
    """Run a parsed command: its result as JSON on stdout, a user mistake as one line on stderr
    and exit code 2."""
    try:
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries the JSON result only
            result = args.handler(args)
    except USER_ERRORS as exc:
        print(f"htl: error: {exc}", file=sys.stderr)
        return 2
    if result is not None:
        print(json.dumps(result, indent=2, default=str))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    parser = argparse.ArgumentParser(prog="python -m htl", description=__doc__)
    add_step_commands(parser.add_subparsers(dest="command", required=True))
    return run_handler(parser.parse_args(argv))
