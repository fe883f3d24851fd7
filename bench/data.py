"""The benchmarks' data: the synthetic KuaiRand profile through the real ingest and split."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from htl.artifacts import FEATURES_FILE
from htl.config import DataConfig
from htl.data.features import FeatureEncoder
from htl.data.prepare import prepare_splits
from htl.data.sources import ingest
from htl.tasks import TaskSpec
from htl.train import SplitTensors, load_split


def synthetic_split(
    rows: int, device: torch.device, split: str = "train"
) -> tuple[SplitTensors, FeatureEncoder, TaskSpec]:
    with tempfile.TemporaryDirectory() as tmp:
        ingest(DataConfig(rows=rows), Path(tmp) / "events")
        prepare_splits(Path(tmp) / "events", Path(tmp) / "splits", DataConfig())
        encoder = FeatureEncoder.load(Path(tmp) / "splits" / FEATURES_FILE)
        data = load_split(Path(tmp) / "splits", split, encoder, device)
    return (
        data,
        encoder,
        TaskSpec(encoder.chain, encoder.core, core_transform=encoder.core_transform),
    )
