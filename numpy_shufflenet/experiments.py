"""Two small experiments on why the channel shuffle exists, trained with the package's own layers and optimizer.

1. :func:`information_flow_demo`: a task whose answer needs channels from two *different* input groups (the
   label is whether a sign in group 0 equals a sign in group 2). Two stacked 1x1 group convolutions are read
   out from output group 0 only. Without a shuffle, output group 0 sees input group 0 alone and cannot do
   better than chance; with a shuffle between the convolutions it sees every group and learns the task.
2. :func:`shuffle_ablation`: paper Table 3 in miniature: the same small ShuffleNet with and without shuffles,
   trained on the generated shapes, over several seeds.
"""

import numpy as np

from . import paper
from ._checks import as_rng
from .nn import BatchNorm2d, ChannelShuffle, Conv2d, GlobalAvgPool2d, GroupReadout, Linear, ReLU, Sequential
from .optim import SGD
from .train import fit

__all__ = ["GroupReadout", "information_flow_task", "information_flow_model", "information_flow_demo",
           "shuffle_ablation", "format_ablation"]     # GroupReadout lives in nn.readout; importable here too


def information_flow_task(n, groups=3, channels_per_group=4, *, seed=0, dtype=np.float32):
    """Inputs ``(n, groups * channels_per_group, 1, 1)`` of Gaussian noise, except channel 0 (group 0) and the
    first channel of the last group, which hold random signs ``a`` and ``b``; the label is ``int(a == b)``.

    Neither sign alone says anything about the label (chance is 50%): a model must combine channels of group 0
    and of the last group.
    """
    rng = np.random.default_rng(seed)
    channels = groups * channels_per_group
    x = rng.standard_normal((n, channels, 1, 1))
    a, b = rng.choice([-1.0, 1.0], n), rng.choice([-1.0, 1.0], n)
    x[:, 0, 0, 0] = a
    x[:, (groups - 1) * channels_per_group, 0, 0] = b
    return x.astype(dtype), (a == b).astype(np.int64)


def information_flow_model(groups=3, in_channels=12, hidden=48, *, shuffle, rng=None, dtype=np.float32):
    """Two 1x1 group convolutions (with or without a shuffle between them) read out from output group 0."""
    rng = as_rng(rng, seed=0)
    layers = [Conv2d(in_channels, hidden, 1, groups=groups, rng=rng, dtype=dtype), BatchNorm2d(hidden, dtype=dtype),
              ReLU()]
    if shuffle:
        layers.append(ChannelShuffle(groups))
    layers += [Conv2d(hidden, hidden, 1, groups=groups, rng=rng, dtype=dtype), BatchNorm2d(hidden, dtype=dtype),
               ReLU(), GroupReadout(0, groups), GlobalAvgPool2d(),
               Linear(hidden // groups, 2, rng=rng, dtype=dtype)]
    return Sequential(*layers)


def information_flow_demo(seeds=(0, 1, 2), *, groups=3, n_train=4000, n_val=2000, epochs=6, lr=0.1):
    """Train :func:`information_flow_model` with and without shuffle on :func:`information_flow_task`.

    Returns
    -------
    dict ``{"shuffle": [held-out accuracy per seed], "no shuffle": [...]}``
    """
    results = {"shuffle": [], "no shuffle": []}
    for seed in seeds:
        train = information_flow_task(n_train, groups, seed=seed)
        val = information_flow_task(n_val, groups, seed=seed + 1000)
        for label, shuffle in (("shuffle", True), ("no shuffle", False)):
            model = information_flow_model(groups, in_channels=train[0].shape[1], shuffle=shuffle,
                                           rng=np.random.default_rng(seed))
            optimizer = SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=0.0)
            history = fit(model, optimizer, train, val, epochs=epochs, batch_size=64, lr=lr, seed=seed,
                          progress=False)
            results[label].append(history["epochs"][-1]["val_acc"])
    return results


def shuffle_ablation(groups=(3, 8), seeds=(0, 1, 2), *, scale=0.25, epochs=3, train_size=6000, val_size=2000,
                     image_size=32, batch_size=64, lr=0.1, progress=False):
    """Paper Table 3 in miniature: held-out accuracy with and without channel shuffle on the shapes data.

    Returns
    -------
    list of dicts, one per ``g``: ``groups``, the accuracies per seed ``with`` and ``without`` shuffle, and the
    paper's ImageNet top-1 errors (no shuffle, shuffle) for ShuffleNet ``scale``x at that ``g`` when published.
    """
    from .data import make_shapes
    from .model import ShuffleNet

    rows = []
    for g in groups:
        row = {"groups": g, "with": [], "without": [],
               "paper_error": paper.TABLE3_SHUFFLE_ERROR.get((scale, g))}
        for seed in seeds:
            train = make_shapes(train_size, image_size, seed=seed)
            val = make_shapes(val_size, image_size, seed=seed + 10_000)
            for key, shuffle in (("with", True), ("without", False)):
                model = ShuffleNet(groups=g, scale=scale, num_classes=8, shuffle=shuffle,
                                   rng=np.random.default_rng(seed), zero_init_residual=True)
                optimizer = SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=4e-5)
                history = fit(model, optimizer, train, val, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                              progress=progress)
                row[key].append(history["epochs"][-1]["val_acc"])
        rows.append(row)
    return rows


def format_ablation(rows, scale=0.25):
    """The ablation as a table: mean +- std of held-out accuracy beside the paper's ImageNet numbers."""
    lines = [f"ShuffleNet {scale}x on generated shapes: held-out accuracy, mean +- std over seeds",
             f"{'g':>3s}  {'with shuffle':>16s}  {'without':>16s}   paper ImageNet top-1 error (without -> with)"]
    for r in rows:
        w, wo = np.array(r["with"]), np.array(r["without"])
        ref = r["paper_error"]
        ref_text = f"{ref[0]:.1f}% -> {ref[1]:.1f}%" if ref else "not published"
        lines.append(f"{r['groups']:>3d}  {w.mean():>8.3f} +- {w.std():.3f}  {wo.mean():>8.3f} +- {wo.std():.3f}"
                     f"   {ref_text}")
    return "\n".join(lines)
