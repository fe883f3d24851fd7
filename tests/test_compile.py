"""The compiled pipeline: parses strictly against kfp-pipeline-spec (spec, deployment and the
Kubernetes platform spec), carries nothing of the compiling machine, and sets caching, retries,
resources, timeouts, the GPU and the exit handler where they belong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from htl.config import CHECKPOINT_MOUNT, ConfigError, load_config
from htl.pipelines.compile import compile_pipeline

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "configs" / "cluster.yaml"
CPU, GPU = "registry.example.com/htl/htl-cpu:abc123", "registry.example.com/htl/htl-cuda:abc123"
STEPS = {
    "configure",
    "ingest",
    "labels-split",
    "hpo",
    "plan-training",
    "train",
    "evaluate",
    "significance",
    "register",
    "promote",
    "finalize",
}
SIDE_EFFECTS = {"ingest", "register", "promote", "finalize"}


@pytest.fixture(autouse=True)
def images(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTL_IMAGE", CPU)
    monkeypatch.setenv("HTL_GPU_IMAGE", GPU)
    for name in ("MLFLOW_TRACKING_URI", "HTL_OPTUNA_STORAGE", "HTL_CHECKPOINT_DIR"):
        monkeypatch.delenv(name, raising=False)


def _compile(tmp: Path, gpu: bool, config: Path = CLUSTER) -> tuple[dict, dict, str]:
    path = tmp / "pipeline.yaml"
    compile_pipeline(load_config(config), path, parallelism=3, gpu=gpu)
    text = path.read_text()
    spec, platform = yaml.safe_load_all(text)
    return spec, platform, text


@pytest.fixture(scope="module")
def gpu_yaml(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HTL_IMAGE", CPU)
        mp.setenv("HTL_GPU_IMAGE", GPU)
        return _compile(tmp_path_factory.mktemp("gpu"), gpu=True)


def _tasks(spec: dict) -> dict[str, dict]:
    """Every task of every DAG in the spec, by name."""
    tasks = dict(spec["root"]["dag"]["tasks"])
    for component in spec["components"].values():
        tasks.update(component.get("dag", {}).get("tasks", {}))
    return tasks


def test_spec_deployment_and_platform_parse_strictly(gpu_yaml: tuple[dict, dict, str]) -> None:
    spec, platform, _ = gpu_yaml
    parsed = json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    deployment = json_format.ParseDict(
        spec["deploymentSpec"], pipeline_spec_pb2.PipelineDeploymentConfig()
    )
    json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
    assert parsed.pipeline_info.name == "htl-training"
    assert {name.removeprefix("exec-") for name in deployment.executors} == STEPS
    assert parsed.default_pipeline_root == "gs://my-bucket/htl/pipeline-root"


def test_strict_parse_rejects_a_typo(gpu_yaml: tuple[dict, dict, str]) -> None:
    spec = gpu_yaml[0]
    with pytest.raises(json_format.ParseError, match="pipelineInfoo"):
        json_format.ParseDict(
            {**spec, "pipelineInfoo": spec["pipelineInfo"]}, pipeline_spec_pb2.PipelineSpec()
        )


def test_nothing_of_the_compiling_machine(gpu_yaml: tuple[dict, dict, str]) -> None:
    text = gpu_yaml[2]
    for local in {str(ROOT), os.getcwd(), str(Path.home()), "/tmp/", "sqlite:", "localhost/"}:
        assert local not in text, local
    default = gpu_yaml[0]["root"]["inputDefinitions"]["parameters"]["config"]["defaultValue"]
    assert "workdir" not in default and "cluster" not in default  # workdir resolves in the pod
    assert default["tracking"]["uri"] == "http://mlflow.mlflow.svc.cluster.local:5000"
    assert default["train"]["checkpoint_dir"] == CHECKPOINT_MOUNT  # on the mounted volume


def test_caching_is_off_exactly_where_steps_have_side_effects(
    gpu_yaml: tuple[dict, dict, str],
) -> None:
    tasks = _tasks(gpu_yaml[0])
    assert set(tasks) >= STEPS
    cached = {name for name in STEPS if tasks[name]["cachingOptions"].get("enableCache")}
    assert cached == STEPS - SIDE_EFFECTS


def test_retries_resources_and_timeouts(gpu_yaml: tuple[dict, dict, str]) -> None:
    spec, platform, _ = gpu_yaml
    tasks = _tasks(spec)
    for name in ("hpo", "train"):
        policy = tasks[name]["retryPolicy"]
        assert policy["maxRetryCount"] == 2 and policy["backoffDuration"] == "60s"
        assert policy["backoffFactor"] == 2.0
    assert all("retryPolicy" not in tasks[name] for name in STEPS - {"hpo", "train"})
    executors = spec["deploymentSpec"]["executors"]
    deadlines = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    expected = {"hpo": ("4", "16G", "21600"), "train": ("4", "16G", "14400")}
    for step in STEPS:
        cpu, memory, timeout = expected.get(step, ("1", "4G", "3600"))
        resources = executors[f"exec-{step}"]["container"]["resources"]
        assert resources["resourceCpuRequest"] == resources["resourceCpuLimit"] == cpu, step
        assert resources["resourceMemoryRequest"] == memory, step
        assert deadlines[f"exec-{step}"]["activeDeadlineSeconds"] == timeout, step


def test_gpu_steps_get_the_accelerator_toleration_image_and_volume(
    gpu_yaml: tuple[dict, dict, str],
) -> None:
    spec, platform, _ = gpu_yaml
    executors = spec["deploymentSpec"]["executors"]
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for step in STEPS:
        container = executors[f"exec-{step}"]["container"]
        accelerator = container["resources"].get("accelerator")
        if step in ("hpo", "train"):
            assert (
                accelerator
                == {
                    "resourceType": "nvidia.com/gpu",
                    "resourceCount": "1",
                }
                or accelerator["resourceType"] == "nvidia.com/gpu"
            )
            assert container["image"] == GPU
            assert k8s[f"exec-{step}"]["tolerations"] == [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ]
            assert k8s[f"exec-{step}"]["pvcMount"][0]["mountPath"] == CHECKPOINT_MOUNT
        else:
            assert accelerator is None, step
            assert container["image"] == CPU, step
            assert "tolerations" not in k8s[f"exec-{step}"]
        assert {"name": "HTL_IMAGE", "value": container["image"]} in container["env"]
        # the store the config leaves unset comes from the secret, in every pod
        secret = k8s[f"exec-{step}"]["secretAsEnv"][0]
        assert secret["secretName"] == "htl-stores"
        assert [m["envVar"] for m in secret["keyToEnv"]] == ["HTL_OPTUNA_STORAGE"]


def test_without_gpu_no_task_asks_for_one(tmp_path: Path) -> None:
    spec, platform, _ = _compile(tmp_path, gpu=False)
    for step, executor in spec["deploymentSpec"]["executors"].items():
        assert "accelerator" not in executor["container"]["resources"], step
        assert executor["container"]["image"] == CPU, step
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert all("tolerations" not in e for e in k8s.values())


def test_the_exit_handler_wraps_the_dag(gpu_yaml: tuple[dict, dict, str]) -> None:
    spec = gpu_yaml[0]
    root = spec["root"]["dag"]["tasks"]
    assert set(root) == {"exit-handler-1", "finalize"}
    finalize = root["finalize"]
    assert finalize["dependentTasks"] == ["exit-handler-1"]
    assert finalize["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    assert finalize["inputs"]["parameters"]["status"]["taskFinalStatus"]["producerTask"] == (
        "exit-handler-1"
    )
    inner = spec["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    assert {"configure", "ingest", "plan-training", "significance", "register", "promote"} <= set(
        inner
    )


def test_dag_shape(gpu_yaml: tuple[dict, dict, str]) -> None:
    spec = gpu_yaml[0]
    inner = spec["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    loops = {
        name: spec["components"][f"comp-{name}"]["dag"]["tasks"]
        for name in inner
        if name.startswith("for-loop")
    }
    studies = next(n for n, body in loops.items() if set(body) == {"hpo"})
    jobs = next(n for n, body in loops.items() if set(body) == {"train", "evaluate"})
    assert inner["promote"]["dependentTasks"] == ["configure", "ingest", "labels-split", "register"]
    # one study per model: the loop runs over labels_split's items, plan_training gathers them
    assert inner[studies]["parameterIterator"]["items"]["inputParameter"].endswith(
        "labels-split-Output"
    )
    assert studies in inner["plan-training"]["dependentTasks"]
    loop = inner[jobs]
    assert loop["iteratorPolicy"]["parallelismLimit"] == 3
    assert loop["parameterIterator"]["items"]["inputParameter"].endswith("plan-training-Output")
    assert loops[jobs]["evaluate"]["dependentTasks"] == ["train"]
    assert jobs in inner["significance"]["dependentTasks"]  # fan-in after every job
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert set(parameters) == {"config", "config_overrides", "run_name", "parent_run_id"}
    assert parameters["config"]["defaultValue"]["models"] == list(load_config(CLUSTER).models)
    assert parameters["config_overrides"]["defaultValue"] == {}


def test_significance_shows_html_markdown_and_metrics_in_the_ui(
    gpu_yaml: tuple[dict, dict, str],
) -> None:
    outputs = gpu_yaml[0]["components"]["comp-significance"]["outputDefinitions"]["artifacts"]
    kinds = {name: o["artifactType"]["schemaTitle"] for name, o in outputs.items()}
    assert kinds["report_html"] == "system.HTML"
    assert kinds["report_markdown"] == "system.Markdown"
    assert kinds["metrics"] == "system.Metrics"


def test_compile_cli_applies_set_overrides_to_the_config_default(tmp_path: Path) -> None:
    from htl.pipelines.cli import main

    out = tmp_path / "pipeline.yaml"
    argv = ["compile", "--config", str(CLUSTER), "--output", str(out), "--set", "seeds=[4,5]"]
    assert main([*argv, "--set", "data.rows=1186059"]) == 0
    default = next(yaml.safe_load_all(out.read_text()))["root"]["inputDefinitions"]["parameters"][
        "config"
    ]["defaultValue"]
    assert default["seeds"] == [4, 5] and default["data"]["rows"] == 1186059
    assert not list(out.parent.glob(".*tmp*"))  # the temporary file was renamed away


def test_stores_from_the_compile_environment_are_written_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://mlflow.example.com")
    monkeypatch.setenv("HTL_OPTUNA_STORAGE", "postgresql://optuna@db.example.com/optuna")
    spec, platform, _ = _compile(tmp_path, gpu=False, config=ROOT / "configs" / "demo.yaml")
    default = spec["root"]["inputDefinitions"]["parameters"]["config"]["defaultValue"]
    assert default["tracking"]["uri"] == "https://mlflow.example.com"
    assert default["hpo"]["storage"] == "postgresql://optuna@db.example.com/optuna"
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert all("secretAsEnv" not in e and "pvcMount" not in e for e in k8s.values())


@pytest.mark.parametrize(
    ("sets", "env", "message"),
    [
        (["tracking.uri=sqlite:////tmp/mlflow.db"], {}, "'tracking.uri' is 'sqlite:"),
        (["tracking.uri=http://127.0.0.1:5000"], {}, "loopback address"),
        (["cluster.env_secret=null"], {}, "'hpo.storage' is not set"),
        (["hpo.storage=sqlite:///optuna.db"], {}, "'hpo.storage' is 'sqlite:"),
        (["data.source=kuairand", "data.path=/data/kuairand"], {}, "'data.path'"),
        (["cluster.pipeline_root=/srv/kfp"], {}, "'cluster.pipeline_root'"),
        ([], {"HTL_IMAGE": ""}, "set HTL_IMAGE"),
        ([], {"HTL_IMAGE": "localhost/htl-cpu:abc"}, "an image only this machine has"),
        ([], {"HTL_GPU_IMAGE": ""}, "set HTL_GPU_IMAGE"),
    ],
)
def test_a_bad_cluster_setup_stops_with_one_clear_message(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sets: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if env.get("HTL_GPU_IMAGE") == "":
        monkeypatch.delenv("HTL_GPU_IMAGE")
    out = tmp_path / "pipeline.yaml"
    with pytest.raises(ConfigError, match=message):
        compile_pipeline(load_config(CLUSTER, sets), out, gpu=True)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_kfp_cli_compiles_the_module_level_pipeline(tmp_path: Path) -> None:
    out = tmp_path / "pipeline.yaml"
    kfp = Path(sys.executable).with_name("kfp")
    subprocess.run(
        [str(kfp), "dsl", "compile", "--py", str(ROOT / "pipelines" / "training.py"),
         "--output", str(out)],
        check=True,
        capture_output=True,
        env={**os.environ, "HTL_IMAGE": CPU},
    )  # fmt: skip
    spec, _platform = yaml.safe_load_all(out.read_text())
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    default = spec["root"]["inputDefinitions"]["parameters"]["config"]["defaultValue"]
    assert default["models"] == ["htlnet", "shared_bottom", "dnn"]  # ExperimentConfig's default
    assert {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()} == {CPU}


def test_prediction_pipeline_compiles_and_parses_strictly(tmp_path: Path) -> None:
    from htl.pipelines.cli import main

    path = tmp_path / "prediction.yaml"
    assert main(["compile", "--pipeline", "prediction", "--output", str(path)]) == 0
    compiled = yaml.safe_load(path.read_text())
    spec = json_format.ParseDict(compiled, pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == "htl-prediction"
    deployment = json_format.ParseDict(
        compiled["deploymentSpec"], pipeline_spec_pb2.PipelineDeploymentConfig()
    )
    assert {name.removeprefix("exec-") for name in deployment.executors} == {"batch-predict"}
    parameters = compiled["root"]["inputDefinitions"]["parameters"]
    assert set(parameters) == {"input_uri", "output_uri", "tracking_uri", "model_uri", "chunk_rows"}
    assert parameters["model_uri"]["defaultValue"] == "models:/htl@champion"
    task = compiled["root"]["dag"]["tasks"]["batch-predict"]
    assert task["cachingOptions"] == {}  # caching off: it writes outside the pipeline
    assert (
        compiled["deploymentSpec"]["executors"]["exec-batch-predict"]["container"]["image"] == CPU
    )
