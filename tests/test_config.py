"""Config loading: every mistake is one ConfigError that names the file, key and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from htl.checks import check
from htl.config import ConfigError, config_from_dict, config_to_dict, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_every_shipped_config_loads() -> None:
    configs = sorted((ROOT / "configs").glob("*.yaml"))
    assert configs
    for path in configs:
        config = load_config(path)
        assert Path(config.workdir).is_absolute()


def test_round_trip_through_pipeline_parameter_types() -> None:
    config = load_config(ROOT / "configs" / "demo.yaml")
    raw = config_to_dict(config)
    # KFP carries a dict parameter as a protobuf Struct: every number comes back as a float.
    raw["seeds"] = [float(s) for s in raw["seeds"]]
    raw["data"]["rows"] = float(raw["data"]["rows"])
    assert config_from_dict(raw) == config
    assert all(v is not None for v in raw["tracking"].values())


@pytest.mark.parametrize(
    ("raw", "fragments"),
    [
        ({"data": {"rowz": 10}}, ["unknown key 'data.rowz'", "did you mean 'data.rows'"]),
        ({"modles": ["dnn"]}, ["unknown key 'modles'", "did you mean 'models'"]),
        (
            {"models": ["htlnet", "mmoee"], "register": {"model": "htlnet"}},
            ["unknown model", "mmoee"],
        ),
        ({"models": ["htlnet", "dnn", "dnn"]}, ["lists a model twice"]),
        ({"models": ["dnn"]}, ["'register.model' is 'htlnet'", "not in 'models'"]),
        ({"train": {"epochs": "ten"}}, ["'train.epochs' must be int", "'ten'"]),
        ({"train": {"device": "tpu"}}, ["'train.device' is 'tpu'", "expected one of"]),
        ({"data": {"split": [0.5, 0.5, 0.5]}}, ["'data.split' must be three positive fractions"]),
        ({"data": {"split": [0.8, 0.2]}}, ["'data.split' must have 3 items"]),
        (
            {"model_options": {"htlnet": {"alpah": 0.1}}},
            ["model_options.htlnet", "unknown option 'alpah'", "alpha"],
        ),
        ({"model_options": {"htlnet": {"ifu_op": "sum"}}}, ["model_options.htlnet", "ifu_op"]),
        ({"seeds": []}, ["'seeds' must be non-empty"]),
        ({"hpo": {"seeds": [1, 1]}}, ["'hpo.seeds' must be non-empty and distinct"]),
        (
            {"model_options": {"dnn": {"gradient": "htl"}}},
            ["model_options.dnn", "shares no parameters"],
        ),
        (
            {"model_options": {"shared_bottom": {"gradient": "htl", "gradient_space": "output"}}},
            ["model_options.shared_bottom", "single-backward path"],
        ),
        ([1, 2], ["must be a mapping"]),
        (
            {"models": ["htlnet", "fast"], "model_options": {"fast": {"model": "htlnte"}}},
            ["unknown model 'model_options.fast.model: htlnte'", "did you mean 'htlnet'"],
        ),
        (
            {
                "models": ["htlnet", "no_opt"],
                "model_options": {"no_opt": {"model": "htlnet", "gradint": "none"}},
            },
            ["model_options.no_opt", "unknown option 'gradint'", "'gradient'"],
        ),  # fmt: skip
        ({"models": ["htlnet", "w/o opt"]}, ["'models[1]' is 'w/o opt'", "lower-case"]),
        ({"hpo": {"fixed": ["batchsize"]}}, ["'hpo.fixed' names ['batchsize']", "batch_size"]),
        ({"data": {"source": "kuairand"}}, ["'data.source' 'kuairand' reads files", "data.path"]),
        ({"data": {"source": "csv", "path": "x"}}, ["'data.source' is 'csv'", "events"]),
        (
            {"data": {"source": "events", "path": "x.csv", "events": {"categorical": ["u"]}}},
            ["'data.events' must declare 'chain'"],
        ),
        (
            {
                "data": {
                    "source": "events",
                    "path": "x",
                    "events": {"categorical": ["u", "c"], "chain": ["c"], "core": "y"},
                }
            },
            ["more than one role: ['c']"],
        ),  # fmt: skip
        ({"data": {"shoppers": {"cohort": ["2012-03-01", "later"]}}}, ["two ISO dates"]),
        ({"data": {"kuairand": {"log": "pure"}}}, ["'data.kuairand.log' is 'pure'"]),
        (
            {"data": {"core_transform": "log1p"}, "train": {"core_loss": "ziln"}},
            ["log1p needs 'train.core_loss' mse"],
        ),
        (
            {"data": {"core_transform": "standardize"}, "train": {"core_loss": "ziln"}},
            ["standardize needs 'train.core_loss' mse"],
        ),
        ({"data": {"core_transform": "zscore"}}, ["'data.core_transform' is 'zscore'"]),
    ],
)
def test_bad_config_names_the_key(raw: object, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:  # the schema's checks, then the registry's
        check(config_from_dict(raw, source="exp.yaml"), "exp.yaml")
    message = str(info.value)
    assert message.startswith("exp.yaml: ")
    for fragment in fragments:
        assert fragment in message


def test_missing_and_unparsable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [htlnet\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_defaults_fill_in_and_stores_live_under_workdir(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"workdir": str(tmp_path / "w")}))
    config = load_config(path)
    assert config.models == ("htlnet", "shared_bottom", "dnn")
    assert config.tracking_uri == f"sqlite:///{tmp_path / 'w' / 'mlflow.db'}"
    assert config.optuna_storage.endswith("/w/optuna.db")


def test_variants_build_their_model_with_their_options() -> None:
    config = load_config(ROOT / "configs" / "ablation-optimization.yaml")
    assert config.architecture("htlnet_wo_conflict") == "htlnet"
    assert config.options_for("htlnet_wo_conflict") == {"alpha": 0.0}
    assert config.architecture("htlnet") == "htlnet" and config.options_for("htlnet") == {}
    from htl.hpo import search_space

    # an option the variant sets is never tuned away; hpo.fixed keeps the config's batch size
    assert "alpha" not in search_space(config, "htlnet_wo_conflict")
    assert "alpha" in search_space(config, "htlnet")
    # Algorithm 1's α, γ, C mean nothing to a variant trained with PCGrad or without a process
    assert not {"alpha", "gamma", "clip"} & set(search_space(config, "htlnet_pcgrad"))
    assert "label_dim" in search_space(config, "htlnet_pcgrad")
    assert "batch_size" in search_space(config, "htlnet")
    params = config.training_spec("htlnet_wo_conflict")
    assert params.architecture == "htlnet" and params.options == {"alpha": 0.0}
    table2 = load_config(ROOT / "configs" / "table2-kuairand.yaml")
    assert "batch_size" not in search_space(table2, "mmoe")


def test_overrides_apply_on_top_of_the_file_and_are_validated(tmp_path: Path) -> None:
    path = ROOT / "configs" / "demo.yaml"
    config = load_config(path, ["data.rows=1234", "seeds=[4, 5]", "train.lr=0.01"])
    assert (config.data.rows, config.seeds, config.train.lr) == (1234, (4, 5), 0.01)
    assert config.models == load_config(path).models
    with pytest.raises(ConfigError, match="unknown key 'data.rowz'"):
        load_config(path, ["data.rowz=10"])
    with pytest.raises(ConfigError, match="not of the form dotted.key=value"):
        load_config(path, ["data.rows"])
    with pytest.raises(ConfigError, match="'name' is not a section"):
        load_config(path, ["name.x=1"])
    empty = tmp_path / "empty.yaml"
    empty.write_text("tracking:\nmodels: [htlnet]\n")  # an empty section reads as null
    assert load_config(empty, ["tracking.experiment=x"]).tracking.experiment == "x"
    listed = tmp_path / "list.yaml"
    listed.write_text("- htlnet\n")
    with pytest.raises(ConfigError, match="must be a mapping to take overrides"):
        load_config(listed, ["seeds=[1]"])


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"use_leu": "no"}, "'model_options.htlnet': 'use_leu' must be bool, got 'no'"),
        ({"label_dim": "8"}, "'model_options.htlnet': 'label_dim' must be int, got '8'"),
        ({"alpha": "high"}, "'model_options.htlnet': 'alpha' must be float, got 'high'"),
        ({"label_dim": 0}, "'model_options.htlnet': 'label_dim' must be >= 1, got 0"),
        ({"alpha": 1.5}, "'model_options.htlnet': 'alpha' must be in [0, 1], got 1.5"),
    ],
)
def test_model_options_are_typed_like_config_keys(options: dict, fragment: str) -> None:
    config = config_from_dict({"model_options": {"htlnet": options}}, source="exp.yaml")
    with pytest.raises(ConfigError) as info:
        check(config, "exp.yaml")
    assert str(info.value) == f"exp.yaml: {fragment}"


def test_integral_floats_from_a_pipeline_parameter_become_ints() -> None:
    raw = {"models": ["mmoe"], "register": {"model": "mmoe"}, "significance": {"reference": "mmoe"}}
    config = config_from_dict({**raw, "model_options": {"mmoe": {"experts": 4.0}}})
    from htl.models.registry import resolve

    assert check(config) is config
    assert resolve("mmoe", config.options_for("mmoe")).options.experts == 4


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"seeds": [1e20]}, "'seeds[0]' must be in [0, 4294967295], got 100000000000000000000"),
        ({"seeds": [-1]}, "'seeds[0]' must be in [0, 4294967295], got -1"),
        ({"train": {"lr": float("nan")}}, "'train.lr' must be a finite number, got nan"),
        ({"train": {"l2": float("nan")}}, "'train.l2' must be a finite number, got nan"),
        ({"data": {"split": [0.8, float("nan"), 0.1]}}, "'data.split[1]' must be a finite number"),
        (
            {"promote": {"margin": float("inf")}},
            "'promote.margin' must be a finite number, got inf",
        ),
        ({"register": {"alias": "latest"}}, "'register.alias' is 'latest'; MLflow reserves"),
        ({"register": {"alias": "v3"}}, "'register.alias' is 'v3'; MLflow reserves"),
        ({"register": {"alias": "my alias"}}, "allows letters, digits, '_' and '-' only"),
        ({"model_options": {"dnn": 5}}, "'model_options.dnn' must be a mapping, got 5"),
    ],
)
def test_values_that_would_fail_later_fail_at_load_time(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"models": ["htlnet", "dnn"], **raw}, source="exp.yaml")
    assert str(info.value).startswith("exp.yaml: ") and message in str(info.value)
    assert "\n" not in str(info.value)


def test_cuda_without_a_cuda_device_is_refused() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="'train.device' is 'cuda' but this machine has no CUDA"):
        check(config_from_dict({"train": {"device": "cuda"}}), "exp.yaml")


def test_an_unreachable_tracking_server_stops_the_run_before_any_step(tmp_path: Path) -> None:
    import subprocess
    import sys

    from conftest import free_port, write_config

    uri = f"http://127.0.0.1:{free_port()}"
    path = write_config(tmp_path, {"tracking": {"uri": uri}})
    htl = Path(sys.executable).with_name("htl")
    proc = subprocess.run([str(htl), "run", "--config", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert f"htl: error: {path}: 'tracking.uri' {uri} does not answer" in proc.stderr
    assert not (tmp_path / "work").exists()  # nothing was started
