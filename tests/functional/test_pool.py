"""Max pooling, average pooling (count_include_pad=True) and global average pooling."""

import numpy as np
import pytest

from numpy_shufflenet.functional import (avg_pool2d_backward, avg_pool2d_forward, global_avg_pool2d_backward,
                                         global_avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward)

from conftest import assert_same, check_gradient, distinct_values

# (x shape, kernel_size, stride, padding); stride None means "= kernel_size"
CONFIGS = [
    pytest.param((2, 3, 7, 5), 2, 2, 0, id="k2-s2-p0"),
    pytest.param((2, 3, 7, 5), 2, 1, 0, id="k2-s1-p0"),
    pytest.param((2, 2, 7, 5), 2, 2, 1, id="k2-s2-p1"),
    pytest.param((2, 2, 5, 7), 2, 1, 1, id="k2-s1-p1"),
    pytest.param((2, 3, 7, 5), 3, 2, 1, id="k3-s2-p1"),
    pytest.param((2, 3, 7, 5), 3, 1, 1, id="k3-s1-p1"),
    pytest.param((1, 4, 6, 6), 3, 2, 0, id="k3-s2-p0-even"),
    pytest.param((2, 3, 7, 5), 3, 1, 0, id="k3-s1-p0"),
    pytest.param((2, 3, 7, 5), (3, 2), (2, 1), (1, 0), id="k(3,2)-s(2,1)-p(1,0)"),
    pytest.param((2, 3, 6, 7), 3, None, 0, id="k3-default-stride"),
]


def pool_opts(kernel_size, stride, padding):
    return dict(kernel_size=kernel_size, stride=stride, padding=padding)


def as_nchw(a):
    return np.asarray(a, dtype=np.float64)[None, None]


# --------------------------------------------------------------------------------------------------------------
# 1. backward == numeric gradient
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("x_shape, kernel_size, stride, padding", CONFIGS)
def test_max_pool_gradient_matches_numeric(rng, x_shape, kernel_size, stride, padding):
    x = distinct_values(rng, x_shape)                  # no ties: the max of every window is unambiguous
    opts = pool_opts(kernel_size, stride, padding)
    out, cache = max_pool2d_forward(x, **opts)
    dout = rng.standard_normal(out.shape)
    dx = max_pool2d_backward(dout, cache)
    check_gradient("max_pool2d dx", lambda v: max_pool2d_forward(v, **opts)[0], x, dout, dx)


@pytest.mark.parametrize("x_shape, kernel_size, stride, padding", CONFIGS)
def test_avg_pool_gradient_matches_numeric(rng, x_shape, kernel_size, stride, padding):
    x = rng.standard_normal(x_shape)
    opts = pool_opts(kernel_size, stride, padding)
    out, cache = avg_pool2d_forward(x, **opts)
    dout = rng.standard_normal(out.shape)
    dx = avg_pool2d_backward(dout, cache)
    check_gradient("avg_pool2d dx", lambda v: avg_pool2d_forward(v, **opts)[0], x, dout, dx)


@pytest.mark.parametrize("x_shape", [(2, 3, 7, 5), (3, 2, 1, 1), (1, 4, 4, 6)])
def test_global_avg_pool_gradient_matches_numeric(rng, x_shape):
    x = rng.standard_normal(x_shape)
    out, cache = global_avg_pool2d_forward(x)
    dout = rng.standard_normal(out.shape)
    dx = global_avg_pool2d_backward(dout, cache)
    check_gradient("global_avg_pool2d dx", lambda v: global_avg_pool2d_forward(v)[0], x, dout, dx)


# --------------------------------------------------------------------------------------------------------------
# independent routes: a loop over output pixels
# --------------------------------------------------------------------------------------------------------------
def pool_loop(x, kernel_size, stride, padding, reduce, pad_value):
    """The textbook loop: pad, then reduce every window."""
    kh, kw = (kernel_size, kernel_size) if np.isscalar(kernel_size) else kernel_size
    stride = (kh, kw) if stride is None else stride
    sh, sw = (stride, stride) if np.isscalar(stride) else stride
    ph, pw = (padding, padding) if np.isscalar(padding) else padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    H_out, W_out = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    out = np.empty(x.shape[:2] + (H_out, W_out))
    for i in range(H_out):
        for j in range(W_out):
            out[:, :, i, j] = reduce(xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw], axis=(2, 3))
    return out


@pytest.mark.parametrize("x_shape, kernel_size, stride, padding", CONFIGS)
def test_forward_equals_loop(rng, x_shape, kernel_size, stride, padding):
    x = rng.standard_normal(x_shape)
    opts = pool_opts(kernel_size, stride, padding)
    assert_same(max_pool2d_forward(x, **opts)[0], pool_loop(x, reduce=np.max, pad_value=-np.inf, **opts))
    assert_same(avg_pool2d_forward(x, **opts)[0], pool_loop(x, reduce=np.mean, pad_value=0.0, **opts))


# --------------------------------------------------------------------------------------------------------------
# 3. golden values, computed by hand
# --------------------------------------------------------------------------------------------------------------
def test_golden_avg_pool_divides_by_kernel_area_at_borders():
    # ones(4x4), 3x3 window, stride 2, padding 1 -> 2x2; count_include_pad=True: always divide by 9.
    # out[0,0]: rows -1..1, cols -1..1: 2x2 = 4 ones -> 4/9;   out[0,1]: rows -1..1, cols 1..3: 2x3 -> 6/9
    # out[1,0]: 3x2 -> 6/9;                                    out[1,1]: rows 1..3, cols 1..3: 9 ones -> 1
    out, _ = avg_pool2d_forward(np.ones((1, 1, 4, 4)), kernel_size=3, stride=2, padding=1)
    assert_same(out, as_nchw([[4 / 9, 6 / 9],
                              [6 / 9, 1.0]]))


def test_golden_avg_pool_5x5():
    # ones(5x5), 3x3/s2/p1 -> 3x3: corners see 2x2 (4/9), edges 2x3 (6/9), the centre 3x3 (1)
    out, _ = avg_pool2d_forward(np.ones((1, 1, 5, 5)), kernel_size=3, stride=2, padding=1)
    assert_same(out, as_nchw([[4 / 9, 6 / 9, 4 / 9],
                              [6 / 9, 1.0, 6 / 9],
                              [4 / 9, 6 / 9, 4 / 9]]))


def test_golden_avg_pool_backward():
    # 4x4 input, 3x3/s2/p1, dout = ones(2x2): every input gets 1/9 per window covering it.
    # Output row 0 covers input rows 0, 1; output row 1 covers rows 1, 2, 3: row counts (1, 2, 1, 1), same for
    # columns, so dx = outer((1, 2, 1, 1), (1, 2, 1, 1)) / 9
    _, cache = avg_pool2d_forward(np.zeros((1, 1, 4, 4)), kernel_size=3, stride=2, padding=1)
    dx = avg_pool2d_backward(np.ones((1, 1, 2, 2)), cache)
    assert_same(dx, as_nchw([[1, 2, 1, 1],
                             [2, 4, 2, 2],
                             [1, 2, 1, 1],
                             [1, 2, 1, 1]]) / 9)


def test_golden_avg_pool_values():
    # x[r, c] = 4r + c, 2x2/s2: the means of [[0,1],[4,5]] = 2.5, [[2,3],[6,7]] = 4.5, then 10.5, 12.5
    out, _ = avg_pool2d_forward(as_nchw(np.arange(16).reshape(4, 4)), kernel_size=2)
    assert_same(out, as_nchw([[2.5, 4.5],
                              [10.5, 12.5]]))


def test_golden_max_pool():
    # x[r, c] = 4r + c: 2x2/s2 windows' maxima are their bottom-right entries 5, 7, 13, 15
    x = as_nchw(np.arange(16).reshape(4, 4))
    out, cache = max_pool2d_forward(x, kernel_size=2, stride=2)
    assert_same(out, as_nchw([[5, 7],
                              [13, 15]]))
    # and the gradient goes back to exactly those positions: (1,1), (1,3), (3,1), (3,3)
    dx = max_pool2d_backward(as_nchw([[1, 2], [3, 4]]), cache)
    expected = np.zeros((4, 4))
    expected[1, 1], expected[1, 3], expected[3, 1], expected[3, 3] = 1, 2, 3, 4
    assert_same(dx, as_nchw(expected))


def test_golden_max_pool_padding_never_wins():
    # x = -(4r + c + 1): all negative. 3x3/s2/p1 -> 2x2; a zero-padded max would be 0 at every window.
    # out[0,0] = max over rows 0..1, cols 0..1 = -1;  out[0,1]: rows 0..1, cols 1..3 = -2
    # out[1,0]: rows 1..3, cols 0..1 = -5;           out[1,1]: rows 1..3, cols 1..3 = -6
    x = as_nchw(-(np.arange(16).reshape(4, 4) + 1))
    out, _ = max_pool2d_forward(x, kernel_size=3, stride=2, padding=1)
    assert_same(out, as_nchw([[-1, -2],
                              [-5, -6]]))


def test_golden_max_pool_tie_goes_to_first_in_row_major_order():
    # window [[1, 3], [3, 2]]: the maximum 3 sits at (0, 1) and (1, 0); (0, 1) comes first in row-major order
    _, cache = max_pool2d_forward(as_nchw([[1, 3], [3, 2]]), kernel_size=2)
    dx = max_pool2d_backward(as_nchw([[5.0]]), cache)
    assert_same(dx, as_nchw([[0, 5], [0, 0]]))


def test_golden_max_pool_all_ties_with_overlapping_windows():
    # ones(3x3), 2x2/s1: all four entries of every window tie, so each window's top-left entry wins:
    # window (i, j) sends dout[i, j] to x[i, j].
    _, cache = max_pool2d_forward(np.ones((1, 1, 3, 3)), kernel_size=2, stride=1)
    dx = max_pool2d_backward(as_nchw([[1, 2], [3, 4]]), cache)
    assert_same(dx, as_nchw([[1, 2, 0],
                             [3, 4, 0],
                             [0, 0, 0]]))


def test_golden_global_avg_pool():
    # x = 0..5 in one 2x3 plane: mean 2.5; the backward spreads dout = 6 as 6 / 6 = 1 everywhere
    out, cache = global_avg_pool2d_forward(as_nchw(np.arange(6).reshape(2, 3)))
    assert out.shape == (1, 1)
    assert_same(out, [[2.5]])
    assert_same(global_avg_pool2d_backward(np.array([[6.0]]), cache), np.ones((1, 1, 2, 3)))


@pytest.mark.parametrize("H, W, K, s, p, expected", [(112, 112, 3, 2, 1, (56, 56)), (7, 5, 3, 2, 1, (4, 3)),
                                                      (6, 6, 3, 2, 0, (2, 2)), (5, 7, 2, None, 0, (2, 3))])
def test_output_size_rounds_down(H, W, K, s, p, expected):
    # (H + 2p - K) // s + 1: (112 + 2 - 3) // 2 + 1 = 56; (7 + 2 - 3) // 2 + 1 = 4, (5 + 2 - 3) // 2 + 1 = 3;
    # (6 - 3) // 2 + 1 = 2; 2x2 with the default stride 2: 5 // 2 = 2, 7 // 2 = 3
    x = np.zeros((1, 1, H, W))
    assert max_pool2d_forward(x, kernel_size=K, stride=s, padding=p)[0].shape[2:] == expected
    assert avg_pool2d_forward(x, kernel_size=K, stride=s, padding=p)[0].shape[2:] == expected


# --------------------------------------------------------------------------------------------------------------
# 4. dtype in == dtype out
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pool", ["max", "avg", "global"])
def test_dtype_preserved(rng, pool, dtype):
    x = rng.standard_normal((2, 3, 7, 5)).astype(dtype)
    forward, backward = {"max": (max_pool2d_forward, max_pool2d_backward),
                         "avg": (avg_pool2d_forward, avg_pool2d_backward),
                         "global": (global_avg_pool2d_forward, global_avg_pool2d_backward)}[pool]
    opts = {} if pool == "global" else dict(kernel_size=3, stride=2, padding=1)
    out, cache = forward(x, **opts)
    dx = backward(np.ones_like(out), cache)
    assert out.dtype == dtype and dx.dtype == dtype
