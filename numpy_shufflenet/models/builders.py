"""Helpers every network builder shares: the conv-BN-ReLU block, width scaling, and building without weights.

* :func:`conv_bn_relu`: a convolution, batch norm and a ReLU as one named ``Sequential`` (``bn=False``: a
  convolution with a bias in place of the batch norm, as in the networks before batch norm). The stem of every
  network, every layer of VGG-16, AlexNet, GoogLeNet and SqueezeNet, the VGG-like unit of Table 4.
* :func:`check_width`, :func:`scaled`, :func:`round_up`: a width multiplier applied to a channel count.
* :func:`build_shapes_only`: any builder, without drawing its weights (for counting big networks instantly).
"""

import numbers

import numpy as np

from ..nn import BatchNormReLU2d, Conv2d, Linear, ReLU, Sequential


# ----------------------------------------------------------------------------------------------------------------
# the conv-BN-ReLU block
# ----------------------------------------------------------------------------------------------------------------
def conv_bn_relu(c_in, c_out, k, rng, dtype, *, stride=1, padding=None, groups=1, bn=True):
    """``conv`` (``k x k``, ``padding`` default ``k // 2``) -> ``bn`` (batch norm and ReLU), as one ``Sequential``.

    With ``bn=True`` the convolution has no bias (batch norm's beta is one) and ``bn`` is a
    :class:`~numpy_shufflenet.nn.BatchNormReLU2d`, the "BN ReLU" of paper Fig. 2; ``bn=False`` leaves the batch
    norm out and gives the convolution its bias and a ``relu`` instead (VGG-16, AlexNet, GoogLeNet, SqueezeNet).
    """
    padding = k // 2 if padding is None else padding
    conv = Conv2d(c_in, c_out, k, stride=stride, padding=padding, groups=groups, bias=not bn, rng=rng, dtype=dtype)
    if bn:
        return Sequential({"conv": conv, "bn": BatchNormReLU2d(c_out, dtype=dtype)})
    return Sequential({"conv": conv, "relu": ReLU()})


# ----------------------------------------------------------------------------------------------------------------
# width multipliers
# ----------------------------------------------------------------------------------------------------------------
def check_width(layer, width):
    """``width`` as a float, after checking it is a positive number (a width multiplier)."""
    if not isinstance(width, numbers.Real) or isinstance(width, bool) or not width > 0:
        raise ValueError(f"{layer}: expected a positive width multiplier, got {width!r}")
    return float(width)


def round_up(value, multiple):
    """The smallest multiple of ``multiple`` that is at least ``value`` (an ``int``)."""
    return int(-(-value // multiple) * multiple)


def scaled(layer, c, width, multiple=1):
    """``int(c * width)`` rounded up to a multiple of ``multiple``; a clear error if nothing is left."""
    c = round_up(int(c * width), multiple)
    if c < 1:
        raise ValueError(f"{layer}: width {width!r} leaves a layer with no channels")
    return c


# ----------------------------------------------------------------------------------------------------------------
# building networks without drawing their weights (for counting)
# ----------------------------------------------------------------------------------------------------------------
class _NoDraws(np.random.Generator):
    """A random generator whose normal "draws" are a single zero, for when only the layers' shapes matter.

    The layers draw their initial weights with ``rng.standard_normal(shape)``; with this generator that costs
    nothing, and :func:`build_shapes_only` then gives each weight its shape back as a zero-stride view.
    """

    def __init__(self):
        super().__init__(np.random.PCG64(0))

    def standard_normal(self, *args, **kwargs):
        return np.zeros(())

    def normal(self, *args, **kwargs):
        return np.zeros(())


def build_shapes_only(builder, *args, **kwargs):
    """``builder(*args, rng=..., **kwargs)`` without drawing any weights: for counting big networks instantly.

    Works with every builder that takes an ``rng`` (:class:`~numpy_shufflenet.models.ShuffleNet`,
    :func:`table4_network`, :func:`mobilenet_v1`, :func:`vgg16`, ...). Convolution and FC weights become read-only
    zero views of the right shapes (``np.broadcast_to`` of one number: ``size`` and ``shape`` are right, no memory
    is used, nothing can train them by mistake), so
    :func:`~numpy_shufflenet.analysis.counting.count_multiply_adds`, ``count_params`` and ``summary`` give the real
    network's numbers; a forward pass runs but computes with zero weights.
    """
    model = builder(*args, rng=_NoDraws(), **kwargs)
    for _, module in model.named_modules():
        if isinstance(module, Conv2d):
            shape = (module.out_channels, module.in_channels // module.groups) + tuple(module.kernel_size)
        elif isinstance(module, Linear):
            shape = (module.out_features, module.in_features)
        else:
            continue
        module.weight.data = np.broadcast_to(np.zeros((), module.weight.data.dtype), shape)
    return model
