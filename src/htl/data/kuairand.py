"""The `kuairand` source: a KuaiRand-Pure directory as the paper's hybrid targets.

One exposure log (the random-exposure log by default: 1,186,059 rows, Table 1) joined with the
user features and the basic video features. Chain `click` (is_click) → `long_view`; core
`watch_time` = play_time_ms / 1000 in seconds. Post-exposure feedback (likes, follows, play
and stay times, ...) is never a feature (model-spec §5.1).
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from htl.config import DataConfig
from htl.data.io import read_table
from htl.data.labels import check_columns
from htl.data.schema import EventSchema
from htl.storage import exists, join

LOGS = {
    "random": "log_random_4_22_to_5_08_pure.csv",
    "standard_4_08_to_4_21": "log_standard_4_08_to_4_21_pure.csv",
    "standard_4_22_to_5_08": "log_standard_4_22_to_5_08_pure.csv",
}
USERS_FILE = "user_features_pure.csv"
VIDEOS_FILE = "video_features_basic_pure.csv"

LOG_COLUMNS = ["user_id", "video_id", "hourmin", "time_ms", "is_click", "long_view",
               "play_time_ms", "duration_ms", "tab"]  # fmt: skip
USER_FEATURES = [
    "user_active_degree",
    "is_lowactive_period",
    "is_live_streamer",
    "is_video_author",
    "follow_user_num_range",
    "fans_user_num_range",
    "friend_user_num_range",
    "register_days_range",
    *(f"onehot_feat{i}" for i in range(18)),
]
VIDEO_FEATURES = ["author_id", "video_type", "upload_type", "visible_status", "music_type", "tag"]

KUAIRAND_SCHEMA = EventSchema(
    categorical=("user_id", *USER_FEATURES, "video_id", *VIDEO_FEATURES, "tab", "hour"),
    chain=("click", "long_view"),
    core="watch_time",
    time="time_ms",
    numeric=("duration_ms",),
    dataset="kuairand",
)


def read_kuairand(data: DataConfig) -> tuple[pd.DataFrame, EventSchema]:
    log_file = LOGS[data.kuairand.log]
    nested = join(str(data.path), "data")  # the archive's layout: the CSVs under data/
    folder = nested if exists(join(nested, log_file)) else str(data.path)
    log_uri = join(folder, log_file)
    log = read_table(log_uri, LOG_COLUMNS)
    users = read_table(join(folder, USERS_FILE), ["user_id", *USER_FEATURES])
    videos = read_table(join(folder, VIDEOS_FILE), ["video_id", *VIDEO_FEATURES])
    events = log.merge(users.drop_duplicates("user_id"), on="user_id", how="left")
    events = events.merge(videos.drop_duplicates("video_id"), on="video_id", how="left")
    events["tag"] = events["tag"].astype("string").str.split(",").str[0]  # the first tag
    events["hour"] = events["hourmin"] // 100
    events["watch_time"] = events["play_time_ms"] / 1000.0
    events = events.rename(columns={"is_click": "click"})
    schema = replace(KUAIRAND_SCHEMA, origin=log_uri)
    columns = [*schema.features, *schema.targets, schema.time]
    events = events[columns]
    check_columns(events, schema, log_uri)
    return events, schema
