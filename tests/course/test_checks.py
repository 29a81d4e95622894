"""The course's checks (:mod:`numpy_shufflenet.course`): a right answer passes, an unfinished one reports "not done
yet" (and raises in grading mode), and each typical mistake, typed as a wrong function, gets its named diagnosis.

The right answers below are the solutions of the notebooks' exercises; each wrong answer is one typical mistake.
"""

import numpy as np
import pytest

from numpy_shufflenet import course


# -- right answers -----------------------------------------------------------------------------------------------
def group_conv1x1_forward(x, w, groups):
    N, C_in, H, W = x.shape
    C_out = w.shape[0]
    xg = x.reshape(N, groups, C_in // groups, H * W)              # X[n, k]: (C_in/g, HW)
    wg = w.reshape(groups, C_out // groups, C_in // groups)        # W[k]:    (C_out/g, C_in/g)
    out = np.einsum("koc,nkcl->nkol", wg, xg)                      # Out[n, k] = W[k] @ X[n, k]
    return out.reshape(N, C_out, H, W)


def conv_params(c_in, c_out, kernel_size, groups=1):
    return c_out * (c_in // groups) * kernel_size * kernel_size


def blog_numbers():
    dense = conv_params(256, 256, 3)
    grouped = conv_params(256, 256, 3, groups=8)
    bottleneck = conv_params(256, 64, 1) + conv_params(64, 64, 3) + conv_params(64, 256, 1)
    return dense, grouped, bottleneck


def unit_cost(c, m, g, h, w):
    conv_weights = c * m // g + 9 * m + m * c // g
    bn = 2 * (m + m + c)
    mult_adds = h * w * (2 * c * m // g + 9 * m)
    return conv_weights + bn, mult_adds


def channel_shuffle_forward(x, groups):
    N, C, H, W = x.shape
    return x.reshape(N, groups, C // groups, H, W).transpose(0, 2, 1, 3, 4).reshape(N, C, H, W)


def shuffled_order():
    return [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]


def stacked_connectivity(C, g, shuffle):
    n = C // g
    group = np.arange(C) // n
    G = group[:, None] == group[None, :]                      # one group conv: block-diagonal
    if not shuffle:
        return (G.astype(int) @ G.astype(int)) > 0
    perm = np.arange(C).reshape(g, n).T.reshape(-1)
    P = np.zeros((C, C), dtype=bool)
    P[np.arange(C), perm] = True                              # out[k] = x[perm[k]]
    return (G.astype(int) @ P.astype(int) @ G.astype(int)) > 0


def groups_after_one_shuffle(C, g):
    return min(C // g, g)


def depthwise_conv_forward(x, w, stride=1):
    N, C, H, W = x.shape
    H_out, W_out = (H - 1) // stride + 1, (W - 1) // stride + 1
    x_pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((N, C, H_out, W_out), dtype=x.dtype)
    for p in range(3):
        for q in range(3):
            window = x_pad[:, :, p:p + stride * (H_out - 1) + 1:stride, q:q + stride * (W_out - 1) + 1:stride]
            out += w[:, 0, p, q][None, :, None, None] * window
    return out


def batchnorm_train_forward(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5):
    M = x.shape[0] * x.shape[2] * x.shape[3]
    mu = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3))                                # biased: divides by M
    xhat = (x - mu[None, :, None, None]) / np.sqrt(var[None, :, None, None] + eps)
    running_mean *= 1 - momentum
    running_mean += momentum * mu
    running_var *= 1 - momentum
    running_var += momentum * var * M / (M - 1)                # unbiased, as PyTorch
    return gamma[None, :, None, None] * xhat + beta[None, :, None, None]


def batchnorm_eval_forward(x, gamma, beta, running_mean, running_var, eps=1e-5):
    xhat = (x - running_mean[None, :, None, None]) / np.sqrt(running_var[None, :, None, None] + eps)
    return gamma[None, :, None, None] * xhat + beta[None, :, None, None]


def stride2_unit_forward(x, branch):
    N, C, H, W = x.shape
    H_out, W_out = (H - 1) // 2 + 1, (W - 1) // 2 + 1
    x_pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    pooled = np.zeros((N, C, H_out, W_out), dtype=x.dtype)
    for p in range(3):
        for q in range(3):
            pooled += x_pad[:, :, p:p + 2 * H_out - 1:2, q:q + 2 * W_out - 1:2]
    pooled /= 9                                                # padding zeros count (count_include_pad)
    return np.maximum(np.concatenate([pooled, branch], axis=1), 0)


def stride2_unit_backward(dout, x, out):
    N, C, H, W = x.shape
    d = dout * (out > 0)                                       # through the final ReLU
    d_pooled, dbranch = d[:, :C], d[:, C:]                     # the concatenation splits it
    H_out, W_out = d_pooled.shape[2:]
    dx_pad = np.zeros((N, C, H + 2, W + 2), dtype=dout.dtype)
    for p in range(3):
        for q in range(3):
            dx_pad[:, :, p:p + 2 * H_out - 1:2, q:q + 2 * W_out - 1:2] += d_pooled / 9
    return dx_pad[:, :, 1:-1, 1:-1], dbranch


def channel_shuffle_backward(dout, groups):
    N, C, H, W = dout.shape
    return dout.reshape(N, C // groups, groups, H, W).transpose(0, 2, 1, 3, 4).reshape(N, C, H, W)


def pointwise_group_conv_backward(dout, x, w, groups):
    N, C_in, H, W = x.shape
    C_out = w.shape[0]
    xg = x.reshape(N, groups, C_in // groups, H * W)
    wg = w.reshape(groups, C_out // groups, C_in // groups)
    dout_g = dout.reshape(N, groups, C_out // groups, H * W)
    dx = np.einsum("koc,nkol->nkcl", wg, dout_g).reshape(x.shape)        # W[k]^T @ dOut[n, k]
    dw = np.einsum("nkol,nkcl->koc", dout_g, xg).reshape(w.shape)        # sum_n dOut[n, k] @ X[n, k]^T
    return dx, dw


def depthwise_conv_backward(dout, x, w, stride=1):
    N, C, H, W = x.shape
    H_out, W_out = dout.shape[2:]
    x_pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    for p in range(3):
        for q in range(3):
            rows = slice(p, p + stride * (H_out - 1) + 1, stride)
            cols = slice(q, q + stride * (W_out - 1) + 1, stride)
            dw[:, 0, p, q] = np.sum(dout * x_pad[:, :, rows, cols], axis=(0, 2, 3))
            dx_pad[:, :, rows, cols] += w[:, 0, p, q][None, :, None, None] * dout
    return dx_pad[:, :, 1:-1, 1:-1], dw


def batchnorm_backward(dout, x, gamma, eps=1e-5):
    M = x.shape[0] * x.shape[2] * x.shape[3]
    mu = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)
    s = 1.0 / np.sqrt(var + eps)
    xhat = (x - mu) * s
    dbeta = dout.sum(axis=(0, 2, 3))
    dgamma = (dout * xhat).sum(axis=(0, 2, 3))
    dxhat = dout * gamma[None, :, None, None]
    dx = s / M * (M * dxhat - dxhat.sum(axis=(0, 2, 3), keepdims=True)
                  - xhat * (dxhat * xhat).sum(axis=(0, 2, 3), keepdims=True))
    return dx, dgamma, dbeta


def max_pool_backward(dout, x, kernel_size, stride):
    N, C, H, W = x.shape
    k, s = kernel_size, stride
    H_out, W_out = dout.shape[2:]
    dx = np.zeros_like(x)
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, i * s:i * s + k, j * s:j * s + k]
            is_max = window == window.max(axis=(2, 3), keepdims=True)
            dx[:, :, i * s:i * s + k, j * s:j * s + k] += is_max * dout[:, :, i:i + 1, j:j + 1]
    return dx


def linear_backward(dout, x, w):
    return dout @ w, dout.T @ x, dout.sum(axis=0)


def softmax_cross_entropy(logits, labels):
    N = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(N), labels].mean()
    dlogits = np.exp(log_p)
    dlogits[np.arange(N), labels] -= 1
    return loss, dlogits / N


def sgd_step(params, grads, buffers, lr, momentum, weight_decay):
    for p, g, buf in zip(params, grads, buffers):
        if weight_decay and p.ndim > 1:                        # conv and FC weights only
            g = g + weight_decay * p
        buf *= momentum
        buf += g
        p -= lr * buf


RIGHT = {name: globals()[name] for name in [
    "group_conv1x1_forward", "conv_params", "blog_numbers", "unit_cost", "channel_shuffle_forward", "shuffled_order",
    "stacked_connectivity", "groups_after_one_shuffle", "depthwise_conv_forward", "batchnorm_train_forward",
    "batchnorm_eval_forward", "stride2_unit_forward", "stride2_unit_backward", "channel_shuffle_backward",
    "pointwise_group_conv_backward", "depthwise_conv_backward", "batchnorm_backward", "max_pool_backward",
    "linear_backward", "softmax_cross_entropy", "sgd_step"]}


# -- wrong answers: one typical mistake each ---------------------------------------------------------------------
def shuffle_backward_forward_again(dout, groups):
    return channel_shuffle_forward(dout, groups)


def shuffle_backward_hard_coded(dout, groups):
    return channel_shuffle_forward(dout, 2)                 # right for C = 6, g = 3 only


def shuffle_forward_interleaved(x, groups):
    N, C, H, W = x.shape
    return x.reshape(N, C // groups, groups, H, W).transpose(0, 2, 1, 3, 4).reshape(N, C, H, W)


def conv1x1_interleaved(x, w, groups):
    N, C_in, H, W = x.shape
    C_out = w.shape[0]
    xg = x.reshape(N, C_in // groups, groups, H * W).transpose(0, 2, 1, 3)     # group k = channels k, k+g, ...
    wg = w.reshape(groups, C_out // groups, C_in // groups)
    return np.einsum("koc,nkcl->nkol", wg, xg).reshape(N, C_out, H, W)


def conv1x1_returns_cache(x, w, groups):
    return group_conv1x1_forward(x, w, groups), None


def pointwise_backward_dx_only(dout, x, w, groups):
    return pointwise_group_conv_backward(dout, x, w, groups)[0]


def batchnorm_backward_no_variance(dout, x, gamma, eps=1e-5):
    _, dgamma, dbeta = batchnorm_backward(dout, x, gamma, eps)
    s = 1.0 / np.sqrt(x.var(axis=(0, 2, 3), keepdims=True) + eps)
    dxhat = dout * gamma[None, :, None, None]
    return s * (dxhat - dxhat.mean(axis=(0, 2, 3), keepdims=True)), dgamma, dbeta


def depthwise_backward_assign(dout, x, w, stride=1):
    N, C, H, W = x.shape
    H_out, W_out = dout.shape[2:]
    x_pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    dx_pad, dw = np.zeros_like(x_pad), np.zeros_like(w)
    for p in range(3):
        for q in range(3):
            rows = slice(p, p + stride * (H_out - 1) + 1, stride)
            cols = slice(q, q + stride * (W_out - 1) + 1, stride)
            dw[:, 0, p, q] = np.sum(dout * x_pad[:, :, rows, cols], axis=(0, 2, 3))
            dx_pad[:, :, rows, cols] = w[:, 0, p, q][None, :, None, None] * dout          # = instead of +=
    return dx_pad[:, :, 1:-1, 1:-1], dw


def depthwise_backward_not_cropped(dout, x, w, stride=1):
    dx, dw = depthwise_conv_backward(dout, x, w, stride)
    return np.pad(dx, ((0, 0), (0, 0), (1, 1), (1, 1))), dw


def stacked_connectivity_interleaved(C, g, shuffle):
    G = (np.arange(C)[:, None] % g) == (np.arange(C)[None, :] % g)
    return G if not shuffle else stacked_connectivity(C, g, shuffle)


def batchnorm_train_unbiased(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5):
    batchnorm_train_forward(x, gamma, beta, running_mean, running_var, momentum, eps)
    mu, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3), ddof=1)
    xhat = (x - mu[None, :, None, None]) / np.sqrt(var[None, :, None, None] + eps)
    return gamma[None, :, None, None] * xhat + beta[None, :, None, None]


def batchnorm_train_not_in_place(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5):
    return batchnorm_train_forward(x, gamma, beta, running_mean.copy(), running_var.copy(), momentum, eps)


def batchnorm_eval_batch_stats(x, gamma, beta, running_mean, running_var, eps=1e-5):
    return batchnorm_train_forward(x, gamma, beta, running_mean.copy(), running_var.copy(), 0.1, eps)


def stride2_branch_first(x, branch):
    out = stride2_unit_forward(x, np.zeros_like(branch))
    pooled = out[:, :x.shape[1]]
    return np.maximum(np.concatenate([branch, pooled], axis=1), 0)


def max_pool_backward_assign(dout, x, kernel_size, stride):
    k, s = kernel_size, stride
    dx = np.zeros_like(x)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            window = x[:, :, i * s:i * s + k, j * s:j * s + k]
            is_max = window == window.max(axis=(2, 3), keepdims=True)
            region = dx[:, :, i * s:i * s + k, j * s:j * s + k]
            region[is_max] = np.broadcast_to(dout[:, :, i:i + 1, j:j + 1], is_max.shape)[is_max]
    return dx


def softmax_no_max(logits, labels):
    N = logits.shape[0]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        loss = -np.log(p[np.arange(N), labels]).mean()
    p[np.arange(N), labels] -= 1
    return loss, p / N


def sgd_decay_everything(params, grads, buffers, lr, momentum, weight_decay):
    for p, g, buf in zip(params, grads, buffers):
        g = g + weight_decay * p
        buf *= momentum
        buf += g
        p -= lr * buf


def unit_cost_without_bn(c, m, g, h, w):
    return 2 * c * m // g + 9 * m, h * w * (2 * c * m // g + 9 * m)


MISTAKES = [
    ("channel_shuffle_backward", shuffle_backward_forward_again, "shuffle applied forward again instead of inverse"),
    ("channel_shuffle_backward", shuffle_backward_hard_coded, "right for some shapes only"),
    ("batchnorm_backward", batchnorm_backward_no_variance, "batch norm without the variance path"),
    ("batchnorm_backward", batchnorm_backward_no_variance, "dgamma and dbeta are right, dx is wrong"),
    ("depthwise_conv_backward", depthwise_backward_assign, "`=` instead of `+=`"),
    ("depthwise_conv_backward", depthwise_backward_not_cropped, "the padding border not cropped"),
    ("group_conv1x1_forward", conv1x1_interleaved, "groups interleaved instead of contiguous"),
    ("stacked_connectivity", stacked_connectivity_interleaved, "groups interleaved instead of contiguous"),
    ("channel_shuffle_forward", shuffle_forward_interleaved,
     "reshaped to (C // groups, groups) instead of (groups, C // groups)"),
    ("group_conv1x1_forward", conv1x1_returns_cache, "wrong return arity"),
    ("pointwise_group_conv_backward", pointwise_backward_dx_only, "wrong return arity"),
    ("batchnorm_train_forward", batchnorm_train_unbiased, "normalised with the unbiased variance"),
    ("batchnorm_train_forward", batchnorm_train_not_in_place, "running buffers not updated in place"),
    ("batchnorm_eval_forward", batchnorm_eval_batch_stats, "batch statistics used in eval mode"),
    ("stride2_unit_forward", stride2_branch_first, "branch first, shortcut second"),
    ("max_pool_backward", max_pool_backward_assign, "`=` instead of `+=`"),
    ("softmax_cross_entropy", softmax_no_max, "softmax overflowed"),
    ("sgd_step", sgd_decay_everything, "weight decay on one-axis parameters"),
    ("unit_cost", unit_cost_without_bn, "batch-norm parameters left out"),
    ("groups_after_one_shuffle", lambda C, g: g, "assumed one shuffle is always enough"),
]


def _check(name):
    return getattr(course, f"check_{name}")


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_a_right_answer_passes(name, capsys):
    assert _check(name)(RIGHT[name]) is True
    assert "cases right" in capsys.readouterr().out


@pytest.mark.parametrize("name, wrong, diagnosis", MISTAKES, ids=[f"{n}-{w.__name__}" for n, w, _ in MISTAKES])
def test_a_typical_mistake_is_named(name, wrong, diagnosis, capsys):
    with pytest.raises(AssertionError, match="is not right yet"):
        _check(name)(wrong)
    out = capsys.readouterr().out
    assert diagnosis in out, out
    assert "WRONG" in out


def test_a_stub_is_not_done_and_run_all_goes_on(capsys, monkeypatch):
    monkeypatch.delenv(course.GRADING_ENV, raising=False)

    def channel_shuffle_backward(dout, groups):
        raise NotImplementedError("exercise: channel_shuffle_backward")

    assert course.check_channel_shuffle_backward(channel_shuffle_backward) is None
    out = capsys.readouterr().out
    assert "channel_shuffle_backward: not done yet (exercise: channel_shuffle_backward)" in out


def test_a_check_that_needs_an_earlier_exercise_says_which(capsys, monkeypatch):
    monkeypatch.delenv(course.GRADING_ENV, raising=False)

    def conv_params(c_in, c_out, kernel_size, groups=1):
        raise NotImplementedError("exercise: conv_params")

    def blog_numbers():
        return conv_params(256, 256, 3), 0, 0

    assert course.check_blog_numbers(blog_numbers) is None
    assert "needs conv_params" in capsys.readouterr().out


def test_grading_mode_raises_for_a_stub(monkeypatch):
    monkeypatch.setenv(course.GRADING_ENV, "1")

    def sgd_step(*args):
        raise NotImplementedError("exercise: sgd_step")

    with pytest.raises(course.ExerciseNotDone, match="sgd_step: not done yet"):
        course.check_sgd_step(sgd_step)


def test_an_exception_is_a_failed_case_not_a_crash(capsys):
    def broken(x, groups):
        if groups == 4:
            raise ValueError("cannot reshape")
        return channel_shuffle_forward(x, groups)

    with pytest.raises(AssertionError):
        course.check_channel_shuffle_forward(broken)
    assert "your function raised ValueError" in capsys.readouterr().out


def test_student_kernels_run_a_shuffle_unit_and_fall_back_where_missing(capsys):
    kernels = course.StudentKernels(RIGHT).probe()
    assert not kernels.missing
    assert course.check_kernels(kernels) is True
    assert kernels.calls["yours: batchnorm_backward"] > 0 and kernels.calls["yours: depthwise_conv_backward"] > 0
    assert not any(key.startswith("package: conv2d") for key in kernels.calls)

    def depthwise_conv_backward(dout, x, w, stride=1):
        raise NotImplementedError("exercise: depthwise_conv_backward")

    partial = course.StudentKernels(dict(RIGHT, depthwise_conv_backward=depthwise_conv_backward)).probe()
    assert partial.missing == {"depthwise_conv_backward"}
    assert course.check_kernels(partial) is None             # student mode: not done, no exception
    assert "still to write: depthwise_conv_backward" in capsys.readouterr().out


def test_check_training_needs_every_function_and_a_margin(capsys):
    kernels = course.StudentKernels(RIGHT).probe()
    assert course.check_training(0.7, 0.2, kernels, True) is True
    with pytest.raises(AssertionError):
        course.check_training(0.3, 0.2, kernels, True)
    assert course.check_training(0.7, 0.2, kernels, False) is None
    assert "still to write sgd_step" in capsys.readouterr().out


def _notebook_sources():
    import json
    from pathlib import Path
    for path in sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            yield path.name, cell


def test_every_check_is_used_by_a_notebook_and_the_finale_collects_every_function():
    import ast
    used = {name for _, cell in _notebook_sources() for name in course.__all__
            if name.startswith("check_") and f"course.{name}(" in "".join(cell["source"])}
    assert used == {name for name in course.__all__ if name.startswith("check_")}
    finale = [cell for name, cell in _notebook_sources()
              if name.startswith("09") and cell["metadata"].get("nbgrader", {}).get("grade_id") == "your_layers"]
    assert len(finale) == 1
    defined = [node.name for node in ast.parse("".join(finale[0]["source"])).body if isinstance(node, ast.FunctionDef)]
    assert sorted(defined) == sorted(course.StudentKernels.NAMES)
