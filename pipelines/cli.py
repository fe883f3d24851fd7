"""The `htl` command: run the DAG locally, compile it, or run one step alone.

htl run --config configs/demo.yaml           # the whole DAG through kfp.local
htl run --config configs/demo.yaml --set data.rows=200000 --set seeds=[0,1,2,3,4,5,6,7,8,9]
htl run --config configs/demo.yaml --runner docker --image localhost/htl-cpu:<sha>
htl compile --config configs/cluster.yaml --output build/pipeline.yaml   # needs HTL_IMAGE
htl submit --package build/pipeline.yaml --set seeds=[0,1] --experiment htl --wait
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
    p.add_argument(
        "--runner",
        choices=["subprocess", "docker"],
        default="subprocess",
        help="subprocess: steps in this interpreter; docker: each step in the built image, "
        "through DOCKER_HOST (a podman socket works: make demo-containers)",
    )
    p.add_argument(
        "--image", default=None, help="the image for --runner docker (default: HTL_IMAGE)"
    )
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
    p.add_argument(
        "--gpu",
        action="store_true",
        help="hpo and train on GPU nodes: HTL_GPU_IMAGE, cluster.gpu_type, its toleration",
    )
    p.add_argument(
        "--pipeline",
        choices=["training", "prediction"],
        default="training",
        help="training (the DAG) or prediction (htl-prediction, batch scoring)",
    )
    _add_set(p)
    p.set_defaults(handler=_compile)

    p = sub.add_parser("submit", help="submit a run to a Kubeflow Pipelines host (kfp.Client)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--config", help="experiment YAML: compiled for the cluster, then submitted")
    what.add_argument("--package", help="a YAML `htl compile` wrote (CI: build/pipeline.yaml)")
    p.add_argument("--host", default=None, help="KFP endpoint (default: KF_PIPELINES_ENDPOINT)")
    p.add_argument("--experiment", default="htl", help="KFP experiment (created if missing)")
    p.add_argument("--run-name", default=None, help="KFP and MLflow run name")
    p.add_argument(
        "--wait", action="store_true", help="wait for the end; non-zero unless it succeeds"
    )
    p.add_argument("--timeout", type=float, default=24 * 3600, help="--wait limit, seconds")
    p.add_argument("--poll", type=float, default=10.0, help=argparse.SUPPRESS)
    p.add_argument("--no-cache", action="store_true", help="run every task, cached or not")
    p.add_argument("--gpu", action="store_true", help="with --config: as for htl compile --gpu")
    _add_set(p)
    p.set_defaults(handler=_submit)

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
    run_name = args.run_name or _unique_name(config.name)
    try:
        report = run_locally(config, run_name, args.parallelism, args.runner, args.image)
    except PipelineFailed as exc:  # the failed task's own error is in its log above
        raise SystemExit(f"htl: error: {exc}") from None
    print(
        f"\nhtl: pipeline run '{run_name}' finished.\n"
        f"  report:    {report}\n"
        f"  artifacts: {report.parents[2]}\n"
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
    path = compile_pipeline(
        config, args.output, args.parallelism, args.gpu, source=args.config or "defaults"
    )
    print(f"htl: wrote {path}", file=sys.stderr)
    return None


def _unique_name(name: str) -> str:
    return f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def _submit(args: argparse.Namespace) -> object:
    import tempfile

    from htl.pipelines.compile import compile_pipeline
    from htl.pipelines.submit import check_submission, resolve_host, submit, wait

    overrides = apply_overrides({}, args.set, "--set")
    with tempfile.TemporaryDirectory() as tmp:
        if args.config:
            config = load_checked(args.config)
            package = compile_pipeline(
                config, Path(tmp) / "pipeline.yaml", gpu=args.gpu, source=args.config
            )
        else:
            package = Path(args.package)
        check_submission(package, overrides)
        host = resolve_host(args.host)
        name = args.run_name or _unique_name("htl")
        caching = False if args.no_cache else None
        run = submit(package, host, overrides, args.experiment, name, caching)
    print(f"htl: submitted run {run.run_id} ({name}) to {host}\n  {run.url}", file=sys.stderr)
    if not args.wait:
        return None
    state = wait(host, run.run_id, args.timeout, args.poll)
    print(f"htl: run {run.run_id} ended {state}", file=sys.stderr)
    if state.upper() != "SUCCEEDED":
        raise SystemExit(1)
    return None


if __name__ == "__main__":
    raise SystemExit(main())
