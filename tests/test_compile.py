"""The compiled pipeline parses strictly against kfp-pipeline-spec, spec and deployment both."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from htl.config import load_config
from htl.pipelines.compile import compile_pipeline

ROOT = Path(__file__).resolve().parents[1]
STEPS = [
    "ingest",
    "labels-split",
    "hpo",
    "train",
    "evaluate",
    "significance",
    "register",
    "promote",
]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = tmp_path_factory.mktemp("compile") / "pipeline.yaml"
    compile_pipeline(load_config(ROOT / "configs" / "demo.yaml"), path, parallelism=3, gpu=True)
    docs = list(yaml.safe_load_all(path.read_text()))
    assert len(docs) == 1
    return docs[0]


def test_spec_and_deployment_parse_strictly(compiled: dict) -> None:
    spec = json_format.ParseDict(compiled, pipeline_spec_pb2.PipelineSpec())
    deployment = json_format.ParseDict(
        compiled["deploymentSpec"], pipeline_spec_pb2.PipelineDeploymentConfig()
    )
    assert spec.pipeline_info.name == "htl-training"
    executors = {name.removeprefix("exec-") for name in deployment.executors}
    assert executors == set(STEPS)
    for name in ("train", "hpo"):
        resources = deployment.executors[f"exec-{name}"].container.resources
        assert resources.accelerator.resource_type == "nvidia.com/gpu"
        assert resources.accelerator.resource_count == "1"
    assert not deployment.executors["exec-evaluate"].container.resources.HasField("accelerator")


def test_strict_parse_rejects_a_typo(compiled: dict) -> None:
    broken = {**compiled, "pipelineInfoo": compiled["pipelineInfo"]}
    with pytest.raises(json_format.ParseError, match="pipelineInfoo"):
        json_format.ParseDict(broken, pipeline_spec_pb2.PipelineSpec())


def test_dag_shape(compiled: dict) -> None:
    root = compiled["root"]["dag"]["tasks"]
    assert {"ingest", "labels-split", "hpo", "significance", "register", "for-loop-1"} <= set(root)
    assert root["promote"]["dependentTasks"] == ["ingest", "labels-split", "register"]
    loop = root["for-loop-1"]
    assert loop["iteratorPolicy"]["parallelismLimit"] == 3
    assert loop["parameterIterator"]["items"]["inputParameter"].endswith("hpo-Output")
    inner = compiled["components"]["comp-for-loop-1"]["dag"]["tasks"]
    assert set(inner) == {"train", "evaluate"}
    assert inner["evaluate"]["dependentTasks"] == ["train"]
    assert "for-loop-1" in root["significance"]["dependentTasks"]  # fan-in after every job
    # the config parameter defaults to the compiled config
    default = compiled["root"]["inputDefinitions"]["parameters"]["config"]["defaultValue"]
    assert default["models"] == list(load_config(ROOT / "configs" / "demo.yaml").models)


def test_compile_cli_without_a_config_uses_the_defaults(tmp_path: Path) -> None:
    from htl.pipelines.cli import main

    out = tmp_path / "sub" / "pipeline.yaml"
    assert main(["compile", "--output", str(out)]) == 0
    doc = yaml.safe_load(out.read_text())
    json_format.ParseDict(doc, pipeline_spec_pb2.PipelineSpec())
    default = doc["root"]["inputDefinitions"]["parameters"]["config"]["defaultValue"]
    assert default["models"] == ["htlnet", "shared_bottom", "dnn"]  # ExperimentConfig's default
    assert not list(out.parent.glob(".*tmp*"))  # the temporary file was renamed away


def test_compile_cli_applies_set_overrides_to_the_config_default(tmp_path: Path) -> None:
    from htl.pipelines.cli import main

    out = tmp_path / "pipeline.yaml"
    config = str(ROOT / "configs" / "ablation-ifu.yaml")
    argv = ["compile", "--config", config, "--output", str(out), "--set", "seeds=[4,5]"]
    assert main([*argv, "--set", "data.rows=1186059"]) == 0
    default = yaml.safe_load(out.read_text())["root"]["inputDefinitions"]["parameters"]["config"][
        "defaultValue"
    ]
    assert default["seeds"] == [4, 5] and default["data"]["rows"] == 1186059
    assert default["model_options"]["htlnet_concat"] == {"model": "htlnet", "ifu_op": "concat"}


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
