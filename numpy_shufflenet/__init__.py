"""ShuffleNet v1 (Zhang, Zhou, Lin, Sun, CVPR 2018) rebuilt from scratch in NumPy, forward and backward.

Layers of the package, each using only the ones above it:

1. :mod:`numpy_shufflenet.functional`: pure ``*_forward -> (out, cache)`` / ``*_backward`` pairs.
2. :mod:`numpy_shufflenet.nn`: ``Parameter``, ``Module`` and the layer modules.
3. :mod:`numpy_shufflenet.gradcheck`: numeric gradients and readable reports.
"""

from . import functional, gradcheck, nn

__version__ = "0.1.0"
__all__ = ["functional", "nn", "gradcheck"]
