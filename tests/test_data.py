"""Synthetic source, label chain, chronological split, encoders, and bad-input errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from htl.artifacts import EVENTS_FILE, FEATURES_FILE, SCHEMA_FILE, split_path
from htl.config import DataConfig
from htl.data.features import OOV, FeatureEncoder
from htl.data.labels import apply_chain
from htl.data.prepare import prepare_splits
from htl.data.schema import EventSchema
from htl.data.sources import ingest
from htl.data.split import chronological_split
from htl.data.synthetic import SYNTHETIC_KUAIRAND_SCHEMA as KUAIRAND_SCHEMA
from htl.data.synthetic import kuairand_events
from htl.errors import DataError

SCHEMA = EventSchema(categorical=("user", "item"), chain=("click", "buy"), core="amount", time="ts")


def frame(**overrides) -> pd.DataFrame:
    n = 20
    base = {
        "user": np.arange(n) % 4,
        "item": np.arange(n) % 5,
        "ts": np.arange(n),
        "click": np.r_[np.ones(10), np.zeros(10)],
        "buy": np.r_[np.ones(5), np.zeros(15)],
        "amount": np.r_[np.linspace(1, 5, 5), np.zeros(15)],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def write_events(directory: Path, events: pd.DataFrame, schema: EventSchema = SCHEMA) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    events.to_parquet(directory / EVENTS_FILE, index=False)
    schema.save(directory / SCHEMA_FILE)
    return directory


def test_synthetic_kuairand_labels_follow_the_real_logs_rules() -> None:
    events = kuairand_events(60_000, seed=3)
    assert events.equals(kuairand_events(60_000, seed=3))
    assert not events.equals(kuairand_events(60_000, seed=4))
    play_ms, duration_ms = events.watch_time * 1000, events.duration_ms
    # is_click (a valid play) and long_view exactly as KuaiRand defines them (model-spec §5.1)
    assert (events.click == (play_ms.round() >= np.minimum(duration_ms, 7000))).all()
    assert (events.long_view == (play_ms.round() >= np.minimum(duration_ms, 18_000))).all()
    assert events.watch_time.std() > 2 * events.watch_time.mean()  # heavy tail
    assert (events.watch_time[events.click == 0] > 0).mean() > 0.9  # swipes are watched too
    assert (events.long_view <= events.click).all()
    assert events.time_ms.is_monotonic_increasing
    # the core depends on the chain: long views are watched far longer
    means = events.groupby(["click", "long_view"]).watch_time.mean()
    assert means[(1, 1)] > 2 * means[(1, 0)] > 2 * means[(0, 0)]


def test_ingest_writes_events_and_schema(tmp_path: Path) -> None:
    summary = ingest(DataConfig(rows=500), tmp_path / "events")
    events = pd.read_parquet(tmp_path / "events" / EVENTS_FILE)
    assert len(events) == 500 == summary["rows"]
    schema = EventSchema.load(tmp_path / "events" / SCHEMA_FILE)
    assert schema == replace(KUAIRAND_SCHEMA, origin="synthetic:kuairand")


def test_chain_violation_error_repair_drop() -> None:
    events = frame(buy=np.r_[np.ones(5), np.zeros(14), [1.0]])  # row 19: buy=1, click=0
    with pytest.raises(
        DataError, match=r"1 rows break the chain; first at row 19: 'buy'=1 while 'click'=0"
    ):
        apply_chain(events, SCHEMA, "error", "events.parquet")
    repaired, report = apply_chain(events, SCHEMA, "repair", "x")
    assert report.violations == 1 and repaired.loc[19, "click"] == 1 and len(repaired) == 20
    dropped, report = apply_chain(events, SCHEMA, "drop", "x")
    assert report.rows_out == 19
    assert dropped.equals(events.drop(index=19).reset_index(drop=True))


def test_chronological_split_keeps_ties_together() -> None:
    events = frame(
        ts=np.r_[np.zeros(8), np.ones(8), np.full(4, 2)]
    )  # 8 rows share ts 0, 8 share ts 1
    parts = chronological_split(events, "ts", (0.5, 0.25, 0.25))
    assert [len(p) for p in parts.values()] == [8, 8, 4]
    assert (
        parts["train"].ts.max()
        < parts["valid"].ts.min()
        <= parts["valid"].ts.max()
        < parts["test"].ts.min()
    )


def test_encoder_fits_on_train_only_and_maps_unseen_to_oov() -> None:
    train = pd.DataFrame({"user": ["a", "b", "b"], "item": [1, 2, 2]})
    encoder = FeatureEncoder.fit(train, ["user", "item"], ("click",), "amount", min_count=2)
    encoded = encoder.encode(pd.DataFrame({"user": ["b", "a", "zzz"], "item": [2, 1, 99]}))
    assert encoded.dtypes.tolist() == [np.int32, np.int32]
    assert encoded.user.tolist() == [1, OOV, OOV]  # 'a' is below min_count
    assert encoded.item.tolist() == [1, OOV, OOV]
    assert encoder.cardinalities == [2, 2]


def test_integer_fields_encode_like_their_strings_and_survive_missing_values() -> None:
    g = np.random.default_rng(0)
    train = pd.DataFrame({"id": g.integers(0, 50, 500) * 7, "code": g.integers(0, 9, 500)})
    fast = FeatureEncoder.fit(train, ["id", "code"], ("c",), "y", min_count=3)
    slow = FeatureEncoder.fit(train.astype(str), ["id", "code"], ("c",), "y", min_count=3)
    assert sorted(fast.vocabularies["id"]) == sorted(slow.vocabularies["id"])
    serving = pd.DataFrame({"id": [7.0, np.nan, 14.0, 3.0], "code": [1, 2, 3, 4]})
    as_int = fast.encode(serving.fillna(-1).astype(int))
    with_nan = fast.encode(serving)  # an int column that gained a NaN arrives as float
    assert with_nan["id"].tolist()[0] == as_int["id"].tolist()[0] != OOV
    assert with_nan["id"].tolist()[1] == OOV and with_nan["id"].tolist()[3] == OOV
    vocab = fast.vocabularies["id"]
    assert as_int["id"].tolist()[2] == vocab.index("14") + 1
    assert fast.encode(serving.astype({"code": str}))["code"].equals(fast.encode(serving)["code"])
    # ints that gained a NaN in training (a left join) still match plain ints at serving
    joined = FeatureEncoder.fit(
        pd.DataFrame({"code": [1.0, 2.0, np.nan, 2.0]}), ["code"], ("c",), "y"
    )
    assert joined.vocabularies["code"] == ["1", "2"]
    assert joined.encode(pd.DataFrame({"code": [2, 1, 5]}))["code"].tolist() == [2, 1, OOV]


def test_numeric_fields_bucketize_at_train_quantiles(tmp_path: Path) -> None:
    train = pd.DataFrame({"price": np.arange(100, dtype=float)})
    encoder = FeatureEncoder.fit(train, [], ("c",), "y", numeric=["price"], buckets=4)
    assert encoder.boundaries["price"] == [24.75, 49.5, 74.25]
    assert encoder.cardinalities == [5]  # OOV + 4 buckets
    encoded = encoder.encode(pd.DataFrame({"price": [-5.0, 24.75, 50.0, 1e9, np.nan]}))
    assert encoded["price"].tolist() == [1, 2, 3, 4, OOV]
    encoder.save(tmp_path / "f.json")
    assert FeatureEncoder.load(tmp_path / "f.json") == encoder


def test_prepare_splits_writes_encoded_splits(tmp_path: Path) -> None:
    ingest(DataConfig(rows=2000), tmp_path / "events")
    card = prepare_splits(tmp_path / "events", tmp_path / "splits", DataConfig())
    sizes = {
        s: len(pd.read_parquet(split_path(tmp_path / "splits", s)))
        for s in ("train", "valid", "test")
    }
    assert sum(sizes.values()) == 2000 and sizes["train"] == 1600
    train = pd.read_parquet(split_path(tmp_path / "splits", "train"))
    encoder = FeatureEncoder.load(tmp_path / "splits" / FEATURES_FILE)
    values = [f"{name}__value" for name in encoder.dense]  # the dense duration's values
    assert encoder.dense and list(train.columns) == [
        *encoder.fields,
        *values,
        "click",
        "long_view",
        "watch_time",
    ]
    assert all(train[f].dtype == np.int32 for f in encoder.fields)
    assert train.watch_time.dtype == np.float32
    assert card["splits"]["train"]["time_max"] <= card["splits"]["valid"]["time_min"]
    assert (tmp_path / "splits" / "data_card.md").read_text().startswith("# Data card")


@pytest.mark.parametrize(
    ("events", "fragments"),
    [
        (frame().rename(columns={"click": "clik"}), ["missing column 'click'", "found 'clik'"]),
        (frame(amount=np.r_[np.nan, np.ones(19)]), ["'amount'", "non-finite", "row 0: nan"]),
        (frame(amount=np.r_[np.inf, np.ones(19)]), ["'amount'", "non-finite", "inf"]),
        (frame(amount=np.r_[-3.0, np.ones(19)]), ["'amount' has negative value -3.0 at row 0"]),
        (frame(click=["yes"] * 20), ["'click' has dtype", "expected numbers"]),
        (frame(click=np.r_[2.0, np.ones(19)]), ["'click' has value 2.0 at row 0; expected 0 or 1"]),
        (frame(buy=np.r_[np.ones(5), np.zeros(14), [1.0]]), ["break the chain"]),
        (frame(amount=np.full(20, 2.0)), ["target 'amount' is constant"]),
        (frame().head(2), ["split is empty"]),
    ],
)
def test_bad_events_fail_clearly_and_write_nothing(
    tmp_path: Path, events: pd.DataFrame, fragments: list[str]
) -> None:
    events_dir = write_events(tmp_path / "events", events)
    with pytest.raises(DataError) as info:
        prepare_splits(events_dir, tmp_path / "splits", DataConfig())
    message = str(info.value)
    assert str(events_dir / EVENTS_FILE) in message
    for fragment in fragments:
        assert fragment in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events"]  # no partial output


def test_unreadable_events_file(tmp_path: Path) -> None:
    events_dir = write_events(tmp_path / "events", frame())
    (events_dir / EVENTS_FILE).write_text("not parquet")
    with pytest.raises(DataError, match="cannot be read as Parquet"):
        prepare_splits(events_dir, tmp_path / "splits", DataConfig())
    with pytest.raises(DataError, match="file not found"):
        prepare_splits(tmp_path / "nowhere", tmp_path / "splits", DataConfig())


def test_dense_numeric_fields_scale_one_row_by_the_standardised_value(tmp_path: Path) -> None:
    train = pd.DataFrame({"user": [1, 2, 1, 2], "price": [10.0, 20.0, 30.0, 40.0]})
    encoder = FeatureEncoder.fit(
        train, ["user"], ("c",), "y", numeric=["price"], numeric_encoding="dense"
    )
    assert encoder.fields == ["user", "price"] and encoder.cardinalities == [3, 2]
    assert encoder.dense["price"] == (25.0, pytest.approx(np.std([10, 20, 30, 40])))
    serving = pd.DataFrame({"user": [2, 9], "price": [25.0, np.nan]})
    assert encoder.encode(serving)["price"].tolist() == [1, OOV]
    np.testing.assert_allclose(encoder.values(serving), [[1.0, 0.0], [1.0, 1.0]])
    encoder.save(tmp_path / "f.json")
    assert FeatureEncoder.load(tmp_path / "f.json") == encoder


def test_dense_numeric_features_train_end_to_end(tmp_path: Path) -> None:
    from htl.artifacts import load_model
    from htl.config import TrainSpec
    from htl.train import load_split, predict, train_model

    data = DataConfig(profile="kaggle", rows=3000, numeric_encoding="dense")
    ingest(data, tmp_path / "events")
    card = prepare_splits(tmp_path / "events", tmp_path / "splits", data)
    assert list(card["numeric_dense"]) == ["log_calibration_value"]
    train = pd.read_parquet(split_path(tmp_path / "splits", "train"))
    assert train["log_calibration_value__value"].mean() == pytest.approx(0.0, abs=1e-5)
    params = TrainSpec(epochs=1, batch_size=256, architecture="htlnet", options={})
    train_model(tmp_path / "splits", "htlnet", 0, params, tmp_path / "model")
    model = load_model(tmp_path / "model")
    encoder = FeatureEncoder.load(tmp_path / "model" / FEATURES_FILE)
    test = load_split(tmp_path / "splits", "test", encoder, "cpu")
    assert test.scale is not None and test.scale.shape == test.x.shape
    preds = predict(model, test)
    assert all(bool(torch.isfinite(v).all()) for v in preds.values())
