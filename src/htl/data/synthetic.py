"""Synthetic event logs shaped like the paper's three datasets (Table 1), deterministic per seed.

- `kuairand`: click → long view → watch time (17.62 %, 8.50 %, mean 6.94 s, heavy-tailed).
- `kaggle`: (customer, company) samples, repurchase in 1 year → in 1 month → the 1-month amount
  (85.68 %, 41.05 %, mean 4.52, std 165.69: a few huge spenders).
- `product`: a fund platform, click → purchase → amount (8.65 %, 4.82 %, mean 1627.05,
  std 8009.42).

Users and items carry latent factors whose affinity drives every step of the chain; the
relation drifts over time; the core depends on how far the chain got and on the affinity, so it
is learnable and tied to the preceding labels. Rates are met by solving for each step's
intercept, and the Kaggle and Product amounts by a monotone power transform and a scale that
give Table 1's mean and std exactly (whenever the row count allows that spread).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from htl.data.schema import EventSchema
from htl.data.table1 import TABLE1

KUAIRAND_TARGETS = {"click": 0.1762, "long_view": 0.0850, "watch_time_mean": 6.94}
KUAIRAND_START_MS = 1_650_585_600_000  # 2022-04-22 00:00 UTC, the random log's first day
KUAIRAND_DAYS = 17
STAGE_MEANS = (3.0, 10.0, 40.0)  # watch time before scaling: no click, click, long view
WATCH_SIGMA = 0.65

SYNTHETIC_KUAIRAND_SCHEMA = EventSchema(
    categorical=(
        "user_id",
        "user_active_degree",
        "is_video_author",
        "follow_user_num_range",
        "video_id",
        "author_id",
        "video_type",
        "upload_type",
        "music_type",
        "duration_bucket",
        "hour",
        "tab",
    ),
    chain=("click", "long_view"),
    core="watch_time",
    time="time_ms",
    dataset="kuairand",
)


def kuairand_events(rows: int, seed: int = 0) -> pd.DataFrame:
    """A KuaiRand-shaped log of `rows` exposures, sorted by `time_ms`."""
    rng = np.random.default_rng(seed)
    n_users = max(20, rows // 40)
    n_videos = max(20, rows // 150)
    k = 8

    user_vec = rng.normal(size=(n_users, k))
    video_vec = rng.normal(size=(n_videos, k))
    user_bias = rng.normal(scale=0.5, size=n_users)
    video_bias = rng.normal(scale=0.5, size=n_videos)
    user_degree = rng.choice(4, size=n_users, p=[0.4, 0.3, 0.2, 0.1])
    user_author = (rng.random(n_users) < 0.1).astype(np.int64)
    user_follow = rng.integers(0, 8, size=n_users)
    video_author = rng.integers(0, max(5, n_videos // 5), size=n_videos)
    video_type = rng.choice(2, size=n_videos, p=[0.9, 0.1])
    upload_type = rng.integers(0, 6, size=n_videos)
    music_type = rng.integers(0, 4, size=n_videos)
    duration_s = np.exp(rng.normal(3.3, 0.8, size=n_videos))

    # Active users see more videos; popular videos are shown more (power-law exposure).
    user_weight = np.exp(0.5 * user_degree + rng.normal(scale=0.5, size=n_users))
    video_weight = rng.pareto(1.5, size=n_videos) + 1.0
    user = rng.choice(n_users, size=rows, p=user_weight / user_weight.sum())
    video = rng.choice(n_videos, size=rows, p=video_weight / video_weight.sum())
    time_ms = np.sort(
        KUAIRAND_START_MS + rng.integers(0, KUAIRAND_DAYS * 86_400_000, size=rows, dtype=np.int64)
    )
    hour = (time_ms // 3_600_000) % 24
    tab = rng.choice(15, size=rows, p=_tab_weights())
    day_fraction = (time_ms - KUAIRAND_START_MS) / (KUAIRAND_DAYS * 86_400_000)

    affinity = (
        np.einsum("ij,ij->i", user_vec[user], video_vec[video]) / np.sqrt(k)
        + user_bias[user]
        + video_bias[video]
        + 0.3 * np.cos(2 * np.pi * (hour - 21) / 24)  # evening peak
        + 0.2 * (user_degree[user] - 1.5)
        - 0.3 * day_fraction  # slow drift over the log
    )
    short = np.log(duration_s[video]) < 3.0
    click_logit = 1.3 * affinity + 0.4 * (tab == 0)
    click = _bernoulli(rng, click_logit, KUAIRAND_TARGETS["click"])
    lv_logit = 1.2 * affinity + 0.8 * short
    long_view = click * _bernoulli(
        rng, lv_logit, KUAIRAND_TARGETS["long_view"] / KUAIRAND_TARGETS["click"], mask=click
    )

    stage_mean = np.select(
        [long_view == 1, click == 1], [STAGE_MEANS[2], STAGE_MEANS[1]], STAGE_MEANS[0]
    )
    log_wt = (
        np.log(stage_mean)
        - WATCH_SIGMA**2 / 2
        + 0.25 * affinity
        + WATCH_SIGMA * rng.normal(size=rows)
    )
    watch_time = np.exp(log_wt)
    watch_time[(click == 0) & (rng.random(rows) < 0.35)] = 0.0  # skipped instantly
    watch_time *= KUAIRAND_TARGETS["watch_time_mean"] / watch_time.mean()

    return pd.DataFrame(
        {
            "user_id": user.astype(np.int64),
            "user_active_degree": np.array(["low", "middle", "high", "full"])[user_degree[user]],
            "is_video_author": user_author[user],
            "follow_user_num_range": user_follow[user],
            "video_id": video.astype(np.int64),
            "author_id": video_author[video],
            "video_type": np.array(["NORMAL", "AD"])[video_type[video]],
            "upload_type": upload_type[video],
            "music_type": music_type[video],
            "duration_bucket": np.digitize(duration_s[video], [7, 15, 30, 60, 120]),
            "hour": hour.astype(np.int64),
            "tab": tab.astype(np.int64),
            "time_ms": time_ms,
            "click": click.astype(np.int64),
            "long_view": long_view.astype(np.int64),
            "watch_time": watch_time.astype(np.float64),
        }
    )


def _tab_weights() -> np.ndarray:
    weights = np.array([0.4, 0.2, 0.1] + [0.3 / 12] * 12)
    return weights / weights.sum()


def _bernoulli(
    rng: np.random.Generator, logit: np.ndarray, rate: float, mask: np.ndarray | None = None
) -> np.ndarray:
    """Draw 0/1 with P = sigmoid(logit + b), b chosen so the mean over `mask` equals `rate`
    (solved on at most a million of the logits, which pins b to well under 1 %)."""
    chosen = logit if mask is None else logit[mask.astype(bool)]
    chosen = chosen[:: max(1, len(chosen) // 1_000_000)]
    low, high = -20.0, 20.0
    for _ in range(60):  # bisection on the intercept
        mid = (low + high) / 2
        if _sigmoid(chosen + mid).mean() < rate:
            low = mid
        else:
            high = mid
    return (rng.random(logit.shape[0]) < _sigmoid(logit + (low + high) / 2)).astype(np.int64)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


KAGGLE_SCHEMA = EventSchema(
    categorical=("company", "chain", "dept", "category", "brand", "productmeasure"),
    chain=("repurchase_1y", "repurchase_1m"),
    core="amount_1m",
    time="start_day",
    numeric=("log_calibration_value",),
    dataset="kaggle",
)
PRODUCT_SCHEMA = EventSchema(
    categorical=("user_id", "user_age", "user_risk_level", "user_channel", "fund_id",
                 "fund_type", "fund_risk_level", "fund_manager", "hour", "weekday", "position"),
    chain=("click", "purchase"),
    core="amount",
    time="time_ms",
    numeric=("fund_return_1y",),
    dataset="product",
)  # fmt: skip
KAGGLE_START_DAY = 15_400  # 2012-03-01 as days since 1970-01-01
PRODUCT_START_MS = 1_690_848_000_000  # 2023-08-01 00:00 UTC
PRODUCT_DAYS = 30


def kaggle_events(rows: int, seed: int = 0) -> pd.DataFrame:
    """(customer, company) samples of a shopper panel, sorted by the first purchase day."""
    stats = TABLE1["kaggle"]
    rng = np.random.default_rng(seed)
    companies, k = 20, 6
    customers = max(50, rows // 16)
    company = rng.choice(companies, size=rows, p=_zipf(companies, 0.8))
    customer = rng.integers(0, customers, size=rows)
    customer_vec, company_vec = rng.normal(size=(customers, k)), rng.normal(size=(companies, k))
    loyalty = rng.normal(scale=0.7, size=customers)
    chain_store = rng.integers(0, 130, size=customers)  # the store chain a customer shops at
    brand = company * 50 + rng.integers(0, 50, size=rows)
    category = company * 30 + rng.integers(0, 30, size=rows)
    dept = category // 10
    measure = rng.choice(np.array(["OZ", "CT", "LB", "RL", "UNKNOWN"]), size=rows,
                         p=[0.55, 0.25, 0.1, 0.05, 0.05])  # fmt: skip
    start_day = np.sort(KAGGLE_START_DAY + rng.integers(0, 120, size=rows))
    drift = (start_day - KAGGLE_START_DAY) / 120
    log_calibration = rng.normal(1.2, 0.8, size=rows) + 0.3 * loyalty[customer]
    affinity = (
        np.einsum("ij,ij->i", customer_vec[customer], company_vec[company]) / np.sqrt(k)
        + loyalty[customer]
        + 0.5 * (log_calibration - 1.2)
        - 0.4 * drift
    )
    year = _bernoulli(rng, 1.2 * affinity, stats.rates[0])
    month = year * _bernoulli(rng, 1.0 * affinity + 0.4 * (measure == "OZ"),
                              stats.rates[1] / stats.rates[0], mask=year)  # fmt: skip
    spend = np.exp(0.6 * affinity + 0.8 * log_calibration + 2.5 * rng.normal(size=rows))
    amount = np.where(month == 1, spend, 0.0)
    amount = _match_moments(amount, stats.core_mean, stats.core_std)
    return pd.DataFrame(
        {
            "company": (104_000_000 + company * 10_010).astype(np.int64),
            "chain": chain_store[customer].astype(np.int32),
            "dept": dept.astype(np.int32),
            "category": category.astype(np.int32),
            "brand": brand.astype(np.int32),
            "productmeasure": measure,
            "log_calibration_value": log_calibration,
            "start_day": start_day.astype(np.int64),
            "repurchase_1y": year.astype(np.int8),
            "repurchase_1m": month.astype(np.int8),
            "amount_1m": amount,
        }
    )


def product_events(rows: int, seed: int = 0) -> pd.DataFrame:
    """Fund exposures on a wealth-management app over 30 days, sorted by time."""
    stats = TABLE1["product"]
    rng = np.random.default_rng(seed)
    k = 8
    users, funds = max(50, rows // 60), max(30, min(20_000, rows // 1000))
    user_vec, fund_vec = rng.normal(size=(users, k)), rng.normal(size=(funds, k))
    user_age = rng.integers(0, 7, size=users)
    user_risk = rng.integers(0, 5, size=users)
    user_channel = rng.integers(0, 6, size=users)
    wealth = rng.normal(size=users) + 0.3 * user_age
    fund_type = rng.integers(0, 5, size=funds)
    fund_risk = np.clip(fund_type + rng.integers(-1, 2, size=funds), 0, 4)
    fund_manager = rng.integers(0, max(5, funds // 8), size=funds)
    fund_return = rng.normal(0.03 * fund_risk, 0.05 + 0.04 * fund_risk, size=funds)
    user = rng.choice(users, size=rows, p=_normalised(np.exp(rng.normal(size=users))))
    fund = rng.choice(funds, size=rows, p=_normalised(rng.pareto(1.3, size=funds) + 1.0))
    time_ms = np.sort(
        PRODUCT_START_MS + rng.integers(0, PRODUCT_DAYS * 86_400_000, size=rows, dtype=np.int64)
    )
    hour = ((time_ms // 3_600_000) % 24).astype(np.int32)
    weekday = ((time_ms // 86_400_000 + 4) % 7).astype(np.int32)  # 1970-01-01 was a Thursday
    position = rng.integers(0, 10, size=rows).astype(np.int32)
    drift = (time_ms - PRODUCT_START_MS) / (PRODUCT_DAYS * 86_400_000)
    u, f = user, fund
    risk_fit = -0.4 * np.abs(user_risk[u] - fund_risk[f])
    affinity = (
        np.einsum("ij,ij->i", user_vec[u], fund_vec[f]) / np.sqrt(k)
        + risk_fit
        + 2.0 * fund_return[f] * (1 - drift)  # chasing returns fades over the month
        - 0.15 * position
    )
    click = _bernoulli(rng, 1.2 * affinity + 0.2 * np.cos(2 * np.pi * (hour - 20) / 24),
                       stats.rates[0])  # fmt: skip
    purchase = click * _bernoulli(rng, 1.2 * affinity + 0.5 * wealth[u],
                                  stats.rates[1] / stats.rates[0], mask=click)  # fmt: skip
    size = np.exp(0.9 * wealth[u] + 0.3 * affinity + 0.4 * rng.normal(size=rows))
    amount = _match_moments(np.where(purchase == 1, size, 0.0), stats.core_mean, stats.core_std)
    return pd.DataFrame(
        {
            "user_id": u.astype(np.int32),
            "user_age": user_age[u].astype(np.int8),
            "user_risk_level": user_risk[u].astype(np.int8),
            "user_channel": user_channel[u].astype(np.int8),
            "fund_id": f.astype(np.int32),
            "fund_type": fund_type[f].astype(np.int8),
            "fund_risk_level": fund_risk[f].astype(np.int8),
            "fund_manager": fund_manager[f].astype(np.int32),
            "hour": hour.astype(np.int8),
            "weekday": weekday.astype(np.int8),
            "position": position.astype(np.int8),
            "fund_return_1y": fund_return[f].astype(np.float32),
            "time_ms": time_ms,
            "click": click.astype(np.int8),
            "purchase": purchase.astype(np.int8),
            "amount": amount,
        }
    )


def _match_moments(values: np.ndarray, mean: float, std: float) -> np.ndarray:
    """A power q and a scale c on the positive values so that c·v^q has the given mean and
    (population) std over all rows; q is found by bisection (the spread grows with q)."""
    positive = values > 0
    v = values[positive]
    if v.size < 2:
        return values
    target = std / mean
    logs = np.log(v) - np.log(v).max()  # v^q / max(v)^q, never overflows

    n = values.size

    def cv(q: float) -> float:  # over all n rows, zeros included, from the positives alone
        w = np.exp(q * logs)
        return float(np.sqrt(max(n * np.sum(w * w) / np.sum(w) ** 2 - 1.0, 0.0)))

    low, high = 1e-3, 1.0
    while cv(high) < target and high < 64:
        high *= 2
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if cv(mid) < target else (low, mid)
    out = np.zeros(values.shape)
    out[positive] = np.exp((low + high) / 2 * logs)
    return out * (mean / out.mean())


def _zipf(n: int, power: float) -> np.ndarray:
    return _normalised(1.0 / np.arange(1, n + 1) ** power)


def _normalised(weights: np.ndarray) -> np.ndarray:
    return weights / weights.sum()


PROFILES = {
    "kuairand": (kuairand_events, SYNTHETIC_KUAIRAND_SCHEMA),
    "kaggle": (kaggle_events, KAGGLE_SCHEMA),
    "product": (product_events, PRODUCT_SCHEMA),
}
