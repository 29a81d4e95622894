"""Optional: every layer against PyTorch in float64, forward and backward, to 1e-10.

PyTorch is not a dependency of the project; this file is skipped when it is not installed. The rest of the suite
is a PyTorch-free ground truth (numeric gradients, exact cross-checks, golden values).
"""

import numpy as np
import pytest

from numpy_shufflenet import functional as F
from numpy_shufflenet import nn

torch = pytest.importorskip("torch")
tF = torch.nn.functional

TOL = 1e-10


def tensor(a, grad=True):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def assert_close(ours, theirs):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=TOL, atol=TOL)


def compare_layer(rng, x, forward, backward, torch_fn):
    """Run a one-input layer and its PyTorch twin on ``x``; compare outputs and input gradients."""
    out, cache = forward(x)
    dout = rng.standard_normal(out.shape)
    tx = tensor(x)
    tout = torch_fn(tx)
    tout.backward(torch.from_numpy(dout))
    assert_close(out, tout)
    assert_close(backward(dout, cache), tx.grad)


def compare_weighted_layer(rng, x, w, b, forward, backward, torch_fn):
    """The same for a layer ``forward(x, w, b)``: outputs and the gradients of ``x``, ``w`` and ``b``."""
    out, cache = forward(x, w, b)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = backward(dout, cache)
    tx, tw = tensor(x), tensor(w)
    tb = None if b is None else tensor(b)
    tout = torch_fn(tx, tw, tb)
    tout.backward(torch.from_numpy(dout))
    assert_close(out, tout)
    assert_close(dx, tx.grad)
    assert_close(dw, tw.grad)
    if b is None:
        assert db is None
    else:
        assert_close(db, tb.grad)


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(2)


# --------------------------------------------------------------------------------------------------------------
# convolution
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("x_shape, F_out, kernel, stride, padding, groups, bias", [
    ((2, 3, 7, 5), 4, (3, 3), 1, 1, 1, True),
    ((2, 3, 9, 8), 6, (3, 3), 2, 1, 1, False),
    ((2, 6, 7, 5), 9, (1, 1), 1, 0, 3, False),         # pointwise group conv
    ((2, 6, 7, 5), 6, (1, 1), 2, 0, 3, True),
    ((2, 4, 7, 5), 4, (3, 3), 1, 1, 4, True),          # depthwise
    ((2, 6, 9, 9), 6, (3, 3), 2, 1, 6, False),         # depthwise, stride 2 (ShuffleNet's downsampling unit)
    ((1, 4, 8, 7), 8, (3, 2), (2, 1), (2, 1), 2, True),
    ((2, 3, 6, 6), 6, (5, 5), 3, 2, 3, True),          # channel multiplier 2
])
@pytest.mark.parametrize("naive", [False, True], ids=["fast", "naive"])
def test_conv2d(rng, naive, x_shape, F_out, kernel, stride, padding, groups, bias):
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((F_out, x_shape[1] // groups) + kernel)
    b = rng.standard_normal(F_out) if bias else None
    forward, backward = ((F.conv2d_forward_naive, F.conv2d_backward_naive) if naive
                         else (F.conv2d_forward, F.conv2d_backward))
    opts = dict(stride=stride, padding=padding, groups=groups)
    compare_weighted_layer(rng, x, w, b, lambda x, w, b: forward(x, w, b, **opts), backward,
                           lambda tx, tw, tb: tF.conv2d(tx, tw, tb, **opts))


# --------------------------------------------------------------------------------------------------------------
# batch norm
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (2, 6, 3, 4), (1, 2, 3, 3)])
@pytest.mark.parametrize("momentum", [0.1, 0.3])
def test_batchnorm2d_training_and_running_stats(rng, shape, momentum):
    C = shape[1]
    x = 5 * rng.standard_normal(shape) + 12
    gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
    mean, var = rng.standard_normal(C), rng.uniform(0.5, 2, C)
    t_mean, t_var = torch.tensor(mean), torch.tensor(var)

    for step in range(2):                                       # two steps: the running update compounds
        out, cache = F.batchnorm2d_forward(x + step, gamma, beta, running_mean=mean, running_var=var,
                                           training=True, momentum=momentum)
        tx, tg, tb = tensor(x + step), tensor(gamma), tensor(beta)
        tout = tF.batch_norm(tx, t_mean, t_var, tg, tb, training=True, momentum=momentum, eps=1e-5)
        assert_close(out, tout)
        assert_close(mean, t_mean)
        assert_close(var, t_var)

    dout = rng.standard_normal(out.shape)
    dx, dgamma, dbeta = F.batchnorm2d_backward(dout, cache)
    tout.backward(torch.from_numpy(dout))
    assert_close(dx, tx.grad)
    assert_close(dgamma, tg.grad)
    assert_close(dbeta, tb.grad)


@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (1, 2, 1, 1)])
def test_batchnorm2d_eval(rng, shape):
    C = shape[1]
    x = 5 * rng.standard_normal(shape) + 12
    gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
    mean, var = rng.standard_normal(C) + 12, rng.uniform(10, 40, C)
    out, cache = F.batchnorm2d_forward(x, gamma, beta, running_mean=mean, running_var=var, training=False)
    dout = rng.standard_normal(out.shape)
    dx, dgamma, dbeta = F.batchnorm2d_backward(dout, cache)

    tx, tg, tb = tensor(x), tensor(gamma), tensor(beta)
    tout = tF.batch_norm(tx, torch.tensor(mean), torch.tensor(var), tg, tb, training=False, eps=1e-5)
    tout.backward(torch.from_numpy(dout))
    assert_close(out, tout)
    assert_close(dx, tx.grad)
    assert_close(dgamma, tg.grad)
    assert_close(dbeta, tb.grad)


def test_batchnorm2d_module_matches_torch_module(rng):
    ours, theirs = nn.BatchNorm2d(3).to(np.float64), torch.nn.BatchNorm2d(3).double()
    for step in range(3):
        x = 3 * rng.standard_normal((4, 3, 5, 5)) + step
        assert_close(ours(x), theirs(torch.from_numpy(x)))
    assert_close(ours.running_mean, theirs.running_mean)
    assert_close(ours.running_var, theirs.running_var)
    ours.eval(), theirs.eval()
    x = rng.standard_normal((2, 3, 5, 5))
    assert_close(ours(x), theirs(torch.from_numpy(x)))


# --------------------------------------------------------------------------------------------------------------
# channel shuffle, pooling
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("C, groups", [(12, 3), (8, 2), (16, 8), (6, 6)])
def test_channel_shuffle(rng, C, groups):
    compare_layer(rng, rng.standard_normal((2, C, 3, 3)), lambda x: F.channel_shuffle_forward(x, groups),
                  F.channel_shuffle_backward, torch.nn.ChannelShuffle(groups))


POOL_CONFIGS = [((2, 3, 7, 5), 2, 2, 0), ((2, 3, 7, 5), 3, 2, 1), ((2, 3, 8, 8), 3, 1, 1), ((1, 2, 9, 6), 2, 1, 1),
                ((2, 3, 7, 5), (3, 2), (2, 1), (1, 0)), ((2, 24, 12, 12), 3, 2, 1)]


@pytest.mark.parametrize("x_shape, kernel_size, stride, padding", POOL_CONFIGS)
def test_max_pool2d(rng, x_shape, kernel_size, stride, padding):
    compare_layer(rng, rng.standard_normal(x_shape),
                  lambda x: F.max_pool2d_forward(x, kernel_size=kernel_size, stride=stride, padding=padding),
                  F.max_pool2d_backward, lambda t: tF.max_pool2d(t, kernel_size, stride, padding))


def test_max_pool2d_ties(rng):
    """Rounded inputs make many ties; both libraries send the gradient to the first maximum of each window."""
    compare_layer(rng, np.round(rng.standard_normal((2, 3, 8, 8))),
                  lambda x: F.max_pool2d_forward(x, kernel_size=3, stride=2, padding=1),
                  F.max_pool2d_backward, lambda t: tF.max_pool2d(t, 3, 2, 1))


@pytest.mark.parametrize("x_shape, kernel_size, stride, padding", POOL_CONFIGS)
def test_avg_pool2d(rng, x_shape, kernel_size, stride, padding):
    compare_layer(rng, rng.standard_normal(x_shape),
                  lambda x: F.avg_pool2d_forward(x, kernel_size=kernel_size, stride=stride, padding=padding),
                  F.avg_pool2d_backward,
                  lambda t: tF.avg_pool2d(t, kernel_size, stride, padding, count_include_pad=True))


def test_global_avg_pool2d(rng):
    compare_layer(rng, rng.standard_normal((2, 5, 7, 3)), F.global_avg_pool2d_forward,
                  F.global_avg_pool2d_backward, lambda t: tF.adaptive_avg_pool2d(t, 1).flatten(1))


# --------------------------------------------------------------------------------------------------------------
# relu, linear, loss
# --------------------------------------------------------------------------------------------------------------
def test_relu(rng):
    compare_layer(rng, rng.standard_normal((2, 3, 4, 4)), F.relu_forward, F.relu_backward, torch.relu)


@pytest.mark.parametrize("bias", [True, False])
def test_linear(rng, bias):
    x, w = rng.standard_normal((5, 7)), rng.standard_normal((3, 7))
    b = rng.standard_normal(3) if bias else None
    compare_weighted_layer(rng, x, w, b, F.linear_forward, F.linear_backward, tF.linear)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 0.4])
def test_cross_entropy(rng, label_smoothing):
    logits, labels = 3 * rng.standard_normal((6, 10)), rng.integers(0, 10, 6)
    loss, dlogits = F.softmax_cross_entropy(logits, labels, label_smoothing=label_smoothing)
    t_logits = tensor(logits)
    t_loss = tF.cross_entropy(t_logits, torch.from_numpy(labels), label_smoothing=label_smoothing)
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), rel=TOL, abs=TOL)
    assert_close(dlogits, t_logits.grad)
