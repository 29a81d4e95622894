"""Property tests over random configurations (hypothesis draws the shapes, strides, paddings and groups)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from numpy_shufflenet.functional import (channel_shuffle_backward, channel_shuffle_forward, conv2d_backward,
                                         conv2d_backward_naive, conv2d_forward, conv2d_forward_naive)


@st.composite
def conv_configs(draw):
    groups = draw(st.sampled_from([1, 2, 3]))
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(st.integers(0, 2))
    stride = draw(st.integers(1, 3))
    h = draw(st.integers(max(1, kh - 2 * padding), 7))
    w = draw(st.integers(max(1, kw - 2 * padding), 7))
    return dict(n=draw(st.integers(1, 2)), c_in=c_in, c_out=c_out, h=h, w=w, kernel=(kh, kw), stride=stride,
                padding=padding, groups=groups, bias=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))


@settings(max_examples=60, deadline=None)
@given(conv_configs())
def test_im2col_conv_equals_loop_conv_everywhere(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal((cfg["n"], cfg["c_in"], cfg["h"], cfg["w"]))
    w = rng.standard_normal((cfg["c_out"], cfg["c_in"] // cfg["groups"], *cfg["kernel"]))
    b = rng.standard_normal(cfg["c_out"]) if cfg["bias"] else None
    kw = dict(stride=cfg["stride"], padding=cfg["padding"], groups=cfg["groups"])
    out, cache = conv2d_forward(x, w, b, **kw)
    ref, ref_cache = conv2d_forward_naive(x, w, b, **kw)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-10)
    dout = rng.standard_normal(out.shape)
    for got, want in zip(conv2d_backward(dout, cache), conv2d_backward_naive(dout, ref_cache)):
        if want is None:
            assert got is None
        else:
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 3), st.integers(0, 2**16))
def test_shuffle_then_inverse_shuffle_is_identity(groups, n, hw, seed):
    x = np.random.default_rng(seed).standard_normal((2, groups * n, hw, hw))
    y, cache = channel_shuffle_forward(x, groups)
    back, _ = channel_shuffle_forward(y, n)
    np.testing.assert_array_equal(back, x)
    np.testing.assert_array_equal(channel_shuffle_backward(y, cache), x)     # backward = inverse permutation
