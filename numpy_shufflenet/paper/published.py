"""Numbers published by the ShuffleNet paper (arXiv 1707.01083 v2 = CVPR 2018) and the authors' released models.

They are quoted, not computed: the package computes its own counts and compares them with these
(:mod:`numpy_shufflenet.paper.tables`, notebooks 03 and 07). Errors are ImageNet top-1 error rates in percent;
complexities are millions of multiply-adds ("MFLOPs" in the paper). ``None`` marks a cell the paper leaves
empty ("-").
"""

# Table 1: complexity of ShuffleNet 1x for each number of groups g.
TABLE1_MFLOPS = {1: 143, 2: 140, 3: 137, 4: 133, 8: 137}

# Table 2: top-1 error (%) against g, for three scales; the complexity column is the paper's label (one number
# for each row, whatever g).
TABLE2_ERROR = {
    1.0: {"mflops": 140, 1: 33.6, 2: 32.7, 3: 32.6, 4: 32.8, 8: 32.4},
    0.5: {"mflops": 38, 1: 45.1, 2: 44.4, 3: 43.2, 4: 41.6, 8: 42.3},
    0.25: {"mflops": 13, 1: 57.1, 2: 56.8, 3: 55.0, 4: 54.2, 8: 52.7},
}

# Sec. 4.1.1: "the best" g beats g = 1 by 1.2%, 3.5% and 4.4% at 1x, 0.5x and 0.25x.
SEC411_BEST_GAIN = {1.0: 1.2, 0.5: 3.5, 0.25: 4.4}

# Table 3: top-1 error (%) without and with channel shuffle, keyed by (scale, groups).
TABLE3_SHUFFLE_ERROR = {
    (1.0, 3): (34.5, 32.6), (1.0, 8): (37.6, 32.4),
    (0.5, 3): (45.7, 43.2), (0.5, 8): (48.1, 42.3),
    (0.25, 3): (56.3, 55.0), (0.25, 8): (56.5, 52.7),
}

# Table 4: top-1 error (%) of other unit structures in the macro-architecture of Table 1, by complexity
# (MFLOPs); the ShuffleNet column is 1x g=8, 0.5x g=4 and 0.25x g=8. ResNet: bottleneck ratio 1:4; ResNeXt:
# cardinality 16, ratio 1:2; Xception-like: ShuffleNet with g = 1.
TABLE4_ERROR = {
    140: {"vgg-like": 50.7, "resnet": 37.3, "xception-like": 33.6, "resnext": 33.3, "shufflenet": 32.4},
    38: {"vgg-like": None, "resnet": 48.8, "xception-like": 45.1, "resnext": 46.0, "shufflenet": 41.6},
    13: {"vgg-like": None, "resnet": 63.7, "xception-like": 57.1, "resnext": 65.2, "shufflenet": 52.7},
}
# Sec. 4.2: "under the complexity of 38 MFLOPs, output channels of Stage 4 ... are 50, 192, 192, 288, 576".
TABLE4_STAGE4_WIDTHS_38 = {"vgg-like": 50, "resnet": 192, "resnext": 192, "xception-like": 288, "shufflenet": 576}

# Table 5: MobileNet against ShuffleNet, (MFLOPs, top-1 error %).
TABLE5_MOBILENET = {
    "1.0 MobileNet-224": (569, 29.4), "ShuffleNet 2x (g=3)": (524, 26.3),
    "0.75 MobileNet-224": (325, 31.6), "ShuffleNet 1.5x (g=3)": (292, 28.5),
    "0.5 MobileNet-224": (149, 36.3), "ShuffleNet 1x (g=8)": (140, 32.4),
    "0.25 MobileNet-224": (41, 49.4), "ShuffleNet 0.5x (g=4)": (38, 41.6),
}

# Table 5's two other rows: (MFLOPs, top-1 error %). The SE network is "25~40% slower" on mobile devices (Sec. 4.3);
# the shallow one has half the units of Stages 2-4 (26 layers against 50), widths not given.
TABLE5_MORE = {"ShuffleNet 2x (with SE, g=3)": (527, 24.7), "ShuffleNet 0.5x (shallow, g=3)": (40, 42.8)}
# Sec. 4.3: "our ShuffleNet architecture contains 50 layers while MobileNet only has 28 layers".
DEPTH_LAYERS = {"ShuffleNet": 50, "MobileNet": 28, "ShuffleNet (shallow)": 26}

# Table 6: popular models, (top-1 error %, MFLOPs). Sec. 4.3: "ShuffleNet 0.5x is theoretically 18x faster than
# AlexNet with comparable classification performance".
TABLE6 = {"VGG-16": (28.5, 15300), "ShuffleNet 2x (g=3)": (26.3, 524), "GoogleNet* (BVLC)": (31.3, 1500),
          "ShuffleNet 1x (g=8)": (32.4, 140), "AlexNet": (42.8, 720), "SqueezeNet": (42.5, 833),
          "ShuffleNet 0.5x (g=4)": (41.6, 38)}
TABLE6_THEORETICAL_SPEEDUP = 18

# Table 7: MS COCO object detection, mAP [.5, .95] (%) of Faster R-CNN on minival, input short side 300 and 600.
# Out of our reach: it needs detection training on COCO.
TABLE7_COCO_MAP = {"ShuffleNet 2x (g=3)": (18.7, 25.0), "ShuffleNet 1x (g=3)": (14.5, 19.8),
                   "1.0 MobileNet-224 [reported]": (16.4, 19.8), "1.0 MobileNet-224 (our impl.)": (14.9, 19.3)}

# Table 8: inference time (ms) on one Snapdragon 820 core at 224x224, with the paper's MFLOPs.
TABLE8_TIME_MS = {0.5: (38, 15.2), 1.0: (140, 37.8), 2.0: (524, 108.8)}
TABLE8_NOTE = "every 4x theoretical complexity reduction usually results in ~2.6x actual speedup"
# The whole of Table 8: (top-1 error %, MFLOPs, times in ms at TABLE8_SIZES). The paper's text: "~13x actual
# speedup over AlexNet" (abstract), against the theoretical 18x.
TABLE8_SIZES = ((224, 224), (480, 640), (720, 1280))
TABLE8 = {"ShuffleNet 0.5x (g=3)": (43.2, 38, (15.2, 87.4, 260.1)),
          "ShuffleNet 1x (g=3)": (32.6, 140, (37.8, 222.2, 684.5)),
          "ShuffleNet 2x (g=3)": (26.3, 524, (108.8, 617.0, 1857.6)),
          "AlexNet": (42.8, 720, (184.0, 1156.7, 3633.9)),
          "1.0 MobileNet-224": (29.4, 569, (110.0, 612.0, 1879.2))}
TABLE8_ACTUAL_SPEEDUP = 13

# The authors' released ShuffleNetV1 models (README of megvii-model/ShuffleNet-Series): (MFLOPs, M params,
# top-1 error %), keyed by (groups, scale). The README's "Top-1" and "Top-5" columns hold error rates (25.9 for
# 2.0x g=3 is an error, not an accuracy).
OFFICIAL_MODELS = {
    (3, 0.5): (38, 0.7, 42.7), (3, 1.0): (138, 1.9, 32.2), (3, 1.5): (292, 3.4, 28.4), (3, 2.0): (524, 5.4, 25.9),
    (8, 0.5): (40, 1.0, 41.2), (8, 1.0): (138, 2.4, 32.0), (8, 1.5): (290, 4.3, 29.0), (8, 2.0): (522, 6.5, 27.1),
}
OFFICIAL_TOP5_ERROR = {(3, 0.5): 20.0, (3, 1.0): 12.3, (3, 1.5): 9.8, (3, 2.0): 8.6,
                       (8, 0.5): 19.0, (8, 1.0): 13.6, (8, 1.5): 10.4, (8, 2.0): 9.2}
