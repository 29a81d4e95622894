"""The tuned kernels: the same forward/backward pairs as :mod:`numpy_shufflenet.functional`, same names,
signatures and return contract (the fused pairs ``batchnorm2d_relu``, ``add_relu`` and ``concat_relu`` included,
each one pass over memory here), computed on channels-last memory (:mod:`.layout` explains each trick), the
memory-bound ones by blocks of images on several threads (:mod:`.threads`; :func:`set_num_threads`).

Nothing here is needed to follow the course: :mod:`numpy_shufflenet.functional` is the textbook, and the tests
check that every pair here returns what the textbook returns.
"""

from .activation import (add_relu_backward, add_relu_forward, concat_relu_backward, concat_relu_forward,
                         relu_backward, relu_forward)
from ..functional.linear import linear_backward, linear_forward
from ..functional.loss import softmax_cross_entropy
from .conv import conv2d_backward, conv2d_forward
from .norm import batchnorm2d_backward, batchnorm2d_forward, batchnorm2d_relu_backward, batchnorm2d_relu_forward
from .pool import (avg_pool2d_backward, avg_pool2d_forward, global_avg_pool2d_backward, global_avg_pool2d_forward,
                   max_pool2d_backward, max_pool2d_forward)
from .shuffle import channel_shuffle_backward, channel_shuffle_forward
from .threads import get_num_threads, set_num_threads

__all__ = [
    "conv2d_forward", "conv2d_backward",
    "batchnorm2d_forward", "batchnorm2d_backward", "batchnorm2d_relu_forward", "batchnorm2d_relu_backward",
    "channel_shuffle_forward", "channel_shuffle_backward",
    "relu_forward", "relu_backward",
    "add_relu_forward", "add_relu_backward", "concat_relu_forward", "concat_relu_backward",
    "max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward",
    "global_avg_pool2d_forward", "global_avg_pool2d_backward",
    "linear_forward", "linear_backward",
    "softmax_cross_entropy",
    "get_num_threads", "set_num_threads",
]
