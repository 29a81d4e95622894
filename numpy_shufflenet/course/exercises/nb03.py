"""Notebook 03, building ShuffleNet: the depthwise convolution, batch norm, the stride-2 unit; a written question."""

import functools

import numpy as np

from ... import functional as F
from ..exercise import Exercise, Mistake, Out
from .draw import case, dtype_of_case, label, normal, pick

NOTEBOOK = "03_building_shufflenet"


# -- depthwise_conv_forward -------------------------------------------------------------------------------------------
def _depthwise(x, w, stride=1):
    return F.conv2d_forward(x, w, stride=stride, padding=1, groups=x.shape[1])[0]


def _draw_depthwise(rng, i, backward=False):
    """``(x, w, stride)``, or ``(dout, x, w, stride)`` for the backward pass (notebook 04)."""
    dt = dtype_of_case(i)
    stride = pick(rng, i, (1, 2, 2, 1), (1, 2))
    N, C = int(rng.integers(1, 3)), int(rng.integers(1, 5))
    H, W = pick(rng, i, (4, 5, 7, 1), (2, 3, 4, 5, 6, 7)), int(rng.integers(2, 8))
    args = (normal(rng, (N, C, H, W), dt), normal(rng, (C, 1, 3, 3), dt), stride)
    if backward:
        args = (normal(rng, (N, C, (H - 1) // stride + 1, (W - 1) // stride + 1), dt),) + args
    return case(args, label(dt, N=N, C=C, H=H, W=W, stride=stride))


def _taps(x, w, stride, pad=1, keep_last_only=False, out_hw=None):
    """The nine-tap depthwise convolution, with the variations of the mistakes below."""
    N, C, H, W = x.shape
    H_out, W_out = out_hw or ((H + 2 * pad - 3) // stride + 1, (W + 2 * pad - 3) // stride + 1)
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad + 2), (pad, pad + 2)))
    out = np.zeros((N, C, H_out, W_out), dtype=x.dtype)
    for p in range(3):
        for q in range(3):
            window = x_pad[:, :, p:p + stride * (H_out - 1) + 1:stride, q:q + stride * (W_out - 1) + 1:stride]
            tap = w[:, 0, p, q][None, :, None, None] * window
            out = tap if keep_last_only else out + tap
    return out.astype(x.dtype)


_CROSS = ("A deep-learning 'convolution' is a cross-correlation: tap (p, q) multiplies x_pad[..., i*s + p, j*s + q], "
          "without flipping the kernel.")

DEPTHWISE_CONV_FORWARD = Exercise(
    "depthwise_conv_forward", NOTEBOOK, "the 3x3 depthwise convolution", 3, function="depthwise_conv_forward",
    args=("x", "w", "stride"), draw=_draw_depthwise, n_cases=8, reference=_depthwise, mistakes=(
        Mistake("kernel flipped", _CROSS, lambda x, w, s=1: _depthwise(x, w[:, :, ::-1, ::-1].copy(), s)),
        Mistake("no zero padding", "The output keeps the size (padding 1): pad x with one pixel of zeros on every "
                "side first.", lambda x, w, s=1: _taps(x, w, s, pad=0)),
        Mistake("padding on one side only", "np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))) pads both sides; with "
                "(0, 2) or (2, 0) the windows are shifted by one pixel.",
                lambda x, w, s=1: _taps(x, w, s, pad=0, out_hw=((x.shape[2] - 1) // s + 1, (x.shape[3] - 1) // s + 1))),
        Mistake("stride ignored", "With stride 2 take every second window: x_pad[:, :, p:p + 2*H_out - 1:2, ...].",
                lambda x, w, s=1: _depthwise(x, w, 1)),
        Mistake("`out =` instead of `out +=`", "Each of the nine taps adds its part; with = the last tap "
                "overwrites the other eight.", lambda x, w, s=1: _taps(x, w, s, keep_last_only=True)),
        Mistake("H // stride as the output size", "With padding 1 and a 3x3 kernel, H_out = (H - 1) // stride + 1: "
                "for an odd H and stride 2 that is one more than H // 2.",
                lambda x, w, s=1: _taps(x, w, s, out_hw=(x.shape[2] // s, x.shape[3] // s))),
        Mistake("returned float64 for float32 input", "np.zeros(shape) is float64: give it dtype=x.dtype.",
                lambda x, w, s=1: _depthwise(x.astype(np.float64), w.astype(np.float64), s)),
    ))


# -- batch norm ---------------------------------------------------------------------------------------------------
def _draw_bn(rng, i, eval_mode=False):
    dt = dtype_of_case(i)
    N, C = int(rng.integers(2, 5)), int(rng.integers(1, 5))
    H, W = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    x = normal(rng, (N, C, H, W), dt, scale=5.0, shift=12.0)
    gamma, beta = rng.uniform(0.5, 1.5, C).astype(dt), normal(rng, C, dt)
    if eval_mode:
        rm, rv = normal(rng, C, dt, shift=12.0), rng.uniform(10.0, 30.0, C).astype(dt)
    else:
        rm, rv = normal(rng, C, dt), rng.uniform(0.5, 2.0, C).astype(dt)
    eps = float(pick(rng, i, (1e-5, 1e-3), (1e-5, 1e-3, 0.1)))
    if eval_mode:
        return case((x, gamma, beta, rm, rv, eps), label(dt, N=N, C=C, H=H, W=W, eps=eps))
    momentum = float(pick(rng, i, (0.1,), (0.1, 0.05, 0.3)))
    return case((x, gamma, beta, rm, rv, momentum, eps), label(dt, N=N, C=C, H=H, W=W, momentum=momentum, eps=eps))


def _bn_train(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5):
    return F.batchnorm2d_forward(x, gamma, beta, running_mean=running_mean, running_var=running_var, training=True,
                                 momentum=momentum, eps=eps)[0]


def _bn_eval(x, gamma, beta, running_mean, running_var, eps=1e-5):
    return F.batchnorm2d_forward(x, gamma, beta, running_mean=running_mean, running_var=running_var,
                                 training=False, eps=eps)[0]


def _c(v):
    return v[None, :, None, None]


def _normalise(x, gamma, beta, mean, var, eps, sqrt=True):
    scale = np.sqrt(_c(var) + eps) if sqrt else _c(var) + eps
    return (_c(gamma) * (x - _c(mean)) / scale + _c(beta)).astype(x.dtype)


def _bn_train_variant(x, gamma, beta, rm, rv, momentum=0.1, eps=1e-5, *, out_ddof=0, run_ddof=1, swap=False,
                      in_place=True, use_running=False, eps_outside=False):
    """Batch norm in training mode, with the variations of the mistakes below."""
    M = x.size // x.shape[1]
    mu, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    if use_running:
        out = _normalise(x, gamma, beta, rm, rv, eps)
    elif eps_outside:
        out = (_c(gamma) * (x - _c(mu)) / (np.sqrt(_c(var)) + eps) + _c(beta)).astype(x.dtype)
    else:
        out = _normalise(x, gamma, beta, mu, var * M / (M - out_ddof), eps)
    a, b = (momentum, 1 - momentum) if swap else (1 - momentum, momentum)
    new_rm, new_rv = a * rm + b * mu, a * rv + b * var * M / (M - run_ddof)
    if in_place:
        rm[...], rv[...] = new_rm, new_rv
    return out


def _bn_train_into_x(x, gamma, beta, rm, rv, momentum=0.1, eps=1e-5):
    x[...] = _bn_train(x.copy(), gamma, beta, rm, rv, momentum, eps)
    return x


BATCHNORM_TRAIN_FORWARD = Exercise(
    "batchnorm_train_forward", NOTEBOOK, "batch norm in training mode, with its running statistics", 3,
    function="batchnorm_train_forward", args=("x", "gamma", "beta", "running_mean", "running_var", "momentum", "eps"),
    in_place=("running_mean", "running_var"), draw=_draw_bn, reference=_bn_train, mistakes=(
        Mistake("normalised with the unbiased variance", "In training mode batch norm divides by the *biased* batch "
                "variance (divide by M, np.var's default); only running_var stores the unbiased one.",
                lambda *a: _bn_train_variant(*a, out_ddof=1)),
        Mistake("statistics of the running buffers used in training mode", "Training mode normalises with the "
                "statistics of *this batch*.", lambda *a: _bn_train_variant(*a, use_running=True)),
        Mistake("did not update running_mean in place", "Assigning `running_mean = ...` inside the function makes a "
                "new local array; the caller's buffer stays unchanged. Write into it: running_mean *= ..., "
                "running_mean += ....", lambda *a: _bn_train_variant(*a, in_place=False)),
        Mistake("running_var updated with the biased variance", "PyTorch stores the unbiased variance, "
                "var * M / (M - 1), in running_var.", lambda *a: _bn_train_variant(*a, run_ddof=0)),
        Mistake("momentum the wrong way round", "PyTorch's rule: running = (1 - momentum) * running + momentum * "
                "batch_statistic.", lambda *a: _bn_train_variant(*a, swap=True)),
        Mistake("eps added outside the square root", "x_hat = (x - mean) / sqrt(var + eps).",
                lambda *a: _bn_train_variant(*a, eps_outside=True)),
        Mistake("modified its input x in place", "x -= mean and x /= std change the caller's x, which the backward "
                "pass needs: compute into new arrays.", _bn_train_into_x),
    ))


def _bn_eval_into_x(x, gamma, beta, rm, rv, eps=1e-5):
    x[...] = _bn_eval(x.copy(), gamma, beta, rm, rv, eps)
    return x


def _bn_eval_updating(x, gamma, beta, rm, rv, eps=1e-5):
    out = _bn_eval(x, gamma, beta, rm, rv, eps)
    _bn_train(x, gamma, beta, rm, rv, 0.1, eps)
    return out


BATCHNORM_EVAL_FORWARD = Exercise(
    "batchnorm_eval_forward", NOTEBOOK, "batch norm in eval mode", 2, function="batchnorm_eval_forward",
    args=("x", "gamma", "beta", "running_mean", "running_var", "eps"),
    draw=lambda rng, i: _draw_bn(rng, i, eval_mode=True), reference=_bn_eval, mistakes=(
        Mistake("batch statistics used in eval mode", "In eval mode batch norm normalises with running_mean and "
                "running_var, so that an image's output does not depend on the rest of its batch.",
                lambda x, g, b, rm, rv, eps=1e-5: _bn_train(x, g, b, rm.copy(), rv.copy(), 0.1, eps)),
        Mistake("divided by the variance, not the standard deviation", "x_hat = (x - mean) / sqrt(var + eps).",
                lambda x, g, b, rm, rv, eps=1e-5: _normalise(x, g, b, rm, rv, eps, sqrt=False)),
        Mistake("modified its input x in place", "Eval mode reads x and returns a new array.", _bn_eval_into_x),
        Mistake("modified its input running_mean in place", "Eval mode only reads the running statistics; "
                "updating them belongs to training mode.", _bn_eval_updating),
    ))


# -- the stride-2 unit ----------------------------------------------------------------------------------------------
def _pool(x):
    return F.avg_pool2d_forward(x, kernel_size=3, stride=2, padding=1)[0]


def _stride2(x, branch):
    return np.maximum(np.concatenate([_pool(x), branch], axis=1), 0)


def _draw_stride2(rng, i, backward=False):
    dt = dtype_of_case(i)
    N, C, Cb = int(rng.integers(1, 3)), int(rng.integers(1, 5)), int(rng.integers(1, 6))
    H, W = pick(rng, i, (5, 4, 7), (2, 3, 4, 5, 6, 7)), int(rng.integers(2, 8))
    x = normal(rng, (N, C, H, W), dt)
    branch = normal(rng, (N, Cb, (H - 1) // 2 + 1, (W - 1) // 2 + 1), dt)
    text = label(dt, N=N, C=C, H=H, W=W, C_branch=Cb)
    if not backward:
        return case((x, branch), text)
    out = _stride2(x, branch)
    return case((normal(rng, out.shape, dt), x, out), text)


def _pool_counting_inside(x):
    ones = np.ones((1, 1) + x.shape[2:], dtype=x.dtype)
    return _pool(x) * 9 / (F.avg_pool2d_forward(ones, kernel_size=3, stride=2, padding=1)[0] * 9)


def _stride2_relu_into_branch(x, branch):
    np.maximum(branch, 0, out=branch)
    return np.concatenate([np.maximum(_pool(x), 0), branch], axis=1)


STRIDE2_UNIT_FORWARD = Exercise(
    "stride2_unit_forward", NOTEBOOK, "the stride-2 unit's shortcut and concatenation", 2,
    function="stride2_unit_forward", args=("x", "branch"), draw=_draw_stride2, reference=_stride2, mistakes=(
        Mistake("branch first, shortcut second", "Fig. 2 (c) and the authors' code concatenate [shortcut, branch], "
                "the pooled input first.", lambda x, b: np.maximum(np.concatenate([b, _pool(x)], axis=1), 0)),
        Mistake("the padding left out of the average", "The package (and PyTorch's default, count_include_pad=True) "
                "divides every window by 9, padding zeros included.",
                lambda x, b: np.maximum(np.concatenate([_pool_counting_inside(x).astype(x.dtype), b], axis=1), 0)),
        Mistake("ReLU missing", "The unit ends with a ReLU after the concatenation.",
                lambda x, b: np.concatenate([_pool(x), b], axis=1)),
        Mistake("max pool instead of average pool", "The shortcut of the stride-2 unit is a 3x3 *average* pool.",
                lambda x, b: np.maximum(np.concatenate(
                    [F.max_pool2d_forward(x, kernel_size=3, stride=2, padding=1)[0], b], axis=1), 0)),
        Mistake("modified its input branch in place", "np.maximum(branch, 0, out=branch) overwrites the branch's "
                "output, which its backward pass still needs: np.maximum(..., 0) makes a new array.",
                _stride2_relu_into_branch),
    ))


def _stride2_backward(dout, x, out):
    d = dout * (out > 0)
    C = x.shape[1]
    _, cache = F.avg_pool2d_forward(x, kernel_size=3, stride=2, padding=1)
    return F.avg_pool2d_backward(d[:, :C], cache), d[:, C:]


def _pool_backward_assign(d, x_shape, dtype):
    N, C, H, W = x_shape
    H_out, W_out = d.shape[2:]
    dx_pad = np.zeros((N, C, H + 2, W + 2), dtype=dtype)
    for p in range(3):
        for q in range(3):
            dx_pad[:, :, p:p + 2 * H_out - 1:2, q:q + 2 * W_out - 1:2] = d / 9
    return dx_pad[:, :, 1:-1, 1:-1]


def _stride2_backward_variant(dout, x, out, *, mask=True, split_last=False, assign=False, divide=True):
    d = dout * (out > 0) if mask else dout
    C = x.shape[1]
    d_short, d_branch = (d[:, -C:], d[:, :-C]) if split_last else (d[:, :C], d[:, C:])
    if assign:
        dx = _pool_backward_assign(d_short, x.shape, x.dtype)
    else:
        _, cache = F.avg_pool2d_forward(x, kernel_size=3, stride=2, padding=1)
        dx = F.avg_pool2d_backward(d_short, cache)
    return (dx if divide else 9 * dx), d_branch


STRIDE2_UNIT_BACKWARD = Exercise(
    "stride2_unit_backward", NOTEBOOK, "how the gradient splits at the concatenation", 3,
    function="stride2_unit_backward", args=("dout", "x", "out"),
    returns=(Out("dx_shortcut"), Out("dbranch")), draw=lambda rng, i: _draw_stride2(rng, i, backward=True),
    reference=_stride2_backward, mistakes=(
        Mistake("ReLU mask forgotten", "The unit's last ReLU passes the gradient only where out > 0: start from "
                "dout * (out > 0).", functools.partial(_stride2_backward_variant, mask=False)),
        Mistake("split in the wrong order", "The first C channels of the output are the shortcut, the rest the "
                "branch.", functools.partial(_stride2_backward_variant, split_last=True)),
        Mistake("the pool's gradient not divided by 9", "Each input of a window gets 1/9 of that window's "
                "gradient.", functools.partial(_stride2_backward_variant, divide=False)),
        Mistake("`=` instead of `+=` in the pool's backward",
                "3x3 windows with stride 2 overlap: a pixel in two windows gets the gradient of both, so accumulate "
                "with +=.", functools.partial(_stride2_backward_variant, assign=True)),
        Mistake("the pool's backward missing", "dx_shortcut is the gradient with respect to x, shaped like x: send "
                "the shortcut's part back through the 3x3 average pool.",
                lambda dout, x, out: ((dout * (out > 0))[:, :x.shape[1]], (dout * (out > 0))[:, x.shape[1]:])),
    ))


QUESTION_CONCAT = Exercise("question_concat", NOTEBOOK, "why the stride-2 unit concatenates", 2, kind="written")

EXERCISES = (DEPTHWISE_CONV_FORWARD, BATCHNORM_TRAIN_FORWARD, BATCHNORM_EVAL_FORWARD, STRIDE2_UNIT_FORWARD,
             STRIDE2_UNIT_BACKWARD, QUESTION_CONCAT)
