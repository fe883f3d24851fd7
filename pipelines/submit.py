"""Submit the compiled DAG to a Kubeflow Pipelines host through `kfp.Client` (REST v2beta1).

Everything that can be checked here is checked before anything is sent: the merged config
(validated, checked against the registries and for a cluster), the images and the host's
health endpoint. The overrides travel as the `config_overrides` parameter, deep-merged onto
the compiled defaults in the run's first task, so the run keeps every key they leave alone.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from htl.checks import check, check_cluster
from htl.config import ConfigError, config_from_dict, deep_merge

log = logging.getLogger(__name__)

ENDPOINT_ENV = "KF_PIPELINES_ENDPOINT"
FINAL_STATES = ("SUCCEEDED", "FAILED", "SKIPPED", "CANCELED", "CANCELLED")


@dataclass(frozen=True)
class Submitted:
    run_id: str
    url: str
    state: str = ""


@dataclass(frozen=True)
class Package:
    """What a compiled htl-training YAML holds that a submission is checked against."""

    defaults: dict[str, Any]  # the `config` parameter's default
    images: set[str]
    env_secret: str | None  # the secret the tasks take their environment from


def read_package(package: str | Path) -> Package:
    try:
        docs = list(yaml.safe_load_all(Path(package).read_text()))  # spec, platform spec
        spec = docs[0]
        params = spec["root"]["inputDefinitions"]["parameters"]
        images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
        platform = {}
        if len(docs) > 1:  # the Kubernetes platform spec
            platform = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
        secrets = [s["secretName"] for e in platform.values() for s in e.get("secretAsEnv", [])]
        return Package(params["config"]["defaultValue"], images, secrets[0] if secrets else None)
    except (OSError, yaml.YAMLError, KeyError, TypeError, IndexError) as exc:
        raise ConfigError(f"{package}: not an htl-training pipeline YAML ({exc!r})") from exc


def check_submission(package: str | Path, overrides: dict[str, Any]) -> None:
    """The run's config as its first task will see it, and the images, checked here first."""
    source = f"{package} with the overrides"
    compiled = read_package(package)
    local = sorted(i for i in compiled.images if i.startswith("localhost/"))
    if local:
        raise ConfigError(f"{package}: its tasks run in {local}, images only one machine has")
    config = check(config_from_dict(deep_merge(compiled.defaults, overrides), source), source)
    cluster = dataclasses.replace(config.cluster, env_secret=compiled.env_secret)
    check_cluster(dataclasses.replace(config, cluster=cluster), source)


def resolve_host(host: str | None) -> str:
    """`host`, else KF_PIPELINES_ENDPOINT; its health endpoint must answer."""
    host = (host or os.environ.get(ENDPOINT_ENV, "")).rstrip("/")
    if not host:
        raise ConfigError(f"no KFP host: pass --host URL or set {ENDPOINT_ENV}")
    try:
        with urllib.request.urlopen(f"{host}/apis/v2beta1/healthz", timeout=10) as response:
            if response.status == 200:
                return host
            problem = f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        problem = f"HTTP {exc.code}"
    except OSError as exc:
        problem = str(getattr(exc, "reason", exc))
    raise ConfigError(f"KFP host {host} does not answer at /apis/v2beta1/healthz ({problem})")


def submit(
    package: str | Path,
    host: str,
    overrides: dict[str, Any],
    experiment: str,
    run_name: str,
    enable_caching: bool | None = None,
) -> Submitted:
    """Create a run of `package` in `experiment`; its id and UI address. `enable_caching`
    False turns caching off in every task; None keeps the compiled settings."""
    import tempfile

    import kfp

    client = kfp.Client(host=host)
    with tempfile.TemporaryDirectory() as tmp:
        if enable_caching is False:
            package = without_caching(package, Path(tmp) / "pipeline.yaml")
        result = client.create_run_from_pipeline_package(
            str(package),
            arguments={"config_overrides": overrides, "run_name": run_name},
            run_name=run_name,
            experiment_name=experiment,
        )
    return Submitted(result.run_id, f"{host}/#/runs/details/{result.run_id}")


def without_caching(package: str | Path, out: Path) -> Path:
    """A copy of `package` with caching off in every task of every DAG. (kfp.Client's own
    `enable_caching=False` reaches only the root DAG's tasks, here the exit handler.)"""
    spec, *rest = yaml.safe_load_all(Path(package).read_text())
    dags = [spec["root"], *spec["components"].values()]
    for dag in dags:
        for task in dag.get("dag", {}).get("tasks", {}).values():
            task["cachingOptions"] = {}  # KFP's form of "off": no enableCache
    out.write_text(yaml.safe_dump_all([spec, *rest], sort_keys=False))
    return out


def wait(host: str, run_id: str, timeout_s: float, poll_s: float = 10.0) -> str:
    """Poll the run until it ends; its final state (TimeoutError past `timeout_s`)."""
    import kfp

    client = kfp.Client(host=host)
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        state = str(client.get_run(run_id).state or "")
        if state != last:
            log.info("run %s: %s", run_id, state)
            last = state
        if state.upper() in FINAL_STATES:
            return state
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} still {state} after {timeout_s:.0f} s")
        time.sleep(poll_s)
