"""Training with the package's own layers: data, the optimizer, the loop, and runs saved on disk.

* :mod:`.data`: the generated shapes data set (eight classes of drawn shapes) and shuffled mini-batches.
* :mod:`.optim`: ``SGD`` with momentum and weight decay, the linear learning-rate schedule.
* :mod:`.loop`: ``fit``, ``evaluate``, ``linear_baseline``.
* :mod:`.runs`: ``save_run`` / ``load_run`` (resume exactly) and ``train_shapes``, the command line's recipe.
"""

from .data import CLASSES, batches, make_shapes
from .loop import evaluate, fit, linear_baseline
from .optim import SGD, linear_lr
from .runs import load_run, save_run, train_shapes

__all__ = ["CLASSES", "make_shapes", "batches", "SGD", "linear_lr", "fit", "evaluate", "linear_baseline", "save_run",
           "load_run", "train_shapes"]
