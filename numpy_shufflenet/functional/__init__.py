"""The textbook: plain NCHW NumPy forward/backward pairs, written to be read.

Every ``*_forward`` returns ``(out, cache)``; every ``*_backward(dout, cache)`` returns the gradients of the
forward's array inputs in the forward's argument order (``None`` where an optional input such as ``b`` was
``None``). Arrays are NCHW, weights have PyTorch's shapes, the output dtype is the input dtype (float32 or
float64), and inputs are never modified, except batch norm's running buffers, which training mode updates in
place as PyTorch does. A cache is a ``NamedTuple`` that says what it holds; it keeps *references* to arrays the
forward pass read or made (a linear layer's ``x``, a convolution's im2col columns), so do not modify an input in
place between a forward pass and its backward pass (the ``nn`` modules never do).

A reading order: :mod:`.conv_naive` (convolution as loops), :mod:`.windows` (padding, taps, im2col),
:mod:`.conv` (dense and group convolution), :mod:`.depthwise`, :mod:`.shuffle`, :mod:`.norm`,
:mod:`.activation`, :mod:`.fused` (batch norm + ReLU, and the ReLU at the end of a unit: pairs made of the pairs
before), :mod:`.pool`, :mod:`.linear`, :mod:`.loss`. The tuned kernels with the same contract are in
:mod:`numpy_shufflenet.fast`; ``numpy_shufflenet.use_kernels("reference")`` runs the network on this code.
"""

from .activation import relu_backward, relu_forward
from .conv import conv2d_backward, conv2d_forward
from .conv_naive import conv2d_backward_naive, conv2d_forward_naive
from .depthwise import depthwise_conv2d_backward, depthwise_conv2d_forward
from .fused import (add_relu_backward, add_relu_forward, batchnorm2d_relu_backward, batchnorm2d_relu_forward,
                    concat_relu_backward, concat_relu_forward)
from .linear import linear_backward, linear_forward
from .loss import softmax_cross_entropy
from .norm import batchnorm2d_backward, batchnorm2d_forward
from .pool import (avg_pool2d_backward, avg_pool2d_forward, global_avg_pool2d_backward, global_avg_pool2d_forward,
                   max_pool2d_backward, max_pool2d_forward)
from .shuffle import channel_shuffle_backward, channel_shuffle_forward, channel_shuffle_indices

__all__ = [
    "conv2d_forward", "conv2d_backward", "conv2d_forward_naive", "conv2d_backward_naive",
    "depthwise_conv2d_forward", "depthwise_conv2d_backward",
    "batchnorm2d_forward", "batchnorm2d_backward",
    "channel_shuffle_forward", "channel_shuffle_backward", "channel_shuffle_indices",
    "relu_forward", "relu_backward",
    "batchnorm2d_relu_forward", "batchnorm2d_relu_backward", "add_relu_forward", "add_relu_backward",
    "concat_relu_forward", "concat_relu_backward",
    "max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward",
    "global_avg_pool2d_forward", "global_avg_pool2d_backward",
    "linear_forward", "linear_backward",
    "softmax_cross_entropy",
]
