"""Notebook 09, training on your own layers: one SGD step; a ShuffleUnit on your kernels, compared with the
package's; the training run, which earns its points only when that unit passes; a written question."""

import functools

import numpy as np

from ... import functional as F
from ...gradcheck import randomize_batchnorm
from ...kernels import use_kernels
from ...models import ShuffleUnit
from ...nn import BatchNorm2d, Conv2d, GlobalAvgPool2d, Linear, Parameter, ReLU, Sequential
from ...training.data import make_shapes
from ...training.optim import SGD
from ..exercise import Case, Exercise, Mistake, Out
from ..student_kernels import StudentKernels
from . import nb01, nb02, nb03, nb04
from .draw import case, dtype_of_case, label, normal, pick

NOTEBOOK = "09_train_on_your_own_layers"
MIN_ACCURACY = 0.5       # held-out accuracy the trained tiny ShuffleNet must reach (linear baseline: about 0.17)

__all__ = ["checked_unit", "tiny_shufflenet", "held_out_accuracy", "MIN_ACCURACY"]


# -- sgd_step -----------------------------------------------------------------------------------------------------
def _draw_sgd(rng, i):
    dt = dtype_of_case(i)
    momentum = float(pick(rng, i, (0.9, 0.0, 0.5), (0.0, 0.5, 0.9)))
    weight_decay = float(pick(rng, i, (0.01, 0.0, 0.1), (0.0, 0.01, 0.1)))
    lr = float(np.round(rng.uniform(0.01, 0.5), 3))
    shapes = [(int(rng.integers(1, 5)),), tuple(int(s) for s in rng.integers(1, 4, int(rng.integers(2, 5))))]
    shapes += [tuple(int(s) for s in rng.integers(1, 4, int(rng.integers(1, 5)))) for _ in range(rng.integers(0, 3))]
    params = [normal(rng, s, dt) for s in shapes]
    grads = [normal(rng, s, dt) for s in shapes]
    buffers = [normal(rng, s, dt, scale=0.1) for s in shapes]          # the momentum of earlier steps
    return case((params, grads, buffers, lr, momentum, weight_decay),
                label(dt, lr=lr, momentum=momentum, weight_decay=weight_decay, arrays=len(shapes)))


def _sgd(params, grads, buffers, lr, momentum, weight_decay):
    ps = [Parameter(p) for p in params]
    opt = SGD(ps, lr=lr, momentum=momentum, weight_decay=weight_decay)
    opt.buffers = buffers
    for p, g in zip(ps, grads):
        p.grad = g
    opt.step()


def _sgd_variant(params, grads, buffers, lr, momentum, weight_decay, *, decay_all=False, lr_in_buffer=False,
                 decay_after=False, grads_in_place=False, replace=False, keep_buffer=True, no_momentum=False):
    for i, (p, g, buf) in enumerate(zip(params, grads, buffers)):
        decay = weight_decay and (p.ndim > 1 or decay_all)
        if decay and grads_in_place:
            g += weight_decay * p
        elif decay and not decay_after:
            g = g + weight_decay * p
        if no_momentum:
            step = g
        elif keep_buffer:
            buf *= momentum
            buf += lr * g if lr_in_buffer else g
            step = buf
        else:
            step = momentum * buf + g
        update = step if lr_in_buffer else lr * (step + (weight_decay * p if decay and decay_after else 0))
        if replace:
            params[i] = p - update
        else:
            p -= update.astype(p.dtype)


SGD_STEP = Exercise(
    "sgd_step", NOTEBOOK, "one step of SGD with momentum and weight decay", 3, function="sgd_step",
    args=("params", "grads", "buffers", "lr", "momentum", "weight_decay"), returns=(), draw=_draw_sgd,
    in_place=("params", "buffers"), reference=_sgd, mistakes=(
        Mistake("weight decay on one-axis parameters", "training/optim.py decays only conv and FC weights (arrays "
                "with more than one axis), not batch-norm gamma and beta or biases.",
                functools.partial(_sgd_variant, decay_all=True)),
        Mistake("the learning rate inside the momentum buffer", "training/optim.py (as PyTorch) keeps buf = "
                "momentum * buf + g and steps p -= lr * buf; with lr inside buf, the step changes when the "
                "learning rate does.", functools.partial(_sgd_variant, lr_in_buffer=True)),
        Mistake("weight decay added after momentum", "The decay is part of the gradient: g = g + weight_decay * p "
                "*before* it enters the momentum buffer.", functools.partial(_sgd_variant, decay_after=True)),
        Mistake("modified its input grads in place", "g += weight_decay * p changes the gradient the caller holds "
                "(a network's .grad); write g = g + weight_decay * p.",
                functools.partial(_sgd_variant, grads_in_place=True)),
        Mistake("replaced the arrays of params instead of updating them in place", "params[i] = p - lr * buf puts "
                "a new array in the list; the network still holds the old one. Write p -= lr * buf.",
                functools.partial(_sgd_variant, replace=True)),
        Mistake("did not update buffers in place", "buf = momentum * buf + g makes a new local array; the next step "
                "needs the caller's buffer updated: buf *= momentum; buf += g.",
                functools.partial(_sgd_variant, keep_buffer=False)),
        Mistake("momentum buffer ignored", "Step along the buffer, buf = momentum * buf + g, not along g alone.",
                functools.partial(_sgd_variant, no_momentum=True)),
    ))


# -- a ShuffleUnit on the student's kernels --------------------------------------------------------------------
def checked_unit(in_channels, out_channels, stride, seed):
    """The float64 ``ShuffleUnit(groups=3)`` of a case, the same from the same ``seed`` wherever it is built (random
    batch-norm gamma and beta, so that no gradient is zero by symmetry)."""
    rng = np.random.default_rng(seed)
    unit = ShuffleUnit(in_channels, out_channels, groups=3, stride=stride, rng=rng, dtype=np.float64)
    return randomize_batchnorm(unit, rng)


_REFERENCE_FUNCTIONS = {
    "group_conv1x1_forward": nb01._group_conv1x1, "channel_shuffle_forward": nb02._shuffle,
    "depthwise_conv_forward": nb03._depthwise, "batchnorm_train_forward": nb03._bn_train,
    "batchnorm_eval_forward": nb03._bn_eval, "channel_shuffle_backward": nb04._shuffle_backward,
    "pointwise_group_conv_backward": nb04._conv_backward, "depthwise_conv_backward": nb04._depthwise_backward,
    "batchnorm_backward": nb04._bn_backward, "linear_backward": nb04._linear_backward,
    "softmax_cross_entropy": F.softmax_cross_entropy,
}


def _unit_run(x, dout, in_channels, out_channels, stride, seed, *, functions=None):
    """``(out, dx, {parameter: gradient})`` of :func:`checked_unit` on ``functions`` (the exercises' signatures),
    or on the package's reference kernels."""
    unit = checked_unit(in_channels, out_channels, stride, seed)
    kernels = "reference" if functions is None else StudentKernels(functions)
    with use_kernels(kernels):
        out = unit.forward(x)
        dx = unit.backward(dout)
    return out, dx, {name: p.grad.copy() for name, p in unit.named_parameters()}


def _unit_with(name, wrong):
    return functools.partial(_unit_run, functions=dict(_REFERENCE_FUNCTIONS, **{name: wrong}))


def _draw_unit(rng, i):
    stride = 1 + i % 2
    c_in = 12 * int(rng.integers(2, 4)) if stride == 1 else 12 * int(rng.integers(1, 3))
    c_out = c_in * stride                  # m = c_out / 4 splits into 3 groups of at least 2 channels
    N, H, W = 2, int(rng.integers(4, 8)), int(rng.integers(4, 8))
    x = normal(rng, (N, c_in, H, W))
    dout = normal(rng, (N, c_out, (H - 1) // stride + 1, (W - 1) // stride + 1))
    seed = int(rng.integers(1_000_000))
    return case((x, dout, c_in, c_out, stride, seed), label(in_channels=c_in, out_channels=c_out, stride=stride,
                                                            H=H, W=W, seed=seed))


YOUR_LAYERS = Exercise(
    "your_layers", NOTEBOOK, "a ShuffleUnit on your layers, against the package's", 4,
    function="shuffle_unit_on_your_layers", args=("x", "dout", "in_channels", "out_channels", "stride", "seed"),
    returns=(Out("out"), Out("dx"), Out("parameter gradients", "arrays")), draw=_draw_unit, n_cases=2,
    reference=_unit_run, mistakes=(
        Mistake("your batchnorm_backward: without the variance path", nb04.BATCHNORM_BACKWARD.mistakes[0].explanation,
                _unit_with("batchnorm_backward", nb04.BATCHNORM_BACKWARD.mistakes[0].wrong)),
        Mistake("your channel_shuffle_backward: the shuffle applied forward again", "The backward of the shuffle is "
                "the inverse permutation.", _unit_with("channel_shuffle_backward", nb02._shuffle)),
        Mistake("your depthwise_conv_backward: `=` instead of `+=`",
                nb04.DEPTHWISE_CONV_BACKWARD.mistakes[0].explanation,
                _unit_with("depthwise_conv_backward", nb04.DEPTHWISE_CONV_BACKWARD.mistakes[0].wrong)),
    ))


# -- the training run ---------------------------------------------------------------------------------------------
def tiny_shufflenet(rng, groups=3):
    """ShuffleNet in miniature for 16x16 images, every convolution one of the exercises' kinds: a stem (1x1
    convolution, batch norm, ReLU, 3x3 depthwise with stride 2, batch norm), a stride-2 unit 24 -> 48 (its first
    1x1 convolution dense, as in Stage 2 of the paper), a stride-1 unit, a stride-2 unit 48 -> 96, global average
    pooling and a linear classifier; the stride-1 unit's residual branch starts at zero."""
    net = Sequential({
        "stem": Sequential({"conv": Conv2d(3, 24, 1, rng=rng), "bn": BatchNorm2d(24), "relu": ReLU(),
                            "dw": Conv2d(24, 24, 3, stride=2, padding=1, groups=24, rng=rng),
                            "bn2": BatchNorm2d(24)}),
        "unit1": ShuffleUnit(24, 48, groups=groups, stride=2, grouped_first=False, rng=rng),
        "unit2": ShuffleUnit(48, 48, groups=groups, stride=1, rng=rng),
        "unit3": ShuffleUnit(48, 96, groups=groups, stride=2, rng=rng),
        "pool": GlobalAvgPool2d(),
        "fc": Linear(96, 8, rng=rng, init_std=0.01),
    })
    net.unit2.branch.bn3.weight.data[...] = 0               # the residual branch starts at zero
    return net


def held_out_accuracy(state):
    """The accuracy of :func:`tiny_shufflenet` with the weights ``state`` on the 500 held-out images of notebook
    09, computed here, on the package's kernels."""
    net = tiny_shufflenet(np.random.default_rng(0))
    net.load_state_dict(state)
    images, labels = make_shapes(500, 16, seed=10_000)
    with use_kernels("reference"):
        return float(np.mean(net.eval()(images).argmax(axis=1) == labels))


def _learned(case, history):
    """Whether the trained weights the run returned reach :data:`MIN_ACCURACY` on held-out images, measured here:
    what the run says about itself counts for nothing."""
    try:
        accuracy = held_out_accuracy(history["state"])
    except (TypeError, KeyError, ValueError, IndexError) as err:
        return False, f"expected the run's history with the trained weights under 'state': {err}", ""
    if accuracy >= MIN_ACCURACY:
        return True, "", ""
    return False, f"the trained network's held-out accuracy is {accuracy:.3f}, below {MIN_ACCURACY}", \
        "did not learn enough"


def _untrained(epochs, seed, only_yours):
    return {"losses": [2.08] * 10, "accuracies": [0.99] * epochs,
            "state": tiny_shufflenet(np.random.default_rng(seed)).state_dict()}


TRAIN_ON_YOUR_LAYERS = Exercise(
    "train_on_your_layers", NOTEBOOK, "a tiny ShuffleNet trained on your layers", 3, function="train_on_your_layers",
    args=(), returns=(Out("history", "dict"),), n_cases=1, requires=YOUR_LAYERS, accept=_learned,
    draw=lambda rng, i: Case((), {"epochs": 4, "seed": 0, "only_yours": True}, label(epochs=4, seed=0)),
    mistakes=(
        Mistake("did not learn enough", "Your layers pass their checks one by one; look at the loss curve (does it "
                "fall?) and at sgd_step's learning rate.", _untrained),
    ))


QUESTION_WHY_CONV = Exercise("question_why_conv", NOTEBOOK, "what the convolutions can do that a linear classifier "
                             "cannot", 2, kind="written")

EXERCISES = (SGD_STEP, YOUR_LAYERS, TRAIN_ON_YOUR_LAYERS, QUESTION_WHY_CONV)
