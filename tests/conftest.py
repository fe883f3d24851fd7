"""Shared fixtures: tiny configs and data written by the tests themselves."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
import yaml

torch.set_num_threads(2)

TINY = {
    "name": "tiny",
    "models": ["htlnet", "shared_bottom", "dnn"],
    "seeds": [0, 1],
    "data": {"rows": 3000, "seed": 0},
    "train": {"epochs": 2, "batch_size": 256, "lr": 0.005},
    "hpo": {"trials": 1, "epochs": 1},
    "tracking": {"experiment": "tiny"},
    "register": {"name": "tiny-model"},
}


def write_config(directory: Path, overrides: dict | None = None, name: str = "config.yaml") -> Path:
    """A tiny config under `directory` (its workdir too), with top-level keys overridden."""
    raw = {**TINY, "workdir": str(directory / "work"), **(overrides or {})}
    path = directory / name
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture
def tiny_config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def free_port() -> int:
    """A free TCP port on the loopback interface, for servers the tests start."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
