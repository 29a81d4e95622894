"""Channel shuffle (paper Sec. 3.1): reshape channels to (groups, C // groups), transpose, flatten."""

import numpy as np
import pytest

from numpy_shufflenet.functional import channel_shuffle_backward, channel_shuffle_forward, channel_shuffle_indices

from conftest import check_gradient

# (C, groups) pairs: ShuffleNet's own group counts, plus the trivial groups = 1 and groups = C
CASES = [(12, 3), (6, 2), (8, 4), (16, 8), (6, 1), (6, 6), (9, 3), (10, 5)]


def channel_index_input(N, C, H=2, W=3):
    """x[n, c, h, w] = c: each channel holds its own index, so the output shows where every channel went."""
    return np.broadcast_to(np.arange(C, dtype=np.float64)[None, :, None, None], (N, C, H, W)).copy()


# --------------------------------------------------------------------------------------------------------------
# golden values: the shuffle direction
# --------------------------------------------------------------------------------------------------------------
def test_golden_paper_indices():
    # channels 0..11 as 3 groups of 4:   [0 1 2 3 | 4 5 6 7 | 8 9 10 11]
    # reshape (3, 4), transpose (4, 3):  [0 4 8], [1 5 9], [2 6 10], [3 7 11], then flatten
    assert channel_shuffle_indices(12, 3).tolist() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    # 8 channels in 2 groups: [0 1 2 3 | 4 5 6 7] -> [0 4 1 5 2 6 3 7]
    assert channel_shuffle_indices(8, 2).tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


def test_golden_official_indices_are_the_inverse_permutation():
    # official order: reshape (4, 3), transpose (3, 4): [0 3 6 9], [1 4 7 10], [2 5 8 11]
    official = channel_shuffle_indices(12, 3, order="official")
    assert official.tolist() == [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]
    paper = channel_shuffle_indices(12, 3)
    assert official[paper].tolist() == list(range(12))        # official o paper = identity
    assert paper[official].tolist() == list(range(12))


@pytest.mark.parametrize("C, groups", CASES)
def test_official_is_the_inverse_of_paper(C, groups):
    paper = channel_shuffle_indices(C, groups)
    official = channel_shuffle_indices(C, groups, order="official")
    assert np.array_equal(official[paper], np.arange(C))
    assert np.array_equal(official, channel_shuffle_indices(C, C // groups))   # = the shuffle with C // g groups


def test_golden_forward_direction():
    # out[:, k] = x[:, perm[k]], with x holding channel indices: out's channels read 0 4 8 1 5 9 2 6 10 3 7 11
    out, _ = channel_shuffle_forward(channel_index_input(2, 12), 3)
    assert out[0, :, 0, 0].tolist() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    assert np.all(out == out[:, :, :1, :1])                  # each channel moved whole


def test_golden_backward_direction():
    # the gradient of output channel k goes back to input channel perm[k]:
    # dout[:, k] = k  ->  dx[:, perm[k]] = k, i.e. dx's channels read the inverse permutation 0 3 6 9 1 4 ...
    _, cache = channel_shuffle_forward(np.zeros((1, 12, 2, 3)), 3)
    dx = channel_shuffle_backward(channel_index_input(1, 12), cache)
    assert dx[0, :, 0, 0].tolist() == [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]


# --------------------------------------------------------------------------------------------------------------
# properties: a permutation, undone by the shuffle with C // groups groups
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("C, groups", CASES)
def test_forward_matches_indices(rng, C, groups):
    x = rng.standard_normal((2, C, 3, 2))
    out, _ = channel_shuffle_forward(x, groups)
    assert np.array_equal(out, x[:, channel_shuffle_indices(C, groups)])


@pytest.mark.parametrize("C, groups", CASES)
def test_shuffle_then_shuffle_with_c_over_g_is_identity(rng, C, groups):
    x = rng.standard_normal((2, C, 3, 2))
    once, _ = channel_shuffle_forward(x, groups)
    back, _ = channel_shuffle_forward(once, C // groups)
    assert np.array_equal(back, x)
    if 1 < groups < C:
        assert not np.array_equal(once, x)          # the shuffle itself does move channels


@pytest.mark.parametrize("C, groups", CASES)
def test_backward_is_the_inverse_shuffle(rng, C, groups):
    x = rng.standard_normal((2, C, 3, 2))
    _, cache = channel_shuffle_forward(x, groups)
    dout = rng.standard_normal(x.shape)
    dx = channel_shuffle_backward(dout, cache)
    assert np.array_equal(dx, channel_shuffle_forward(dout, C // groups)[0])
    inverse = np.argsort(channel_shuffle_indices(C, groups))
    assert np.array_equal(dx, dout[:, inverse])
    # adjoint: <shuffle(x), dout> == <x, backward(dout)>
    np.testing.assert_allclose(np.sum(channel_shuffle_forward(x, groups)[0] * dout), np.sum(x * dx), rtol=1e-12)


@pytest.mark.parametrize("groups", [1, 3, 12])
def test_returns_new_arrays(rng, groups):
    """Even when the shuffle moves nothing (groups = 1 or C), the result must not be a view of the input."""
    x = rng.standard_normal((2, 12, 2, 2))
    out, cache = channel_shuffle_forward(x, groups)
    dout = rng.standard_normal(out.shape)
    dx = channel_shuffle_backward(dout, cache)
    assert not np.shares_memory(out, x)
    assert not np.shares_memory(dx, dout)


# --------------------------------------------------------------------------------------------------------------
# 1. backward == numeric gradient
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("C, groups", [(12, 3), (6, 2), (8, 4), (9, 3)])
def test_gradient_matches_numeric(rng, C, groups):
    x = rng.standard_normal((2, C, 3, 2))
    out, cache = channel_shuffle_forward(x, groups)
    dout = rng.standard_normal(out.shape)
    dx = channel_shuffle_backward(dout, cache)
    check_gradient("channel_shuffle dx", lambda v: channel_shuffle_forward(v, groups)[0], x, dout, dx)


# --------------------------------------------------------------------------------------------------------------
# 4. dtype in == dtype out
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(rng, dtype):
    x = rng.standard_normal((2, 6, 3, 3)).astype(dtype)
    out, cache = channel_shuffle_forward(x, 3)
    dx = channel_shuffle_backward(np.ones_like(out), cache)
    assert out.dtype == dtype and dx.dtype == dtype
