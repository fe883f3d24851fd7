"""The images the DAG's tasks run in, and the decorator that makes a step a component.

Every component is built on DEFAULT_IMAGE; the pipeline sets each task's image from `Images`
(`HTL_IMAGE` for every step, `HTL_GPU_IMAGE` for hpo and train under `--gpu`). Both images
hold kfp and htl (images/Dockerfile), so no component installs anything at start. Locally
(kfp.local SubprocessRunner) no image is used: steps run in this interpreter.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from kfp import dsl

DEFAULT_IMAGE = "localhost/htl-cpu:latest"

component = functools.partial(dsl.component, base_image=DEFAULT_IMAGE, install_kfp_package=False)


@dataclass(frozen=True)
class Images:
    """Image references: `cpu` for every step, `gpu` for hpo and train on GPU nodes."""

    cpu: str
    gpu: str

    @classmethod
    def from_env(cls) -> Images | None:
        """`HTL_IMAGE` and `HTL_GPU_IMAGE` (default: the CPU image); None when unset."""
        cpu = os.environ.get("HTL_IMAGE", "")
        return cls(cpu, os.environ.get("HTL_GPU_IMAGE") or cpu) if cpu else None
