"""The networks: ShuffleNet (paper Fig. 2 and Table 1) and the units and networks the paper compares it with.

* :mod:`.shufflenet`: ``ShuffleUnit`` (Fig. 2 b, c), ``ShuffleNet`` (Table 1) and the widths of each stage.
* :mod:`.units`: the bottleneck and depthwise separable builders, the ResNet, ResNeXt and depthwise bottleneck
  units (Sec. 3.2, Fig. 2 a) and the bare blocks.
* :mod:`.zoo`: VGG-16, AlexNet, GoogLeNet, SqueezeNet (Table 6) and MobileNet v1 (Table 5).
* :mod:`.table4`: the macro-architecture of Table 1 with other units, at the complexities of Table 4.
* :mod:`.builders`: what every builder shares (the conv-BN-ReLU block, width scaling, building without weights).
"""

from .builders import build_shapes_only
from .shufflenet import (GROUPS, OFFICIAL_WIDTHS, SCALES, SHUFFLE_ORDERS, STAGE_REPEATS, TABLE1_WIDTHS, ShuffleNet,
                         ShuffleUnit, stage_widths)
from .table4 import TABLE4_STRUCTURES, TABLE4_WIDTHS, macro_network, shufflenet_with_widths, table4_network
from .units import (bottleneck, bottleneck_block, depthwise_bottleneck_unit, depthwise_separable,
                    depthwise_separable_block, resnet_unit, resnext_unit, with_shortcut)
from .zoo import (GOOGLENET_INCEPTIONS, MOBILENET_V1_BLOCKS, SQUEEZENET_FIRES, VGG16_LAYERS, alexnet, fire, googlenet,
                  inception, mobilenet_v1, squeezenet, vgg16)

__all__ = ["ShuffleUnit", "ShuffleNet", "stage_widths", "GROUPS", "SCALES", "SHUFFLE_ORDERS", "STAGE_REPEATS",
           "TABLE1_WIDTHS", "OFFICIAL_WIDTHS",
           "resnet_unit", "resnext_unit", "depthwise_bottleneck_unit", "bottleneck", "depthwise_separable",
           "with_shortcut", "bottleneck_block", "depthwise_separable_block",
           "vgg16", "alexnet", "googlenet", "inception", "squeezenet", "fire", "mobilenet_v1", "VGG16_LAYERS",
           "GOOGLENET_INCEPTIONS", "SQUEEZENET_FIRES", "MOBILENET_V1_BLOCKS",
           "macro_network", "shufflenet_with_widths", "table4_network", "TABLE4_STRUCTURES", "TABLE4_WIDTHS",
           "build_shapes_only"]
