"""Container images the components run in on a cluster (set at compile time from the env),
and the decorators that bind them.

Built from images/Dockerfile: a CPU image for every step, a CUDA image for train and HPO.
Both already hold kfp and htl, so no component installs anything at start. Locally
(kfp.local SubprocessRunner) the image is not used: steps run in this interpreter.
"""

import functools
import os

from kfp import dsl

CPU_IMAGE = os.environ.get("HTL_IMAGE", "localhost/htl:0.1.0")
GPU_IMAGE = os.environ.get("HTL_GPU_IMAGE", "localhost/htl-cuda:0.1.0")

cpu_component = functools.partial(dsl.component, base_image=CPU_IMAGE, install_kfp_package=False)
gpu_component = functools.partial(dsl.component, base_image=GPU_IMAGE, install_kfp_package=False)
