"""The ShuffleNet unit (paper Fig. 2 b, c) and the whole network of paper Table 1.

A ShuffleNet unit is a bottleneck residual unit whose 1x1 convolutions are *group* convolutions, with a channel
shuffle after the first one so that the second sees every group, and a 3x3 *depthwise* convolution in the
middle::

    stride 1 (Fig. 2 b):  x -> [1x1 GConv -> BN ReLU -> shuffle -> 3x3 DWConv -> BN -> 1x1 GConv -> BN]
                            -> + x -> ReLU
    stride 2 (Fig. 2 c):  x -> [the same branch, DWConv with stride 2] -> concat([AvgPool3x3/s2(x), branch]) -> ReLU

The bottleneck has ``out_channels // 4`` channels. A stride-2 unit concatenates, so its branch produces only
``out_channels - in_channels`` channels. There is no ReLU after the depthwise convolution (paper Sec. 3.2).

A batch norm and the ReLU after it are one layer, ``BatchNormReLU2d`` (the figure's "BN ReLU" box), and so are
the unit's end, ``AddReLU`` (``relu(x + branch(x))``) or ``ConcatReLU`` (``relu(concat([pool(x), branch(x)]))``):
each runs one pair of the kernel set (:mod:`numpy_shufflenet.functional.fused` writes it as the two plain pairs
one after the other; the fast set does both in one pass over memory). Their parameters keep the names of a plain
batch norm (``branch.bn1.weight``), so the state dict is the same as with separate layers.

Two orders of the shuffle (``shuffle_order``):

* ``"paper"`` (the default): after the first 1x1 convolution's ReLU, reshaping the channels to ``(g, C // g)``,
  transposing and flattening (paper Sec. 3.1), i.e. ``channel_shuffle(x, g)``.
* ``"official"``: as the authors' released code (megvii-model/ShuffleNet-Series, ``ShuffleNetV1/blocks.py``) does,
  *after* the depthwise convolution and its BN, reshaping to ``(C // g, g)`` instead, i.e. ``channel_shuffle(x,
  C // g)``: the inverse permutation of the paper's. Its position alone changes nothing (the depthwise convolution
  and BN act on each channel alone, so they commute with any permutation of their channels once their own
  parameters are permuted the same way), but the inverse order sends the channels to different groups of the
  second 1x1 convolution: a network with its own function, the one the authors' ImageNet weights were trained in.
"""

import numpy as np

from ..nn import (AddReLU, AvgPool2d, BatchNorm2d, BatchNormReLU2d, ChannelShuffle, ConcatReLU, Conv2d,
                  GlobalAvgPool2d, Linear, MaxPool2d, Module, Sequential)
from .._checks import as_rng, check_float_array, check_int
from .builders import conv_bn_relu, scaled

# Paper Table 1 (1x): output channels of Stages 2, 3, 4 for each number of groups g; Conv1 has 24 channels.
TABLE1_WIDTHS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960), 4: (272, 544, 1088),
                 8: (384, 768, 1536)}
STEM_1X = 24
STAGE_REPEATS = (4, 8, 4)           # units per stage; the first of each has stride 2

# Widths of the authors' released models, (stem, stage 2, stage 3, stage 4), by (groups, scale).
OFFICIAL_WIDTHS = {
    (3, 0.5): (12, 120, 240, 480), (3, 1.0): (24, 240, 480, 960),
    (3, 1.5): (24, 360, 720, 1440), (3, 2.0): (48, 480, 960, 1920),
    (8, 0.5): (16, 192, 384, 768), (8, 1.0): (24, 384, 768, 1536),
    (8, 1.5): (24, 576, 1152, 2304), (8, 2.0): (48, 768, 1536, 3072),
}
GROUPS = (1, 2, 3, 4, 8)
SHUFFLE_ORDERS = ("paper", "official")     # where and how a unit shuffles: see the module docstring
SCALES = (0.25, 0.5, 1.0, 1.5, 2.0)


def stage_widths(groups=3, scale=1.0):
    """Channel counts ``(stem, stage2, stage3, stage4)`` of ShuffleNet ``scale``x with ``groups`` groups.

    * 1x: paper Table 1 (stem 24).
    * g = 3 or 8 at 0.5x, 1.5x, 2x: the widths of the authors' released models.
    * Otherwise (the paper gives no widths) the width multiplier :func:`~.builders.scaled`, rounding up so that
      every convolution divides::

          stage2 = scaled(Table1[g][0], scale, 4 * g)        # bottleneck stage2/4 divisible by g
          stage3 = 2 * stage2,  stage4 = 2 * stage3          # "the output channels are doubled"
          stem   = scaled(24, scale, g)                      # the first branch width stage2 - stem divisible by g

      It reproduces every released width except the 1.5x stems: released 24 for both g = 3 and g = 8, where
      the rule gives 36 (g = 3) and 40 (g = 8).
    """
    groups = check_int("ShuffleNet", "groups", groups, 1)
    if groups not in GROUPS:
        raise ValueError(f"ShuffleNet: expected groups in {GROUPS}, got {groups}")
    if isinstance(scale, bool) or scale not in SCALES:
        raise ValueError(f"ShuffleNet: expected scale in {SCALES}, got {scale!r}")
    if scale == 1.0:
        return (STEM_1X,) + TABLE1_WIDTHS[groups]
    if (groups, scale) in OFFICIAL_WIDTHS:
        return OFFICIAL_WIDTHS[(groups, scale)]
    c2 = scaled("ShuffleNet", TABLE1_WIDTHS[groups][0], scale, 4 * groups)
    return (scaled("ShuffleNet", STEM_1X, scale, groups), c2, 2 * c2, 4 * c2)


def _check_widths(widths, groups):
    """``widths`` as a tuple of four positive ints ``(stem, stage2, stage3, stage4)``."""
    check_int("ShuffleNet", "groups", groups, 1)
    if not isinstance(widths, (tuple, list)) or len(widths) != 4:
        raise ValueError(f"ShuffleNet: expected widths (stem, stage2, stage3, stage4), got {widths!r}")
    return tuple(check_int("ShuffleNet", "widths", w, 1) for w in widths)


class ShuffleUnit(Module):
    """One ShuffleNet unit (paper Fig. 2 b for stride 1, Fig. 2 c for stride 2).

    Parameters
    ----------
    in_channels, out_channels : int
        Stride 1 needs ``in_channels == out_channels``; stride 2 concatenates the pooled input with a branch of
        ``out_channels - in_channels`` channels.
    groups : int
        Groups of the two 1x1 convolutions.
    stride : 1 or 2
    grouped_first : bool
        False makes the first 1x1 convolution dense (the first unit of Stage 2, whose input has only 24
        channels).
    shuffle : bool
        False drops the channel shuffle (the paper's Table 3 ablation).
    shuffle_order : "paper" or "official"
        Where and how the shuffle permutes (module docstring): ``"paper"`` shuffles after bn1 (batch norm and
        ReLU) with ``ChannelShuffle(groups)``; ``"official"`` after bn2 with ``ChannelShuffle(mid_channels //
        groups)``, the authors' released unit.

    Notes
    -----
    Shapes: ``(N, in_channels, H, W) -> (N, out_channels, H // stride rounded up, ...)``.
    Children, in forward order: ``branch`` (a ``Sequential`` named conv1, bn1 (a ``BatchNormReLU2d``), shuffle,
    conv2, bn2, conv3, bn3; with ``shuffle_order="official"``: conv1, bn1, conv2, bn2, shuffle, conv3, bn3),
    ``shortcut`` (``AvgPool2d(3, 2, 1)``, stride 2 only) and ``relu`` (``AddReLU`` for stride 1, ``ConcatReLU``
    for stride 2).
    """

    def __init__(self, in_channels, out_channels, *, groups, stride, grouped_first=True, shuffle=True, rng=None,
                 dtype=np.float32, shuffle_order="paper"):
        super().__init__()
        in_channels = check_int("ShuffleUnit", "in_channels", in_channels, 1)
        out_channels = check_int("ShuffleUnit", "out_channels", out_channels, 1)
        groups = check_int("ShuffleUnit", "groups", groups, 1)
        if stride not in (1, 2):
            raise ValueError(f"ShuffleUnit: expected stride 1 or 2, got {stride!r}")
        if shuffle_order not in SHUFFLE_ORDERS:
            raise ValueError(f"ShuffleUnit: expected shuffle_order in {SHUFFLE_ORDERS}, got {shuffle_order!r}")
        if stride == 1 and in_channels != out_channels:
            raise ValueError(f"ShuffleUnit: a stride-1 unit adds its input, so it expects in_channels == "
                             f"out_channels, got {in_channels} and {out_channels}")
        branch_out = out_channels - in_channels if stride == 2 else out_channels
        mid = out_channels // 4
        first_groups = groups if grouped_first else 1
        must_divide = [("bottleneck (out_channels // 4)", mid), ("branch output", branch_out)]
        if grouped_first:
            must_divide.append(("in_channels", in_channels))
        for name, c in must_divide:
            if c <= 0 or c % groups:
                raise ValueError(f"ShuffleUnit: expected the {name} to be a positive multiple of groups={groups}, "
                                 f"got {c}")
        self.in_channels, self.out_channels, self.groups, self.stride = in_channels, out_channels, groups, stride
        self.mid_channels, self.branch_channels = mid, branch_out
        self.grouped_first = grouped_first
        self.shuffle_order = shuffle_order
        shuffles = shuffle and groups > 1
        layers = {
            "conv1": Conv2d(in_channels, mid, 1, groups=first_groups, rng=rng, dtype=dtype),
            "bn1": BatchNormReLU2d(mid, dtype=dtype),
        }
        if shuffles and shuffle_order == "paper":
            layers["shuffle"] = ChannelShuffle(groups)
        layers.update({
            "conv2": Conv2d(mid, mid, 3, stride=stride, padding=1, groups=mid, rng=rng, dtype=dtype),
            "bn2": BatchNorm2d(mid, dtype=dtype),
        })
        if shuffles and shuffle_order == "official":
            layers["shuffle"] = ChannelShuffle(mid // groups)      # reshape (C // g, g): the inverse order
        layers.update({
            "conv3": Conv2d(mid, branch_out, 1, groups=groups, rng=rng, dtype=dtype),
            "bn3": BatchNorm2d(branch_out, dtype=dtype),
        })
        self.branch = Sequential(layers)
        self.shortcut = AvgPool2d(3, stride=2, padding=1) if stride == 2 else None
        self.relu = AddReLU() if stride == 1 else ConcatReLU()

    @property
    def shuffle(self):
        return "shuffle" in self.branch.names

    def forward(self, x):
        check_float_array("ShuffleUnit", "x", x, ndim=4)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"ShuffleUnit: expected {self.in_channels} input channels, got x of shape {x.shape}")
        self._cache = x.shape
        if self.stride == 1:
            return self.relu(x, self.branch(x))                      # Fig. 2 b: relu(x + branch(x))
        return self.relu(self.shortcut(x), self.branch(x))           # Fig. 2 c: relu(concat([avgpool(x), branch(x)]))

    def backward(self, dout, *, input_grad=True):
        self._take_cache()
        d_shortcut, d_branch = self.relu.backward(dout)              # the gradients of the ReLU's two inputs
        dx = self.branch.backward(d_branch, input_grad=input_grad)
        if not input_grad:
            return None
        if self.stride == 2:
            d_shortcut = self.shortcut.backward(d_shortcut)
        return d_shortcut + dx                                       # both paths read x: their gradients add

    def output_shape(self, input_shape):
        branch_shape = self.branch.output_shape(input_shape)
        return (self.out_channels,) + tuple(branch_shape[1:])

    def shape_trace(self, input_shape, prefix=""):
        prefix = prefix or "unit"
        yield from self.branch.shape_trace(input_shape, f"{prefix}.branch")
        if self.shortcut is not None:
            yield from self.shortcut.shape_trace(input_shape, f"{prefix}.shortcut")
        out = self.output_shape(input_shape)
        yield from self.relu.shape_trace(out, f"{prefix}.relu")

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, groups={self.groups}, stride={self.stride}"

    def __repr__(self):
        return f"ShuffleUnit({self.extra_repr()})\n" + "\n".join(
            "  " + line for line in repr(self.branch).splitlines())


class ShuffleNet(Sequential):
    """ShuffleNet v1 (paper Table 1).

    ``stem`` (3x3 conv, stride 2, then ``bn``: BN and ReLU) -> ``maxpool`` (3x3, stride 2) -> ``stage2``,
    ``stage3``, ``stage4`` (4, 8 and 4 units, the first of each with stride 2) -> ``pool`` (global average) ->
    ``fc`` (no bias, as in the authors' model; convolutions have no bias either).

    ``backward(dlogits)`` fills every parameter's ``.grad`` and returns the gradient of the input images;
    ``backward(dlogits, input_grad=False)`` returns None instead, and the stem's convolution skips the image
    gradient, which training never uses (PyTorch skips it too for an input without ``requires_grad``).

    Parameters
    ----------
    groups : one of 1, 2, 3, 4, 8
    scale : one of 0.25, 0.5, 1.0, 1.5, 2.0 (widths: :func:`stage_widths`)
    num_classes, in_channels : int
    shuffle : bool, False for the no-shuffle ablation of paper Table 3
    shuffle_order : "paper" (default) or "official"
        The shuffle of paper Sec. 3.1, or the authors' released one (after the depthwise conv + BN, inverse
        order; the module docstring says why it is a different network). Loading the authors' ImageNet weights
        needs "official"; :mod:`numpy_shufflenet.interop` sets it.
    widths : (stem, stage2, stage3, stage4), optional
        Channel counts that replace :func:`stage_widths` (``scale`` is then only a label), e.g. those read from
        a checkpoint; every unit checks that its widths divide by ``groups``.
    fc_bias : bool
        A bias in the classifier (the authors' model has none; mmpretrain's head has one).
    rng : numpy.random.Generator, optional, for the initial weights
    dtype : float32 (default) or float64
    zero_init_residual : bool
        Start every unit's last batch norm with ``gamma = 0``, so each unit begins as (nearly) the identity and
        the deep stack trains much faster from scratch on small data (Goyal et al. 2017; PyTorch's ResNet has the
        same switch). The authors' ImageNet models do not do this, hence the default False.

    Notes
    -----
    Shapes: ``(N, in_channels, H, W) -> (N, num_classes)`` for any ``H, W >= 32`` (32 = 2**5: each of the five
    stride-2 steps halves the feature map); the global pool adapts to the final size (7x7 for 224x224).
    """

    def __init__(self, groups=3, scale=1.0, num_classes=1000, in_channels=3, shuffle=True, *, rng=None,
                 dtype=np.float32, zero_init_residual=False, shuffle_order="paper", widths=None, fc_bias=False):
        stem, *widths = stage_widths(groups, scale) if widths is None else _check_widths(widths, groups)
        if shuffle_order not in SHUFFLE_ORDERS:
            raise ValueError(f"ShuffleNet: expected shuffle_order in {SHUFFLE_ORDERS}, got {shuffle_order!r}")
        num_classes = check_int("ShuffleNet", "num_classes", num_classes, 1)
        in_channels = check_int("ShuffleNet", "in_channels", in_channels, 1)
        rng = as_rng(rng)
        layers = {
            "stem": conv_bn_relu(in_channels, stem, 3, rng, dtype, stride=2),
            "maxpool": MaxPool2d(3, stride=2, padding=1),
        }
        c_in = stem
        for stage, (c_out, repeats) in enumerate(zip(widths, STAGE_REPEATS), start=2):
            units = []
            for i in range(repeats):
                units.append(ShuffleUnit(c_in, c_out, groups=groups, stride=2 if i == 0 else 1,
                                         grouped_first=not (stage == 2 and i == 0), shuffle=shuffle, rng=rng,
                                         dtype=dtype, shuffle_order=shuffle_order))
                c_in = c_out
            layers[f"stage{stage}"] = Sequential(*units)
        layers["pool"] = GlobalAvgPool2d()
        # A classifier that starts near zero (as the authors' N(0, 0.01)): the 16 residual additions leave the
        # pooled features with a standard deviation of several units, and He-scaled logits would start the loss
        # far above log(num_classes).
        layers["fc"] = Linear(c_in, num_classes, bias=bool(fc_bias), rng=rng, dtype=dtype, init_std=0.01)
        super().__init__(layers)
        if zero_init_residual:
            for stage in (self.stage2, self.stage3, self.stage4):
                for unit in stage:
                    unit.branch.bn3.weight.data[...] = 0
        self.groups, self.scale, self.num_classes, self.in_channels = groups, scale, num_classes, in_channels
        self.widths = (stem, *widths)
        self.shuffle_order = shuffle_order

    def _check_input_shape(self, shape, shown=None):
        """Check one sample's ``(C, H, W)``; ``shown`` is the shape to quote (the batch's, when there is one)."""
        shown = tuple(shape) if shown is None else shown
        if len(shape) != 3 or shape[0] != self.in_channels:
            raise ValueError(f"ShuffleNet: expected input of shape (N, {self.in_channels}, H, W), got {shown}")
        if shape[1] < 32 or shape[2] < 32:
            raise ValueError(f"ShuffleNet: expected an input of at least 32x32 (five stride-2 steps), "
                             f"got {shape[1]}x{shape[2]}")

    def forward(self, x):
        check_float_array("ShuffleNet", "x", x, ndim=4)
        self._check_input_shape(x.shape[1:], x.shape)
        return super().forward(x)

    def output_shape(self, input_shape):
        self._check_input_shape(tuple(input_shape))
        return super().output_shape(input_shape)

    def shape_trace(self, input_shape, prefix=""):
        self._check_input_shape(tuple(input_shape))
        return super().shape_trace(input_shape, prefix)

    def __repr__(self):
        order = "" if self.shuffle_order == "paper" else f", shuffle_order={self.shuffle_order!r}"
        return (f"ShuffleNet(groups={self.groups}, scale={self.scale}, num_classes={self.num_classes}, "
                f"widths={self.widths}{order})")
