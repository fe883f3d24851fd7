"""Submit the compiled DAG to a Kubeflow Pipelines host through `kfp.Client` (REST v2beta1).

Everything that can be checked here is checked before anything is sent: the merged config
(validated, checked against the registries and for a cluster), the images and the host's
health endpoint. The overrides travel as the `config_overrides` parameter, deep-merged onto
the compiled defaults in the run's first task, so the run keeps every key they leave alone.
"""

from __future__ import annotations

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


def read_package(package: str | Path) -> tuple[dict[str, Any], set[str]]:
    """The config compiled into a pipeline YAML (the `config` parameter's default) and the
    images its tasks run in."""
    try:
        spec = yaml.safe_load(Path(package).read_text())
        params = spec["root"]["inputDefinitions"]["parameters"]
        images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
        return params["config"]["defaultValue"], images
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise ConfigError(f"{package}: not an htl-training pipeline YAML ({exc!r})") from exc


def check_submission(package: str | Path, overrides: dict[str, Any]) -> None:
    """The run's config as its first task will see it, and the images, checked here first."""
    source = f"{package} with the overrides"
    defaults, images = read_package(package)
    local = sorted(i for i in images if i.startswith("localhost/"))
    if local:
        raise ConfigError(f"{package}: its tasks run in {local}, images only one machine has")
    merged = deep_merge(defaults, overrides)
    check_cluster(check(config_from_dict(merged, source), source), source)


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
    """Create a run of `package` in `experiment`; its id and UI address."""
    import kfp

    client = kfp.Client(host=host)
    result = client.create_run_from_pipeline_package(
        str(package),
        arguments={"config_overrides": overrides, "run_name": run_name},
        run_name=run_name,
        experiment_name=experiment,
        enable_caching=enable_caching,
    )
    return Submitted(result.run_id, f"{host}/#/runs/details/{result.run_id}")


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
