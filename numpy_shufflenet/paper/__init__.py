"""The paper's side: its published numbers, its tables rebuilt from our own counts, and small experiments.

* :mod:`.published`: the numbers the paper and the authors' released models publish (quoted, never computed).
* :mod:`.tables`: the tables that counting can check, rebuilt and set beside the published figures.
* :mod:`.experiments`: the shuffle's information flow, Table 3's ablation in miniature, the vanishing gradient
  of a deep stack without shortcuts (these train, so they import :mod:`numpy_shufflenet.training`: import them
  as ``from numpy_shufflenet.paper import experiments``).

The published numbers are also names of this package: ``paper.TABLE1_MFLOPS``.
"""

from . import published, tables
from .published import (TABLE1_MFLOPS, TABLE2_ERROR, SEC411_BEST_GAIN, TABLE3_SHUFFLE_ERROR, TABLE4_ERROR,
                         TABLE4_STAGE4_WIDTHS_38, TABLE5_MOBILENET, TABLE5_MORE, DEPTH_LAYERS, TABLE6,
                         TABLE6_THEORETICAL_SPEEDUP, TABLE7_COCO_MAP, TABLE8_TIME_MS, TABLE8_NOTE, TABLE8_SIZES,
                         TABLE8, TABLE8_ACTUAL_SPEEDUP, OFFICIAL_MODELS, OFFICIAL_TOP5_ERROR)
