"""The bottleneck units the paper compares its own against (Sec. 3.2, Fig. 2 a), and the bare blocks counted
by hand.

Units (input ``c x h x w``, bottleneck ``m`` channels; paper Sec. 3.2 costs in multiply-adds):

* :func:`resnet_unit`: 1x1 (c -> m), 3x3 (m -> m), 1x1 (m -> c), identity shortcut. ``hw(2cm + 9m^2)``.
* :func:`resnext_unit`: the same with a grouped 3x3. ``hw(2cm + 9m^2/g)``.
* :func:`depthwise_bottleneck_unit`: the same with a depthwise 3x3, paper Fig. 2 (a). ``hw(2cm + 9m)``.
* :class:`~numpy_shufflenet.models.ShuffleUnit` (for comparison, Fig. 2 b): ``hw(2cm/g + 9m)``.
* :func:`bottleneck_block`, :func:`depthwise_separable_block`: the bare convolutions (no batch norm, no bias),
  for counting parameters by hand.

Two builders make them all: :func:`bottleneck` (1x1, 3x3 with some groups, 1x1, each with batch norm; or the
three convolutions alone) and :func:`depthwise_separable` (3x3 depthwise, 1x1 pointwise, each with batch norm and
ReLU, as in MobileNet; or the two convolutions alone). The three units are a bottleneck inside a
:class:`~numpy_shufflenet.nn.Residual` (``ReLU(x + branch(x))``); :func:`with_shortcut` puts any branch into the
stride-1 or stride-2 form of paper Fig. 2 (b, c).
"""

import numpy as np

from .._checks import as_rng, check_int
from ..nn import AvgPool2d, BatchNorm2d, Concat, Conv2d, ReLU, Residual, Sequential


# ----------------------------------------------------------------------------------------------------------------
# the builders: a bottleneck, a depthwise separable convolution, a shortcut around any branch
# ----------------------------------------------------------------------------------------------------------------
def bottleneck(in_channels, out_channels, mid_channels, *, stride=1, groups=1, bare=False, rng=None,
               dtype=np.float32):
    """The bottleneck branch: 1x1 (in -> mid), 3x3 (mid -> mid, ``groups`` groups, ``stride``, padding 1),
    1x1 (mid -> out).

    Returns a ``Sequential`` named conv1, bn1, relu1, conv2, bn2, relu2, conv3, bn3: batch norm after every
    convolution (which therefore has no bias), a ReLU after the first two. ``groups=1`` is ResNet's, ``groups=g``
    ResNeXt's, ``groups=mid_channels`` the depthwise one of paper Fig. 2 (a). ``bare=True`` keeps only the three
    convolutions (conv1, conv2, conv3), to count their weights by hand.
    """
    c_in = check_int("bottleneck", "in_channels", in_channels, 1)
    c_out = check_int("bottleneck", "out_channels", out_channels, 1)
    m = check_int("bottleneck", "mid_channels", mid_channels, 1)
    rng = as_rng(rng)
    layers = {
        "conv1": Conv2d(c_in, m, 1, rng=rng, dtype=dtype), "bn1": BatchNorm2d(m, dtype=dtype), "relu1": ReLU(),
        "conv2": Conv2d(m, m, 3, stride=stride, padding=1, groups=groups, rng=rng, dtype=dtype),
        "bn2": BatchNorm2d(m, dtype=dtype), "relu2": ReLU(),
        "conv3": Conv2d(m, c_out, 1, rng=rng, dtype=dtype), "bn3": BatchNorm2d(c_out, dtype=dtype)}
    if bare:
        layers = {name: layer for name, layer in layers.items() if isinstance(layer, Conv2d)}
    return Sequential(layers)


def depthwise_separable(in_channels, out_channels, *, stride=1, bare=False, rng=None, dtype=np.float32):
    """A depthwise separable convolution: 3x3 depthwise (``groups = in_channels``, ``stride``, padding 1), then a
    1x1 pointwise convolution (in -> out).

    Returns a ``Sequential`` named dw, bn1, relu1, pw, bn2, relu2 (MobileNet's block: batch norm and ReLU after
    each convolution, which therefore has no bias). ``bare=True`` keeps only the two convolutions (dw, pw).
    """
    c_in = check_int("depthwise_separable", "in_channels", in_channels, 1)
    c_out = check_int("depthwise_separable", "out_channels", out_channels, 1)
    rng = as_rng(rng)
    layers = {
        "dw": Conv2d(c_in, c_in, 3, stride=stride, padding=1, groups=c_in, rng=rng, dtype=dtype),
        "bn1": BatchNorm2d(c_in, dtype=dtype), "relu1": ReLU(),
        "pw": Conv2d(c_in, c_out, 1, rng=rng, dtype=dtype), "bn2": BatchNorm2d(c_out, dtype=dtype), "relu2": ReLU()}
    if bare:
        layers = {name: layer for name, layer in layers.items() if isinstance(layer, Conv2d)}
    return Sequential(layers)


def with_shortcut(branch_for, c_in, c_out, stride):
    """Paper Fig. 2 (b) and (c) around any branch: ``ReLU(x + branch(x))`` for stride 1; for stride 2
    ``ReLU(concat([AvgPool3x3/s2(x), branch(x)]))`` with a branch of ``c_out - c_in`` channels."""
    if stride == 1:
        return Residual(branch_for(c_out))
    return Sequential({"concat": Concat({"shortcut": AvgPool2d(3, stride=2, padding=1),
                                         "branch": branch_for(c_out - c_in)}), "relu": ReLU()})


# ----------------------------------------------------------------------------------------------------------------
# the units of paper Sec. 3.2
# ----------------------------------------------------------------------------------------------------------------
def _checked_bottleneck(layer, channels, mid, rng, dtype, **kwargs):
    """``bottleneck(c, c, m, **kwargs)``, its channel counts checked under the caller's name."""
    c = check_int(layer, "channels", channels, 1)
    m = check_int(layer, "bottleneck", mid, 1)
    return bottleneck(c, c, m, rng=rng, dtype=dtype, **kwargs)


def resnet_unit(channels, bottleneck, *, rng=None, dtype=np.float32):
    """ResNet bottleneck unit (He et al. 2016): ``ReLU(x + BN(1x1(ReLU(BN(3x3(ReLU(BN(1x1(x))))))))``.

    Parameters
    ----------
    channels : int
        ``c``, the input and output channels.
    bottleneck : int
        ``m``, the channels of the 3x3 convolution.
    rng : numpy.random.Generator, optional
        For the initial weights.
    dtype : float32 (default) or float64

    Returns
    -------
    Residual
        ``branch`` is a ``Sequential`` named conv1 (1x1, c -> m), bn1, relu1, conv2 (3x3, m -> m, padding 1), bn2,
        relu2, conv3 (1x1, m -> c), bn3. Convolutions have no bias.

    Notes
    -----
    Multiply-adds on a ``c x h x w`` input: ``hw(2cm + 9m^2)`` (paper Sec. 3.2). Parameters: ``2cm + 9m^2``
    convolution weights plus ``2(2m + c)`` batch-norm gamma and beta.
    """
    return Residual(_checked_bottleneck("resnet_unit", channels, bottleneck, rng, dtype))


def resnext_unit(channels, bottleneck, groups, *, rng=None, dtype=np.float32):
    """ResNeXt unit (Xie et al. 2017): a ResNet bottleneck unit whose 3x3 convolution has ``groups`` groups.

    Parameters
    ----------
    channels, bottleneck : int
        ``c`` and ``m`` as in :func:`resnet_unit`; ``m`` must be divisible by ``groups``.
    groups : int
        ``g``, the cardinality (32 in the paper's Sec. 3.1 example).
    rng, dtype : as in :func:`resnet_unit`

    Returns
    -------
    Residual

    Notes
    -----
    Multiply-adds: ``hw(2cm + 9m^2/g)`` (paper Sec. 3.2). For c = 256, m = 128, g = 32 the two 1x1 layers are
    65,536 of the 70,144 multiply-adds per pixel, 93.4% (the paper's Sec. 3.1 figure).
    """
    groups = check_int("resnext_unit", "groups", groups, 1)
    return Residual(_checked_bottleneck("resnext_unit", channels, bottleneck, rng, dtype, groups=groups))


def depthwise_bottleneck_unit(channels, bottleneck, *, rng=None, dtype=np.float32):
    """Paper Fig. 2 (a): the bottleneck unit with a 3x3 *depthwise* convolution, the starting point of Sec. 3.2.

    ``ReLU(x + BN(1x1(ReLU(BN(3x3 DWConv(ReLU(BN(1x1(x)))))))))``: a :func:`resnet_unit` whose 3x3 convolution
    is depthwise (``groups = bottleneck``). ShuffleNet's unit (Fig. 2 b) then makes the two 1x1 convolutions
    group convolutions, puts a channel shuffle after the first, and drops the ReLU after the depthwise one.

    Returns a :class:`~numpy_shufflenet.nn.Residual`; ``branch`` is named conv1, bn1, relu1, conv2, bn2, relu2,
    conv3, bn3. Multiply-adds on a ``c x h x w`` input: ``hw(2cm + 9m)``.
    """
    return Residual(_checked_bottleneck("depthwise_bottleneck_unit", channels, bottleneck, rng, dtype,
                                        groups=bottleneck))


# ----------------------------------------------------------------------------------------------------------------
# the bare convolutions, to count their weights by hand
# ----------------------------------------------------------------------------------------------------------------
def bottleneck_block(channels, bottleneck, *, rng=None, dtype=np.float32):
    """The three convolutions of a bottleneck, alone: 1x1 (c -> m), 3x3 (m -> m, padding 1), 1x1 (m -> c).

    No batch norm, no ReLU, no bias, no shortcut: just the weights, to count parameters by hand. For the
    blog's example (c = 256, m = 64): ``256*64 + 64*9*64 + 64*256 = 69,632`` against ``589,824`` for one dense
    3x3 convolution 256 -> 256.

    Returns
    -------
    Sequential of three ``Conv2d`` named conv1, conv2, conv3
    """
    return _checked_bottleneck("bottleneck_block", channels, bottleneck, rng, dtype, bare=True)


def depthwise_separable_block(in_channels, out_channels, *, stride=1, rng=None, dtype=np.float32):
    """A depthwise separable convolution: 3x3 depthwise (``groups = in_channels``), then a 1x1 pointwise.

    No batch norm, no ReLU, no bias. Parameters: ``9 * in + in * out`` (for 256 -> 256: 67,840, against 589,824
    for a dense 3x3). Multiply-adds per output pixel: the same numbers.

    Parameters
    ----------
    in_channels, out_channels : int
    stride : int, default 1, the depthwise convolution's stride (padding 1)
    rng, dtype : as in :func:`resnet_unit`

    Returns
    -------
    Sequential of two ``Conv2d`` named dw and pw
    """
    c_in = check_int("depthwise_separable_block", "in_channels", in_channels, 1)
    c_out = check_int("depthwise_separable_block", "out_channels", out_channels, 1)
    return depthwise_separable(c_in, c_out, stride=stride, bare=True, rng=rng, dtype=dtype)
