"""Notebook 04, the backward passes: seven functions and a written question."""

import numpy as np

from ... import functional as F
from ..exercise import Exercise, Mistake, Out
from .draw import case, dtype_of_case, label, normal, pick
from .nb01 import _draw_conv1x1
from .nb02 import _draw_shuffle, _shuffle, _shuffle_no_copy
from .nb03 import _draw_depthwise

NOTEBOOK = "04_gradient_check_exercises"


# -- channel_shuffle_backward -----------------------------------------------------------------------------------------
def _shuffle_backward(dout, groups):
    _, cache = F.channel_shuffle_forward(dout, groups)       # the cache holds the groups and the shape only
    return F.channel_shuffle_backward(dout, cache)


def _shuffle_backward_into_dout(dout, groups):
    dout[...] = _shuffle_backward(dout.copy(), groups)
    return dout


CHANNEL_SHUFFLE_BACKWARD = Exercise(
    "channel_shuffle_backward", NOTEBOOK, "the channel shuffle's backward", 2, function="channel_shuffle_backward",
    args=("dout", "groups"), returns=(Out("dx"),), draw=_draw_shuffle, reference=_shuffle_backward,
    mistakes=(
        Mistake("shuffle applied forward again instead of inverse", "The gradient flows back along the same wires "
                "the other way round: dx must undo the forward's reordering (the inverse permutation), not apply "
                "it a second time.", _shuffle),
        Mistake("dout returned unchanged", "The shuffle moved the channels; the gradient has to move back.",
                lambda dout, g: dout.copy()),
        Mistake("returned a view of its input dout", "With groups = 1 or groups = C the reshapes move nothing and "
                "return dout itself: copy after the transpose.",
                lambda dout, g: _shuffle_no_copy(dout, dout.shape[1] // g)),
        Mistake("modified its input dout in place", "Return a new array: the caller may still need dout.",
                _shuffle_backward_into_dout),
    ))


# -- pointwise_group_conv_backward ------------------------------------------------------------------------------------
def _conv_backward(dout, x, w, groups, stride=1, padding=0):
    _, cache = F.conv2d_forward(x, w, stride=stride, padding=padding, groups=groups)
    dx, dw, _ = F.conv2d_backward(dout, cache)
    return dx, dw


def _interleaved(channels, groups):
    return np.arange(channels).reshape(channels // groups, groups).T.reshape(-1)


def _pointwise_interleaved(dout, x, w, groups):
    order = _interleaved(x.shape[1], groups)
    dx, dw = _conv_backward(dout, x[:, order], w, groups)
    return dx[:, np.argsort(order)], dw


POINTWISE_GROUP_CONV_BACKWARD = Exercise(
    "pointwise_group_conv_backward", NOTEBOOK, "the 1x1 group convolution's backward", 3,
    function="pointwise_group_conv_backward", args=("dout", "x", "w", "groups"), returns=(Out("dx"), Out("dw")),
    draw=lambda rng, i: _draw_conv1x1(rng, i, backward=True), reference=_conv_backward, mistakes=(
        Mistake("groups interleaved instead of contiguous", "Group k is the k-th block of C/g consecutive channels: "
                "reshape the channel axes to (groups, C // groups), groups first.", _pointwise_interleaved),
        Mistake("dw averaged over the batch", "The loss sums over the samples; the weight is shared by all of them, "
                "so its gradient is the *sum* over n, not the mean.",
                lambda dout, x, w, g: (_conv_backward(dout, x, w, g)[0],
                                       _conv_backward(dout, x, w, g)[1] / x.shape[0])),
        Mistake("dw of the first sample only", "The weight is used by every sample: sum dOut[n, k] @ X[n, k]^T "
                "over n.", lambda dout, x, w, g: (_conv_backward(dout, x, w, g)[0],
                                                  _conv_backward(dout[:1], x[:1], w, g)[1])),
        Mistake("returned float64 for float32 input", "Keep the dtype: np.einsum of float32 arrays stays float32; "
                "an np.zeros without dtype= does not.",
                lambda dout, x, w, g: tuple(a.astype(np.float64) for a in _conv_backward(dout, x, w, g))),
    ))


# -- depthwise_conv_backward ------------------------------------------------------------------------------------------
def _depthwise_backward(dout, x, w, stride=1):
    return _conv_backward(dout, x, w, x.shape[1], stride=stride, padding=1)


def _depthwise_backward_taps(dout, x, w, stride=1, *, assign=False, crop=(1, -1), flip=False):
    """The nine-tap backward, with the variations of the mistakes below."""
    H_out, W_out = dout.shape[2:]
    x_pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    dx_pad, dw = np.zeros_like(x_pad), np.zeros_like(w)
    for p in range(3):
        for q in range(3):
            rows = slice(p, p + stride * (H_out - 1) + 1, stride)
            cols = slice(q, q + stride * (W_out - 1) + 1, stride)
            dw[:, 0, p, q] = np.sum(dout * x_pad[:, :, rows, cols], axis=(0, 2, 3))
            tap = w[:, 0, 2 - p, 2 - q] if flip else w[:, 0, p, q]
            if assign:
                dx_pad[:, :, rows, cols] = tap[None, :, None, None] * dout
            else:
                dx_pad[:, :, rows, cols] += tap[None, :, None, None] * dout
    a, b = crop
    return dx_pad[:, :, a:b, a:b], dw


DEPTHWISE_CONV_BACKWARD = Exercise(
    "depthwise_conv_backward", NOTEBOOK, "the 3x3 depthwise convolution's backward", 3,
    function="depthwise_conv_backward", args=("dout", "x", "w", "stride"), returns=(Out("dx"), Out("dw")),
    draw=lambda rng, i: _draw_depthwise(rng, i, backward=True), n_cases=8, reference=_depthwise_backward, mistakes=(
        Mistake("`=` instead of `+=`", "An input pixel is read by several taps; its gradient is the *sum* of their "
                "contributions, so accumulate into dx_pad with +=. With =, the last tap overwrites the others.",
                lambda *a: _depthwise_backward_taps(*a, assign=True)),
        Mistake("the padding border not cropped", "dx_pad has the padded size; the padding zeros are not inputs, "
                "so dx is dx_pad without its one-pixel border, shaped like x.",
                lambda *a: _depthwise_backward_taps(*a, crop=(0, None))),
        Mistake("the padding border cropped on one side only", "Cut one pixel on every side: "
                "dx_pad[:, :, 1:-1, 1:-1].", lambda *a: _depthwise_backward_taps(*a, crop=(1, None))),
        Mistake("the border cropped off by one", "dx_pad[:, :, 1:-1, 1:-1] keeps the H x W real inputs; "
                "[2:, 2:] or [:-2, :-2] keeps a window shifted by one pixel.",
                lambda *a: _depthwise_backward_taps(*a, crop=(2, None))),
        Mistake("kernel flipped in dx", "Tap (p, q) read x_pad[.., s*i + p, s*j + q] with weight w[c, 0, p, q]; its "
                "gradient goes back to the same place with the same weight.",
                lambda *a: _depthwise_backward_taps(*a, flip=True)),
    ))


# -- batchnorm_backward -------------------------------------------------------------------------------------------
def _draw_bn_backward(rng, i):
    dt = dtype_of_case(i)
    N, C = int(rng.integers(2, 5)), int(rng.integers(1, 5))
    H, W = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    H = H if N * H * W >= 4 else 2           # with M = 2 numbers per channel dx is 0 by symmetry: rounding only
    x = normal(rng, (N, C, H, W), dt, scale=5.0, shift=12.0)
    gamma, dout = rng.uniform(0.5, 1.5, C).astype(dt), normal(rng, (N, C, H, W), dt)
    eps = float(pick(rng, i, (1e-5,), (1e-5, 1e-3)))
    return case((dout, x, gamma, eps), label(dt, N=N, C=C, H=H, W=W, eps=eps))


def _bn_backward(dout, x, gamma, eps=1e-5):
    _, cache = F.batchnorm2d_forward(x, gamma, np.zeros_like(gamma), training=True, eps=eps)
    return F.batchnorm2d_backward(dout, cache)


def _bn_backward_variant(dout, x, gamma, eps=1e-5, *, paths="all", db_mean=False, dgamma_x=False, ddof=0):
    axes = (0, 2, 3)
    M = x.size // x.shape[1]
    mu = x.mean(axis=axes, keepdims=True)
    s = 1.0 / np.sqrt(x.var(axis=axes, keepdims=True) * M / (M - ddof) + eps)
    xhat = (x - mu) * s
    dxhat = dout * gamma[None, :, None, None]
    if paths == "all":
        dx = s * (dxhat - dxhat.mean(axis=axes, keepdims=True) - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True))
    elif paths == "mean":
        dx = s * (dxhat - dxhat.mean(axis=axes, keepdims=True))
    else:
        dx = s * dxhat
    dbeta = dout.mean(axis=axes) if db_mean else dout.sum(axis=axes)
    dgamma = (dout * (x if dgamma_x else xhat)).sum(axis=axes)
    return tuple(a.astype(x.dtype) for a in (dx, dgamma, dbeta))


BATCHNORM_BACKWARD = Exercise(
    "batchnorm_backward", NOTEBOOK, "batch norm's backward in training mode", 4, function="batchnorm_backward",
    args=("dout", "x", "gamma", "eps"), returns=(Out("dx"), Out("dgamma"), Out("dbeta")), draw=_draw_bn_backward,
    reference=_bn_backward, mistakes=(
        Mistake("batch norm without the variance path", "dgamma and dbeta are right, dx is exactly the formula that "
                "treats the variance as a constant. Moving x_j also moves sigma^2; that path adds the term "
                "- x_hat_i * sum_j(dx_hat_j * x_hat_j) / M.", lambda *a: _bn_backward_variant(*a, paths="mean")),
        Mistake("batch statistics treated as constants", "dx = dout * gamma / std is the eval-mode gradient. In "
                "training mode the mean and the variance depend on x too.",
                lambda *a: _bn_backward_variant(*a, paths="none")),
        Mistake("dbeta as a mean", "beta is added to every one of the M numbers of its channel: dbeta is the *sum* "
                "of dout over the batch and the pixels.", lambda *a: _bn_backward_variant(*a, db_mean=True)),
        Mistake("dgamma computed with x instead of x_hat", "out = gamma * x_hat + beta, so dgamma = sum(dout * "
                "x_hat).", lambda *a: _bn_backward_variant(*a, dgamma_x=True)),
        Mistake("the unbiased variance in the backward", "The forward normalised with the biased variance (divide "
                "by M); the backward must differentiate that same formula.",
                lambda *a: _bn_backward_variant(*a, ddof=1)),
    ))


# -- max_pool_backward --------------------------------------------------------------------------------------------
def _draw_max_pool(rng, i):
    dt = dtype_of_case(i)
    k, s = pick(rng, i, ((3, 2), (2, 2), (3, 1), (2, 1)), ((2, 1), (2, 2), (3, 1), (3, 2)))
    N, C = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    H, W = int(rng.integers(k + 1, 8)), int(rng.integers(k, 8))
    size = N * C * H * W
    x = (rng.permutation(size).reshape(N, C, H, W) / size).astype(dt)   # no ties: one maximum per window
    out = F.max_pool2d_forward(x, kernel_size=k, stride=s)[0]
    return case((normal(rng, out.shape, dt), x, k, s), label(dt, N=N, C=C, H=H, W=W, kernel_size=k, stride=s))


def _max_pool_backward(dout, x, kernel_size, stride):
    _, cache = F.max_pool2d_forward(x, kernel_size=kernel_size, stride=stride)
    return F.max_pool2d_backward(dout, cache)


def _max_pool_loop(dout, x, k, s, *, assign=False, spread=False, out_hw=None):
    H_out, W_out = out_hw or dout.shape[2:]
    dx = np.zeros_like(x)
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, i * s:i * s + k, j * s:j * s + k]
            mask = np.ones_like(window, bool) if spread else window == window.max(axis=(2, 3), keepdims=True)
            d = dout[:, :, i:i + 1, j:j + 1]
            region = dx[:, :, i * s:i * s + k, j * s:j * s + k]
            if assign:
                region[mask] = np.broadcast_to(d, mask.shape)[mask]
            else:
                region += mask * d
    return dx


MAX_POOL_BACKWARD = Exercise(
    "max_pool_backward", NOTEBOOK, "max pooling's backward", 3, function="max_pool_backward",
    args=("dout", "x", "kernel_size", "stride"), returns=(Out("dx"),), draw=_draw_max_pool, n_cases=8,
    reference=_max_pool_backward, mistakes=(
        Mistake("`=` instead of `+=`", "Overlapping windows (stride < kernel size) can share their maximum; that "
                "input gets the gradient of every window it wins, so accumulate with +=.",
                lambda *a: _max_pool_loop(*a, assign=True)),
        Mistake("gradient spread over the whole window", "Only the maximum of a window influences the output; the "
                "other inputs get no gradient.", lambda *a: _max_pool_loop(*a, spread=True)),
        Mistake("H // stride as the output size", "Without padding H_out = (H - kernel_size) // stride + 1 (the "
                "shape of dout): H // stride counts windows that do not fit.",
                lambda dout, x, k, s: _max_pool_loop(dout, x, k, s, out_hw=(x.shape[2] // s, x.shape[3] // s))),
        Mistake("returned float64 for float32 input", "np.zeros(x.shape) is float64: use np.zeros_like(x).",
                lambda *a: _max_pool_backward(*a).astype(np.float64)),
    ))


# -- linear_backward ----------------------------------------------------------------------------------------------
def _draw_linear(rng, i):
    dt = dtype_of_case(i)
    N, F_in, F_out = int(rng.integers(2, 7)), int(rng.integers(1, 9)), int(rng.integers(1, 9))
    if F_in == F_out:
        F_out += 1                                           # dw and dw.T must have different shapes
    x, w, dout = normal(rng, (N, F_in), dt), normal(rng, (F_out, F_in), dt), normal(rng, (N, F_out), dt)
    return case((dout, x, w), label(dt, N=N, F_in=F_in, F_out=F_out))


def _linear_backward(dout, x, w):
    _, cache = F.linear_forward(x, w, np.zeros(w.shape[0], w.dtype))
    return F.linear_backward(dout, cache)


LINEAR_BACKWARD = Exercise(
    "linear_backward", NOTEBOOK, "the classifier's backward", 2, function="linear_backward", args=("dout", "x", "w"),
    returns=(Out("dx"), Out("dw"), Out("db")), draw=_draw_linear, reference=_linear_backward, mistakes=(
        Mistake("dw transposed", "dw has the shape of w, (F_out, F_in): dw = dout.T @ x.",
                lambda dout, x, w: (dout @ w, x.T @ dout, dout.sum(axis=0))),
        Mistake("db not summed over the batch", "The bias is shared by every row: db sums dout over the batch.",
                lambda dout, x, w: (dout @ w, dout.T @ x, dout.copy())),
        Mistake("db as a mean", "The loss adds the rows' contributions: db = dout.sum(axis=0), not the mean.",
                lambda dout, x, w: (dout @ w, dout.T @ x, dout.mean(axis=0))),
        Mistake("dw averaged over the batch", "dw = dout.T @ x already sums over the batch; dividing by N makes it "
                "the gradient of another loss.", lambda dout, x, w: (dout @ w, dout.T @ x / x.shape[0],
                                                                      dout.sum(axis=0))),
    ))


# -- softmax_cross_entropy ----------------------------------------------------------------------------------------
def _draw_softmax(rng, i):
    dt = dtype_of_case(i)
    N, K = int(rng.integers(2, 7)), int(rng.integers(2, 9))
    scale = float(pick(rng, i, (1.0, 3.0, 1000.0, 1000.0), (1.0, 3.0, 1000.0)))
    logits, labels = normal(rng, (N, K), dt, scale=scale), rng.integers(0, K, N)
    return case((logits, labels), label(dt, N=N, K=K, scale=scale))


def _softmax_variant(logits, labels, *, stable=True, eps=0.0, total=False, per_sample=False, sign=1):
    N = logits.shape[0]
    z = logits - logits.max(axis=1, keepdims=True) if stable else logits
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    picked = p[np.arange(N), labels]
    loss = -np.log(picked + eps).sum() if eps else -np.log(picked).sum()
    d = p.copy()
    d[np.arange(N), labels] -= 1
    if not total:
        loss = loss / N
    if not (total or per_sample):
        d = d / N
    return loss, (sign * d).astype(logits.dtype)


def _softmax_shift_in_place(logits, labels):
    logits -= logits.max(axis=1, keepdims=True)
    return F.softmax_cross_entropy(logits, labels)


SOFTMAX_CROSS_ENTROPY = Exercise(
    "softmax_cross_entropy", NOTEBOOK, "the softmax cross-entropy loss and its gradient", 2,
    function="softmax_cross_entropy", args=("logits", "labels"), returns=(Out("loss", "number"), Out("dlogits")),
    draw=_draw_softmax, reference=F.softmax_cross_entropy, mistakes=(
        Mistake("softmax overflowed", "exp(1000) is inf. Softmax does not change when a constant is subtracted from "
                "a row: subtract each row's maximum before np.exp.", lambda *a: _softmax_variant(*a, stable=False)),
        Mistake("log(p + 1e-12) instead of the log-softmax", "When the right class's probability underflows to 0 "
                "the loss is clipped at -log(1e-12) = 27.6 instead of its true size; compute log p as "
                "z - max - log(sum(exp(z - max))).", lambda *a: _softmax_variant(*a, eps=1e-12)),
        Mistake("sum instead of mean over the batch", "The loss is the mean over the N samples, so dlogits is "
                "divided by N as well.", lambda *a: _softmax_variant(*a, total=True)),
        Mistake("dlogits not divided by N", "The loss is a mean: dlogits = (p - onehot) / N.",
                lambda *a: _softmax_variant(*a, per_sample=True)),
        Mistake("sign flipped", "dlogits = softmax - onehot (the probability of the right class should go up when "
                "we step against the gradient).", lambda *a: _softmax_variant(*a, sign=-1)),
        Mistake("modified its input logits in place", "logits -= max changes the caller's logits; "
                "shifted = logits - max makes a new array.", _softmax_shift_in_place),
    ))


QUESTION_ACCUMULATE = Exercise("question_accumulate", NOTEBOOK, "why some backward passes need +=", 2,
                               kind="written")

EXERCISES = (CHANNEL_SHUFFLE_BACKWARD, POINTWISE_GROUP_CONV_BACKWARD, DEPTHWISE_CONV_BACKWARD, BATCHNORM_BACKWARD,
             MAX_POOL_BACKWARD, LINEAR_BACKWARD, SOFTMAX_CROSS_ENTROPY, QUESTION_ACCUMULATE)
