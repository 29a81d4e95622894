"""ShuffleNet v1 (Zhang, Zhou, Lin, Sun, CVPR 2018) rebuilt from scratch in NumPy, forward and backward.

The package's folders are the layers of its architecture; each imports only from the rows above it.

============================  ==================================================================================
``functional/``               the textbook: ``*_forward -> (out, cache)`` / ``*_backward`` pairs, plain NCHW
``fast/``                     the same pairs tuned for speed (channels-last memory, threads); tested equal
``kernels``                   ``use_kernels``: which set (or a student's own pairs) the modules run
``nn/``                       ``Parameter``, ``Module``, the layers and containers, calling the active pairs
``models/``                   ShuffleNet (Fig. 2, Table 1) and the units and networks of Tables 4-6
``analysis/``, ``gradcheck``  counting, channel flow, profiling, plotting; numeric gradient checks
``interop/``                  PyTorch checkpoints in and out, the package's ``.npz`` weight files
``training/``                 data, optimizer, the loop, runs saved on disk
``paper/``, ``course/``       the published numbers and tables rebuilt, experiments; students' checks,
                              student copies, the autograder
``cli``                       the command line, ``python -m numpy_shufflenet``
============================  ==================================================================================

The most used names are also available here: ``ShuffleNet``, ``ShuffleUnit``, ``use_kernels``,
``active_kernels``, ``count_params``, ``count_flops``, ``count_multiply_adds``, ``summary``, ``save_weights``,
``load_weights``. ``import numpy_shufflenet`` loads neither matplotlib nor tqdm: plotting, training, the paper's
experiments and the course's tools are imported when asked for.
"""

from . import fast, functional, gradcheck, models, nn
from .analysis import counting, flow
from .analysis.counting import count_flops, count_multiply_adds, count_params, summary
from .interop.weights import load_weights, save_weights
from .kernels import active_kernels, use_kernels
from .models import ShuffleNet, ShuffleUnit

__version__ = "0.1.0"
__all__ = ["functional", "fast", "use_kernels", "active_kernels", "nn", "models", "counting", "flow", "gradcheck",
           "ShuffleNet", "ShuffleUnit", "count_params", "count_flops", "count_multiply_adds", "summary",
           "save_weights", "load_weights"]
