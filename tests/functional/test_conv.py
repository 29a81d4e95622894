"""2-D convolution: dense, grouped, pointwise group (1x1) and depthwise.

* every gradient (dx, dw, db) agrees with the numeric gradient;
* the loop version and the im2col version agree to 1e-10;
* a grouped convolution equals a dense one with a block-diagonal weight, and equals ``groups`` separate
  convolutions on channel slices; depthwise equals the general path;
* golden values computed by hand pin the conventions (padding on every side, no kernel flip, group blocks).
"""

import numpy as np
import pytest

from numpy_shufflenet.functional import (conv2d_backward, conv2d_backward_naive, conv2d_forward,
                                         conv2d_forward_naive)

from conftest import assert_same, check_gradient

# (x shape, out_channels, kernel (KH, KW), stride, padding, groups, bias); every x has at most ~300 numbers.
CONFIGS = [
    pytest.param((2, 3, 7, 5), 4, (3, 3), 1, 1, 1, True, id="dense-3x3-s1-p1-bias"),
    pytest.param((2, 3, 7, 5), 4, (3, 3), 2, 0, 1, False, id="dense-3x3-s2-p0"),
    pytest.param((1, 3, 7, 5), 2, (3, 3), 2, 2, 1, True, id="dense-3x3-s2-p2-bias"),
    pytest.param((2, 2, 7, 5), 3, (2, 3), (2, 1), (1, 0), 1, True, id="dense-2x3-s(2,1)-p(1,0)-bias"),
    pytest.param((2, 4, 7, 5), 6, (3, 3), 1, 1, 2, True, id="group2-3x3-s1-p1-bias"),
    pytest.param((1, 4, 7, 5), 4, (3, 2), 2, 2, 2, False, id="group2-3x2-s2-p2"),
    pytest.param((2, 6, 5, 5), 9, (1, 1), 1, 0, 3, False, id="pointwise-group3-s1"),
    pytest.param((2, 6, 7, 5), 3, (1, 1), 2, 0, 3, True, id="pointwise-group3-s2-bias"),
    pytest.param((2, 4, 7, 5), 4, (3, 3), 1, 1, 4, True, id="depthwise-3x3-s1-p1-bias"),
    pytest.param((2, 3, 7, 5), 3, (3, 3), 2, 1, 3, False, id="depthwise-3x3-s2-p1"),
    pytest.param((2, 3, 5, 7), 3, (3, 3), 2, 0, 3, True, id="depthwise-3x3-s2-p0-bias"),
    pytest.param((1, 4, 7, 5), 4, (5, 3), 1, (2, 1), 4, True, id="depthwise-5x3-s1-p(2,1)-bias"),
    pytest.param((1, 3, 7, 5), 6, (3, 3), 2, 0, 3, True, id="groups=C-multiplier2-s2-bias"),
]

# Extra configurations for the exact comparisons only (no numeric gradient, so they may be a little bigger).
EXTRA_CONFIGS = [
    pytest.param((2, 6, 9, 8), 6, (3, 3), 2, 1, 3, True, id="group3-3x3-s2-p1-9x8"),
    pytest.param((2, 6, 6, 6), 6, (1, 1), 1, 1, 2, True, id="pointwise-padded"),
    pytest.param((1, 2, 4, 3), 3, (6, 5), 1, 1, 1, True, id="kernel=padded-input"),
    pytest.param((2, 8, 9, 9), 8, (3, 3), 3, 2, 8, False, id="depthwise-s3-p2"),
    pytest.param((2, 3, 8, 8), 5, (4, 4), 2, 1, 1, False, id="dense-4x4-s2-even-input"),
]


def make_inputs(rng, x_shape, F, kernel, groups, bias, dtype=np.float64):
    """Random x, w, b (b None without bias) for one configuration."""
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((F, x_shape[1] // groups) + tuple(kernel)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype) if bias else None
    return x, w, b


# --------------------------------------------------------------------------------------------------------------
# 1. backward == numeric gradient
# --------------------------------------------------------------------------------------------------------------
IMPLEMENTATIONS = {"conv2d": (conv2d_forward, conv2d_backward),
                   "conv2d_naive": (conv2d_forward_naive, conv2d_backward_naive)}


# The loop version is checked on its own too (on fewer configurations: it is slow), so that a mistake the two
# versions share cannot hide in their comparison.
@pytest.mark.parametrize("name, x_shape, F, kernel, stride, padding, groups, bias",
                         [pytest.param("conv2d", *c.values, id=f"im2col-{c.id}") for c in CONFIGS]
                         + [pytest.param("conv2d_naive", *c.values, id=f"naive-{c.id}")
                            for c in CONFIGS[:3] + CONFIGS[8:10]])
def test_gradients_match_numeric(rng, name, x_shape, F, kernel, stride, padding, groups, bias):
    forward, backward = IMPLEMENTATIONS[name]
    x, w, b = make_inputs(rng, x_shape, F, kernel, groups, bias)
    opts = dict(stride=stride, padding=padding, groups=groups)
    out, cache = forward(x, w, b, **opts)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = backward(dout, cache)

    check_gradient(f"{name} dx", lambda v: forward(v, w, b, **opts)[0], x, dout, dx)
    check_gradient(f"{name} dw", lambda v: forward(x, v, b, **opts)[0], w, dout, dw)
    if bias:
        check_gradient(f"{name} db", lambda v: forward(x, w, v, **opts)[0], b, dout, db)
    else:
        assert db is None


# --------------------------------------------------------------------------------------------------------------
# 2. independent routes agree exactly
# --------------------------------------------------------------------------------------------------------------
def run_conv(forward, backward, x, w, b, dout_seed, **opts):
    """Forward and backward with a reproducible random dout; returns (out, dx, dw, db)."""
    out, cache = forward(x, w, b, **opts)
    dout = np.random.default_rng(dout_seed).standard_normal(out.shape)
    return (out,) + tuple(backward(dout, cache))


def assert_all_same(results_a, results_b):
    for a, b in zip(results_a, results_b):
        if a is None or b is None:
            assert a is None and b is None
        else:
            assert_same(a, b)


@pytest.mark.parametrize("x_shape, F, kernel, stride, padding, groups, bias", CONFIGS + EXTRA_CONFIGS)
def test_im2col_equals_loops(rng, x_shape, F, kernel, stride, padding, groups, bias):
    x, w, b = make_inputs(rng, x_shape, F, kernel, groups, bias)
    opts = dict(stride=stride, padding=padding, groups=groups)
    im2col = run_conv(conv2d_forward, conv2d_backward, x, w, b, 7, **opts)
    loops = run_conv(conv2d_forward_naive, conv2d_backward_naive, x, w, b, 7, **opts)
    assert_all_same(im2col, loops)


def block_diagonal(w, groups):
    """The dense weight ``(F, C, KH, KW)`` equivalent to a grouped weight: zeros outside the diagonal blocks."""
    F, C_g, KH, KW = w.shape
    F_g = F // groups
    dense = np.zeros((F, C_g * groups, KH, KW), dtype=w.dtype)
    for g in range(groups):
        dense[g * F_g:(g + 1) * F_g, g * C_g:(g + 1) * C_g] = w[g * F_g:(g + 1) * F_g]
    return dense


def diagonal_blocks(dense, groups):
    """Inverse of :func:`block_diagonal`: keep only the diagonal blocks, as a grouped weight."""
    F, C = dense.shape[:2]
    F_g, C_g = F // groups, C // groups
    return np.concatenate([dense[g * F_g:(g + 1) * F_g, g * C_g:(g + 1) * C_g] for g in range(groups)])


GROUPED = [p for p in CONFIGS + EXTRA_CONFIGS if p.values[5] > 1]


@pytest.mark.parametrize("x_shape, F, kernel, stride, padding, groups, bias", GROUPED)
def test_group_conv_equals_block_diagonal_dense_conv(rng, x_shape, F, kernel, stride, padding, groups, bias):
    """Also covers depthwise (groups = C): the dense weight sends it down the general im2col path."""
    x, w, b = make_inputs(rng, x_shape, F, kernel, groups, bias)
    opts = dict(stride=stride, padding=padding)
    out, dx, dw, db = run_conv(conv2d_forward, conv2d_backward, x, w, b, 3, groups=groups, **opts)
    out_d, dx_d, dw_d, db_d = run_conv(conv2d_forward, conv2d_backward, x, block_diagonal(w, groups), b, 3,
                                       groups=1, **opts)
    assert_same(out, out_d)
    assert_same(dx, dx_d)
    assert_same(dw, diagonal_blocks(dw_d, groups))
    assert_all_same([db], [db_d])


@pytest.mark.parametrize("x_shape, F, kernel, stride, padding, groups, bias", GROUPED)
def test_group_conv_equals_concatenated_per_group_convs(rng, x_shape, F, kernel, stride, padding, groups, bias):
    x, w, b = make_inputs(rng, x_shape, F, kernel, groups, bias)
    opts = dict(stride=stride, padding=padding)
    out, cache = conv2d_forward(x, w, b, groups=groups, **opts)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv2d_backward(dout, cache)

    C_g, F_g = x.shape[1] // groups, F // groups
    pieces = []
    for g in range(groups):
        cin, cout = slice(g * C_g, (g + 1) * C_g), slice(g * F_g, (g + 1) * F_g)
        b_g = None if b is None else b[cout]
        out_g, cache_g = conv2d_forward(x[:, cin], w[cout], b_g, groups=1, **opts)
        pieces.append((out_g,) + conv2d_backward(dout[:, cout], cache_g))
    assert_same(out, np.concatenate([p[0] for p in pieces], axis=1))
    assert_same(dx, np.concatenate([p[1] for p in pieces], axis=1))
    assert_same(dw, np.concatenate([p[2] for p in pieces], axis=0))
    if bias:
        assert_same(db, np.concatenate([p[3] for p in pieces]))


@pytest.mark.parametrize("C, stride, padding", [(4, 1, 1), (6, 2, 1), (5, 2, 0), (3, 1, 2)])
def test_depthwise_equals_general_grouped_path(rng, C, stride, padding):
    """groups = C (the depthwise path, a sum of shifted slices) == the same numbers through the general grouped path.

    The general im2col path is forced with a channel multiplier of 2 (groups = C but 2C output channels, which
    is not depthwise-shaped): output channel 2c uses channel c's depthwise weight, output 2c + 1 a zero weight.
    (test_group_conv_equals_block_diagonal_dense_conv compares depthwise with the dense path as well.)
    """
    x = rng.standard_normal((2, C, 7, 5))
    w = rng.standard_normal((C, 1, 3, 3))
    b = rng.standard_normal(C)
    out, cache = conv2d_forward(x, w, b, stride=stride, padding=padding, groups=C)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv2d_backward(dout, cache)

    w2 = np.zeros((2 * C, 1, 3, 3))
    w2[0::2] = w                                   # output 2c sees channel c with w[c]; output 2c+1 is zero
    b2 = np.zeros(2 * C)
    b2[0::2] = b
    out2, cache2 = conv2d_forward(x, w2, b2, stride=stride, padding=padding, groups=C)
    dout2 = np.zeros(out2.shape)
    dout2[:, 0::2] = dout
    dx2, dw2, db2 = conv2d_backward(dout2, cache2)
    assert_same(out, out2[:, 0::2])
    assert np.all(out2[:, 1::2] == 0)
    assert_same(dx, dx2)
    assert_same(dw, dw2[0::2])
    assert_same(db, db2[0::2])


# --------------------------------------------------------------------------------------------------------------
# 3. golden values, computed by hand
# --------------------------------------------------------------------------------------------------------------
def as_nchw(a):
    return np.asarray(a, dtype=np.float64)[None, None]


X123 = as_nchw([[1, 2, 3],
                [4, 5, 6],
                [7, 8, 9]])
W1234 = as_nchw([[1, 2],
                 [3, 4]])


@pytest.mark.parametrize("forward", [conv2d_forward, conv2d_forward_naive])
def test_golden_padding_on_every_side_and_no_kernel_flip(forward):
    # out[i, j] = sum_pq w[p, q] * x_pad[i + p, j + q], x_pad = x with one ring of zeros.
    # out[0, 0] = 4*x[0,0] = 4            (only w[1,1] lands on x: zeros on top and left)
    # out[0, 1] = 3*1 + 4*2 = 11          out[0, 2] = 3*2 + 4*3 = 18     out[0, 3] = 3*3 = 9
    # out[1, 0] = 2*1 + 4*4 = 18          out[1, 1] = 1*1 + 2*2 + 3*4 + 4*5 = 37
    # out[1, 2] = 1*2 + 2*3 + 3*5 + 4*6 = 47                             out[1, 3] = 1*3 + 3*6 = 21
    # out[2, 0] = 2*4 + 4*7 = 36          out[2, 1] = 4 + 10 + 21 + 32 = 67
    # out[2, 2] = 5 + 12 + 24 + 36 = 77                                  out[2, 3] = 6 + 27 = 33
    # out[3, 0] = 2*7 = 14                out[3, 1] = 7 + 16 = 23        out[3, 2] = 8 + 18 = 26   out[3, 3] = 9
    # (a flipped kernel would give out[0, 0] = 1; a total of 450 = sum(w) * sum(x) checks the arithmetic.)
    expected = as_nchw([[4, 11, 18, 9],
                        [18, 37, 47, 21],
                        [36, 67, 77, 33],
                        [14, 23, 26, 9]])
    out, _ = forward(X123, W1234, padding=1)
    assert_same(out, expected)


@pytest.mark.parametrize("forward", [conv2d_forward, conv2d_forward_naive])
def test_golden_stride_2(forward):
    # x[r, c] = 4r + c (4x4), w = [[1, 2], [3, 4]], stride 2, no padding. With v = x[2i, 2j]:
    # out = v + 2(v + 1) + 3(v + 4) + 4(v + 5) = 10v + 34, and v = 0, 2, 8, 10.
    x = as_nchw(np.arange(16).reshape(4, 4))
    out, _ = forward(x, W1234, stride=2)
    assert_same(out, as_nchw([[34, 54],
                              [114, 134]]))


@pytest.mark.parametrize("forward", [conv2d_forward, conv2d_forward_naive])
def test_golden_stride_2_padding_1_pads_top_left_too(forward):
    # x = ones(4x4), w = [[1,2,3],[4,5,6],[7,8,9]], stride 2, padding 1 -> 2x2 output.
    # out[0,0]: window rows -1..1, cols -1..1: only w[1:, 1:] sees ones: 5+6+8+9 = 28
    # out[0,1]: rows -1..1, cols 1..3: w[1:, :] = 4+5+6+7+8+9 = 39
    # out[1,0]: rows 1..3, cols -1..1: w[:, 1:] = 2+3+5+6+8+9 = 33
    # out[1,1]: all of w = 45        (padding only bottom/right would give 45 at [0, 0])
    w = as_nchw(np.arange(1, 10).reshape(3, 3))
    out, _ = forward(np.ones((1, 1, 4, 4)), w, stride=2, padding=1)
    assert_same(out, as_nchw([[28, 39],
                              [33, 45]]))


@pytest.mark.parametrize("forward, backward", [(conv2d_forward, conv2d_backward),
                                               (conv2d_forward_naive, conv2d_backward_naive)])
def test_golden_backward(forward, backward):
    # x = [[1..9]] (3x3), w = [[1, 2], [3, 4]], no padding, dout = ones(2x2).
    # dw[p, q] = sum_ij x[i+p, j+q] = the 2x2 block sums: 1+2+4+5 = 12, 2+3+5+6 = 16, 4+5+7+8 = 24, 5+6+8+9 = 28
    # dx[r, c] = sum of the w[p, q] with (r - p, c - q) a valid output position:
    #   corners see one tap (1, 2, 3, 4), edges two (1+2 = 3, 1+3 = 4, 2+4 = 6, 3+4 = 7), the centre all four (10)
    # db = sum(dout) = 4
    out, cache = forward(X123, W1234, np.zeros(1))
    dx, dw, db = backward(np.ones_like(out), cache)
    assert_same(dw, as_nchw([[12, 16],
                             [24, 28]]))
    assert_same(dx, as_nchw([[1, 3, 2],
                             [4, 10, 6],
                             [3, 7, 4]]))
    assert_same(db, [4.0])


@pytest.mark.parametrize("forward", [conv2d_forward, conv2d_forward_naive])
def test_golden_group_blocks(forward):
    # 4 input channels of constant value 1, 2, 3, 4; groups = 2; 1x1 weight (2, 2, 1, 1) = [[1, 10], [100, 1000]].
    # Output channel 0 belongs to group 0 and sees input channels 0, 1:  1*1 + 10*2      = 21
    # Output channel 1 belongs to group 1 and sees input channels 2, 3:  100*3 + 1000*4  = 4300
    x = np.ones((1, 4, 2, 2)) * np.array([1.0, 2, 3, 4])[None, :, None, None]
    w = np.array([[1.0, 10], [100, 1000]]).reshape(2, 2, 1, 1)
    out, _ = forward(x, w, groups=2)
    assert_same(out, np.ones((1, 2, 2, 2)) * np.array([21.0, 4300])[None, :, None, None])


@pytest.mark.parametrize("H, W, K, s, p, expected", [(7, 5, 3, 2, 1, (4, 3)), (224, 224, 3, 2, 1, (112, 112)),
                                                      (6, 6, 3, 2, 0, (2, 2)), (5, 5, 1, 2, 0, (3, 3))])
def test_output_size_rounds_down(H, W, K, s, p, expected):
    # (H + 2p - K) // s + 1: (7 + 2 - 3) // 2 + 1 = 4, (5 + 2 - 3) // 2 + 1 = 3; (224 + 2 - 3) // 2 + 1 = 112;
    # (6 - 3) // 2 + 1 = 2; (5 - 1) // 2 + 1 = 3
    out, _ = conv2d_forward(np.zeros((1, 1, H, W)), np.zeros((1, 1, K, K)), stride=s, padding=p)
    assert out.shape[2:] == expected


# --------------------------------------------------------------------------------------------------------------
# 4. an empty batch, as PyTorch: an empty output, an empty dx, zero dw and db
# --------------------------------------------------------------------------------------------------------------
EMPTY_BATCH_CONFIGS = [CONFIGS[0], CONFIGS[4], CONFIGS[6], CONFIGS[8], CONFIGS[12], EXTRA_CONFIGS[1]]


@pytest.mark.parametrize("x_shape, F, kernel, stride, padding, groups, bias", EMPTY_BATCH_CONFIGS)
@pytest.mark.parametrize("name", list(IMPLEMENTATIONS))
def test_an_empty_batch_gives_an_empty_output_and_zero_weight_gradients(rng, name, x_shape, F, kernel, stride,
                                                                        padding, groups, bias):
    forward, backward = IMPLEMENTATIONS[name]
    x, w, b = make_inputs(rng, (0,) + x_shape[1:], F, kernel, groups, bias)
    opts = dict(stride=stride, padding=padding, groups=groups)
    out, cache = forward(x, w, b, **opts)
    one_image, _ = forward(rng.standard_normal((1,) + x_shape[1:]), w, b, **opts)
    assert out.shape == (0,) + one_image.shape[1:] and out.dtype == x.dtype
    dx, dw, db = backward(np.zeros(out.shape), cache)
    assert dx.shape == x.shape and dx.dtype == x.dtype
    assert_same(dw, np.zeros(w.shape))                # a sum over no images (PyTorch's F.conv2d gives the same)
    if bias:
        assert_same(db, np.zeros(F))
    else:
        assert db is None


# --------------------------------------------------------------------------------------------------------------
# 5. dtype in == dtype out
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, F, kernel, stride, padding, groups, bias",
                         [CONFIGS[0], CONFIGS[4], CONFIGS[6], CONFIGS[8], CONFIGS[12]])
@pytest.mark.parametrize("forward, backward", [(conv2d_forward, conv2d_backward),
                                               (conv2d_forward_naive, conv2d_backward_naive)], ids=["im2col", "naive"])
def test_dtype_preserved(rng, forward, backward, dtype, x_shape, F, kernel, stride, padding, groups, bias):
    x, w, b = make_inputs(rng, x_shape, F, kernel, groups, bias, dtype)
    out, cache = forward(x, w, b, stride=stride, padding=padding, groups=groups)
    grads = backward(np.ones_like(out), cache)
    assert out.dtype == dtype
    assert all(g.dtype == dtype for g in grads if g is not None)
    if dtype == np.float32:         # and the float32 numbers are the float64 ones, rounded
        out64, _ = forward(x.astype(np.float64), w.astype(np.float64), None if b is None else b.astype(np.float64),
                           stride=stride, padding=padding, groups=groups)
        np.testing.assert_allclose(out, out64, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("x_shape, F, kernel, stride, padding, groups, bias", [
    ((2, 3, 7, 7), 6, 3, 2, 1, 1, True),                 # a stem: dense 3x3, stride 2
    ((2, 6, 5, 5), 6, 3, 1, 1, 6, False),                # depthwise
    ((2, 6, 4, 4), 9, 1, 1, 0, 3, False),                # pointwise group
])
def test_need_dx_false_skips_only_dx(rng, x_shape, F, kernel, stride, padding, groups, bias):
    """A network's first layer needs no dx: ``need_dx=False`` gives None for it and the same dw and db."""
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((F, x_shape[1] // groups, kernel, kernel))
    b = rng.standard_normal(F) if bias else None
    out, cache = conv2d_forward(x, w, b, stride=stride, padding=padding, groups=groups)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv2d_backward(dout, cache)
    none, dw_only, db_only = conv2d_backward(dout, cache, need_dx=False)
    assert dx.shape == x.shape and none is None
    np.testing.assert_array_equal(dw_only, dw)
    assert (db_only is None) == (db is None) and (db is None or np.array_equal(db_only, db))
