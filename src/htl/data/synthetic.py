"""Synthetic event logs that simulate the behaviour behind the paper's three datasets (Table 1),
deterministic per seed, with the best predictions possible on them.

Each profile simulates what the real log records and derives the labels by the real
dataset's rules (docs/datasets.md):

- `kuairand`: per exposure a video duration and a play time (a swipe, or an engaged view
  measured against the duration); click = a valid play, long view = the KuaiRand long-view
  rule, watch time = play time.
- `kaggle`: per (customer, company) a retention draw and a Poisson stream of purchases;
  repurchase in 1 year / 1 month = a purchase in the window, amount = the month's spend.
- `product`: per fund exposure a click and, after the click, a desired investment that
  becomes a purchase when it reaches the fund's minimum; amount = that investment.

Every step is driven by one interest score: an *additive* part (user, item and context
effects) plus a user × item *interaction* z = s·⟨taste_user, direction_item⟩ (taste
~ N(0, I), direction a unit vector), so z ~ N(0, s²) for every item and independent of the
additive part. The generator keeps two reference predictions per task, as columns
`bayes__<task>` and `additive__<task>`: E[y | all hidden factors] (the Bayes predictor: only
the per-exposure noise is unknown) and E[y | the additive part] (z integrated out exactly,
by Gauss-Hermite quadrature). Drift is only through observable features (hour, weekday).
Intercepts are solved on the exact expected rates, so Table 1's rates hold at any size; the
Kaggle and Product amounts pass through a monotone power c·v^q fitted to Table 1's mean and
std, which the references take into account.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.special import expit, ndtr

from htl.data.schema import EventSchema, reference_column
from htl.data.table1 import TABLE1

KUAIRAND_START_MS = 1_650_585_600_000  # 2022-04-22 00:00 UTC, the random log's first day
KUAIRAND_DAYS = 17
TASTE_DIMS = 4
SOLVE_ROWS = 50_000  # intercepts are solved on a systematic sample of this many rows
GAUSS_HERMITE_NODES = 10  # ~1e-5 for these smooth terms; fewer where the spread is small

#: Columns every profile adds: the Bayes and additive-only predictions per task.
REFERENCE_PREDICTORS = ("bayes", "additive")

Expected = Callable[[np.ndarray], dict[str, np.ndarray]]  # z -> E[task | z, additive part]


def _references(
    expected: Expected,
    z: np.ndarray,
    z_sd: float,
    groups: tuple[np.ndarray, np.ndarray] | None = None,
    nodes: int = GAUSS_HERMITE_NODES,
) -> dict[str, np.ndarray]:
    """The reference columns: `expected` at the true z (Bayes), and averaged over the
    interaction (additive only): z = z_group + N(0, z_sd²), the group part a finite mixture
    (`groups`: each group's share and its [rows] z_group) independent of the additive part."""
    bayes = expected(z)
    shares, offsets = groups if groups is not None else (np.ones(1), np.zeros((1, len(z))))
    nodes, weights = np.polynomial.hermite.hermgauss(nodes)
    additive = {task: np.zeros_like(v) for task, v in bayes.items()}
    for share, offset in zip(shares, offsets, strict=True):
        for node, weight in zip(nodes, weights, strict=True):
            w = share * weight / np.sqrt(np.pi)
            for task, value in expected(offset + np.sqrt(2) * z_sd * node).items():
                additive[task] += w * value
    return {  # float32, like the splits' targets: the columns travel with every copy of the rows
        **{reference_column("bayes", t): v.astype(np.float32) for t, v in bayes.items()},
        **{reference_column("additive", t): v.astype(np.float32) for t, v in additive.items()},
    }


def _interaction(
    rng: np.random.Generator, users: int, items_group: np.ndarray, groups: int, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-user tastes ~ N(0, I) and per-group unit directions; z = scale·⟨taste, direction⟩."""
    taste = rng.normal(size=(users, TASTE_DIMS))
    direction = rng.normal(size=(groups, TASTE_DIMS))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    return taste, direction[items_group] * scale


def _solve(rate: Callable[[float], float], target: float, low: float, high: float) -> float:
    """The x in [low, high] where the increasing function `rate` meets `target` (bisection)."""
    for _ in range(24):  # the bracket shrinks 1.6e7-fold: far below the sampling error
        mid = (low + high) / 2
        low, high = (mid, high) if rate(mid) < target else (low, mid)
    return (low + high) / 2


def _thin(n: int) -> slice:
    return slice(None, None, max(1, n // SOLVE_ROWS))


def _capped_mean(mu: np.ndarray, sigma: float, log_cap: np.ndarray) -> np.ndarray:
    """E[min(X, cap)] for log X ~ N(mu, sigma²)."""
    return np.exp(mu + sigma**2 / 2) * ndtr((log_cap - mu - sigma**2) / sigma) + np.exp(
        log_cap
    ) * ndtr((mu - log_cap) / sigma)


# --- KuaiRand: swipes and engaged views against the video's duration -------------------------

VALID_PLAY_S, LONG_VIEW_S = 7.0, 18.0  # KuaiRand's is_click (single-column UI) and long_view
SWIPE_LOG_MEAN, SWIPE_SIGMA = np.log(1.8), 0.8  # seconds on a video scrolled past
VIEW_SIGMA, VIEW_INTEREST = 1.05, 0.3  # engaged view / duration: log-normal spread, interest
MAX_LOOPS = 4.0  # an engaged view replays a short video at most this many times
KUAIRAND_INTERACTION = 0.35  # a user's own taste for a tag (hidden)
KUAIRAND_GROUP_INTERACTION = 1.0  # the taste shared by a follow-count group (observable)

SYNTHETIC_KUAIRAND_SCHEMA = EventSchema(
    categorical=("user_id", "user_active_degree", "is_video_author", "follow_user_num_range",
                 "video_id", "author_id", "video_type", "upload_type", "music_type", "tag",
                 "hour", "tab"),
    chain=("click", "long_view"),
    core="watch_time",
    time="time_ms",
    numeric=("duration_ms",),
    dataset="kuairand",
    references=REFERENCE_PREDICTORS,
)  # fmt: skip


def kuairand_events(rows: int, seed: int = 0) -> pd.DataFrame:
    """A KuaiRand-shaped log of `rows` exposures, sorted by `time_ms` (27k users and 7.6k
    videos per 1.19M rows, as the random-exposure log)."""
    rng = np.random.default_rng(seed)
    n_users, n_videos, n_tags = max(20, rows // 43), max(20, rows // 156), 20
    degree = rng.choice(4, size=n_users, p=[0.4, 0.3, 0.2, 0.1])
    user_author = (rng.random(n_users) < 0.1).astype(np.int64)
    follow = rng.integers(0, 8, size=n_users)
    user_bias = rng.normal(scale=0.2, size=n_users) + 0.15 * (degree - 1.5)
    n_authors = max(5, n_videos // 5)
    author = rng.integers(0, n_authors, size=n_videos)
    video_type = rng.choice(2, size=n_videos, p=[0.9, 0.1])
    upload_type = rng.integers(0, 6, size=n_videos)
    music_type = rng.integers(0, 4, size=n_videos)
    tag = rng.choice(n_tags, size=n_videos, p=_zipf(n_tags, 0.7))
    duration_s = np.exp(rng.normal(3.3, 0.8, size=n_videos)).clip(3, 240)
    video_bias = (
        rng.normal(scale=0.2, size=n_videos)
        + rng.normal(scale=0.15, size=n_authors)[author]
        - 0.4 * video_type  # ads hold attention less
        + rng.normal(scale=0.1, size=6)[upload_type]
        - 0.3 * (np.log(duration_s) - 3.3)  # long videos hook fewer viewers
    )
    taste, direction = _interaction(rng, n_users, tag, n_tags, KUAIRAND_INTERACTION)
    # users who follow few or many accounts like different tags: 4 taste groups of the
    # observable follow_user_num_range (0-7), learnable from (follow range, tag)
    taste_group = follow // 2
    group_taste = rng.normal(size=(4, TASTE_DIMS)) * KUAIRAND_GROUP_INTERACTION

    # Active users see more videos; popular videos are shown more (power-law exposure).
    user_weight = np.exp(0.5 * degree + rng.normal(scale=0.5, size=n_users))
    video_weight = rng.pareto(1.5, size=n_videos) + 1.0
    user = rng.choice(n_users, size=rows, p=_normalised(user_weight))
    video = rng.choice(n_videos, size=rows, p=_normalised(video_weight))
    time_ms = np.sort(
        KUAIRAND_START_MS + rng.integers(0, KUAIRAND_DAYS * 86_400_000, size=rows, dtype=np.int64)
    )
    hour = (time_ms // 3_600_000) % 24
    tab = rng.choice(15, size=rows, p=_normalised(np.array([0.4, 0.2, 0.1] + [0.3 / 12] * 12)))
    additive = (
        user_bias[user]
        + video_bias[video]
        + 0.25 * np.cos(2 * np.pi * (hour - 21) / 24)  # evening peak
        + np.r_[0.2, 0.0, -0.1, rng.normal(scale=0.1, size=12)][tab]
    )
    z_group = np.einsum("gk,ik->gi", group_taste, direction[video] / KUAIRAND_INTERACTION)
    z = (
        np.einsum("ij,ij->i", taste[user], direction[video])
        + z_group[taste_group[user], np.arange(rows)]
    )
    duration_ms = np.round(duration_s[video] * 1000)
    log_d = np.log(duration_ms / 1000)

    def expected(hook0: float, view0: float, zs: np.ndarray, rows: slice = slice(None), core=True):
        interest, ld = additive[rows] + zs, log_d[rows]
        hook = expit(hook0 + interest)
        view = ld + view0 + VIEW_INTEREST * interest
        out = {}
        for task, seconds in (("click", VALID_PLAY_S), ("long_view", LONG_VIEW_S)):
            threshold = np.minimum(ld, np.log(seconds))
            out[task] = hook * ndtr((view - threshold) / VIEW_SIGMA) + (1 - hook) * ndtr(
                (SWIPE_LOG_MEAN - threshold) / SWIPE_SIGMA
            )
        if not core:  # solving the intercepts needs the rates only
            return out
        out["watch_time"] = hook * _capped_mean(view, VIEW_SIGMA, ld + np.log(MAX_LOOPS)) + (
            1 - hook
        ) * _capped_mean(np.full_like(ld, SWIPE_LOG_MEAN), SWIPE_SIGMA, ld)
        return out

    stats, few = TABLE1["kuairand"], _thin(rows)

    def hook_for(view0: float) -> float:
        return _solve(lambda h: expected(h, view0, z[few], few, False)["click"].mean(),
                      stats.rates[0], -15, 10)  # fmt: skip

    view0 = _solve(lambda v: expected(hook_for(v), v, z[few], few, False)["long_view"].mean(),
                   stats.rates[1], -6, 6)  # fmt: skip
    hook0 = hook_for(view0)

    hooked = rng.random(rows) < expit(hook0 + additive + z)
    view = np.exp(
        log_d + view0 + VIEW_INTEREST * (additive + z) + VIEW_SIGMA * rng.normal(size=rows)
    )
    swipe = np.exp(SWIPE_LOG_MEAN + SWIPE_SIGMA * rng.normal(size=rows))
    play_s = np.where(
        hooked, np.minimum(view, MAX_LOOPS * np.exp(log_d)), np.minimum(swipe, np.exp(log_d))
    )
    play_ms = np.round(play_s * 1000)
    click = play_ms >= np.minimum(duration_ms, VALID_PLAY_S * 1000)
    long_view = play_ms >= np.minimum(duration_ms, LONG_VIEW_S * 1000)
    shares = np.bincount(taste_group[user], minlength=4) / rows
    references = _references(
        lambda zs: expected(hook0, view0, zs), z, KUAIRAND_INTERACTION, (shares, z_group), 6
    )
    return pd.DataFrame(
        {
            "user_id": user.astype(np.int64),
            "user_active_degree": np.array(["low", "middle", "high", "full"])[degree[user]],
            "is_video_author": user_author[user],
            "follow_user_num_range": follow[user],
            "video_id": video.astype(np.int64),
            "author_id": author[video],
            "video_type": np.array(["NORMAL", "AD"])[video_type[video]],
            "upload_type": upload_type[video],
            "music_type": music_type[video],
            "tag": tag[video],
            "duration_ms": duration_ms.astype(np.int64),
            "hour": hour.astype(np.int64),
            "tab": tab.astype(np.int64),
            "time_ms": time_ms,
            "click": click.astype(np.int64),
            "long_view": long_view.astype(np.int64),
            "watch_time": play_ms / 1000,
            **references,
        }
    )


# --- Kaggle-Revenue: retention and a Poisson purchase stream per (customer, company) ----------

TICKET_SIGMA = 0.6  # log-normal spread of one purchase's amount around the customer's level
KAGGLE_INTERACTION = 0.6
KAGGLE_SCHEMA = EventSchema(
    categorical=("company", "chain", "dept", "category", "brand", "productmeasure"),
    chain=("repurchase_1y", "repurchase_1m"),
    core="amount_1m",
    time="start_day",
    numeric=("log_calibration_value",),
    dataset="kaggle",
    references=REFERENCE_PREDICTORS,
)
KAGGLE_START_DAY = 15_400  # 2012-03-01 as days since 1970-01-01


def kaggle_events(rows: int, seed: int = 0) -> pd.DataFrame:
    """(customer, company) samples of a shopper panel, sorted by the first purchase day."""
    stats = TABLE1["kaggle"]
    rng = np.random.default_rng(seed)
    companies = 20
    customers = max(50, rows // 16)
    company = rng.choice(companies, size=rows, p=_zipf(companies, 0.8))
    customer = rng.integers(0, customers, size=rows)
    loyalty = rng.normal(scale=0.7, size=customers)
    wealth = rng.normal(scale=1.2, size=customers)  # persistent big spenders: the heavy tail
    taste, direction = _interaction(rng, customers, np.arange(companies), companies,
                                    KAGGLE_INTERACTION)  # fmt: skip
    company_bias = rng.normal(scale=0.3, size=companies)
    chain_store = rng.integers(0, 130, size=customers)  # the store chain a customer shops at
    brand = company * 50 + rng.integers(0, 50, size=rows)
    category = company * 30 + rng.integers(0, 30, size=rows)
    dept = category // 10
    measure = rng.choice(np.array(["OZ", "CT", "LB", "RL", "UNKNOWN"]), size=rows,
                         p=[0.55, 0.25, 0.1, 0.05, 0.05])  # fmt: skip
    start_day = np.sort(KAGGLE_START_DAY + rng.integers(0, 120, size=rows))
    log_calibration = (
        1.2 + 0.6 * wealth[customer] + 0.3 * loyalty[customer] + 0.6 * rng.normal(size=rows)
    )
    centred = log_calibration - 1.2
    retain = (
        0.6 * wealth[customer] + 0.8 * loyalty[customer] + 0.3 * centred + 0.3 * (measure == "OZ")
    )
    rate = 0.4 * wealth[customer] + 0.5 * loyalty[customer] + company_bias[company] + 0.2 * centred
    ticket = 0.8 * centred + 0.9 * wealth[customer]
    z = np.einsum("ij,ij->i", taste[customer], direction[company])

    def chain(retain0: float, rate0: float, zs: np.ndarray, rows: slice = slice(None)):
        kept = expit(retain0 + retain[rows])
        daily = np.exp(rate0 + rate[rows] + zs)
        return kept, daily, kept * -np.expm1(-365 * daily), kept * -np.expm1(-30 * daily)

    few = _thin(rows)

    def retain_for(rate0: float) -> float:
        return _solve(lambda r: chain(r, rate0, z[few], few)[2].mean(), stats.rates[0], -10, 20)

    rate0 = _solve(lambda a: chain(retain_for(a), a, z[few], few)[3].mean(), stats.rates[1],
                   -12, 4)  # fmt: skip
    retain0 = retain_for(rate0)

    kept, daily, _, _ = chain(retain0, rate0, z)
    retained = rng.random(rows) < kept
    month = np.where(retained, rng.poisson(30 * daily), 0)
    year = month + np.where(retained, rng.poisson(335 * daily), 0)
    log_spend = np.full(rows, -np.inf)
    bought = month > 0
    log_spend[bought] = (
        np.log(month[bought]) + ticket[bought] + TICKET_SIGMA * rng.normal(size=int(bought.sum()))
    )
    power, log_scale = _moment_transform(log_spend, stats.core_mean, stats.core_std)
    moments = _poisson_power_moment(power)

    spend = np.exp(log_scale + power * ticket + (power * TICKET_SIGMA) ** 2 / 2)  # E[c·A^q]

    def expected(zs: np.ndarray) -> dict[str, np.ndarray]:
        kept, daily, year_p, month_p = chain(retain0, rate0, zs)
        return {
            "repurchase_1y": year_p,
            "repurchase_1m": month_p,
            "amount_1m": kept * spend * moments(30 * daily),
        }

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
            "repurchase_1y": (year > 0).astype(np.int8),
            "repurchase_1m": bought.astype(np.int8),
            "amount_1m": np.exp(log_scale + power * log_spend),
            **_references(expected, z, KAGGLE_INTERACTION),
        }
    )


def _poisson_power_moment(power: float) -> Callable[[np.ndarray], np.ndarray]:
    """μ -> E[N^power; N ≥ 1] for N ~ Poisson(μ), interpolated on a log grid of μ."""
    grid = np.geomspace(1e-8, 400.0, 2000)
    n = np.arange(1, 1200)
    log_pmf = n[:, None] * np.log(grid) - grid - np.cumsum(np.log(n))[:, None]
    values = (np.exp(power * np.log(n)[:, None] + log_pmf)).sum(axis=0)
    log_grid, log_values = np.log(grid), np.log(values)

    def moment(mu: np.ndarray) -> np.ndarray:
        return np.exp(np.interp(np.log(np.clip(mu, grid[0], grid[-1])), log_grid, log_values))

    return moment


# --- Product: a click, then a purchase when the desired investment reaches the minimum --------

INVEST_SIGMA = 0.7
PRODUCT_INTERACTION = 0.7
PRODUCT_SCHEMA = EventSchema(
    categorical=("user_id", "user_age", "user_risk_level", "user_channel", "fund_id",
                 "fund_type", "fund_risk_level", "fund_manager", "fund_min_purchase", "hour",
                 "weekday", "position"),
    chain=("click", "purchase"),
    core="amount",
    time="time_ms",
    numeric=("fund_return_1y",),
    dataset="product",
    references=REFERENCE_PREDICTORS,
)  # fmt: skip
PRODUCT_START_MS = 1_690_848_000_000  # 2023-08-01 00:00 UTC
PRODUCT_DAYS = 30
MIN_PURCHASE = np.array([10.0, 100.0, 1000.0])  # a fund's minimum first investment


def product_events(rows: int, seed: int = 0) -> pd.DataFrame:
    """Fund exposures on a wealth-management app over 30 days, sorted by time."""
    stats = TABLE1["product"]
    rng = np.random.default_rng(seed)
    users, funds = max(50, rows // 60), max(30, min(20_000, rows // 1000))
    user_age = rng.integers(0, 7, size=users)
    user_risk = rng.integers(0, 5, size=users)
    user_channel = rng.integers(0, 6, size=users)
    wealth = rng.normal(scale=0.9, size=users) + 0.2 * user_age
    user_bias = rng.normal(scale=0.4, size=users)
    fund_type = rng.integers(0, 5, size=funds)
    fund_risk = np.clip(fund_type + rng.integers(-1, 2, size=funds), 0, 4)
    fund_manager = rng.integers(0, max(5, funds // 8), size=funds)
    fund_return = rng.normal(0.03 * fund_risk, 0.05 + 0.04 * fund_risk, size=funds)
    fund_minimum = rng.choice(3, size=funds, p=[0.3, 0.5, 0.2])
    fund_bias = rng.normal(scale=0.4, size=funds) + 2.0 * fund_return
    taste, direction = _interaction(rng, users, fund_type, 5, PRODUCT_INTERACTION)
    user = rng.choice(users, size=rows, p=_normalised(np.exp(rng.normal(size=users))))
    fund = rng.choice(funds, size=rows, p=_normalised(rng.pareto(1.3, size=funds) + 1.0))
    time_ms = np.sort(
        PRODUCT_START_MS + rng.integers(0, PRODUCT_DAYS * 86_400_000, size=rows, dtype=np.int64)
    )
    hour = ((time_ms // 3_600_000) % 24).astype(np.int32)
    weekday = ((time_ms // 86_400_000 + 4) % 7).astype(np.int32)  # 1970-01-01 was a Thursday
    position = rng.integers(0, 10, size=rows).astype(np.int32)
    u, f = user, fund
    interest = (
        user_bias[u]
        + fund_bias[f]
        - 0.4 * np.abs(user_risk[u] - fund_risk[f])  # a fund outside the user's risk level
        - 0.15 * position
        + 0.2 * np.cos(2 * np.pi * (hour - 20) / 24)
        + 0.15 * (weekday >= 5)
    )
    z = np.einsum("ij,ij->i", taste[u], direction[f])
    invest = 0.9 * wealth[u] + 0.3 * interest
    log_minimum = np.log(MIN_PURCHASE[fund_minimum[f]])

    def steps(click0: float, invest0: float, zs: np.ndarray, rows: slice = slice(None)):
        clicked = expit(click0 + interest[rows] + zs)
        level = invest0 + invest[rows] + 0.3 * zs
        return clicked, level, clicked * ndtr((level - log_minimum[rows]) / INVEST_SIGMA)

    few = _thin(rows)
    click0 = _solve(lambda c: steps(c, 0.0, z[few], few)[0].mean(), stats.rates[0], -15, 10)
    invest0 = _solve(lambda a: steps(click0, a, z[few], few)[2].mean(), stats.rates[1], -10, 20)

    clicked_p, level, _ = steps(click0, invest0, z)
    clicked = rng.random(rows) < clicked_p
    log_invest = level + INVEST_SIGMA * rng.normal(size=rows)
    purchase = clicked & (log_invest >= log_minimum)
    log_amount = np.where(purchase, log_invest, -np.inf)
    power, log_scale = _moment_transform(log_amount, stats.core_mean, stats.core_std)

    def expected(zs: np.ndarray) -> dict[str, np.ndarray]:
        clicked, level, bought = steps(click0, invest0, zs)
        s = INVEST_SIGMA
        amount = (
            clicked
            * np.exp(log_scale + power * level + (power * s) ** 2 / 2)
            * ndtr((level + power * s**2 - log_minimum) / s)
        )
        return {"click": clicked, "purchase": bought, "amount": amount}

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
            "fund_min_purchase": MIN_PURCHASE[fund_minimum[f]].astype(np.int32),
            "hour": hour.astype(np.int8),
            "weekday": weekday.astype(np.int8),
            "position": position.astype(np.int8),
            "fund_return_1y": fund_return[f].astype(np.float32),
            "time_ms": time_ms,
            "click": clicked.astype(np.int8),
            "purchase": purchase.astype(np.int8),
            "amount": np.exp(log_scale + power * log_amount),
            **_references(expected, z, PRODUCT_INTERACTION),
        }
    )


MAX_POWER = 8.0


def _moment_transform(log_values: np.ndarray, mean: float, std: float) -> tuple[float, float]:
    """(q, log c) such that c·v^q (0 where log v = -inf) has the given mean and population
    std over all rows; q by bisection (the spread grows with q), at most MAX_POWER: a sample
    with too few buyers to reach the std keeps a finite, smaller one."""
    positive = np.isfinite(log_values)
    if positive.sum() < 2:
        return 1.0, 0.0
    top = log_values[positive].max()
    logs = log_values[positive] - top  # v^q / max(v)^q never overflows
    n, target = log_values.size, std / mean

    def cv(q: float) -> float:  # over all n rows, zeros included
        w = np.exp(q * logs)
        return float(np.sqrt(max(n * np.sum(w * w) / np.sum(w) ** 2 - 1.0, 0.0)))

    q = _solve(cv, target, 1e-3, MAX_POWER)
    log_scale = np.log(mean * n / np.exp(q * logs).sum()) - q * top
    return q, float(log_scale)


def _zipf(n: int, power: float) -> np.ndarray:
    return _normalised(1.0 / np.arange(1, n + 1) ** power)


def _normalised(weights: np.ndarray) -> np.ndarray:
    return weights / weights.sum()


PROFILES = {
    "kuairand": (kuairand_events, SYNTHETIC_KUAIRAND_SCHEMA),
    "kaggle": (kaggle_events, KAGGLE_SCHEMA),
    "product": (product_events, PRODUCT_SCHEMA),
}
