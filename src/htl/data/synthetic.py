"""Synthetic KuaiRand-shaped event logs: click -> long view -> watch time.

Users and videos carry latent factors; their affinity drives every step of the chain, and the
watch time depends on the stage the chain reached, so the core target is learnable from the
features and tied to the preceding labels. Rates are calibrated to the paper's Table 1
(click 17.62%, long view 8.50%, watch time mean 6.94 s, heavy-tailed). Deterministic per seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from htl.data.schema import EventSchema

KUAIRAND_TARGETS = {"click": 0.1762, "long_view": 0.0850, "watch_time_mean": 6.94}
KUAIRAND_START_MS = 1_650_585_600_000  # 2022-04-22 00:00 UTC, the random log's first day
KUAIRAND_DAYS = 17
STAGE_MEANS = (3.0, 10.0, 40.0)  # watch time before scaling: no click, click, long view
WATCH_SIGMA = 0.65

KUAIRAND_SCHEMA = EventSchema(
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
    """Draw 0/1 with P = sigmoid(logit + b), b chosen so the mean over `mask` equals `rate`."""
    chosen = logit if mask is None else logit[mask.astype(bool)]
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
