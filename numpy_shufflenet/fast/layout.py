r"""Memory layout helpers: NCHW on the outside, channels-last (NHWC) memory on the inside.

Every public function takes and returns arrays of *shape* ``(N, C, H, W)``. Where the numbers sit in memory is
a separate question. The fast kernels keep them *channels-last*: ``x[n, c, h, w]`` at position
``((n*H + h)*W + w)*C + c``, which is what PyTorch calls ``torch.channels_last``. Such an array is an NCHW-shaped
*view* of a contiguous NHWC array::

    xh = np.empty((N, H, W, C))          # the memory, contiguous
    x = xh.transpose(0, 3, 1, 2)         # shape (N, C, H, W): indexing, maths and printing work as usual

Why bother? ShuffleNet has few channels per layer (24 to 960) and large planes. In NHWC,

* a 1x1 convolution is one matrix product ``(N*H*W, C_in) @ (C_in, C_out)`` per group, and the group's
  columns are a strided view that BLAS reads directly (no copies);
* a spatial tap (depthwise conv, pooling) is a shift along H or W, so the row ``(W*C numbers)`` is one long
  contiguous run. Per-channel vectors are *tiled* W times (:func:`tile_w`) so that NumPy's inner loop runs over
  all ``W*C`` numbers instead of stopping every ``C`` (``x * w[c]`` on an ``(N, H, W, C)`` array has an inner
  loop of only ``C`` numbers: broadcasting cannot merge W and C for the short operand);
* a stride-2 window becomes contiguous after splitting the padded columns into even and odd ones
  (:func:`pad_split`): output column ``j`` of tap ``q`` reads padded column ``2j + q``, which is column
  ``j + q // 2`` of the even (``q`` even) or odd (``q`` odd) array.

:func:`to_nhwc` costs nothing on an array that is already channels-last, and one copy otherwise (once, at the
network's input). Nothing here is needed for correctness: the loop reference
:mod:`~numpy_shufflenet.functional.conv_naive` computes the same numbers with plain NCHW indexing.
"""

import numpy as np


def to_nhwc(x):
    """The contiguous ``(N, H, W, C)`` array behind an ``(N, C, H, W)``-shaped ``x``: a view when ``x`` is already
    channels-last, else a copy. Never write into the result (it may be the caller's memory)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def from_nhwc(xh):
    """The ``(N, C, H, W)``-shaped view of a contiguous NHWC array (no copy)."""
    return xh.transpose(0, 3, 1, 2)


def tile_w(v, W):
    """Repeat per-channel values ``v`` (..., C) W times along the last axis: ``(..., W*C)``, matching one NHWC row
    ``x[n, h].ravel()``. The same as ``np.tile(v, W)`` for a vector, with one broadcast copy instead of
    ``np.tile``'s Python (a batch norm calls this five times, small networks hundreds of times a step)."""
    tiled = np.empty(v.shape[:-1] + (W, v.shape[-1]), dtype=v.dtype)
    tiled[...] = v[..., None, :]
    return tiled.reshape(v.shape[:-1] + (W * v.shape[-1],))


def fold_w(row_sums, C):
    """Add a length ``W*C`` vector of per-column sums up by channel: ``(W*C,) -> (C,)``.

    Summing an ``(M, C)`` view over ``M`` has an inner loop of C numbers (slow for C = 24); summing the
    ``(N*H, W*C)`` view over rows runs over long rows, and this folds the W partial sums of each channel.
    """
    return row_sums.reshape(-1, C).sum(axis=0)


def pad_split(xh, padding, stride, value=0.0, out=None):
    """Pad an NHWC array and split its padded columns by phase modulo ``stride``, in one copy.

    Returns ``phases``, a list of ``sw`` arrays; ``phases[r][n, i, k, c] == x_pad[n, i, r + k*sw, c]``, where
    ``x_pad`` is ``xh`` padded by ``padding = (ph, pw)`` with ``value`` on every side. With ``sw = 1`` this is
    just the padded array. Kernel tap ``q`` of output column ``j`` reads padded column ``j*sw + q``, which is
    ``phases[q % sw][:, :, j + q // sw]``: a contiguous run over ``j`` (see :func:`tap_rows`).
    ``out``, when given, is the list of arrays to fill (as :func:`phase_shapes` gives; e.g. one block of
    images of larger arrays).
    """
    (ph, pw), sw = padding, stride[1]
    N, H, W, C = xh.shape
    phases = []
    for r, shape in enumerate(phase_shapes(xh.shape, padding, stride)):
        width = shape[2]                                # padded columns r, r + sw, ... below Wp
        k0 = max(0, -(-(pw - r) // sw))                 # first phase column inside the image
        k1 = min(width, (W + pw - r - 1) // sw + 1)     # one past the last one
        p = np.empty(shape, dtype=xh.dtype) if out is None else out[r]
        p[:, :ph] = value
        p[:, ph + H:] = value
        p[:, ph:ph + H, :k0] = value
        p[:, ph:ph + H, k1:] = value
        if k1 > k0:
            start = r + k0 * sw - pw                    # the image column of phase column k0
            p[:, ph:ph + H, k0:k1] = xh[:, :, start:start + (k1 - k0 - 1) * sw + 1:sw]
        phases.append(p)
    return phases


def phase_shapes(x_shape_nhwc, padding, stride):
    """The shapes of the arrays :func:`pad_split` returns for an NHWC array of shape ``x_shape_nhwc``."""
    (ph, pw), sw = padding, stride[1]
    N, H, W, C = x_shape_nhwc
    return [(N, H + 2 * ph, -(-(W + 2 * pw - r) // sw), C) for r in range(sw)]


def merge_crop(dphases, padding, stride, x_shape_nhwc, out=None):
    """Adjoint of :func:`pad_split` (for backward passes): re-interleave the phases and drop the padding.

    Returns a new contiguous NHWC array of shape ``x_shape_nhwc`` (or fills ``out``, of that shape).
    """
    (ph, pw), sw = padding, stride[1]
    N, H, W, C = x_shape_nhwc
    dx = np.empty(x_shape_nhwc, dtype=dphases[0].dtype) if out is None else out
    for r, p in enumerate(dphases):
        width = p.shape[2]
        k0 = max(0, -(-(pw - r) // sw))
        k1 = min(width, (W + pw - r - 1) // sw + 1)
        if k1 > k0:
            start = r + k0 * sw - pw
            dx[:, :, start:start + (k1 - k0 - 1) * sw + 1:sw] = p[:, ph:ph + H, k0:k1]
    return dx


def tap_cols(phases, q, stride, W_out):
    """Column tap ``q`` of every padded row, as an ``(N, H_pad, W_out*C)`` view: padded columns
    ``q, q + sw, ..., q + sw*(W_out - 1)``, which are consecutive columns of phase ``q % sw``."""
    sw = stride[1]
    phase = phases[q % sw]
    N, Hp, Wr, C = phase.shape
    k = q // sw
    return phase.reshape(N, Hp, Wr * C)[:, :, k * C:(k + W_out) * C]


def strided_rows(a, p, stride, H_out):
    """Rows ``p, p + sh, ..., p + sh*(H_out - 1)`` of an ``(N, H_pad, ...)`` array (a view): the rows that
    kernel row ``p`` reads for each output row."""
    sh = stride[0]
    return a[:, p:p + sh * (H_out - 1) + 1:sh]


def tap_rows(phases, p, q, stride, out_hw):
    """Kernel tap ``(p, q)`` for every output pixel, as an ``(N, H_out, W_out*C)`` view of the phases.

    Rows ``p, p + sh, ...`` of :func:`tap_cols`: the last two axes of the tap merge into one contiguous run of
    ``W_out*C`` numbers, so NumPy's inner loop is long.
    """
    H_out, W_out = out_hw
    return strided_rows(tap_cols(phases, q, stride, W_out), p, stride, H_out)
