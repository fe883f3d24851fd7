"""Container images the components run in on a cluster (set at compile time from the env).

Built from images/: a CPU image for every step, a CUDA image for train and HPO. Locally
(kfp.local SubprocessRunner) the image is not used: steps run in this interpreter.
"""

import os

CPU_IMAGE = os.environ.get("HTL_IMAGE", "localhost/htl:0.1.0")
GPU_IMAGE = os.environ.get("HTL_GPU_IMAGE", "localhost/htl-cuda:0.1.0")
