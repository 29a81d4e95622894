"""Small experiments behind the paper's claims, trained with the package's own layers and optimizer.

1. :func:`information_flow_demo`: a task whose answer needs channels from two *different* input groups (the
   label is whether a sign in group 0 equals a sign in group 2). Two stacked 1x1 group convolutions are read
   out from output group 0 only. Without a shuffle, output group 0 sees input group 0 alone and cannot do
   better than chance; with a shuffle between the convolutions it sees every group and learns the task.
2. :func:`shuffle_ablation`: paper Table 3 in miniature: the same small ShuffleNet with and without shuffles,
   trained on the generated shapes, over several seeds.
3. :func:`unit_stack`: a deep stack of ShuffleNet units **with or without** the identity shortcut, for watching
   gradients vanish (:func:`unit_input_gradient_norms`), as the shortcut's role in the unit (paper Sec. 3.2).
"""

import numpy as np

from .._checks import as_rng, check_int
from ..models import ShuffleUnit
from ..nn import (BatchNorm2d, BatchNormReLU2d, ChannelShuffle, Conv2d, GlobalAvgPool2d, GroupReadout, Linear, ReLU,
                  Residual, Sequential)
from ..training.loop import fit
from ..training.optim import SGD
from . import published

__all__ = ["information_flow_task", "information_flow_model", "information_flow_demo", "shuffle_ablation",
           "format_ablation", "shuffle_branch", "plain_shuffle_unit", "unit_stack", "unit_input_gradient_norms"]


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
    from ..training.data import make_shapes
    from ..models import ShuffleNet

    rows = []
    for g in groups:
        row = {"groups": g, "with": [], "without": [],
               "paper_error": published.TABLE3_SHUFFLE_ERROR.get((scale, g))}
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


# ----------------------------------------------------------------------------------------------------------------
# deep stacks with and without the shortcut
# ----------------------------------------------------------------------------------------------------------------
INITS = {"he": 1.0, "lecun": np.sqrt(0.5)}     # factor applied to Conv2d's He-initialised weights


def shuffle_branch(channels, groups, *, batchnorm=True, init="he", rng=None, dtype=np.float32):
    """The residual branch of a stride-1 ShuffleNet unit (paper Fig. 2 b), as a ``Sequential``.

    It *is* the ``branch`` of a :class:`~numpy_shufflenet.models.ShuffleUnit` ``(channels, channels,
    groups=groups, stride=1)``: conv1 (1x1, ``groups`` groups, c -> c/4), bn1 (batch norm and ReLU), shuffle,
    conv2 (3x3 depthwise), bn2, conv3 (1x1, ``groups`` groups, c/4 -> c), bn3 (no shuffle layer when
    ``groups == 1``), with the same names, order and initial weights for the same ``rng``. Only the two options
    below change it.

    Parameters
    ----------
    channels : int, input and output channels (the bottleneck has ``channels // 4``)
    groups : int, groups of the two 1x1 convolutions
    batchnorm : bool, default True; False leaves the three batch norms out (bn1's ReLU stays, as ``relu1``)
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
        layers = {}
        for name, layer in branch.named_children():
            if isinstance(layer, BatchNormReLU2d):
                layers["relu1"] = ReLU()                     # bn1 without its batch norm: the ReLU alone
            elif not isinstance(layer, BatchNorm2d):
                layers[name] = layer
        branch = Sequential(layers)
    for layer in branch:
        if isinstance(layer, Conv2d):
            layer.weight.data = (layer.weight.data * INITS[init]).astype(dtype)
    return branch


def plain_shuffle_unit(channels, groups, *, batchnorm=True, init="he", rng=None, dtype=np.float32):
    """A stride-1 ShuffleNet unit *without* its identity shortcut: ``ReLU(branch(x))``.

    The same layers as :class:`~numpy_shufflenet.models.ShuffleUnit` (see :func:`shuffle_branch`); only the
    addition of ``x`` is gone. Parameters as in :func:`shuffle_branch`. Returns a :class:`Residual` with
    ``shortcut=False``.
    """
    return Residual(shuffle_branch(channels, groups, batchnorm=batchnorm, init=init, rng=rng, dtype=dtype),
                    shortcut=False)


def unit_stack(depth, channels, groups, *, residual=True, batchnorm=True, init="he", rng=None,
               dtype=np.float32):
    """``depth`` stride-1 ShuffleNet units in a row, with (``residual=True``) or without the identity shortcut.

    With ``residual=True`` and ``batchnorm=True`` each unit computes exactly what
    :class:`~numpy_shufflenet.models.ShuffleUnit` ``(channels, channels, groups=groups, stride=1)`` computes (and
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
