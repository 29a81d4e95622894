"""Other networks of the paper's tables, built from the same layers so that the same counter counts them.

* :func:`vgg16`, :func:`alexnet` (with its two-group convolutions), :func:`googlenet`, :func:`squeezenet`: paper
  Table 6. :func:`~numpy_shufflenet.models.build_shapes_only` builds them without drawing their weights, which is
  all counting needs.
* :func:`mobilenet_v1`: MobileNet v1 (Howard et al. 2017) with its width multiplier (paper Table 5).
* :func:`inception` (GoogLeNet) and :func:`fire` (SqueezeNet), built on :class:`~numpy_shufflenet.nn.Concat`,
  which runs branches side by side and concatenates them; :class:`~numpy_shufflenet.nn.CeilMaxPool2d` is Caffe's
  max pooling, which rounds up.
"""

import numpy as np

from .._checks import as_rng, check_int
from ..nn import CeilMaxPool2d, Concat, Flatten, GlobalAvgPool2d, Linear, MaxPool2d, ReLU, Sequential
from .builders import check_width, conv_bn_relu, scaled
from .units import depthwise_separable

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
    :func:`~numpy_shufflenet.models.depthwise_separable` convolution ``dw`` (3x3 depthwise, padding 1) -> ``bn1``
    -> ``relu1`` -> ``pw`` (1x1) -> ``bn2`` -> ``relu2`` with the channels and strides of
    :data:`MOBILENET_V1_BLOCKS`; ``pool`` (global average)
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
    width = check_width("mobilenet_v1", width)
    num_classes = check_int("mobilenet_v1", "num_classes", num_classes, 1)
    in_channels = check_int("mobilenet_v1", "in_channels", in_channels, 1)
    rng = as_rng(rng)
    c = scaled("mobilenet_v1", MOBILENET_V1_STEM, width)
    layers = {"stem": conv_bn_relu(in_channels, c, 3, rng, dtype, stride=2)}
    widths = [c]
    for i, (c_out, stride) in enumerate(MOBILENET_V1_BLOCKS, start=1):
        c_out = scaled("mobilenet_v1", c_out, width)
        layers[f"block{i}"] = depthwise_separable(c, c_out, stride=stride, rng=rng, dtype=dtype)
        widths.append(c_out)
        c = c_out
    layers["pool"] = GlobalAvgPool2d()
    layers["fc"] = Linear(c, num_classes, bias=True, rng=rng, dtype=dtype)
    model = Sequential(layers)
    model.width, model.widths = width, tuple(widths)
    return model


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


def vgg16(num_classes=1000, *, width=1.0, input_size=224, hidden=4096, rng=None, dtype=np.float32):
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
    rng, dtype : as in :func:`mobilenet_v1`

    ``build_shapes_only(vgg16)`` builds the layers without drawing their 138 M weights (read-only zero views of
    the right shapes): instant, and enough for :func:`~numpy_shufflenet.analysis.counting.count_multiply_adds` and
    ``count_params``.

    Notes
    -----
    At 224x224: 15,346,630,656 convolution multiply-adds and 123,633,664 in the three FC layers, 15,470.3 M
    together; 138,357,544 parameters. The paper's 15300 matches the convolutions alone best (0.3% off; with the
    classifier 1.1% off).
    """
    width = check_width("vgg16", width)
    num_classes = check_int("vgg16", "num_classes", num_classes, 1)
    input_size = check_int("vgg16", "input_size", input_size, 32)
    hidden = check_int("vgg16", "hidden", hidden, 1)
    rng = as_rng(rng)
    layers, c, block, i = {}, 3, 1, 1
    for v in VGG16_LAYERS:
        if v == "M":
            layers[f"pool{block}"] = MaxPool2d(2, stride=2)
            block, i = block + 1, 1
            continue
        c_out = scaled("vgg16", v, width)
        layers[f"conv{block}_{i}"] = conv_bn_relu(c, c_out, 3, rng, dtype, bn=False)
        c, i = c_out, i + 1
    features = Sequential(layers)
    return Sequential({"features": features, "classifier": _classifier(
        "vgg16", features, (3, input_size, input_size), hidden, num_classes, rng, dtype)})


def alexnet(num_classes=1000, *, width=1.0, input_size=227, hidden=4096, rng=None, dtype=np.float32):
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
    width = check_width("alexnet", width)
    num_classes = check_int("alexnet", "num_classes", num_classes, 1)
    input_size = check_int("alexnet", "input_size", input_size, 67)
    hidden = check_int("alexnet", "hidden", hidden, 1)
    rng = as_rng(rng)
    c1, c2, c3, c4, c5 = (scaled("alexnet", c, width, 2) for c in (96, 256, 384, 384, 256))
    features = Sequential({
        "conv1": conv_bn_relu(3, c1, 11, rng, dtype, stride=4, padding=0, bn=False), "pool1": MaxPool2d(3, stride=2),
        "conv2": conv_bn_relu(c1, c2, 5, rng, dtype, groups=2, bn=False), "pool2": MaxPool2d(3, stride=2),
        "conv3": conv_bn_relu(c2, c3, 3, rng, dtype, bn=False),
        "conv4": conv_bn_relu(c3, c4, 3, rng, dtype, groups=2, bn=False),
        "conv5": conv_bn_relu(c4, c5, 3, rng, dtype, groups=2, bn=False), "pool5": MaxPool2d(3, stride=2),
    })
    return Sequential({"features": features, "classifier": _classifier(
        "alexnet", features, (3, input_size, input_size), hidden, num_classes, rng, dtype)})


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
        "branch1": conv_bn_relu(in_channels, c1, 1, rng, dtype, bn=False),
        "branch2": Sequential({"reduce": conv_bn_relu(in_channels, c3_reduce, 1, rng, dtype, bn=False),
                               "conv": conv_bn_relu(c3_reduce, c3, 3, rng, dtype, bn=False)}),
        "branch3": Sequential({"reduce": conv_bn_relu(in_channels, c5_reduce, 1, rng, dtype, bn=False),
                               "conv": conv_bn_relu(c5_reduce, c5, 5, rng, dtype, bn=False)}),
        "branch4": Sequential({"pool": MaxPool2d(3, stride=1, padding=1),
                               "proj": conv_bn_relu(in_channels, pool_proj, 1, rng, dtype, bn=False)}),
    })


def googlenet(num_classes=1000, *, width=1.0, rng=None, dtype=np.float32):
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
    width = check_width("googlenet", width)
    num_classes = check_int("googlenet", "num_classes", num_classes, 1)
    rng = as_rng(rng)
    c1, c2 = (scaled("googlenet", c, width) for c in (64, 192))
    layers = {"conv1": conv_bn_relu(3, c1, 7, rng, dtype, stride=2, bn=False),
              "pool1": CeilMaxPool2d(3, stride=2),
              "conv2_reduce": conv_bn_relu(c1, c1, 1, rng, dtype, bn=False),
              "conv2": conv_bn_relu(c1, c2, 3, rng, dtype, bn=False),
              "pool2": CeilMaxPool2d(3, stride=2)}
    c, pools = c2, 3
    for entry in GOOGLENET_INCEPTIONS:
        if entry == "M":
            layers[f"pool{pools}"] = CeilMaxPool2d(3, stride=2)
            pools += 1
            continue
        name, channels = entry
        channels = tuple(scaled("googlenet", v, width) for v in channels)
        layers[f"inception{name}"] = inception(c, *channels, rng=rng, dtype=dtype)
        c = channels[0] + channels[2] + channels[4] + channels[5]
    layers["pool"] = GlobalAvgPool2d()
    layers["fc"] = Linear(c, num_classes, rng=rng, dtype=dtype)
    return Sequential(layers)


# SqueezeNet v1.0 (Iandola et al. 2016, Table 1): the fire modules' (squeeze 1x1, expand 1x1, expand 3x3)
# channels; "M" = a 3x3 stride-2 max pool.
SQUEEZENET_FIRES = ((16, 64, 64), (16, 64, 64), (32, 128, 128), "M", (32, 128, 128), (48, 192, 192),
                    (48, 192, 192), (64, 256, 256), "M", (64, 256, 256))


def fire(in_channels, squeeze, expand1x1, expand3x3, *, rng=None, dtype=np.float32):
    """SqueezeNet's fire module: ``squeeze`` (1x1) -> ReLU -> ``expand`` = Concat(1x1 -> ReLU, 3x3 -> ReLU).

    Output channels ``expand1x1 + expand3x3``, same height and width. Convolutions have biases.
    """
    rng = as_rng(rng)
    return Sequential({"squeeze": conv_bn_relu(in_channels, squeeze, 1, rng, dtype, bn=False),
                       "expand": Concat({"expand1x1": conv_bn_relu(squeeze, expand1x1, 1, rng, dtype, bn=False),
                                         "expand3x3": conv_bn_relu(squeeze, expand3x3, 3, rng, dtype, bn=False)})})


def squeezenet(num_classes=1000, *, width=1.0, rng=None, dtype=np.float32):
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
    width = check_width("squeezenet", width)
    num_classes = check_int("squeezenet", "num_classes", num_classes, 1)
    rng = as_rng(rng)
    c = scaled("squeezenet", 96, width)
    layers = {"conv1": conv_bn_relu(3, c, 7, rng, dtype, stride=2, padding=0, bn=False),
              "pool1": CeilMaxPool2d(3, stride=2)}
    index = 2
    for entry in SQUEEZENET_FIRES:
        if entry == "M":
            layers[f"pool{index - 1}"] = CeilMaxPool2d(3, stride=2)
            continue
        squeeze, e1, e3 = (scaled("squeezenet", v, width) for v in entry)
        layers[f"fire{index}"] = fire(c, squeeze, e1, e3, rng=rng, dtype=dtype)
        c, index = e1 + e3, index + 1
    layers["conv10"] = conv_bn_relu(c, num_classes, 1, rng, dtype, bn=False)
    layers["pool"] = GlobalAvgPool2d()
    return Sequential(layers)


