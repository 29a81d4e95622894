"""ReLU, the fully connected layer and the softmax cross-entropy loss."""

import numpy as np
import pytest

from numpy_shufflenet.functional import (linear_backward, linear_forward, relu_backward, relu_forward,
                                         softmax_cross_entropy)

from conftest import assert_same, away_from_zero, check_gradient

# --------------------------------------------------------------------------------------------------------------
# ReLU
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 3, 7, 5), (4, 6), (50,)])
def test_relu_gradient_matches_numeric(rng, shape):
    x = away_from_zero(rng, shape)                 # |x| >= 0.1: no kink within reach of h = 1e-6
    out, cache = relu_forward(x)
    dout = rng.standard_normal(out.shape)
    dx = relu_backward(dout, cache)
    check_gradient("relu dx", lambda v: relu_forward(v)[0], x, dout, dx)


def test_golden_relu():
    # max(x, 0) of -2, -1, 0, 1, 2 is 0, 0, 0, 1, 2; the gradient passes only where x > 0 (0 at x = 0 itself)
    x = np.array([-2.0, -1, 0, 1, 2])
    out, cache = relu_forward(x)
    assert_same(out, [0, 0, 0, 1, 2])
    assert_same(relu_backward(np.array([10.0, 20, 30, 40, 50]), cache), [0, 0, 0, 40, 50])


# --------------------------------------------------------------------------------------------------------------
# Linear
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("N, F_in, F_out, bias", [(3, 5, 4, True), (2, 7, 3, False), (1, 4, 10, True),
                                                  (6, 12, 2, True)])
def test_linear_gradients_match_numeric(rng, N, F_in, F_out, bias):
    x, w = rng.standard_normal((N, F_in)), rng.standard_normal((F_out, F_in))
    b = rng.standard_normal(F_out) if bias else None
    out, cache = linear_forward(x, w, b)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = linear_backward(dout, cache)
    check_gradient("linear dx", lambda v: linear_forward(v, w, b)[0], x, dout, dx)
    check_gradient("linear dw", lambda v: linear_forward(x, v, b)[0], w, dout, dw)
    if bias:
        check_gradient("linear db", lambda v: linear_forward(x, w, v)[0], b, dout, db)
    else:
        assert db is None


def test_golden_linear():
    # out = x @ w.T + b: x = (1, 2), w rows (1, 0), (0, 1), (1, 1), b = (0, 0, 10) -> (1, 2, 1 + 2 + 10 = 13)
    x = np.array([[1.0, 2]])
    w = np.array([[1.0, 0], [0, 1], [1, 1]])
    out, cache = linear_forward(x, w, np.array([0.0, 0, 10]))
    assert_same(out, [[1, 2, 13]])
    # dout = (1, 1, 1): dx = dout @ w = (1 + 0 + 1, 0 + 1 + 1) = (2, 2); dw = dout.T @ x = three rows (1, 2); db = 1
    dx, dw, db = linear_backward(np.ones((1, 3)), cache)
    assert_same(dx, [[2, 2]])
    assert_same(dw, [[1, 2], [1, 2], [1, 2]])
    assert_same(db, [1, 1, 1])


# --------------------------------------------------------------------------------------------------------------
# softmax cross-entropy
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 0.5])
@pytest.mark.parametrize("N, K", [(4, 5), (1, 3), (8, 10)])
def test_cross_entropy_gradient_matches_numeric(rng, N, K, label_smoothing):
    logits = 3 * rng.standard_normal((N, K))
    labels = rng.integers(0, K, N)
    loss, dlogits = softmax_cross_entropy(logits, labels, label_smoothing=label_smoothing)
    # the loss is a scalar, so its "upstream gradient" is a (random) scalar too
    dloss = np.array(rng.standard_normal())
    f = lambda v: softmax_cross_entropy(v, labels, label_smoothing=label_smoothing)[0]   # noqa: E731
    check_gradient(f"softmax_cross_entropy(ls={label_smoothing})", f, logits, dloss, dloss * dlogits)


def test_golden_cross_entropy():
    # logits (0, ln 3): softmax p = (1, 3) / 4. Label 1: loss = -ln(3/4) = ln(4/3), dlogits = p - onehot = (1/4, -1/4)
    loss, dlogits = softmax_cross_entropy(np.array([[0.0, np.log(3)]]), np.array([1]))
    assert loss == pytest.approx(np.log(4 / 3), rel=1e-12)
    assert_same(dlogits, [[0.25, -0.25]])


def test_golden_cross_entropy_label_smoothing():
    # eps = 0.2, K = 2: q = 0.8 * onehot + 0.2 / 2 = (0.1, 0.9) for label 1; p = (1/4, 3/4) as above
    # loss = -(0.1 ln(1/4) + 0.9 ln(3/4)) = 0.1 ln 4 + 0.9 ln(4/3);  dlogits = p - q = (0.15, -0.15)
    loss, dlogits = softmax_cross_entropy(np.array([[0.0, np.log(3)]]), np.array([1]), label_smoothing=0.2)
    assert loss == pytest.approx(0.1 * np.log(4) + 0.9 * np.log(4 / 3), rel=1e-12)
    assert_same(dlogits, [[0.15, -0.15]])


def test_golden_cross_entropy_is_a_batch_mean():
    # zero logits, K = 4: p = 1/4 everywhere, each loss ln 4, so the mean is ln 4;
    # dlogits = (p - onehot) / N with N = 2: row 0 (label 0) = (-3/8, 1/8, 1/8, 1/8), row 1 (label 3) mirrored
    loss, dlogits = softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
    assert loss == pytest.approx(np.log(4), rel=1e-12)
    assert_same(dlogits, [[-3 / 8, 1 / 8, 1 / 8, 1 / 8],
                          [1 / 8, 1 / 8, 1 / 8, -3 / 8]])


def test_cross_entropy_is_stable_for_huge_logits():
    # logits (1000, 0): exp(1000) overflows, the shifted softmax does not. Label 0: loss = ln(1 + e^-1000) = 0;
    # label 1: loss = 1000
    loss0, d0 = softmax_cross_entropy(np.array([[1000.0, 0]]), np.array([0]))
    loss1, d1 = softmax_cross_entropy(np.array([[1000.0, 0]]), np.array([1]))
    assert loss0 == 0.0 and loss1 == pytest.approx(1000.0, rel=1e-12)
    assert_same(d0, [[0, 0]])
    assert_same(d1, [[1, -1]])


def test_cross_entropy_gradient_rows_sum_to_zero(rng):
    _, dlogits = softmax_cross_entropy(rng.standard_normal((5, 7)), rng.integers(0, 7, 5), label_smoothing=0.1)
    np.testing.assert_allclose(dlogits.sum(axis=1), 0, atol=1e-15)


# --------------------------------------------------------------------------------------------------------------
# 4. dtype in == dtype out
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(rng, dtype):
    x = rng.standard_normal((3, 5)).astype(dtype)
    out, cache = relu_forward(x)
    assert out.dtype == dtype and relu_backward(np.ones_like(out), cache).dtype == dtype

    w, b = rng.standard_normal((4, 5)).astype(dtype), rng.standard_normal(4).astype(dtype)
    out, cache = linear_forward(x, w, b)
    assert out.dtype == dtype
    assert all(g.dtype == dtype for g in linear_backward(np.ones_like(out), cache))

    loss, dlogits = softmax_cross_entropy(out, np.array([0, 1, 3]), label_smoothing=0.1)
    assert isinstance(loss, float) and dlogits.dtype == dtype
