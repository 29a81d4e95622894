"""Other networks built from the same layers, so that the same counter counts them.

The ShuffleNet paper argues with costs of *other* units and networks: the ResNet and ResNeXt bottleneck units of
Sec. 3.2, the other structures of Table 4, MobileNet v1 in Table 5 and four classic networks in Table 6.
Building them here from :mod:`numpy_shufflenet.nn` means that
:func:`~numpy_shufflenet.counting.count_multiply_adds` and :func:`~numpy_shufflenet.counting.count_params`
count every network under one convention, and that forward and backward passes work on all of them.

Units (input ``c x h x w``, bottleneck ``m`` channels; paper Sec. 3.2 costs in multiply-adds):

* :func:`resnet_unit`: 1x1 (c -> m), 3x3 (m -> m), 1x1 (m -> c), identity shortcut. ``hw(2cm + 9m^2)``.
* :func:`resnext_unit`: the same with a grouped 3x3. ``hw(2cm + 9m^2/g)``.
* :func:`depthwise_bottleneck_unit`: the same with a depthwise 3x3, paper Fig. 2 (a). ``hw(2cm + 9m)``.
* :class:`~numpy_shufflenet.model.ShuffleUnit` (for comparison, Fig. 2 b): ``hw(2cm/g + 9m)``.
* :func:`bottleneck_block`, :func:`depthwise_separable_block`: the bare convolutions (no batch norm, no bias),
  for counting parameters by hand.
* :func:`inception` (GoogLeNet) and :func:`fire` (SqueezeNet), built on :class:`Concat`, which runs branches
  side by side and concatenates them; :class:`CeilMaxPool2d` is Caffe's max pooling, which rounds up.

Networks:

* :func:`vgg16`, :func:`alexnet` (with its two-group convolutions), :func:`googlenet`, :func:`squeezenet`: paper
  Table 6. ``shapes_only=True`` builds them without drawing their weights, which is all counting needs.
* :func:`table4_network`: the Table 1 macro-architecture (:func:`macro_network`) with VGG-like, ResNet,
  Xception-like, ResNeXt or ShuffleNet units, at 140, 38 or 13 MFLOPs (paper Table 4).
* :func:`mobilenet_v1`: MobileNet v1 (Howard et al. 2017) with its width multiplier (paper Table 5).
* :func:`unit_stack`: a deep stack of ShuffleNet units **with or without** the identity shortcut, for
  watching gradients vanish (:func:`unit_input_gradient_norms`).

:class:`~numpy_shufflenet.nn.Residual` (imported here too) turns a branch into a residual unit
``ReLU(x + branch(x))``, or, with ``shortcut=False``, into a plain unit ``ReLU(branch(x))``.
"""

import numbers

import numpy as np

from ._checks import as_rng, check_float_array, check_int
from .model import ShuffleUnit
from .nn import (AvgPool2d, BatchNorm2d, Conv2d, Flatten, GlobalAvgPool2d, Linear, MaxPool2d, Module, ReLU, Residual,
                 Sequential)

__all__ = ["Residual", "resnet_unit", "resnext_unit", "depthwise_bottleneck_unit", "bottleneck_block",
           "depthwise_separable_block", "Concat", "CeilMaxPool2d", "inception", "fire", "VGG16_LAYERS", "vgg16",
           "alexnet", "build_shapes_only", "GOOGLENET_INCEPTIONS", "googlenet", "SQUEEZENET_FIRES", "squeezenet",
           "macro_network", "shufflenet_with_widths", "TABLE4_STRUCTURES", "TABLE4_WIDTHS", "table4_network",
           "MOBILENET_V1_BLOCKS", "mobilenet_v1", "shuffle_branch", "plain_shuffle_unit", "unit_stack",
           "unit_input_gradient_norms"]


# ----------------------------------------------------------------------------------------------------------------
# the units of paper Sec. 3.2
# ----------------------------------------------------------------------------------------------------------------
def _bottleneck_branch(layer, channels, bottleneck, groups, rng, dtype):
    c = check_int(layer, "channels", channels, 1)
    m = check_int(layer, "bottleneck", bottleneck, 1)
    rng = as_rng(rng)
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
    rng = as_rng(rng)
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
    rng = as_rng(rng)
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
    rng = as_rng(rng)

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
# two small modules the other networks need: parallel branches, and max pooling that rounds up
# ----------------------------------------------------------------------------------------------------------------
class Concat(Module):
    """Run several branches on the same input and concatenate their outputs along the channels.

    ``Concat(a, b)`` names its children "0", "1"; ``Concat({"shortcut": a, "branch": b})`` names them by the
    dict's keys, as :class:`~numpy_shufflenet.nn.Sequential` does. Every branch must keep the height and width
    it gives equal to the others'. It is GoogLeNet's inception module (four branches), SqueezeNet's fire
    expansion (two) and the stride-2 unit of paper Fig. 2 (c) (``[shortcut, branch]``).

    Shapes: ``(N, C, H, W) -> (N, C_0 + C_1 + ..., H', W')``. The backward pass cuts ``dout`` into the
    branches' channel blocks and *adds* what each branch sends back, since all of them read the same ``x``::

        dL/dx = sum_k branch_k.backward(dout[:, block k])
    """

    def __init__(self, *branches):
        super().__init__()
        if len(branches) == 1 and isinstance(branches[0], dict):
            names, branches = list(branches[0]), list(branches[0].values())
        else:
            names = [str(i) for i in range(len(branches))]
        if not branches:
            raise ValueError("Concat: expected at least one branch, got none")
        for name, branch in zip(names, branches):
            if not isinstance(branch, Module):
                raise TypeError(f"Concat: expected Module branches, got {type(branch).__name__} for {name!r}")
        self.names, self.branches = names, list(branches)
        for name, branch in zip(names, branches):
            if not name.isdigit():
                setattr(self, name, branch)

    def named_children(self):
        yield from zip(self.names, self.branches)

    def forward(self, x):
        check_float_array("Concat", "x", x, ndim=4)
        outs = [branch.forward(x) for branch in self.branches]
        if len({out.shape[2:] for out in outs}) > 1:
            raise ValueError(f"Concat: expected every branch to give the same height and width, got "
                             f"{[out.shape for out in outs]}")
        self._cache = [out.shape[1] for out in outs]
        return np.concatenate(outs, axis=1)

    def backward(self, dout):
        channels = self._take_cache()
        if dout.ndim != 4 or dout.shape[1] != sum(channels):
            raise ValueError(f"Concat: expected dout with {sum(channels)} channels, got shape {dout.shape}")
        edges = np.cumsum([0] + channels)
        return sum(branch.backward(dout[:, lo:hi]) for branch, lo, hi in zip(self.branches, edges, edges[1:]))

    def output_shape(self, input_shape):
        shapes = [tuple(branch.output_shape(input_shape)) for branch in self.branches]
        if len({s[1:] for s in shapes}) > 1:
            raise ValueError(f"Concat: expected every branch to give the same height and width, got {shapes}")
        return (sum(s[0] for s in shapes),) + shapes[0][1:]

    def shape_trace(self, input_shape, prefix=""):
        for name, branch in self.named_children():
            yield from branch.shape_trace(input_shape, f"{prefix}.{name}" if prefix else name)


class CeilMaxPool2d(MaxPool2d):
    """Max pooling whose output size rounds *up*: PyTorch's ``MaxPool2d(..., ceil_mode=True)``, Caffe's pooling.

    GoogLeNet and SqueezeNet were defined in Caffe, whose pooling layers round the output size up:
    ``H_out = ceil((H + 2p - k) / s) + 1`` (minus one if the last window would start in the padding), so a
    3x3 stride-2 pool takes SqueezeNet's 54x54 maps to 27x27 where rounding down gives 26x26. The last window
    then hangs over the bottom and right edges; it is filled with ``-inf`` there, so it takes the maximum of
    the pixels it does cover. Backward crops the gradient back to the input's size.
    """

    def _extra(self, H, W):
        """Rows and columns of ``-inf`` to add at the bottom and right so that every output window fits."""
        out_h, out_w = self.output_shape((1, H, W))[1:]
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (max(0, (out_h - 1) * sh + kh - (H + 2 * ph)), max(0, (out_w - 1) * sw + kw - (W + 2 * pw)))

    def forward(self, x):
        check_float_array("CeilMaxPool2d", "x", x, ndim=4)
        extra_h, extra_w = self._extra(*x.shape[2:])
        padded = np.pad(x, ((0, 0), (0, 0), (0, extra_h), (0, extra_w)), constant_values=-np.inf)
        out = super().forward(padded)
        self._crop = x.shape
        return out

    def backward(self, dout):
        dx = super().backward(dout)
        _, _, H, W = self._crop
        return dx[:, :, :H, :W]

    def output_shape(self, input_shape):
        C, H, W = input_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        sizes = []
        for size, k, s, p in ((H, kh, sh, ph), (W, kw, sw, pw)):
            if k > size + 2 * p:
                raise ValueError(f"CeilMaxPool2d: kernel size {k} is larger than the padded input "
                                 f"({size} + 2*{p} = {size + 2 * p})")
            out = -(-(size + 2 * p - k) // s) + 1
            if (out - 1) * s >= size + p:              # the last window would start in the padding
                out -= 1
            sizes.append(out)
        return (C, *sizes)


# ----------------------------------------------------------------------------------------------------------------
# building networks without drawing their weights (for counting)
# ----------------------------------------------------------------------------------------------------------------
class _NoDraws(np.random.Generator):
    """A random generator whose normal "draws" are a single zero, for when only the layers' shapes matter.

    The layers draw their initial weights with ``rng.standard_normal(shape)``; with this generator that costs
    nothing, and :func:`_shapes_only` then gives each weight its shape back as a zero-stride view.
    """

    def __init__(self):
        super().__init__(np.random.PCG64(0))

    def standard_normal(self, *args, **kwargs):
        return np.zeros(())

    def normal(self, *args, **kwargs):
        return np.zeros(())


def _shapes_only(model):
    """Give every convolution and FC layer of ``model`` a read-only zero weight of the right shape.

    ``np.broadcast_to`` makes a view of one number with the full shape: ``size`` and ``shape`` are right (so
    the counters work), no memory is used, and nothing can train it by mistake (it is read-only).
    """
    for _, module in model.named_modules():
        if isinstance(module, Conv2d):
            shape = (module.out_channels, module.in_channels // module.groups) + tuple(module.kernel_size)
        elif isinstance(module, Linear):
            shape = (module.out_features, module.in_features)
        else:
            continue
        module.weight.data = np.broadcast_to(np.zeros((), module.weight.data.dtype), shape)
    return model


def build_shapes_only(builder, *args, **kwargs):
    """``builder(*args, rng=..., **kwargs)`` without drawing any weights: for counting big networks instantly.

    Works with every builder that takes an ``rng`` (:class:`~numpy_shufflenet.model.ShuffleNet`,
    :func:`table4_network`, :func:`mobilenet_v1`, ...). Convolution and FC weights become read-only zero views
    of the right shapes, so :func:`~numpy_shufflenet.counting.count_multiply_adds`, ``count_params`` and
    ``summary`` give the real network's numbers; a forward pass runs but computes with zero weights.
    """
    return _shapes_only(builder(*args, rng=_NoDraws(), **kwargs))


def _network_rng(rng, shapes_only):
    if shapes_only:
        return _NoDraws()
    return as_rng(rng)


def _width(layer, c, width, multiple=1):
    """``int(c * width)`` rounded up to a multiple of ``multiple``; a clear error if nothing is left."""
    c = int(c * width)
    c = -(-c // multiple) * multiple
    if c < 1:
        raise ValueError(f"{layer}: width {width!r} leaves a layer with no channels")
    return c


def _check_width(layer, width):
    if not isinstance(width, numbers.Real) or isinstance(width, bool) or not width > 0:
        raise ValueError(f"{layer}: expected a positive width multiplier, got {width!r}")
    return float(width)


def _conv_relu(c_in, c_out, k, rng, dtype, **kwargs):
    return Sequential({"conv": Conv2d(c_in, c_out, k, bias=True, rng=rng, dtype=dtype, **kwargs), "relu": ReLU()})


def _classifier(layer, features, input_shape, hidden, num_classes, rng, dtype):
    """``Flatten`` and the fully connected layers ``fc6, fc7, fc8`` of VGG and AlexNet, sized for the input."""
    flat = int(np.prod(features.output_shape(input_shape)))
    layers = {"flatten": Flatten(), "fc6": Linear(flat, hidden, rng=rng, dtype=dtype), "relu6": ReLU(),
              "fc7": Linear(hidden, hidden, rng=rng, dtype=dtype), "relu7": ReLU(),
              "fc8": Linear(hidden, num_classes, rng=rng, dtype=dtype)}
    return Sequential(layers)


# ----------------------------------------------------------------------------------------------------------------
# paper Table 6: VGG-16, AlexNet, GoogLeNet, SqueezeNet
# ----------------------------------------------------------------------------------------------------------------
# VGG-16 (Simonyan & Zisserman 2015, configuration D): 3x3 convolutions (padding 1), "M" = 2x2 max pool.
VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg16(num_classes=1000, *, width=1.0, input_size=224, hidden=4096, shapes_only=False, rng=None,
          dtype=np.float32):
    """VGG-16 (Simonyan and Zisserman 2015, configuration D), as counted in paper Table 6 (15300 MFLOPs).

    ``features``: thirteen 3x3 convolutions (padding 1, with bias, each followed by a ReLU) in five blocks of
    :data:`VGG16_LAYERS`, each block ending in a 2x2 max pool; ``classifier``: ``flatten``, ``fc6`` (512 x 7 x 7
    -> 4096), ``relu6``, ``fc7`` (4096 -> 4096), ``relu7``, ``fc8`` (4096 -> 1000). No batch norm (the original
    has none); dropout is left out (it has no weights and no multiply-adds, and is off at inference).

    Parameters
    ----------
    num_classes : int
    width : float, default 1.0
        Multiplies every convolution's channels (1.0 is the published network; a small width is for tests).
    input_size : int, default 224
        The square input the classifier is sized for (``fc6`` takes ``512 * (input_size // 32) ** 2``).
    hidden : int, default 4096, the width of ``fc6`` and ``fc7``
    shapes_only : bool, default False
        True builds the layers without drawing their 138 M weights (read-only zero views of the right shapes):
        instant, and enough for :func:`~numpy_shufflenet.counting.count_multiply_adds` and ``count_params``.
    rng, dtype : as in :func:`mobilenet_v1`

    Notes
    -----
    At 224x224: 15,346,630,656 convolution multiply-adds and 123,633,664 in the three FC layers, 15,470.3 M
    together; 138,357,544 parameters. The paper's 15300 matches the convolutions alone best (0.3% off; with the
    classifier 1.1% off).
    """
    width = _check_width("vgg16", width)
    num_classes = check_int("vgg16", "num_classes", num_classes, 1)
    input_size = check_int("vgg16", "input_size", input_size, 32)
    hidden = check_int("vgg16", "hidden", hidden, 1)
    rng = _network_rng(rng, shapes_only)
    layers, c, block, i = {}, 3, 1, 1
    for v in VGG16_LAYERS:
        if v == "M":
            layers[f"pool{block}"] = MaxPool2d(2, stride=2)
            block, i = block + 1, 1
            continue
        c_out = _width("vgg16", v, width)
        layers[f"conv{block}_{i}"] = _conv_relu(c, c_out, 3, rng, dtype, padding=1)
        c, i = c_out, i + 1
    features = Sequential(layers)
    model = Sequential({"features": features, "classifier": _classifier(
        "vgg16", features, (3, input_size, input_size), hidden, num_classes, rng, dtype)})
    return _shapes_only(model) if shapes_only else model


def alexnet(num_classes=1000, *, width=1.0, input_size=227, hidden=4096, shapes_only=False, rng=None,
            dtype=np.float32):
    """AlexNet (Krizhevsky, Sutskever and Hinton 2012) with its original two-group convolutions (paper Table 6).

    The network was split over two GPUs, and conv2, conv4 and conv5 only see the half of their input that
    lives on their GPU: they are group convolutions with ``groups=2`` (conv3 and the FC layers see both
    halves). Layers, as in the Caffe reference model (input 227x227):

    ``conv1`` 11x11/4, 96 -> ReLU -> ``pool1`` 3x3/2 -> ``conv2`` 5x5, pad 2, 256, g=2 -> ReLU -> ``pool2`` ->
    ``conv3`` 3x3, pad 1, 384 -> ReLU -> ``conv4`` 3x3, pad 1, 384, g=2 -> ReLU -> ``conv5`` 3x3, pad 1, 256,
    g=2 -> ReLU -> ``pool5`` -> ``fc6`` (256 x 6 x 6 -> 4096) -> ``fc7`` (4096) -> ``fc8`` (1000).

    Convolutions and FC layers have biases. Local response normalisation and dropout are left out: neither has
    weights or multiply-adds in the paper's convention.

    Parameters as in :func:`vgg16` (``input_size`` defaults to AlexNet's own 227; ``width`` keeps every
    channel count even, for the two groups).

    Notes
    -----
    At 227x227: 665,784,864 convolution multiply-adds and 58,621,952 in the FC layers, 724.4 M together, against
    the paper's 720 (0.6%; the convolutions alone, 665.8 M, are 7.5% short). 60,965,224 parameters. Without
    the groups conv2, conv4 and conv5 would cost twice as much (1,135.3 M in all).
    """
    width = _check_width("alexnet", width)
    num_classes = check_int("alexnet", "num_classes", num_classes, 1)
    input_size = check_int("alexnet", "input_size", input_size, 67)
    hidden = check_int("alexnet", "hidden", hidden, 1)
    rng = _network_rng(rng, shapes_only)
    c1, c2, c3, c4, c5 = (_width("alexnet", c, width, 2) for c in (96, 256, 384, 384, 256))
    features = Sequential({
        "conv1": _conv_relu(3, c1, 11, rng, dtype, stride=4), "pool1": MaxPool2d(3, stride=2),
        "conv2": _conv_relu(c1, c2, 5, rng, dtype, padding=2, groups=2), "pool2": MaxPool2d(3, stride=2),
        "conv3": _conv_relu(c2, c3, 3, rng, dtype, padding=1),
        "conv4": _conv_relu(c3, c4, 3, rng, dtype, padding=1, groups=2),
        "conv5": _conv_relu(c4, c5, 3, rng, dtype, padding=1, groups=2), "pool5": MaxPool2d(3, stride=2),
    })
    model = Sequential({"features": features, "classifier": _classifier(
        "alexnet", features, (3, input_size, input_size), hidden, num_classes, rng, dtype)})
    return _shapes_only(model) if shapes_only else model


# GoogLeNet (Szegedy et al. 2015, Table 1): the inception modules' channels, (1x1, 3x3 reduce, 3x3, 5x5 reduce,
# 5x5, pool projection); "M" = a 3x3 stride-2 max pool between them.
GOOGLENET_INCEPTIONS = (("3a", (64, 96, 128, 16, 32, 32)), ("3b", (128, 128, 192, 32, 96, 64)), "M",
                        ("4a", (192, 96, 208, 16, 48, 64)), ("4b", (160, 112, 224, 24, 64, 64)),
                        ("4c", (128, 128, 256, 24, 64, 64)), ("4d", (112, 144, 288, 32, 64, 64)),
                        ("4e", (256, 160, 320, 32, 128, 128)), "M",
                        ("5a", (256, 160, 320, 32, 128, 128)), ("5b", (384, 192, 384, 48, 128, 128)))


def inception(in_channels, c1, c3_reduce, c3, c5_reduce, c5, pool_proj, *, rng=None, dtype=np.float32):
    """GoogLeNet's inception module: four branches on the same input, concatenated.

    ``branch1`` 1x1 (c1) | ``branch2`` 1x1 (c3_reduce) -> 3x3 (c3) | ``branch3`` 1x1 (c5_reduce) -> 5x5 (c5) |
    ``branch4`` 3x3 max pool (stride 1) -> 1x1 (pool_proj); every convolution has a bias and a ReLU. Output
    channels ``c1 + c3 + c5 + pool_proj``, same height and width. Returns a :class:`Concat`.
    """
    rng = as_rng(rng)
    return Concat({
        "branch1": _conv_relu(in_channels, c1, 1, rng, dtype),
        "branch2": Sequential({"reduce": _conv_relu(in_channels, c3_reduce, 1, rng, dtype),
                               "conv": _conv_relu(c3_reduce, c3, 3, rng, dtype, padding=1)}),
        "branch3": Sequential({"reduce": _conv_relu(in_channels, c5_reduce, 1, rng, dtype),
                               "conv": _conv_relu(c5_reduce, c5, 5, rng, dtype, padding=2)}),
        "branch4": Sequential({"pool": MaxPool2d(3, stride=1, padding=1),
                               "proj": _conv_relu(in_channels, pool_proj, 1, rng, dtype)}),
    })


def googlenet(num_classes=1000, *, width=1.0, shapes_only=False, rng=None, dtype=np.float32):
    """GoogLeNet (Szegedy et al. 2015; the BVLC Caffe model of paper Table 6, 1500 MFLOPs), for inference.

    ``conv1`` 7x7/2, pad 3, 64 -> ``pool1`` 3x3/2 -> ``conv2_reduce`` 1x1, 64 -> ``conv2`` 3x3, pad 1, 192 ->
    ``pool2`` -> inception 3a, 3b -> ``pool3`` -> 4a ... 4e -> ``pool4`` -> 5a, 5b (channels:
    :data:`GOOGLENET_INCEPTIONS`, modules: :func:`inception`) -> ``pool`` (global average) -> ``fc`` (1024 ->
    1000, with bias). The stride-2 max pools round up (:class:`CeilMaxPool2d`), as Caffe's do. Left out: the
    two auxiliary classifiers (used in training only), local response normalisation and dropout (no weights,
    no multiply-adds).

    Parameters: as in :func:`vgg16` (the global pool makes any input of at least 32x32 work).

    Notes
    -----
    At 224x224: 1,581,647,872 convolution multiply-adds and 1,024,000 in the classifier, 1,582.7 M together,
    5.5% more than the paper's 1500. That figure is the round budget GoogLeNet's own paper states ("1.5
    billion multiply-adds"); no choice of counted layers brings our count of its Table 1 within 3% (the
    convolutions alone are 1,581.6 M). 6,998,552 parameters.
    """
    width = _check_width("googlenet", width)
    num_classes = check_int("googlenet", "num_classes", num_classes, 1)
    rng = _network_rng(rng, shapes_only)

    def w(c):
        return _width("googlenet", c, width)

    layers = {"conv1": _conv_relu(3, w(64), 7, rng, dtype, stride=2, padding=3),
              "pool1": CeilMaxPool2d(3, stride=2),
              "conv2_reduce": _conv_relu(w(64), w(64), 1, rng, dtype),
              "conv2": _conv_relu(w(64), w(192), 3, rng, dtype, padding=1),
              "pool2": CeilMaxPool2d(3, stride=2)}
    c, pools = w(192), 3
    for entry in GOOGLENET_INCEPTIONS:
        if entry == "M":
            layers[f"pool{pools}"] = CeilMaxPool2d(3, stride=2)
            pools += 1
            continue
        name, channels = entry
        channels = tuple(w(v) for v in channels)
        layers[f"inception{name}"] = inception(c, *channels, rng=rng, dtype=dtype)
        c = channels[0] + channels[2] + channels[4] + channels[5]
    layers["pool"] = GlobalAvgPool2d()
    layers["fc"] = Linear(c, num_classes, rng=rng, dtype=dtype)
    model = Sequential(layers)
    return _shapes_only(model) if shapes_only else model


# SqueezeNet v1.0 (Iandola et al. 2016, Table 1): the fire modules' (squeeze 1x1, expand 1x1, expand 3x3)
# channels; "M" = a 3x3 stride-2 max pool.
SQUEEZENET_FIRES = ((16, 64, 64), (16, 64, 64), (32, 128, 128), "M", (32, 128, 128), (48, 192, 192),
                    (48, 192, 192), (64, 256, 256), "M", (64, 256, 256))


def fire(in_channels, squeeze, expand1x1, expand3x3, *, rng=None, dtype=np.float32):
    """SqueezeNet's fire module: ``squeeze`` (1x1) -> ReLU -> ``expand`` = Concat(1x1 -> ReLU, 3x3 -> ReLU).

    Output channels ``expand1x1 + expand3x3``, same height and width. Convolutions have biases.
    """
    rng = as_rng(rng)
    return Sequential({"squeeze": _conv_relu(in_channels, squeeze, 1, rng, dtype),
                       "expand": Concat({"expand1x1": _conv_relu(squeeze, expand1x1, 1, rng, dtype),
                                         "expand3x3": _conv_relu(squeeze, expand3x3, 3, rng, dtype, padding=1)})})


def squeezenet(num_classes=1000, *, width=1.0, shapes_only=False, rng=None, dtype=np.float32):
    """SqueezeNet v1.0 (Iandola et al. 2016), as in paper Table 6 (833 MFLOPs).

    ``conv1`` 7x7/2, 96 -> ``pool1`` 3x3/2 -> ``fire2`` ... ``fire4`` -> ``pool4`` -> ``fire5`` ... ``fire8``
    -> ``pool8`` -> ``fire9`` -> ``conv10`` 1x1, 1000 -> ReLU -> ``pool`` (global average): no FC layer at all.
    Channels: :data:`SQUEEZENET_FIRES`, modules: :func:`fire`. The max pools round up (:class:`CeilMaxPool2d`),
    as Caffe's do: at 224x224 the maps are 109 -> 54 -> 27 -> 13. Dropout is left out.

    Parameters: as in :func:`vgg16`.

    Notes
    -----
    At 224x224: 818,924,576 multiply-adds (all in convolutions), 1.7% under the paper's 833. At 227x227, the
    input of the Caffe model (maps 111 -> 55 -> 27 -> 13), 832,667,936: the paper's 833 exactly. 1,248,424
    parameters.
    """
    width = _check_width("squeezenet", width)
    num_classes = check_int("squeezenet", "num_classes", num_classes, 1)
    rng = _network_rng(rng, shapes_only)
    c = _width("squeezenet", 96, width)
    layers = {"conv1": _conv_relu(3, c, 7, rng, dtype, stride=2), "pool1": CeilMaxPool2d(3, stride=2)}
    index = 2
    for entry in SQUEEZENET_FIRES:
        if entry == "M":
            layers[f"pool{index - 1}"] = CeilMaxPool2d(3, stride=2)
            continue
        squeeze, e1, e3 = (_width("squeezenet", v, width) for v in entry)
        layers[f"fire{index}"] = fire(c, squeeze, e1, e3, rng=rng, dtype=dtype)
        c, index = e1 + e3, index + 1
    layers["conv10"] = _conv_relu(c, num_classes, 1, rng, dtype)
    layers["pool"] = GlobalAvgPool2d()
    model = Sequential(layers)
    return _shapes_only(model) if shapes_only else model


# ----------------------------------------------------------------------------------------------------------------
# paper Fig. 2 (a) and Table 4: other units in the macro-architecture of Table 1
# ----------------------------------------------------------------------------------------------------------------
def depthwise_bottleneck_unit(channels, bottleneck, *, rng=None, dtype=np.float32):
    """Paper Fig. 2 (a): the bottleneck unit with a 3x3 *depthwise* convolution, the starting point of Sec. 3.2.

    ``ReLU(x + BN(1x1(ReLU(BN(3x3 DWConv(ReLU(BN(1x1(x)))))))))``: a :func:`resnet_unit` whose 3x3 convolution
    is depthwise (``groups = bottleneck``). ShuffleNet's unit (Fig. 2 b) then makes the two 1x1 convolutions
    group convolutions, puts a channel shuffle after the first, and drops the ReLU after the depthwise one.

    Returns a :class:`~numpy_shufflenet.nn.Residual`; ``branch`` is named conv1, bn1, relu1, conv2, bn2, relu2,
    conv3, bn3. Multiply-adds on a ``c x h x w`` input: ``hw(2cm + 9m)``.
    """
    c = check_int("depthwise_bottleneck_unit", "channels", channels, 1)
    m = check_int("depthwise_bottleneck_unit", "bottleneck", bottleneck, 1)
    rng = as_rng(rng)
    return Residual(Sequential({
        "conv1": Conv2d(c, m, 1, rng=rng, dtype=dtype), "bn1": BatchNorm2d(m, dtype=dtype), "relu1": ReLU(),
        "conv2": Conv2d(m, m, 3, padding=1, groups=m, rng=rng, dtype=dtype), "bn2": BatchNorm2d(m, dtype=dtype),
        "relu2": ReLU(),
        "conv3": Conv2d(m, c, 1, rng=rng, dtype=dtype), "bn3": BatchNorm2d(c, dtype=dtype)}))


def _conv_bn(c_in, c_out, k, rng, dtype, *, stride=1, groups=1, relu=True):
    layers = {"conv": Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, groups=groups, rng=rng, dtype=dtype),
              "bn": BatchNorm2d(c_out, dtype=dtype)}
    if relu:
        layers["relu"] = ReLU()
    return Sequential(layers)


def _bottleneck(c_in, c_out, mid, stride, groups, rng, dtype):
    """1x1 (c_in -> mid) -> 3x3 (mid, ``groups``, ``stride``) -> 1x1 (mid -> c_out), each with BN, ReLU between."""
    return Sequential({
        "conv1": Conv2d(c_in, mid, 1, rng=rng, dtype=dtype), "bn1": BatchNorm2d(mid, dtype=dtype), "relu1": ReLU(),
        "conv2": Conv2d(mid, mid, 3, stride=stride, padding=1, groups=groups, rng=rng, dtype=dtype),
        "bn2": BatchNorm2d(mid, dtype=dtype), "relu2": ReLU(),
        "conv3": Conv2d(mid, c_out, 1, rng=rng, dtype=dtype), "bn3": BatchNorm2d(c_out, dtype=dtype)})


def _with_shortcut(branch_for, c_in, c_out, stride):
    """Paper Fig. 2 (b) and (c) around any branch: ``ReLU(x + branch(x))`` for stride 1; for stride 2
    ``ReLU(concat([AvgPool3x3/s2(x), branch(x)]))`` with a branch of ``c_out - c_in`` channels."""
    if stride == 1:
        return Residual(branch_for(c_out))
    return Sequential({"concat": Concat({"shortcut": AvgPool2d(3, stride=2, padding=1),
                                         "branch": branch_for(c_out - c_in)}), "relu": ReLU()})


def _table4_unit(structure, c_in, c_out, stride, first, groups, rng, dtype):
    """One unit of the Table 4 networks; ``first`` marks the first unit of Stage 2 (dense first 1x1 layer)."""
    if structure == "vgg-like":                         # two 3x3 convolutions, BN after each, no shortcut
        return Sequential({"conv1": _conv_bn(c_in, c_out, 3, rng, dtype, stride=stride),
                           "conv2": _conv_bn(c_out, c_out, 3, rng, dtype)})
    if structure in ("xception-like", "shufflenet"):    # paper Fig. 2 (b, c); "xception-like" is g = 1
        return ShuffleUnit(c_in, c_out, groups=groups, stride=stride, grouped_first=not first, rng=rng, dtype=dtype)
    if structure == "resnet":                           # bottleneck ratio 1:4, dense 3x3
        mid, conv_groups = c_out // 4, 1
    else:                                               # "resnext": bottleneck ratio 1:2, cardinality 16
        mid, conv_groups = _round_up(c_out // 2, RESNEXT_CARDINALITY), RESNEXT_CARDINALITY
    return _with_shortcut(lambda out: _bottleneck(c_in, out, mid, stride, conv_groups, rng, dtype),
                          c_in, c_out, stride)


def _round_up(value, multiple):
    return -(-value // multiple) * multiple


RESNEXT_CARDINALITY = 16
TABLE4_STRUCTURES = ("vgg-like", "resnet", "xception-like", "resnext", "shufflenet")

# The widths of the Table 4 networks, (stem, stage 2, stage 3, stage 4), and the groups of the ShuffleNet
# column. The paper gives only the Stage-4 widths at 38 MFLOPs (Sec. 4.2: 50, 192, 288, 192, 576); everything
# else is our choice, made so that each network lands within 5% of its column's complexity. See
# :func:`table4_network` for the rules.
TABLE4_WIDTHS = {
    ("vgg-like", 140): (24, 25, 50, 100), ("vgg-like", 38): (12, 12, 25, 50), ("vgg-like", 13): (8, 7, 14, 28),
    ("resnet", 140): (24, 100, 200, 400), ("resnet", 38): (16, 48, 96, 192), ("resnet", 13): (8, 28, 56, 112),
    ("xception-like", 140): (24, 144, 288, 576), ("xception-like", 38): (12, 72, 144, 288),
    ("xception-like", 13): (12, 36, 72, 144),
    ("resnext", 140): (24, 96, 192, 384), ("resnext", 38): (8, 48, 96, 192), ("resnext", 13): (12, 16, 40, 80),
    ("shufflenet", 140): (24, 384, 768, 1536), ("shufflenet", 38): (8, 144, 288, 576),
    ("shufflenet", 13): (8, 96, 192, 384),
}
TABLE4_SHUFFLENET_GROUPS = {140: 8, 38: 4, 13: 8}       # the paper's column: 1x g=8, 0.5x g=4, 0.25x g=8


def macro_network(make_unit, widths, *, repeats=(4, 8, 4), num_classes=1000, rng=None, dtype=np.float32,
                  name="macro_network"):
    """The macro-architecture of paper Table 1 with any unit: stem, max pool, Stages 2-4, global pool, FC.

    ``stem`` (3x3 conv, stride 2, BN, ReLU) -> ``maxpool`` (3x3, stride 2, padding 1) -> ``stage2``, ``stage3``,
    ``stage4`` (``repeats`` units; the first of each has stride 2) -> ``pool`` (global average) -> ``fc`` (no
    bias), the layout of :class:`~numpy_shufflenet.model.ShuffleNet`.

    Parameters
    ----------
    make_unit : callable ``(in_channels, out_channels, stride, first, rng, dtype) -> Module``
        ``first`` is True for the first unit of Stage 2 only (paper Table 1 caption: no group convolution on its
        first pointwise layer, its input having only the stem's channels); ``rng`` and ``dtype`` are passed on.
    widths : (stem, stage2, stage3, stage4) output channels
    repeats : units per stage, default (4, 8, 4); the "shallow" network of paper Table 5 has (2, 4, 2)
    num_classes : int
    rng, dtype : as in :func:`mobilenet_v1`

    Returns
    -------
    Sequential, with attributes ``widths`` and ``repeats``
    """
    if len(widths) != 4 or len(repeats) != 3:
        raise ValueError(f"{name}: expected widths (stem, stage2, stage3, stage4) and three repeats, got "
                         f"widths={widths!r}, repeats={repeats!r}")
    stem, *stages = (check_int(name, "widths", c, 1) for c in widths)
    repeats = tuple(check_int(name, "repeats", r, 1) for r in repeats)
    rng = as_rng(rng)
    layers = {"stem": _conv_bn(3, stem, 3, rng, dtype, stride=2), "maxpool": MaxPool2d(3, stride=2, padding=1)}
    c_in = stem
    for stage, (c_out, n) in enumerate(zip(stages, repeats), start=2):
        layers[f"stage{stage}"] = Sequential(*[make_unit(c_in if i == 0 else c_out, c_out, 2 if i == 0 else 1,
                                                         stage == 2 and i == 0, rng, dtype) for i in range(n)])
        c_in = c_out
    layers["pool"] = GlobalAvgPool2d()
    layers["fc"] = Linear(c_in, num_classes, bias=False, rng=rng, dtype=dtype)
    model = Sequential(layers)
    model.widths, model.repeats = (stem, *stages), repeats
    return model


def shufflenet_with_widths(groups, widths, *, repeats=(4, 8, 4), num_classes=1000, rng=None, dtype=np.float32):
    """A ShuffleNet with any widths and stage repeats: :func:`macro_network` with
    :class:`~numpy_shufflenet.model.ShuffleUnit` units (``groups`` groups, dense first 1x1 in Stage 2).

    With the widths of :func:`~numpy_shufflenet.model.stage_widths` and the default repeats it has the layers,
    and counts, of :class:`~numpy_shufflenet.model.ShuffleNet`. It is for the widths the paper does not publish:
    a 0.25x network with a 12-channel stem, or the "shallow" 0.5x network of paper Table 5 (repeats 2, 4, 2).
    """
    groups = check_int("shufflenet_with_widths", "groups", groups, 1)

    def make_unit(c_in, c_out, stride, first, rng, dtype):
        return ShuffleUnit(c_in, c_out, groups=groups, stride=stride, grouped_first=not first, rng=rng, dtype=dtype)

    return macro_network(make_unit, widths, repeats=repeats, num_classes=num_classes, rng=rng, dtype=dtype,
                         name="shufflenet_with_widths")


def table4_network(structure, mflops, *, num_classes=1000, widths=None, rng=None, dtype=np.float32):
    """One network of paper Table 4: the Table 1 macro-architecture with another unit, at 140, 38 or 13 MFLOPs.

    Every network is :func:`macro_network` (stem, max pool, Stages 2-4 with 4, 8 and 4 units, global pool, FC),
    with the units of ``structure`` (paper Sec. 4.2):

    * ``"vgg-like"``: two 3x3 convolutions, BN and ReLU after each; no shortcut, the first has stride 2 in the
      first unit of a stage.
    * ``"resnet"``: the bottleneck unit, 1x1 -> 3x3 -> 1x1 with BN (ReLU after the first two), bottleneck ratio
      1:4 (``out // 4`` channels).
    * ``"xception-like"``: ShuffleNet with ``g = 1`` (no group convolution, no shuffle): depthwise separable
      convolutions in a bottleneck. At 140 and 38 MFLOPs it has the widths of ``ShuffleNet(groups=1, scale=1.0)``
      and ``scale=0.5``, and counts the same.
    * ``"resnext"``: the same bottleneck with a grouped 3x3, cardinality 16, bottleneck ratio 1:2 (``out // 2``
      rounded up to a multiple of 16).
    * ``"shufflenet"``: the ShuffleNet unit, g = 8, 4, 8 at 140, 38, 13 (the paper's column).

    Assumptions, since the paper gives no more than the above and the Stage-4 widths at 38 MFLOPs:

    * The stride-2 unit of every structure with a shortcut is that of Fig. 2 (c): a 3x3 average pool on the
      shortcut, concatenated with a branch of ``out - in`` channels (the bottleneck stays ``out // 4`` or
      ``out // 2`` of the *full* output). Stride 2 sits on the 3x3 convolution.
    * Widths double from stage to stage (VGG-like at 38: 12, 25, 50 for the paper's 50; ResNeXt at 13 is the
      exception, 16, 40, 80: at these widths its rounded-up bottleneck leaves no doubling within 5%). The stem
      has 24 channels at 140 MFLOPs, as in Table 1; at 38 and 13 it has 8, 12 or 16, chosen with the stage
      widths to land within 5% of the column. Xception-like at 38 and 13 keeps the 0.5x stem, 12 (a 0.25x
      stem of 6 would give 11.0 M); ShuffleNet at 38 and 13 has 8 (with 12, 0.5x g=4 counts 40.71 M, 7% over
      its label). :data:`TABLE4_WIDTHS` lists them all.

    Parameters
    ----------
    structure : one of "vgg-like", "resnet", "xception-like", "resnext", "shufflenet"
    mflops : 140, 38 or 13, the column
    widths : (stem, stage2, stage3, stage4), optional, to try other widths for the same structure
    num_classes, rng, dtype : as in :func:`macro_network`

    Returns
    -------
    Sequential, with attributes ``structure``, ``mflops``, ``widths`` and ``repeats``
    """
    if structure not in TABLE4_STRUCTURES:
        raise ValueError(f"table4_network: expected structure in {TABLE4_STRUCTURES}, got {structure!r}")
    if mflops not in (140, 38, 13) or isinstance(mflops, bool):
        raise ValueError(f"table4_network: expected mflops 140, 38 or 13 (the columns of paper Table 4), "
                         f"got {mflops!r}")
    widths = TABLE4_WIDTHS[structure, mflops] if widths is None else tuple(widths)
    groups = {"shufflenet": TABLE4_SHUFFLENET_GROUPS[mflops], "xception-like": 1}.get(structure, 1)
    rng = as_rng(rng)

    def make_unit(c_in, c_out, stride, first, rng, dtype):
        return _table4_unit(structure, c_in, c_out, stride, first, groups, rng, dtype)

    model = macro_network(make_unit, widths, num_classes=num_classes, rng=rng, dtype=dtype, name="table4_network")
    model.structure, model.mflops = structure, mflops
    return model


# ----------------------------------------------------------------------------------------------------------------
# deep stacks with and without the shortcut
# ----------------------------------------------------------------------------------------------------------------
INITS = {"he": 1.0, "lecun": np.sqrt(0.5)}     # factor applied to Conv2d's He-initialised weights


def shuffle_branch(channels, groups, *, batchnorm=True, init="he", rng=None, dtype=np.float32):
    """The residual branch of a stride-1 ShuffleNet unit (paper Fig. 2 b), as a ``Sequential``.

    It *is* the ``branch`` of a :class:`~numpy_shufflenet.model.ShuffleUnit` ``(channels, channels,
    groups=groups, stride=1)``: conv1 (1x1, ``groups`` groups, c -> c/4), bn1, relu1, shuffle, conv2 (3x3
    depthwise), bn2, conv3 (1x1, ``groups`` groups, c/4 -> c), bn3 (no shuffle layer when ``groups == 1``), with
    the same names, order and initial weights for the same ``rng``. Only the two options below change it.

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
    branch = ShuffleUnit(c, c, groups=g, stride=1, rng=rng, dtype=dtype).branch
    if not batchnorm:
        branch = Sequential({name: layer for name, layer in branch.named_children()
                             if not isinstance(layer, BatchNorm2d)})
    for layer in branch:
        if isinstance(layer, Conv2d):
            layer.weight.data = (layer.weight.data * INITS[init]).astype(dtype)
    return branch


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
    rng = as_rng(rng)
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
