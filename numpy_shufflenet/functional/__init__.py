"""Pure NumPy forward/backward pairs: every ``*_forward`` returns ``(out, cache)``, every ``*_backward(dout,
cache)`` returns the gradients of the forward's array inputs in the forward's argument order.

Arrays are NCHW; weights have PyTorch's shapes; the output dtype is the input dtype; inputs are never modified
(except batch norm's running buffers, updated in place in training mode as PyTorch does).
"""

from .activation import relu_backward, relu_forward
from ..fast.conv import conv2d_backward, conv2d_forward
from .conv_naive import conv2d_backward_naive, conv2d_forward_naive
from .linear import linear_backward, linear_forward
from .loss import softmax_cross_entropy
from ..fast.norm import batchnorm2d_backward, batchnorm2d_forward
from ..fast.pool import (avg_pool2d_backward, avg_pool2d_forward, global_avg_pool2d_backward, global_avg_pool2d_forward,
                   max_pool2d_backward, max_pool2d_forward)
from ..fast.shuffle import channel_shuffle_backward, channel_shuffle_forward, channel_shuffle_indices

__all__ = [
    "conv2d_forward", "conv2d_backward", "conv2d_forward_naive", "conv2d_backward_naive",
    "batchnorm2d_forward", "batchnorm2d_backward",
    "channel_shuffle_forward", "channel_shuffle_backward", "channel_shuffle_indices",
    "relu_forward", "relu_backward",
    "max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward",
    "global_avg_pool2d_forward", "global_avg_pool2d_backward",
    "linear_forward", "linear_backward",
    "softmax_cross_entropy",
]
