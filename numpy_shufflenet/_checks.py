"""Input checks shared by every layer.

Each check raises a ``TypeError`` or ``ValueError`` whose message names the layer, what it expected and what it
got, so a student sees ``conv2d: expected x to be 4-D (N, C, H, W), got shape (3, 32, 32)`` instead of a
broadcasting error from deep inside NumPy.
"""

import numpy as np


def check_float_array(layer, name, a, ndim=None, dtype=None):
    """Return ``a`` after checking it is a float ndarray with ``ndim`` dimensions (and ``dtype``, if given)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{layer}: expected {name} to be a numpy.ndarray, got {type(a).__name__}")
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"{layer}: expected {name} to have a float dtype (float32 or float64), got {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        layout = {1: "(C,)", 2: "(N, F)", 4: "(N, C, H, W)"}.get(ndim, "")
        raise ValueError(f"{layer}: expected {name} to be {ndim}-D {layout}, got shape {a.shape}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{layer}: expected {name} to have the same dtype as x ({dtype}), got {a.dtype}")
    return a


def check_shape(layer, name, a, shape):
    """Check ``a.shape == shape``."""
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"{layer}: expected {name} of shape {tuple(shape)}, got {tuple(a.shape)}")


def check_int(layer, name, value, minimum):
    """Return ``value`` after checking it is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{layer}: expected {name} to be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{layer}: expected {name} >= {minimum}, got {value}")
    return int(value)


def pair(layer, name, value, minimum):
    """Turn an int or a pair of ints into a checked ``(h, w)`` tuple."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{layer}: expected {name} to be an int or a pair of ints, got {value!r}")
        return tuple(check_int(layer, name, v, minimum) for v in value)
    v = check_int(layer, name, value, minimum)
    return (v, v)


def check_dout(layer, dout, out_shape, dtype=None):
    """Check the upstream gradient of a backward pass against the forward output's shape."""
    if not isinstance(dout, np.ndarray):
        raise TypeError(f"{layer}: expected dout to be a numpy.ndarray, got {type(dout).__name__}")
    if not np.issubdtype(dout.dtype, np.floating):
        raise TypeError(f"{layer}: expected dout to have a float dtype, got {dout.dtype}")
    if tuple(dout.shape) != tuple(out_shape):
        raise ValueError(f"{layer}: expected dout of the forward output's shape {tuple(out_shape)}, "
                         f"got {tuple(dout.shape)}")
    if dtype is not None and dout.dtype != dtype:
        dout = dout.astype(dtype)
    return dout


def check_cache(layer, cache):
    """Refuse a backward pass that has no forward cache."""
    if cache is None:
        raise ValueError(f"{layer}: backward called before forward (expected the cache of a forward pass, "
                         f"got None); run the forward pass first")
    return cache


def conv_out_size(layer, size, kernel, stride, padding, dim="H"):
    """Output length of a convolution or pooling window along one axis: ``(size + 2p - k) // s + 1``."""
    if kernel > size + 2 * padding:
        raise ValueError(f"{layer}: kernel size {kernel} is larger than the padded input along {dim} "
                         f"({size} + 2*{padding} = {size + 2 * padding})")
    return (size + 2 * padding - kernel) // stride + 1


def check_conv_args(layer, x, w, b, stride, padding, groups):
    """Validate a convolution call; return the normalised ``(stride, padding, groups, out_shape)``."""
    check_float_array(layer, "x", x, ndim=4)
    check_float_array(layer, "w", w, ndim=4, dtype=x.dtype)
    stride = pair(layer, "stride", stride, 1)
    padding = pair(layer, "padding", padding, 0)
    groups = check_int(layer, "groups", groups, 1)
    N, C, H, W = x.shape
    F, C_g, KH, KW = w.shape
    if C % groups:
        raise ValueError(f"{layer}: in_channels must be divisible by groups={groups}, got in_channels={C}")
    if F % groups:
        raise ValueError(f"{layer}: out_channels must be divisible by groups={groups}, got out_channels={F}")
    if C_g * groups != C:
        raise ValueError(f"{layer}: w of shape {w.shape} expects {C_g * groups} input channels "
                         f"(w.shape[1] * groups = {C_g} * {groups}), got x with {C} channels")
    if b is not None:
        check_float_array(layer, "b", b, ndim=1, dtype=x.dtype)
        check_shape(layer, "b", b, (F,))
    H_out = conv_out_size(layer, H, KH, stride[0], padding[0], "H")
    W_out = conv_out_size(layer, W, KW, stride[1], padding[1], "W")
    return stride, padding, groups, (N, F, H_out, W_out)
