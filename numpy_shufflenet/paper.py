"""Numbers published by the ShuffleNet paper (arXiv 1707.01083 v2 = CVPR 2018) and the authors' released models.

They are quoted, not computed: the package computes its own counts and compares them with these. Errors are
ImageNet top-1 error rates in percent; complexities are millions of multiply-adds ("MFLOPs" in the paper).
"""

# Table 1: complexity of ShuffleNet 1x for each number of groups g.
TABLE1_MFLOPS = {1: 143, 2: 140, 3: 137, 4: 133, 8: 137}

# Table 2: top-1 error (%) against g, for three scales; the complexity column is the paper's label.
TABLE2_ERROR = {
    1.0: {"mflops": 140, 1: 33.6, 2: 32.7, 3: 32.6, 4: 32.8, 8: 32.4},
    0.5: {"mflops": 38, 1: 45.1, 2: 44.4, 3: 43.2, 4: 41.6, 8: 42.3},
    0.25: {"mflops": 13, 1: 57.1, 2: 56.8, 3: 55.0, 4: 54.2, 8: 52.7},
}

# Table 3: top-1 error (%) without and with channel shuffle, keyed by (scale, groups).
TABLE3_SHUFFLE_ERROR = {
    (1.0, 3): (34.5, 32.6), (1.0, 8): (37.6, 32.4),
    (0.5, 3): (45.7, 43.2), (0.5, 8): (48.1, 42.3),
    (0.25, 3): (56.3, 55.0), (0.25, 8): (56.5, 52.7),
}

# Table 5: MobileNet against ShuffleNet, (MFLOPs, top-1 error %).
TABLE5_MOBILENET = {
    "1.0 MobileNet-224": (569, 29.4), "ShuffleNet 2x (g=3)": (524, 26.3),
    "0.75 MobileNet-224": (325, 31.6), "ShuffleNet 1.5x (g=3)": (292, 28.5),
    "0.5 MobileNet-224": (149, 36.3), "ShuffleNet 1x (g=8)": (140, 32.4),
    "0.25 MobileNet-224": (41, 49.4), "ShuffleNet 0.5x (g=4)": (38, 41.6),
}

# Table 8: inference time (ms) on one Snapdragon 820 core at 224x224, with the paper's MFLOPs.
TABLE8_TIME_MS = {0.5: (38, 15.2), 1.0: (140, 37.8), 2.0: (524, 108.8)}
TABLE8_NOTE = "every 4x theoretical complexity reduction usually results in ~2.6x actual speedup"

# The authors' released ShuffleNetV1 models (README of megvii-model/ShuffleNet-Series): (MFLOPs, M params,
# top-1 error %), keyed by (groups, scale). The README's "Top-1" column holds error rates.
OFFICIAL_MODELS = {
    (3, 0.5): (38, 0.7, None), (3, 1.0): (138, 1.9, 32.2), (3, 1.5): (292, 3.4, 28.4), (3, 2.0): (524, 5.4, 25.9),
    (8, 0.5): (40, 1.0, None), (8, 1.0): (138, 2.4, 32.0), (8, 1.5): (290, 4.3, 29.0), (8, 2.0): (522, 6.5, 27.1),
}
