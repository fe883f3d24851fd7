"""The `htl` command: run the DAG locally, compile it, or run one step alone.

htl run --config configs/demo.yaml           # the whole DAG through kfp.local
htl run --config configs/demo.yaml --set data.rows=200000 --set seeds=[0,1,2,3,4,5,6,7,8,9]
htl compile --config configs/demo.yaml --output build/pipeline.yaml
htl ingest --config configs/demo.yaml --output /tmp/events   # one step (see --help)
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from htl.checks import check, check_tracking_reachable, load_checked
from htl.cli import add_step_commands, run_handler
from htl.config import apply_overrides, config_from_dict


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    parser = argparse.ArgumentParser(
        prog="htl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the whole pipeline locally (kfp.local, same DAG)")
    p.add_argument("--config", required=True, help="experiment YAML, e.g. configs/demo.yaml")
    p.add_argument(
        "--run-name", default=None, help="MLflow parent run name (default: <name>-<time>)"
    )
    p.add_argument("--parallelism", type=int, default=2, help="train/evaluate tasks at once")
    _add_set(p)
    p.set_defaults(handler=_run)

    p = sub.add_parser("compile", help="write the pipeline YAML for a KFP host")
    p.add_argument(
        "--config",
        default=None,
        help="experiment YAML for the config parameter's default (omitted: built-in defaults)",
    )
    p.add_argument("--output", required=True, help="pipeline YAML to write")
    p.add_argument("--parallelism", type=int, default=4)
    p.add_argument("--gpu", action="store_true", help="request nvidia.com/gpu for hpo and train")
    p.add_argument(
        "--pipeline",
        choices=["training", "prediction"],
        default="training",
        help="training (the DAG) or prediction (htl-prediction, batch scoring)",
    )
    _add_set(p)
    p.set_defaults(handler=_compile)

    add_step_commands(sub)
    return run_handler(parser.parse_args(argv))


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set data.rows=200000 --set seeds=[0,1] (repeatable)",
    )


def _run(args: argparse.Namespace) -> object:
    from htl.pipelines.local import PipelineFailed, run_locally

    config = load_checked(args.config, args.set)  # every mistake stops here, before any step
    check_tracking_reachable(config, args.config)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_name = args.run_name or f"{config.name}-{stamp}-{secrets.token_hex(2)}"  # unique
    try:
        report = run_locally(config, run_name, args.parallelism)
    except PipelineFailed as exc:  # the failed task's own error is in its log above
        raise SystemExit(f"htl: error: {exc}") from None
    print(
        f"\nhtl: pipeline run '{run_name}' finished.\n"
        f"  report:    {report}\n"
        f"  artifacts: {Path(config.workdir) / 'pipeline_root'}\n"
        f"  MLflow:    make mlflow-ui, then open http://127.0.0.1:5000 "
        f"(experiment '{config.tracking.experiment}', store {config.tracking_uri})",
        file=sys.stderr,
    )
    return None


def _compile(args: argparse.Namespace) -> object:
    from htl.pipelines.compile import compile_pipeline, compile_prediction

    if args.pipeline == "prediction":
        print(f"htl: wrote {compile_prediction(args.output)}", file=sys.stderr)
        return None
    config = (
        load_checked(args.config, args.set)
        if args.config
        else check(
            config_from_dict(apply_overrides({}, args.set, "defaults"), "defaults"), "defaults"
        )
    )
    path = compile_pipeline(config, args.output, args.parallelism, args.gpu)
    print(f"htl: wrote {path}", file=sys.stderr)
    return None


if __name__ == "__main__":
    raise SystemExit(main())
