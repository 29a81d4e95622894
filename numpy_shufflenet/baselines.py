"""Other networks built from the same layers, so that the same counter counts them.

The ShuffleNet paper argues with costs of *other* units and networks: the ResNet and ResNeXt bottleneck units of
Sec. 3.2, and MobileNet v1 in Table 5. Building them here from :mod:`numpy_shufflenet.nn` means that
:func:`~numpy_shufflenet.counting.count_flops` and :func:`~numpy_shufflenet.counting.count_params` count every
network under one convention, and that forward and backward passes work on all of them.

Units (input ``c x h x w``, bottleneck ``m`` channels; paper Sec. 3.2 costs in multiply-adds):

* :func:`resnet_unit`: 1x1 (c -> m), 3x3 (m -> m), 1x1 (m -> c), identity shortcut. ``hw(2cm + 9m^2)``.
* :func:`resnext_unit`: the same with a grouped 3x3. ``hw(2cm + 9m^2/g)``.
* :class:`~numpy_shufflenet.model.ShuffleUnit` (for comparison): ``hw(2cm/g + 9m)``.
* :func:`bottleneck_block`, :func:`depthwise_separable_block`: the bare convolutions (no batch norm, no bias),
  for counting parameters by hand.

Networks:

* :func:`mobilenet_v1`: MobileNet v1 (Howard et al. 2017) with its width multiplier.
* :func:`unit_stack`: a deep stack of ShuffleNet-style units **with or without** the identity shortcut, for
  watching gradients vanish (:func:`unit_input_gradient_norms`).

:class:`Residual` is the small wrapper that turns a branch into a residual unit ``ReLU(x + branch(x))``, or, with
``shortcut=False``, into a plain unit ``ReLU(branch(x))``.
"""

import numbers

import numpy as np

from ._checks import check_float_array, check_int
from .nn import BatchNorm2d, ChannelShuffle, Conv2d, GlobalAvgPool2d, Linear, Module, ReLU, Sequential

__all__ = ["Residual", "resnet_unit", "resnext_unit", "bottleneck_block", "depthwise_separable_block",
           "MOBILENET_V1_BLOCKS", "mobilenet_v1", "shuffle_branch", "plain_shuffle_unit", "unit_stack",
           "unit_input_gradient_norms"]


class Residual(Module):
    """A residual unit ``ReLU(x + branch(x))`` (ResNet's identity shortcut), or a plain one ``ReLU(branch(x))``.

    Parameters
    ----------
    branch : Module
        Must keep the shape of its input (same channels, same height and width) when ``shortcut`` is True.
    shortcut : bool, default True
        False drops the identity shortcut: the unit is then just ``branch`` followed by a ReLU (a "plain" unit,
        as in the plain networks the ResNet paper compares against).

    Children, in forward order: ``branch`` and ``relu``. The backward pass of the addition sends the upstream
    gradient down *both* paths and adds what comes back::

        dL/dx = d + branch.backward(d),   d = relu.backward(dL/dout)

    which is why a gradient cannot vanish through a stack of residual units: the ``d`` term always gets through.
    """

    def __init__(self, branch, *, shortcut=True):
        super().__init__()
        if not isinstance(branch, Module):
            raise TypeError(f"Residual: expected the branch to be a Module, got {type(branch).__name__}")
        self.branch = branch
        self.relu = ReLU()
        self.shortcut = bool(shortcut)

    def forward(self, x):
        check_float_array("Residual", "x", x, ndim=4)
        y = self.branch.forward(x)
        if self.shortcut:
            if y.shape != x.shape:
                raise ValueError(f"Residual: the branch must keep the input's shape for the identity shortcut, "
                                 f"got input {x.shape} and branch output {y.shape}")
            y = x + y
        self._cache = x.shape
        return self.relu.forward(y)

    def backward(self, dout):
        self._take_cache()
        d = self.relu.backward(dout)
        dx = self.branch.backward(d)
        return d + dx if self.shortcut else dx

    def output_shape(self, input_shape):
        out = tuple(self.branch.output_shape(input_shape))
        if self.shortcut and out != tuple(input_shape):
            raise ValueError(f"Residual: the branch must keep the input's shape for the identity shortcut, "
                             f"got input {tuple(input_shape)} and branch output {out}")
        return out

    def shape_trace(self, input_shape, prefix=""):
        prefix = prefix or "unit"
        yield from self.branch.shape_trace(input_shape, f"{prefix}.branch")
        yield from self.relu.shape_trace(self.output_shape(input_shape), f"{prefix}.relu")

    def extra_repr(self):
        return "" if self.shortcut else "shortcut=False"

    def __repr__(self):
        head = f"Residual({self.extra_repr()})" if self.shortcut else "Plain(shortcut=False)"
        return head + "\n" + "\n".join("  " + line for line in repr(self.branch).splitlines())


# ----------------------------------------------------------------------------------------------------------------
# the units of paper Sec. 3.2
# ----------------------------------------------------------------------------------------------------------------
def _bottleneck_branch(layer, channels, bottleneck, groups, rng, dtype):
    c = check_int(layer, "channels", channels, 1)
    m = check_int(layer, "bottleneck", bottleneck, 1)
    rng = np.random.default_rng() if rng is None else rng
    return Sequential({
        "conv1": Conv2d(c, m, 1, rng=rng, dtype=dtype), "bn1": BatchNorm2d(m, dtype=dtype), "relu1": ReLU(),
        "conv2": Conv2d(m, m, 3, padding=1, groups=groups, rng=rng, dtype=dtype), "bn2": BatchNorm2d(m, dtype=dtype),
        "relu2": ReLU(),
        "conv3": Conv2d(m, c, 1, rng=rng, dtype=dtype), "bn3": BatchNorm2d(c, dtype=dtype),
    })


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
    return Residual(_bottleneck_branch("resnet_unit", channels, bottleneck, 1, rng, dtype))


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
    return Residual(_bottleneck_branch("resnext_unit", channels, bottleneck, groups, rng, dtype))


def bottleneck_block(channels, bottleneck, *, rng=None, dtype=np.float32):
    """The three convolutions of a bottleneck, alone: 1x1 (c -> m), 3x3 (m -> m, padding 1), 1x1 (m -> c).

    No batch norm, no ReLU, no bias, no shortcut: just the weights, to count parameters by hand. For the
    blog's example (c = 256, m = 64): ``256*64 + 64*9*64 + 64*256 = 69,632`` against ``589,824`` for one dense
    3x3 convolution 256 -> 256.

    Returns
    -------
    Sequential of three ``Conv2d`` named conv1, conv2, conv3
    """
    c = check_int("bottleneck_block", "channels", channels, 1)
    m = check_int("bottleneck_block", "bottleneck", bottleneck, 1)
    rng = np.random.default_rng() if rng is None else rng
    return Sequential({"conv1": Conv2d(c, m, 1, rng=rng, dtype=dtype),
                       "conv2": Conv2d(m, m, 3, padding=1, rng=rng, dtype=dtype),
                       "conv3": Conv2d(m, c, 1, rng=rng, dtype=dtype)})


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
    rng = np.random.default_rng() if rng is None else rng
    return Sequential({"dw": Conv2d(c_in, c_in, 3, stride=stride, padding=1, groups=c_in, rng=rng, dtype=dtype),
                       "pw": Conv2d(c_in, c_out, 1, rng=rng, dtype=dtype)})


# ----------------------------------------------------------------------------------------------------------------
# MobileNet v1
# ----------------------------------------------------------------------------------------------------------------
# MobileNet v1 (Howard et al. 2017, Table 1): (output channels, stride of the depthwise conv) of the 13
# depthwise-separable blocks that follow the first 3x3 stride-2 convolution with 32 channels.
MOBILENET_V1_STEM = 32
MOBILENET_V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                       (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def mobilenet_v1(width=1.0, num_classes=1000, rng=None, dtype=np.float32, *, in_channels=3):
    """MobileNet v1 (Howard et al. 2017), built from this package's layers.

    ``stem``: 3x3 conv, stride 2, padding 1, 32 channels, BN, ReLU; then ``block1`` ... ``block13``, each a
    depthwise separable convolution ``dw`` (3x3 depthwise, padding 1) -> ``bn1`` -> ``relu1`` -> ``pw`` (1x1) ->
    ``bn2`` -> ``relu2`` with the channels and strides of :data:`MOBILENET_V1_BLOCKS`; ``pool`` (global average)
    and ``fc`` (with a bias, as in the paper). Convolutions have no bias (batch norm follows each one).

    Parameters
    ----------
    width : float, default 1.0
        The width multiplier alpha: every channel count ``c`` becomes ``int(c * alpha)`` (the paper's 1.0, 0.75,
        0.5 and 0.25 MobileNets).
    num_classes, in_channels : int
    rng : numpy.random.Generator, optional
    dtype : float32 (default) or float64

    Returns
    -------
    Sequential
        With attributes ``width`` and ``widths`` (the stem's and the 13 blocks' output channels).

    Notes
    -----
    At 224x224 the 1.0 network has 567,716,352 convolution multiply-adds and 1,024,000 in the classifier,
    568,740,352 (568.74 M) together, and 4,231,976 trainable numbers (conv and FC weights, FC bias, BN gamma and
    beta). The MobileNet paper (quoted by Table 5 of the ShuffleNet paper) says 569 M mult-adds and 4.2 M
    parameters: it counts the classifier too (the convolutions alone round to 568 M).
    """
    if not isinstance(width, numbers.Real) or isinstance(width, bool) or not width > 0:
        raise ValueError(f"mobilenet_v1: expected a positive width multiplier, got {width!r}")
    num_classes = check_int("mobilenet_v1", "num_classes", num_classes, 1)
    in_channels = check_int("mobilenet_v1", "in_channels", in_channels, 1)
    rng = np.random.default_rng() if rng is None else rng

    def scaled(c):
        c = int(c * width)
        if c < 1:
            raise ValueError(f"mobilenet_v1: width {width!r} leaves a layer with no channels")
        return c

    c = scaled(MOBILENET_V1_STEM)
    layers = {"stem": Sequential({"conv": Conv2d(in_channels, c, 3, stride=2, padding=1, rng=rng, dtype=dtype),
                                  "bn": BatchNorm2d(c, dtype=dtype), "relu": ReLU()})}
    widths = [c]
    for i, (c_out, stride) in enumerate(MOBILENET_V1_BLOCKS, start=1):
        c_out = scaled(c_out)
        layers[f"block{i}"] = Sequential({
            "dw": Conv2d(c, c, 3, stride=stride, padding=1, groups=c, rng=rng, dtype=dtype),
            "bn1": BatchNorm2d(c, dtype=dtype), "relu1": ReLU(),
            "pw": Conv2d(c, c_out, 1, rng=rng, dtype=dtype), "bn2": BatchNorm2d(c_out, dtype=dtype), "relu2": ReLU(),
        })
        widths.append(c_out)
        c = c_out
    layers["pool"] = GlobalAvgPool2d()
    layers["fc"] = Linear(c, num_classes, bias=True, rng=rng, dtype=dtype)
    model = Sequential(layers)
    model.width, model.widths = width, tuple(widths)
    return model


# ----------------------------------------------------------------------------------------------------------------
# deep stacks with and without the shortcut
# ----------------------------------------------------------------------------------------------------------------
INITS = {"he": 1.0, "lecun": np.sqrt(0.5)}     # factor applied to Conv2d's He-initialised weights


def shuffle_branch(channels, groups, *, batchnorm=True, init="he", rng=None, dtype=np.float32):
    """The residual branch of a stride-1 ShuffleNet unit (paper Fig. 2 b), as a ``Sequential``.

    conv1 (1x1, ``groups`` groups, c -> c/4), bn1, relu1, shuffle, conv2 (3x3 depthwise), bn2, conv3 (1x1,
    ``groups`` groups, c/4 -> c), bn3: the same layers, names and order as
    :class:`~numpy_shufflenet.model.ShuffleUnit`'s ``branch``. (No shuffle layer when ``groups == 1``, as in
    ``ShuffleUnit``.)

    Parameters
    ----------
    channels : int, input and output channels (the bottleneck has ``channels // 4``)
    groups : int, groups of the two 1x1 convolutions
    batchnorm : bool, default True; False leaves the three batch norms out
    init : "he" (default) or "lecun"
        The convolutions' initial weights: "he" is the package's ``N(0, 2 / fan_in)`` (made for ReLU networks:
        the factor 2 makes up for the half of the signal a ReLU zeroes); "lecun" is ``N(0, 1 / fan_in)``, a
        common default elsewhere (JAX/Flax, for instance), which lets the signal shrink through every ReLU.
    rng : numpy.random.Generator, optional
    dtype : float32 (default) or float64
    """
    c = check_int("shuffle_branch", "channels", channels, 1)
    g = check_int("shuffle_branch", "groups", groups, 1)
    m = c // 4
    if m < 1 or m % g or c % g:
        raise ValueError(f"shuffle_branch: expected channels and channels // 4 divisible by groups={g}, got "
                         f"channels={c}")
    if init not in INITS:
        raise ValueError(f"shuffle_branch: expected init in {tuple(INITS)}, got {init!r}")
    rng = np.random.default_rng() if rng is None else rng
    layers = {"conv1": Conv2d(c, m, 1, groups=g, rng=rng, dtype=dtype)}
    if batchnorm:
        layers["bn1"] = BatchNorm2d(m, dtype=dtype)
    layers["relu1"] = ReLU()
    if g > 1:
        layers["shuffle"] = ChannelShuffle(g)
    layers["conv2"] = Conv2d(m, m, 3, padding=1, groups=m, rng=rng, dtype=dtype)
    if batchnorm:
        layers["bn2"] = BatchNorm2d(m, dtype=dtype)
    layers["conv3"] = Conv2d(m, c, 1, groups=g, rng=rng, dtype=dtype)
    if batchnorm:
        layers["bn3"] = BatchNorm2d(c, dtype=dtype)
    for module in layers.values():
        if isinstance(module, Conv2d):
            module.weight.data = (module.weight.data * INITS[init]).astype(dtype)
    return Sequential(layers)


def plain_shuffle_unit(channels, groups, *, batchnorm=True, init="he", rng=None, dtype=np.float32):
    """A stride-1 ShuffleNet unit *without* its identity shortcut: ``ReLU(branch(x))``.

    The same layers as :class:`~numpy_shufflenet.model.ShuffleUnit` (see :func:`shuffle_branch`); only the
    addition of ``x`` is gone. Parameters as in :func:`shuffle_branch`. Returns a :class:`Residual` with
    ``shortcut=False``.
    """
    return Residual(shuffle_branch(channels, groups, batchnorm=batchnorm, init=init, rng=rng, dtype=dtype),
                    shortcut=False)


def unit_stack(depth, channels, groups, *, residual=True, batchnorm=True, init="he", rng=None,
               dtype=np.float32):
    """``depth`` stride-1 ShuffleNet units in a row, with (``residual=True``) or without the identity shortcut.

    With ``residual=True`` and ``batchnorm=True`` each unit computes exactly what
    :class:`~numpy_shufflenet.model.ShuffleUnit` ``(channels, channels, groups=groups, stride=1)`` computes (and
    loads its state dict). ``batchnorm`` and ``init`` are passed to :func:`shuffle_branch`.

    Returns
    -------
    Sequential of ``depth`` :class:`Residual` units named "0", "1", ...
    """
    depth = check_int("unit_stack", "depth", depth, 1)
    rng = np.random.default_rng() if rng is None else rng
    return Sequential(*[Residual(shuffle_branch(channels, groups, batchnorm=batchnorm, init=init, rng=rng,
                                                dtype=dtype), shortcut=residual) for _ in range(depth)])


def unit_input_gradient_norms(stack, x, dout):
    """Forward ``x`` through ``stack`` and back, and return the norm of the gradient at each unit's input.

    With the loss ``L = sum(stack(x) * dout)`` (so that ``dL/d(output) = dout``), entry ``i`` of the result is
    ``||dL/d(input of unit i)||`` (the Frobenius norm over the whole batch): entry 0 is the first unit's,
    entry ``len(stack) - 1`` the last unit's. Using one fixed ``dout`` for two stacks makes their gradient norms
    comparable: both start from the same ``||dL/d(output)|| = ||dout||``.

    Parameters
    ----------
    stack : Sequential
        E.g. from :func:`unit_stack`; its children are the units.
    x : ndarray, the input batch
    dout : ndarray shaped like the output

    Returns
    -------
    norms : float64 ndarray of shape ``(len(stack),)``
    """
    if not isinstance(stack, Sequential):
        raise TypeError(f"unit_input_gradient_norms: expected a Sequential of units, got {type(stack).__name__}")
    out = stack.forward(x)
    if dout.shape != out.shape:
        raise ValueError(f"unit_input_gradient_norms: expected dout of the output's shape {out.shape}, "
                         f"got {dout.shape}")
    norms = []
    d = dout
    for unit in reversed(stack.layers):
        d = unit.backward(d)
        norms.append(float(np.linalg.norm(d.astype(np.float64))))
    return np.array(norms[::-1])
