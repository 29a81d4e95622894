"""The fused pairs of the textbook: batchnorm2d_relu, add_relu, concat_relu (functional/fused.py).

Each is checked against its plain pairs run one after the other (bitwise: it *is* that composition), against
numeric gradients in float64 with a random upstream gradient, at NaN and infinities (PyTorch's ReLU), for inputs
left untouched, and for bad input refused with an error naming the pair.
"""

import numpy as np
import pytest

from numpy_shufflenet import functional as F
from numpy_shufflenet.functional import fused

from conftest import assert_unchanged, away_from_zero, check_gradient, snapshot

NAN, INF = np.nan, np.inf


def bn_args(rng, C, dtype=np.float64):
    gamma = (1 + 0.5 * rng.standard_normal(C)).astype(dtype)
    beta = (0.5 * rng.standard_normal(C)).astype(dtype)
    return gamma, beta


# --------------------------------------------------------------------------------------------------------------
# each fused pair is its plain pairs one after the other, bit for bit
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm2d_relu_is_batch_norm_then_relu_bitwise(rng, dtype, training):
    x = rng.standard_normal((3, 4, 5, 6)).astype(dtype)
    gamma, beta = bn_args(rng, 4, dtype)
    buffers = [(rng.standard_normal(4) * 0.1).astype(dtype), (1 + rng.random(4)).astype(dtype)]
    fused_buffers, plain_buffers = [b.copy() for b in buffers], [b.copy() for b in buffers]
    out, cache = F.batchnorm2d_relu_forward(x, gamma, beta, running_mean=fused_buffers[0],
                                            running_var=fused_buffers[1], training=training, momentum=0.2, eps=1e-3)
    y, bn_cache = F.batchnorm2d_forward(x, gamma, beta, running_mean=plain_buffers[0], running_var=plain_buffers[1],
                                        training=training, momentum=0.2, eps=1e-3)
    expected, relu_cache = F.relu_forward(y)
    assert out.dtype == dtype and (out == 0).any() and (out > 0).any()
    np.testing.assert_array_equal(out, expected)
    for got, want in zip(fused_buffers, plain_buffers):        # the running statistics move the same way
        np.testing.assert_array_equal(got, want)
    dout = rng.standard_normal(x.shape).astype(dtype)
    grads = F.batchnorm2d_relu_backward(dout, cache)
    plain = F.batchnorm2d_backward(F.relu_backward(dout, relu_cache), bn_cache)
    assert len(grads) == 3
    for got, want in zip(grads, plain):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (4, 6)])
def test_add_relu_is_relu_of_the_sum_bitwise(rng, dtype, shape):
    x, y = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    out, cache = F.add_relu_forward(x, y)
    expected, relu_cache = F.relu_forward(x + y)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, expected)
    dout = rng.standard_normal(shape).astype(dtype)
    dx, dy = F.add_relu_backward(dout, cache)
    d = F.relu_backward(dout, relu_cache)
    np.testing.assert_array_equal(dx, d)
    np.testing.assert_array_equal(dy, d)                         # the sum passes its gradient to both inputs
    assert dx.dtype == dy.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_concat_relu_is_relu_of_the_concatenation_bitwise(rng, dtype):
    a, b = rng.standard_normal((2, 3, 4, 5)).astype(dtype), rng.standard_normal((2, 5, 4, 5)).astype(dtype)
    out, cache = F.concat_relu_forward(a, b)
    expected, relu_cache = F.relu_forward(np.concatenate([a, b], axis=1))
    assert out.shape == (2, 8, 4, 5) and out.dtype == dtype
    np.testing.assert_array_equal(out, expected)
    dout = rng.standard_normal(out.shape).astype(dtype)
    da, db = F.concat_relu_backward(dout, cache)
    d = F.relu_backward(dout, relu_cache)
    assert da.shape == a.shape and db.shape == b.shape
    np.testing.assert_array_equal(da, d[:, :3])                  # a's channels first, as the concatenation
    np.testing.assert_array_equal(db, d[:, 3:])


def test_golden_unit_ends():
    # relu(x + y) of (-2 + 1, 1 + 1, 0.5 - 0.5) = (0, 2, 0); the gradient passes only at the middle element
    out, cache = F.add_relu_forward(np.array([-2.0, 1.0, 0.5]), np.array([1.0, 1.0, -0.5]))
    np.testing.assert_array_equal(out, [0.0, 2.0, 0.0])
    dx, dy = F.add_relu_backward(np.array([10.0, 20.0, 30.0]), cache)
    np.testing.assert_array_equal(dx, [0.0, 20.0, 0.0]) and np.testing.assert_array_equal(dy, [0.0, 20.0, 0.0])
    # relu(concat([a, b])) with one channel each: a = (-1, 3), b = (2, -4) per pixel
    a, b = np.array([-1.0, 3.0]).reshape(1, 1, 1, 2), np.array([2.0, -4.0]).reshape(1, 1, 1, 2)
    out, cache = F.concat_relu_forward(a, b)
    np.testing.assert_array_equal(out.ravel(), [0.0, 3.0, 2.0, 0.0])
    da, db = F.concat_relu_backward(np.ones((1, 2, 1, 2)), cache)
    np.testing.assert_array_equal(da.ravel(), [0.0, 1.0]) and np.testing.assert_array_equal(db.ravel(), [1.0, 0.0])


# --------------------------------------------------------------------------------------------------------------
# numeric gradients (float64, random upstream gradient)
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm2d_relu_gradients_match_numeric(rng, training):
    x = rng.standard_normal((3, 4, 3, 5))
    gamma, beta = bn_args(rng, 4)
    buffers = dict(running_mean=0.1 * rng.standard_normal(4), running_var=1 + rng.random(4))
    kwargs = dict(training=training, **({} if training else buffers))     # eval mode reads the buffers only

    def f(x=x, gamma=gamma, beta=beta):
        return F.batchnorm2d_relu_forward(x, gamma, beta, **kwargs)[0]

    out, cache = F.batchnorm2d_relu_forward(x, gamma, beta, **kwargs)
    assert np.min(np.abs(F.batchnorm2d_forward(x, gamma, beta, **kwargs)[0])) > 1e-4    # no kink within reach of h
    dout = rng.standard_normal(out.shape)
    dx, dgamma, dbeta = F.batchnorm2d_relu_backward(dout, cache)
    mode = "" if training else "(eval)"
    check_gradient(f"batchnorm2d_relu{mode} dx", lambda v: f(x=v), x, dout, dx)
    check_gradient(f"batchnorm2d_relu{mode} dgamma", lambda v: f(gamma=v), gamma, dout, dgamma)
    check_gradient(f"batchnorm2d_relu{mode} dbeta", lambda v: f(beta=v), beta, dout, dbeta)


def test_add_relu_gradients_match_numeric(rng):
    s = away_from_zero(rng, (2, 3, 4, 5))                  # the sum stays 0.1 away from the kink
    y = rng.standard_normal(s.shape)
    x = s - y
    out, cache = F.add_relu_forward(x, y)
    dout = rng.standard_normal(out.shape)
    dx, dy = F.add_relu_backward(dout, cache)
    check_gradient("add_relu dx", lambda v: F.add_relu_forward(v, y)[0], x, dout, dx)
    check_gradient("add_relu dy", lambda v: F.add_relu_forward(x, v)[0], y, dout, dy)


def test_concat_relu_gradients_match_numeric(rng):
    a, b = away_from_zero(rng, (2, 3, 4, 4)), away_from_zero(rng, (2, 6, 4, 4))
    out, cache = F.concat_relu_forward(a, b)
    dout = rng.standard_normal(out.shape)
    da, db = F.concat_relu_backward(dout, cache)
    check_gradient("concat_relu da", lambda v: F.concat_relu_forward(v, b)[0], a, dout, da)
    check_gradient("concat_relu db", lambda v: F.concat_relu_forward(a, v)[0], b, dout, db)


# --------------------------------------------------------------------------------------------------------------
# NaN and infinities as PyTorch's ReLU; inputs never modified
# --------------------------------------------------------------------------------------------------------------
def test_nan_and_infinities_follow_pytorchs_relu():
    # relu(NaN) = NaN and its gradient passes (NaN is not <= 0); relu(inf) = inf; relu(-inf) = 0; inf - inf = NaN
    x = np.array([NAN, 1.0, INF, -INF, INF, 0.0, -0.0])
    y = np.array([0.0, NAN, 1.0, 1.0, -INF, 0.0, 0.0])
    with np.errstate(invalid="ignore"):                    # inf - inf: NumPy's warning, PyTorch's NaN
        out, cache = F.add_relu_forward(x, y)
    np.testing.assert_array_equal(out, [NAN, NAN, INF, 0.0, NAN, 0.0, 0.0])
    dx, dy = F.add_relu_backward(np.full(7, 2.0), cache)
    np.testing.assert_array_equal(dx, [2.0, 2.0, 2.0, 0.0, 2.0, 0.0, 0.0])
    np.testing.assert_array_equal(dy, dx)
    a = np.array([NAN, -INF]).reshape(1, 1, 1, 2)
    b = np.array([INF, -1.0]).reshape(1, 1, 1, 2)
    out, cache = F.concat_relu_forward(a, b)
    np.testing.assert_array_equal(out.ravel(), [NAN, 0.0, INF, 0.0])
    da, db = F.concat_relu_backward(np.ones((1, 2, 1, 2)), cache)
    np.testing.assert_array_equal(da.ravel(), [1.0, 0.0]) and np.testing.assert_array_equal(db.ravel(), [1.0, 0.0])


def test_a_nan_in_batch_norm_relu_spreads_over_its_channel_as_in_batch_norm(rng):
    x = rng.standard_normal((2, 3, 2, 2))
    x[0, 1, 0, 0] = NAN
    out, cache = F.batchnorm2d_relu_forward(x, *bn_args(rng, 3))
    assert np.isnan(out[:, 1]).all() and not np.isnan(out[:, [0, 2]]).any()       # the channel's mean is NaN
    dx, _, _ = F.batchnorm2d_relu_backward(np.ones_like(x), cache)
    assert np.isnan(dx[:, 1]).all() and not np.isnan(dx[:, [0, 2]]).any()


def test_inputs_are_never_modified(rng):
    x, y = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 3, 4, 4))
    b = rng.standard_normal((2, 5, 4, 4))
    gamma, beta = bn_args(rng, 3)
    copies = snapshot(x, y, b, gamma, beta)
    for forward, backward, args in [(F.add_relu_forward, F.add_relu_backward, (x, y)),
                                    (F.concat_relu_forward, F.concat_relu_backward, (x, b)),
                                    (F.batchnorm2d_relu_forward, F.batchnorm2d_relu_backward, (x, gamma, beta))]:
        out, cache = forward(*args)
        dout = rng.standard_normal(out.shape)
        dout_copy = dout.copy()
        backward(dout, cache)
        np.testing.assert_array_equal(dout, dout_copy)
    assert_unchanged([x, y, b, gamma, beta], copies)


# --------------------------------------------------------------------------------------------------------------
# bad input: a clear error naming the pair
# --------------------------------------------------------------------------------------------------------------
X = np.ones((2, 3, 4, 4))


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.add_relu_forward(X, np.ones((1, 3, 4, 4))), ValueError,
     r"add_relu: expected y of shape \(2, 3, 4, 4\), got \(1, 3, 4, 4\)"),            # no broadcasting
    (lambda: F.add_relu_forward(X, X.astype(np.float32)), TypeError,
     r"add_relu: expected y to have the same dtype as x \(float64\), got float32"),
    (lambda: F.add_relu_forward(X.tolist(), X), TypeError, r"add_relu: expected x to be a numpy.ndarray, got list"),
    (lambda: F.add_relu_forward(X.astype(int), X), TypeError, r"add_relu: expected x to have a float dtype"),
    (lambda: F.concat_relu_forward(X, np.ones((2, 3, 4, 5))), ValueError,
     r"concat_relu: expected b of shape \(N, C_b, H, W\) = \(2, C_b, 4, 4\) like a, got \(2, 3, 4, 5\)"),
    (lambda: F.concat_relu_forward(X[0], X[0]), ValueError, r"concat_relu: expected a to be 4-D"),
    (lambda: F.concat_relu_forward(X, X.astype(np.float32)), TypeError,
     r"concat_relu: expected b to have the same dtype as x \(float64\), got float32"),
    (lambda: F.batchnorm2d_relu_forward(X, np.ones(4), np.zeros(4)), ValueError,
     r"batchnorm2d_relu: expected x with 4 channels \(the size of gamma and beta\), got x of shape \(2, 3, 4, 4\)"),
    (lambda: F.batchnorm2d_relu_forward(X, np.ones(3), np.zeros(3), training=False), ValueError,
     r"batchnorm2d_relu: eval mode \(training=False\) expects running_mean and running_var, got None"),
    (lambda: F.batchnorm2d_relu_forward(X, np.ones(3), np.zeros(3), momentum=2), ValueError,
     r"batchnorm2d_relu: expected momentum in \[0, 1\], got 2.0"),
    (lambda: F.add_relu_backward(np.ones((2, 3)), None), ValueError, r"add_relu: backward called before forward"),
    (lambda: F.add_relu_backward(X, F.relu_forward(X)[1]), TypeError,
     r"add_relu: expected the AddReluCache of a add_relu forward pass, got ReluCache"),
    (lambda: F.concat_relu_backward(X, F.add_relu_forward(X, X)[1]), TypeError,
     r"concat_relu: expected the ConcatReluCache of a concat_relu forward pass, got AddReluCache"),
    (lambda: F.batchnorm2d_relu_backward(X, F.batchnorm2d_forward(X, np.ones(3), np.zeros(3))[1]), TypeError,
     r"batchnorm2d_relu: expected the BatchNormReluCache of a batchnorm2d_relu forward pass, got BatchNormCache"),
    (lambda: F.add_relu_backward(np.ones((2, 3)), F.add_relu_forward(X, X)[1]), ValueError,
     r"add_relu: expected dout of the forward output's shape \(2, 3, 4, 4\), got \(2, 3\)"),
    (lambda: F.concat_relu_backward(X, F.concat_relu_forward(X, X)[1]), ValueError,
     r"concat_relu: expected dout of the forward output's shape \(2, 6, 4, 4\), got \(2, 3, 4, 4\)"),
    (lambda: F.batchnorm2d_relu_backward(X[:1], F.batchnorm2d_relu_forward(X, np.ones(3), np.zeros(3))[1]),
     ValueError, r"batchnorm2d_relu: expected dout of the forward output's shape \(2, 3, 4, 4\), got \(1, 3, 4, 4\)"),
])
def test_bad_input_is_refused_naming_the_pair(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_a_float64_dout_into_a_float32_pair_gives_float32_gradients(rng):
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    for forward, backward, args in [(F.add_relu_forward, F.add_relu_backward, (x, x[:, ::-1].copy())),
                                    (F.concat_relu_forward, F.concat_relu_backward, (x, x)),
                                    (F.batchnorm2d_relu_forward, F.batchnorm2d_relu_backward,
                                     (x, np.ones(3, np.float32), np.zeros(3, np.float32)))]:
        out, cache = forward(*args)
        assert all(g.dtype == np.float32 for g in backward(rng.standard_normal(out.shape), cache))


# --------------------------------------------------------------------------------------------------------------
# the recipes take any plain pairs (use_kernels builds a student's fused pairs with them)
# --------------------------------------------------------------------------------------------------------------
def test_the_recipes_run_the_plain_pairs_they_are_given(rng):
    calls = []

    def relu_forward(x):
        calls.append("relu_forward")
        return F.relu_forward(x)

    def relu_backward(dout, cache):
        calls.append("relu_backward")
        return F.relu_backward(dout, cache)

    def batchnorm2d_forward(x, gamma, beta, **kwargs):
        calls.append("batchnorm2d_forward")
        return F.batchnorm2d_forward(x, gamma, beta, **kwargs)

    def batchnorm2d_backward(dout, cache):
        calls.append("batchnorm2d_backward")
        return F.batchnorm2d_backward(dout, cache)

    x, y = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 3, 4, 4))
    forward, backward = fused.add_relu_pair(relu_forward, relu_backward)
    out, cache = forward(x, y)
    backward(out, cache)
    forward, backward = fused.concat_relu_pair(relu_forward, relu_backward)
    out, cache = forward(x, y)
    backward(out, cache)
    forward, backward = fused.batchnorm2d_relu_pair(batchnorm2d_forward, batchnorm2d_backward, relu_forward,
                                                    relu_backward)
    out, cache = forward(x, np.ones(3), np.zeros(3), training=False, running_mean=np.zeros(3), running_var=np.ones(3))
    backward(out, cache)
    assert calls == ["relu_forward", "relu_backward", "relu_forward", "relu_backward",
                     "batchnorm2d_forward", "relu_forward", "relu_backward", "batchnorm2d_backward"]
