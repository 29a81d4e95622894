"""ShuffleNet v1 (Zhang, Zhou, Lin, Sun, CVPR 2018) rebuilt from scratch in NumPy, forward and backward.

Layers of the package, each using only the ones above it:

1. :mod:`~numpy_shufflenet.functional`: the textbook ``*_forward -> (out, cache)`` / ``*_backward`` pairs, plain
   NCHW NumPy, written to be read; :mod:`~numpy_shufflenet.fast`: the same pairs tuned for speed.
   :func:`use_kernels` chooses which set the modules run (default ``"fast"``).
2. :mod:`~numpy_shufflenet.nn`: ``Parameter``, ``Module`` and the layer modules.
3. :mod:`~numpy_shufflenet.model`: ``ShuffleUnit`` and ``ShuffleNet`` (paper Table 1).
4. Analysis: :mod:`~numpy_shufflenet.counting`, :mod:`~numpy_shufflenet.flow`, :mod:`~numpy_shufflenet.gradcheck`,
   :mod:`~numpy_shufflenet.plotting`, :mod:`~numpy_shufflenet.baselines`, :mod:`~numpy_shufflenet.profiling`.
5. Training: :mod:`~numpy_shufflenet.data`, :mod:`~numpy_shufflenet.optim`, :mod:`~numpy_shufflenet.train`,
   :mod:`~numpy_shufflenet.experiments`.

The most used names are also available here: ``ShuffleNet``, ``ShuffleUnit``, ``count_params``, ``count_flops``,
``summary``, ``save_weights``, ``load_weights``. (``plotting`` and the training modules are imported on demand,
so ``import numpy_shufflenet`` loads neither matplotlib nor tqdm.)
"""

from . import counting, fast, flow, functional, gradcheck, model, nn
from .counting import count_flops, count_multiply_adds, count_params, summary
from .kernels import active_kernels, use_kernels
from .model import ShuffleNet, ShuffleUnit
from .weights import load_weights, save_weights

__version__ = "0.1.0"
__all__ = ["functional", "fast", "use_kernels", "active_kernels", "nn", "model", "counting", "flow", "gradcheck",
           "ShuffleNet", "ShuffleUnit", "count_params", "count_flops", "count_multiply_adds", "summary",
           "save_weights", "load_weights"]
