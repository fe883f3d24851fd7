"""Every source on small files written here in the real format, locally and on gs:// (a real
gcp-storage-emulator on 127.0.0.1), and the synthetic profiles against the paper's Table 1."""

from __future__ import annotations

import gzip
import io
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from htl.config import DataConfig, EventsConfig, KuaiRandConfig, ShoppersConfig
from htl.data.kuairand import LOGS, USER_FEATURES, USERS_FILE, VIDEO_FEATURES, VIDEOS_FILE
from htl.data.prepare import prepare_splits
from htl.data.schema import reference_column
from htl.data.sources import EVENTS_FILE, ingest
from htl.data.synthetic import PROFILES
from htl.data.table1 import TABLE1
from htl.errors import DataError
from htl.metrics import evaluate_predictions, trivial_references
from htl.tasks import TaskSpec

# --- events ---------------------------------------------------------------------------------

EVENTS = EventsConfig(
    categorical=("user", "item"),
    numeric=("price",),
    chain=("click", "buy"),
    core="amount",
    time="ts",
)


def event_table(n: int = 40, seed: int = 0) -> pd.DataFrame:
    g = np.random.default_rng(seed)
    click = (g.random(n) < 0.5).astype(int)
    buy = click * (g.random(n) < 0.5)
    return pd.DataFrame(
        {
            "ts": np.arange(n) * 1000,
            "user": g.integers(0, 5, n),
            "item": [f"i{k}" for k in g.integers(0, 4, n)],
            "price": g.random(n) * 100,
            "click": click,
            "buy": buy,
            "amount": buy * g.exponential(10, n),
            "ignored": "x",
        }
    )


def pieces(frame: pd.DataFrame, k: int) -> list[pd.DataFrame]:
    """`k` contiguous row ranges of `frame`."""
    bounds = np.linspace(0, len(frame), k + 1).astype(int)
    return [frame.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def read(path: str | Path, **events: object) -> pd.DataFrame:
    data = DataConfig(source="events", path=str(path), events=replace(EVENTS, **events))
    return ingest_frame(data)


def ingest_frame(data: DataConfig, tmp: Path | None = None) -> pd.DataFrame:
    from tempfile import TemporaryDirectory

    with TemporaryDirectory() as out:
        ingest(data, Path(out) / "events")
        return pd.read_parquet(Path(out) / "events" / EVENTS_FILE)


def test_events_from_csv_gzip_parquet_parts_and_glob_agree(tmp_path: Path) -> None:
    table = event_table()
    table.to_csv(tmp_path / "log.csv", index=False)
    with gzip.open(tmp_path / "log.csv.gz", "wt") as f:
        table.to_csv(f, index=False)
    parts = tmp_path / "parts"
    parts.mkdir()
    for i, chunk in enumerate(pieces(table, 3)):
        chunk.to_parquet(parts / f"part-{i:05d}.parquet", index=False)
    (parts / "_SUCCESS").write_text("")
    expected = read(tmp_path / "log.csv")
    assert list(expected.columns) == ["user", "item", "price", "click", "buy", "amount", "ts"]
    assert len(expected) == 40 and "ignored" not in expected
    for source in (tmp_path / "log.csv.gz", parts, parts / "part-*.parquet"):
        got = read(source)
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_events_time_as_dates_becomes_epoch_ms(tmp_path: Path) -> None:
    table = event_table(6)
    table["ts"] = pd.date_range("2024-01-01", periods=6, freq="D").strftime("%Y-%m-%d")
    table.to_csv(tmp_path / "log.csv", index=False)
    got = read(tmp_path / "log.csv")
    assert got["ts"].tolist() == [1_704_067_200_000 + d * 86_400_000 for d in range(6)]


def test_events_without_time_split_at_random_and_numeric_features_bucketize(
    tmp_path: Path,
) -> None:
    table = event_table(400)
    table.to_parquet(tmp_path / "log.parquet", index=False)
    data = DataConfig(
        source="events", path=str(tmp_path / "log.parquet"), events=replace(EVENTS, time=None),
        buckets=4, numeric_encoding="bucketize",
    )  # fmt: skip
    ingest(data, tmp_path / "events")
    card = prepare_splits(tmp_path / "events", tmp_path / "splits", data)
    assert card["numeric_buckets"] == {"price": 4}
    train = pd.read_parquet(tmp_path / "splits" / "train.parquet")
    # quartile buckets of the train prices: about a quarter of the rows each, 0 kept for OOV
    counts = train["price"].value_counts().sort_index()
    assert counts.index.tolist() == [1, 2, 3, 4] and counts.min() >= 70
    assert card["splits"]["train"]["rows"] == 320


@pytest.mark.parametrize(
    ("mutate", "fragments"),
    [
        (lambda t: t.rename(columns={"amount": "amout"}), ["missing column 'amount'", "'amout'"]),
        (lambda t: t.drop(columns="user"), ["missing column 'user'"]),
        (lambda t: t.assign(amount=t.amount.astype(str) + "$"), ["'amount' has dtype"]),
        (lambda t: t.assign(price=["cheap"] * len(t)), ["numeric feature 'price'", "'cheap'"]),
        (lambda t: t.assign(amount=t.amount.where(t.index != 3, np.nan)), ["row 3: nan"]),
        (lambda t: t.assign(amount=t.amount.where(t.index != 5, -2.5)), ["negative value -2.5"]),
        (lambda t: t.assign(ts=t.ts.astype(str).where(t.index != 2, "soon")), ["'ts'", "time"]),
    ],
)
def test_bad_event_files_name_the_file_column_and_value(
    tmp_path: Path, mutate, fragments: list[str]
) -> None:
    good, bad = event_table(), mutate(event_table(seed=1))
    good.to_csv(tmp_path / "a.csv", index=False)
    bad.to_csv(tmp_path / "b.csv", index=False)
    data = DataConfig(source="events", path=str(tmp_path / "*.csv"), events=EVENTS)
    with pytest.raises(DataError) as info:
        ingest(data, tmp_path / "out")
    message = str(info.value)
    assert message.startswith(str(tmp_path / "b.csv")), message
    for fragment in fragments:
        assert fragment in message
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out*"))  # no temporary directory left either


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("log.parquet", b"not parquet at all", "cannot be read as Parquet"),
        ("log.csv.gz", gzip.compress(b"ts,user\n1,2\n")[:15], "cannot be read as CSV"),
        ("log.txt", b"ts\n1\n", "cannot tell the format"),
    ],
)
def test_unreadable_files_are_named(tmp_path: Path, name: str, content: bytes, fragment: str):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=fragment) as info:
        read(tmp_path / name)
    assert str(tmp_path / name) in str(info.value)


def test_nothing_at_the_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read(tmp_path / "missing" / "*.csv")


# --- kuairand --------------------------------------------------------------------------------


def write_kuairand(root: Path, rows: int = 60) -> pd.DataFrame:
    """A KuaiRand-Pure archive layout (`data/` inside) with every real column."""
    g = np.random.default_rng(0)
    data = root / "data"
    data.mkdir(parents=True)
    duration = g.integers(3_000, 60_000, rows)
    play = (duration * g.random(rows) * 1.5).astype(int)
    click = (play > 7_000) | (play >= duration)
    long_view = ((duration <= 18_000) & (play >= duration)) | (
        (duration > 18_000) & (play >= 18_000)
    )
    log = pd.DataFrame(
        {
            "user_id": g.integers(0, 6, rows), "video_id": g.integers(0, 5, rows),
            "date": 20220422, "hourmin": g.integers(0, 24, rows) * 100,
            "time_ms": 1_650_585_600_000 + np.arange(rows) * 60_000,
            "is_click": click.astype(int), "is_like": 0, "is_follow": 0, "is_comment": 0,
            "is_forward": 0, "is_hate": 0, "long_view": (long_view & click).astype(int),
            "play_time_ms": play, "duration_ms": duration, "profile_stay_time": 5,
            "comment_stay_time": 0, "is_profile_enter": 0, "is_rand": 1,
            "tab": g.integers(0, 15, rows),
        }
    )  # fmt: skip
    log.to_csv(data / LOGS["random"], index=False)
    log.head(10).to_csv(data / LOGS["standard_4_22_to_5_08"], index=False)
    users = pd.DataFrame({"user_id": range(5)})  # user 5 has no features: OOV
    for column in USER_FEATURES:
        users[column] = g.integers(0, 3, 5)
    users["user_active_degree"] = ["high_active", "full_active", "middle_active", "UNKNOWN", "x"]
    users["follow_user_num"] = 3  # present in the real file, not a feature
    users.to_csv(data / USERS_FILE, index=False)
    videos = pd.DataFrame({"video_id": range(5)})
    for column in VIDEO_FEATURES:
        videos[column] = g.integers(0, 3, 5)
    videos["tag"] = ["1,5", "8", None, "3,2,9", "4"]
    videos["video_duration"] = 1000
    videos.to_csv(data / VIDEOS_FILE, index=False)
    return log


def test_kuairand_joins_features_and_builds_the_targets(tmp_path: Path) -> None:
    log = write_kuairand(tmp_path / "KuaiRand-Pure")
    events = ingest_frame(DataConfig(source="kuairand", path=str(tmp_path / "KuaiRand-Pure")))
    assert len(events) == len(log)
    assert events["click"].tolist() == log["is_click"].tolist()
    assert events["long_view"].tolist() == log["long_view"].tolist()
    np.testing.assert_allclose(events["watch_time"], log["play_time_ms"] / 1000)
    assert events["hour"].tolist() == (log["hourmin"] // 100).tolist()
    tags = {0: "1", 1: "8", 3: "3", 4: "4"}
    for video, tag in tags.items():
        assert set(events.loc[log["video_id"] == video, "tag"]) <= {tag}
    # post-exposure feedback is never a feature
    for leak in ("play_time_ms", "is_like", "profile_stay_time", "is_click", "date"):
        assert leak not in events.columns
    assert events.loc[log["user_id"] == 5, "user_active_degree"].isna().all()
    standard = ingest_frame(
        DataConfig(source="kuairand", path=str(tmp_path / "KuaiRand-Pure" / "data"),
                   kuairand=KuaiRandConfig(log="standard_4_22_to_5_08"))
    )  # fmt: skip
    assert len(standard) == 10


def test_kuairand_without_a_user_file_names_it(tmp_path: Path) -> None:
    write_kuairand(tmp_path / "k")
    (tmp_path / "k" / "data" / USERS_FILE).unlink()
    with pytest.raises(DataError, match=USERS_FILE):
        ingest(DataConfig(source="kuairand", path=str(tmp_path / "k")), tmp_path / "out")


# --- acquire valued shoppers -------------------------------------------------------------------

HEADER = "id,chain,dept,category,company,brand,date,productsize,productmeasure,"
TRANSACTIONS = (
    HEADER
    + """purchasequantity,purchaseamount
1,10,5,501,100,7,2012-03-02,16,OZ,1,2.00
1,10,6,601,100,8,2012-03-02,12,CT,1,5.00
1,10,5,501,100,7,2012-03-20,16,OZ,1,3.50
1,10,5,501,100,7,2012-04-02,16,OZ,1,4.00
1,10,5,501,100,7,2012-12-01,16,OZ,1,1.25
1,10,9,901,200,3,2012-03-05,1,LB,1,9.00
2,11,5,501,100,7,2012-02-28,16,,1,-2.00
2,11,5,501,100,7,2012-03-01,16,,1,6.00
2,11,5,501,100,7,2012-03-31,16,,1,2.00
3,12,9,901,200,3,2012-05-01,1,LB,1,1.00
3,12,9,901,200,3,2013-05-02,1,LB,1,8.00
4,13,1,101,300,1,2012-03-01,1,OZ,1,50.00
"""
)


def shoppers(tmp_path: Path, **switches: object) -> pd.DataFrame:
    path = tmp_path / "transactions.csv.gz"
    if not path.exists():
        path.write_bytes(gzip.compress(TRANSACTIONS.encode()))
    options = ShoppersConfig(**{"companies": (100, 200), "chunk_rows": 1000, **switches})
    data = DataConfig(source="acquire_valued_shoppers", path=str(path), shoppers=options)
    return ingest_frame(data).set_index(["id", "company"])


def test_shoppers_recipe_by_hand(tmp_path: Path) -> None:
    got = shoppers(tmp_path)
    assert sorted(got.index) == [(1, 100), (1, 200), (2, 100), (3, 200)]  # company 300 not chosen
    one = got.loc[(1, 100)]
    # first day 2012-03-02: spend 7.00, attributes of its biggest line (5.00: dept 6, CT)
    assert one.log_calibration_value == pytest.approx(np.log(7.0))
    assert (one.dept, one.category, one.brand, one.productmeasure) == (6, 601, 8, "CT")
    # within 30 days: 03-20 (3.50); 04-02 is day 31; within a year: 03-20, 04-02, 12-01
    assert (one.repurchase_1y, one.repurchase_1m, one.amount_1m) == (1, 1, 3.5)
    two = got.loc[(2, 100)]  # the return on 02-28 is dropped: the first purchase is 03-01
    assert two.log_calibration_value == pytest.approx(np.log(6.0))
    assert (two.repurchase_1m, two.amount_1m, two.productmeasure) == (1, 2.0, "UNKNOWN")
    three = got.loc[(3, 200)]  # 2013-05-02 is day 366: outside the year
    assert (three.repurchase_1y, three.repurchase_1m, three.amount_1m) == (0, 0, 0.0)
    assert got.loc[(1, 200)].repurchase_1y == 0
    assert got["start_day"].is_monotonic_increasing


def test_shoppers_switches(tmp_path: Path) -> None:
    window = shoppers(tmp_path, month_window="31d").loc[(1, 100)]
    assert window.amount_1m == pytest.approx(7.5)  # 04-02 is day 31
    calendar = shoppers(tmp_path, month_window="calendar").loc[(1, 100)]
    assert calendar.amount_1m == pytest.approx(7.5)  # until 04-02 inclusive
    cohort = shoppers(tmp_path, cohort=("2012-03-02", "2012-04-01"))
    assert sorted(cohort.index) == [(1, 100), (1, 200)]
    top = shoppers(tmp_path, companies=(), top_companies=1)
    assert set(top.index.get_level_values("company")) == {100}  # 7 purchase lines


def test_shoppers_reads_in_chunks_with_the_same_result(tmp_path: Path) -> None:
    # chunks of two lines split customers and first days across chunks
    pd.testing.assert_frame_equal(shoppers(tmp_path, chunk_rows=2), shoppers(tmp_path))


def test_shoppers_bad_amount_is_named(tmp_path: Path) -> None:
    path = tmp_path / "transactions.csv"
    path.write_text(TRANSACTIONS.replace("2012-03-20,16,OZ,1,3.50", "2012-03-20,16,OZ,1,abc"))
    data = DataConfig(source="acquire_valued_shoppers", path=str(path))
    with pytest.raises(DataError, match=r"column 'purchaseamount' is 'abc' at row 2"):
        ingest(data, tmp_path / "out")


# --- gs:// through a real emulator --------------------------------------------------------------


def upload(bucket: object, name: str, data: bytes) -> str:
    bucket.blob(name).upload_from_string(data)
    return f"gs://{bucket.name}/{name}"


def test_events_from_gcs_match_local(tmp_path: Path, gcs: object) -> None:
    table = event_table()
    table.to_csv(tmp_path / "log.csv", index=False)
    expected = read(tmp_path / "log.csv")
    gz = io.BytesIO()
    with gzip.open(gz, "wt") as f:
        table.to_csv(f, index=False)
    pd.testing.assert_frame_equal(
        read(upload(gcs, "events/log.csv.gz", gz.getvalue())), expected, check_dtype=False
    )
    for i, chunk in enumerate(pieces(table, 2)):
        buffer = io.BytesIO()
        chunk.to_parquet(buffer, index=False)
        upload(gcs, f"parts/part-{i}.parquet", buffer.getvalue())
    for uri in ("gs://htl-test/parts", "gs://htl-test/parts/", "gs://htl-test/parts/*.parquet"):
        pd.testing.assert_frame_equal(read(uri), expected, check_dtype=False)
    with pytest.raises(DataError, match="gs://htl-test/nothing"):
        read("gs://htl-test/nothing")
    with pytest.raises(DataError, match="gs://no-such-bucket/logs: cannot be listed"):
        read("gs://no-such-bucket/logs")


def test_kuairand_and_shoppers_from_gcs(tmp_path: Path, gcs: object) -> None:
    write_kuairand(tmp_path / "k")
    for path in (tmp_path / "k" / "data").iterdir():
        upload(gcs, f"KuaiRand-Pure/data/{path.name}", path.read_bytes())
    local = ingest_frame(DataConfig(source="kuairand", path=str(tmp_path / "k")))
    remote = ingest_frame(DataConfig(source="kuairand", path="gs://htl-test/KuaiRand-Pure"))
    pd.testing.assert_frame_equal(remote, local)
    uri = upload(gcs, "kaggle/transactions.csv.gz", gzip.compress(TRANSACTIONS.encode()))
    data = DataConfig(
        source="acquire_valued_shoppers", path=uri, shoppers=ShoppersConfig(companies=(100, 200))
    )
    pd.testing.assert_frame_equal(
        ingest_frame(data).set_index(["id", "company"]), shoppers(tmp_path)
    )


# --- synthetic profiles ------------------------------------------------------------------------


@pytest.mark.parametrize(("profile", "rows"), [("kuairand", 60_000), ("kaggle", 100_000),
                                               ("product", 60_000)])  # fmt: skip
def test_synthetic_profiles_match_table1_within_10_percent(profile: str, rows: int) -> None:
    generate, schema = PROFILES[profile]
    events = generate(rows, seed=1)
    paper = TABLE1[profile]
    assert len(events) == rows
    for column, rate in zip(schema.chain, paper.rates, strict=True):
        assert events[column].mean() == pytest.approx(rate, rel=0.1), column
    assert events[schema.core].mean() == pytest.approx(paper.core_mean, rel=0.1)
    assert events[schema.core].std(ddof=0) == pytest.approx(paper.core_std, rel=0.1)
    chain = events[list(schema.chain)].to_numpy()
    assert (np.diff(chain, axis=1) <= 0).all()  # a valid chain
    if profile != "kuairand":  # the core exists only at the end of the chain
        assert (events[schema.core][chain[:, -1] == 0] == 0).all()
        assert (events[schema.core][chain[:, -1] == 1] > 0).all()
    assert events[schema.time].is_monotonic_increasing
    assert events.equals(generate(rows, seed=1)) and not events.equals(generate(rows, seed=2))


@pytest.mark.parametrize("profile", list(PROFILES))
def test_synthetic_references_are_calibrated_and_bayes_beats_the_trivial_ones(
    profile: str,
) -> None:
    """The Bayes and additive columns are expectations of the targets: within each fifth of
    their values the targets average to them (a wrong formula would not); and the Bayes
    predictor beats the constant predictors and the additive one on every ranked metric it
    optimises."""
    generate, schema = PROFILES[profile]
    events = generate(200_000, seed=0)
    for predictor in schema.references:
        for task in schema.chain:
            column = events[reference_column(predictor, task)]
            fifths = pd.qcut(column.rank(method="first"), 5, labels=False)
            observed = events[task].groupby(fifths).mean()
            expected = column.groupby(fifths).mean()
            tolerance = 4 * np.sqrt(expected * (1 - expected) / (len(events) / 5)) + 0.002
            assert (abs(observed - expected) < tolerance).all(), (predictor, task)
        core = events[reference_column(predictor, schema.core)]
        assert core.mean() == pytest.approx(events[schema.core].mean(), rel=0.15), predictor
    if profile == "kuairand":  # no extreme tail: check the core per fifth too
        core = events[reference_column("bayes", "watch_time")]
        fifths = pd.qcut(core.rank(method="first"), 5, labels=False)
        ratio = events.watch_time.groupby(fifths).mean() / core.groupby(fifths).mean()
        assert ratio.between(0.9, 1.1).all()
    tasks = TaskSpec(schema.chain, schema.core)
    train, test = events.iloc[:160_000], events.iloc[180_000:]
    targets = {t: test[t].to_numpy(dtype=float) for t in tasks.names}
    scores = {
        r: evaluate_predictions(
            targets,
            {t: test[reference_column(r, t)].to_numpy(dtype=float) for t in tasks.names},
            tasks,
        )
        for r in schema.references
    }
    trivial = trivial_references(targets, {t: train[t].to_numpy() for t in tasks.names}, tasks)
    keys = [f"{t}/{m}" for t in tasks.chain for m in ("auc", "logloss")] + [f"{tasks.core}/nrmse"]
    for key in keys:
        better = (lambda a, b: a > b) if key.endswith("auc") else (lambda a, b: a < b)
        for name, reference in trivial.items():
            if key in reference:
                assert better(scores["bayes"][key], reference[key]), (key, name)
        if not key.endswith("nrmse"):  # the heavy-tailed amounts' NRMSE is a sample lottery
            assert better(scores["bayes"][key], scores["additive"][key]), key


def test_synthetic_profiles_scale_from_1k_rows(tmp_path: Path) -> None:
    for profile in PROFILES:
        data = DataConfig(profile=profile, rows=1000)
        ingest(data, tmp_path / profile / "events")
        card = prepare_splits(tmp_path / profile / "events", tmp_path / profile / "splits", data)
        assert card["rows"] == 1000 and card["table1"]["dataset"] == TABLE1[profile].name
        markdown = (tmp_path / profile / "splits" / "data_card.md").read_text()
        assert f"Against the paper's Table 1 ({TABLE1[profile].name})" in markdown
        assert "| Bayes ceiling |" in markdown and "| additive only |" in markdown
        assert "| predict train mean |" in markdown


def test_a_killed_writers_leftovers_are_swept_at_the_next_write(tmp_path: Path) -> None:
    from htl.storage import STALE_AFTER_S, atomic_directory, atomic_write_text

    stale, fresh = tmp_path / ".card.md.tmp-dead", tmp_path / ".card.md.tmp-live"
    stale.write_text("left by a SIGKILL")
    fresh.write_text("another writer, still at work")
    old = time.time() - STALE_AFTER_S - 60
    os.utime(stale, (old, old))
    atomic_write_text(tmp_path / "card.md", "whole")
    assert (tmp_path / "card.md").read_text() == "whole"
    assert not stale.exists() and fresh.exists()
    (tmp_path / ".out.tmp-dead").mkdir()
    os.utime(tmp_path / ".out.tmp-dead", (old, old))
    with atomic_directory(tmp_path / "out") as tmp:
        (tmp / "x").write_text("1")
    assert not (tmp_path / ".out.tmp-dead").exists() and (tmp_path / "out" / "x").exists()


@pytest.mark.parametrize(
    ("mutate", "fragments"),
    [
        (lambda t: t.assign(amount=t.amount.where(t.index != 4, 1e300)),
         ["'amount' has value 1e+300 at row 4, beyond float32"]),
        (lambda t: t.assign(price=t.price.where(t.index != 6, np.inf)),
         ["numeric feature 'price' has value inf at row 6"]),
        (lambda t: t.assign(ts=t.ts.astype(float).where(t.index != 7, np.inf)),
         ["time column 'ts' has value inf at row 7"]),
        (lambda t: t.assign(amount=t.amount.astype(object).where(t.index != 11, "abc")),
         ["'amount' has dtype", "first bad value 'abc' at row 11"]),
        (lambda t: t.assign(price=t.price.astype(object).where(t.index != 11, "lots")),
         ["numeric feature 'price'", "first bad value 'lots' at row 11"]),
    ],
)  # fmt: skip
def test_values_are_checked_where_they_enter(tmp_path: Path, mutate, fragments: list[str]) -> None:
    mutate(event_table(seed=1)).to_csv(tmp_path / "b.csv", index=False)
    data = DataConfig(source="events", path=str(tmp_path / "b.csv"), events=EVENTS)
    with pytest.raises(DataError) as info:
        ingest(data, tmp_path / "out")
    assert str(info.value).startswith(str(tmp_path / "b.csv"))
    for fragment in fragments:
        assert fragment in str(info.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_csv_headers_are_read_as_csv(tmp_path: Path) -> None:
    """A BOM (Excel) and a quoted name with a comma read correctly; a duplicated name and a
    header alone are refused with the file named."""
    table = event_table()
    data = DataConfig(source="events", path=str(tmp_path / "in.csv"), events=EVENTS)
    expected = read(_write(tmp_path / "plain.csv", table.to_csv(index=False)))
    _write(tmp_path / "in.csv", table.to_csv(index=False), encoding="utf-8-sig")
    pd.testing.assert_frame_equal(read(tmp_path / "in.csv"), expected)
    _write(tmp_path / "in.csv", table.assign(**{"note, free": "x"}).to_csv(index=False))
    pd.testing.assert_frame_equal(read(tmp_path / "in.csv"), expected)
    text = table.to_csv(index=False).splitlines()
    _write(tmp_path / "in.csv", "\n".join([text[0] + ",price", *(r + ",1" for r in text[1:])]))
    with pytest.raises(DataError, match=r"in.csv: duplicate column names \['price'\]"):
        ingest(data, tmp_path / "out")
    _write(tmp_path / "in.csv", text[0] + "\n")
    with pytest.raises(DataError, match=r"in.csv: no rows \(a header alone\)"):
        ingest(data, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))  # nothing written


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path
