"""Paper Table 4: the macro-architecture of Table 1 with other units, at 140, 38 and 13 MFLOPs.

* :func:`macro_network`: stem, max pool, Stages 2-4, global pool, FC, with any unit.
* :func:`shufflenet_with_widths`: that with ShuffleNet units and any widths (the 0.25x stem, the shallow network
  of Table 5).
* :func:`table4_network`: VGG-like, ResNet, Xception-like, ResNeXt or ShuffleNet units at one column's complexity.
"""

import numpy as np

from .._checks import as_rng, check_int
from ..nn import GlobalAvgPool2d, Linear, MaxPool2d, Sequential
from .builders import conv_bn_relu, round_up
from .shufflenet import ShuffleUnit
from .units import bottleneck, with_shortcut

def _table4_unit(structure, c_in, c_out, stride, first, groups, rng, dtype):
    """One unit of the Table 4 networks; ``first`` marks the first unit of Stage 2 (dense first 1x1 layer)."""
    if structure == "vgg-like":                         # two 3x3 convolutions, BN after each, no shortcut
        return Sequential({"conv1": conv_bn_relu(c_in, c_out, 3, rng, dtype, stride=stride),
                           "conv2": conv_bn_relu(c_out, c_out, 3, rng, dtype)})
    if structure in ("xception-like", "shufflenet"):    # paper Fig. 2 (b, c); "xception-like" is g = 1
        return ShuffleUnit(c_in, c_out, groups=groups, stride=stride, grouped_first=not first, rng=rng, dtype=dtype)
    if structure == "resnet":                           # bottleneck ratio 1:4, dense 3x3
        mid, conv_groups = c_out // 4, 1
    else:                                               # "resnext": bottleneck ratio 1:2, cardinality 16
        mid, conv_groups = round_up(c_out // 2, RESNEXT_CARDINALITY), RESNEXT_CARDINALITY
    return with_shortcut(lambda out: bottleneck(c_in, out, mid, stride=stride, groups=conv_groups, rng=rng,
                                                dtype=dtype), c_in, c_out, stride)



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
    bias), the layout of :class:`~numpy_shufflenet.models.ShuffleNet`.

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
    layers = {"stem": conv_bn_relu(3, stem, 3, rng, dtype, stride=2), "maxpool": MaxPool2d(3, stride=2, padding=1)}
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
    :class:`~numpy_shufflenet.models.ShuffleUnit` units (``groups`` groups, dense first 1x1 in Stage 2).

    With the widths of :func:`~numpy_shufflenet.models.stage_widths` and the default repeats it has the layers,
    and counts, of :class:`~numpy_shufflenet.models.ShuffleNet`. It is for the widths the paper does not publish:
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


