"""Input checks shared by every layer.

Each check raises a ``TypeError`` or ``ValueError`` whose message names the layer, what it expected and what it
got, so a student sees ``conv2d: expected x to be 4-D (N, C, H, W), got shape (3, 32, 32)`` instead of a
broadcasting error from deep inside NumPy.
"""

from pathlib import Path

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))      # what every layer computes in


def check_float_array(layer, name, a, ndim=None, dtype=None, min_ndim=None):
    """Return ``a`` after checking it is a float ndarray with ``ndim`` (or at least ``min_ndim``) dimensions (and
    ``dtype``, if given)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{layer}: expected {name} to be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{layer}: expected {name} to have a float dtype (float32 or float64), got {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        layout = {1: "(C,)", 2: "(N, F)", 4: "(N, C, H, W)"}.get(ndim, "")
        raise ValueError(f"{layer}: expected {name} to be {ndim}-D {layout}, got shape {a.shape}")
    if min_ndim is not None and a.ndim < min_ndim:
        raise ValueError(f"{layer}: expected {name} with at least {min_ndim} dimensions (a batch axis first), "
                         f"got shape {a.shape}")
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


def check_cache(layer, cache, expected):
    """Refuse a backward pass that has no forward cache, or the cache of another layer (``expected``: its type, or
    a tuple of the types its forward pass may return)."""
    if cache is None:
        raise ValueError(f"{layer}: backward called before forward (expected the cache of a forward pass, "
                         f"got None); run the forward pass first")
    if not isinstance(cache, expected):
        names = " or ".join(t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,)))
        raise TypeError(f"{layer}: expected the {names} of a {layer} forward pass, got {type(cache).__name__}")
    return cache


def check_divisible(layer, name, value, groups):
    """Check that a channel count ``value`` splits into ``groups`` equal groups."""
    if value % groups:
        raise ValueError(f"{layer}: expected {name} to be divisible by groups={groups}, got {name}={value}")


def as_rng(rng, seed=None, name="rng"):
    """``rng`` itself, or ``np.random.default_rng(seed)`` when it is None (``seed=None``: a fresh unseeded one)."""
    if rng is None:
        return np.random.default_rng(seed)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"expected {name} to be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    return rng


def conv_out_size(layer, size, kernel, stride, padding, dim="H"):
    """Output length of a convolution or pooling window along one axis: ``(size + 2p - k) // s + 1``."""
    if kernel > size + 2 * padding:
        raise ValueError(f"{layer}: kernel size {kernel} is larger than the padded input along {dim} "
                         f"({size} + 2*{padding} = {size + 2 * padding})")
    return (size + 2 * padding - kernel) // stride + 1


def check_conv_args(layer, x, w, b, stride, padding, groups):
    """Validate a convolution call; return the normalised ``(stride, padding, groups, out_shape)``."""
    check_float_array(layer, "x", x, ndim=4)
    check_pixels(layer, x)
    check_float_array(layer, "w", w, ndim=4, dtype=x.dtype)
    stride = pair(layer, "stride", stride, 1)
    padding = pair(layer, "padding", padding, 0)
    groups = check_int(layer, "groups", groups, 1)
    N, C, H, W = x.shape
    F, C_g, KH, KW = w.shape
    check_divisible(layer, "in_channels", C, groups)
    check_divisible(layer, "out_channels", F, groups)
    if not _groups_fit(C, w.shape, groups):
        raise ValueError(f"{layer}: w of shape {w.shape} expects {C_g * groups} input channels "
                         f"(w.shape[1] * groups = {C_g} * {groups}), got x with {C} channels")
    if b is not None:
        check_float_array(layer, "b", b, ndim=1, dtype=x.dtype)
        check_shape(layer, "b", b, (F,))
    if KH < 1 or KW < 1:
        raise ValueError(f"{layer}: expected a kernel of at least 1x1, got w of shape {w.shape}")
    H_out = conv_out_size(layer, H, KH, stride[0], padding[0], "H")
    W_out = conv_out_size(layer, W, KW, stride[1], padding[1], "W")
    return stride, padding, groups, (N, F, H_out, W_out)


def _groups_fit(in_channels, w_shape, groups):
    """Whether ``groups`` splits ``in_channels`` and the ``w_shape[0]`` filters evenly, each filter seeing one group."""
    return in_channels % groups == 0 and w_shape[0] % groups == 0 and w_shape[1] * groups == in_channels


def check_conv_cache(layer, x_shape, w_shape, groups):
    """Refuse a convolution cache whose ``groups`` does not fit its own input and weight shapes (a cache edited
    after the forward pass would otherwise index the wrong channels, or none)."""
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1 \
            or not _groups_fit(x_shape[1], w_shape, groups):
        raise ValueError(f"{layer}: the cache is inconsistent (groups={groups!r}, but w has shape {tuple(w_shape)} "
                         f"and the input had {x_shape[1]} channels: expected w.shape[1] * groups == {x_shape[1]}); "
                         f"pass the cache of the forward pass unchanged")


def check_pixels(layer, x):
    """Refuse an input with an empty plane (``H == 0`` or ``W == 0``): nothing to average or pool over."""
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"{layer}: expected at least one pixel per channel (H, W >= 1), got x of shape {x.shape}")


def check_number(layer, name, value, low, high, *, low_open=False):
    """Return ``value`` as a float after checking it is a real number in ``[low, high]`` (``(low, high]``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{layer}: expected {name} to be a number, got {value!r}")
    value = float(value)
    ok = np.isfinite(value) and (value > low if low_open else value >= low) and value <= high
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}]"
        raise ValueError(f"{layer}: expected {name} in {interval}, got {value}")
    return value


def check_batchnorm_args(layer, x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """Validate a batch-norm call before anything is computed or updated; return ``(momentum, eps)``."""
    check_float_array(layer, "x", x, ndim=4)
    C = x.shape[1]
    if C == 0 or x.size == 0:
        raise ValueError(f"{layer}: expected a non-empty input with at least one channel, got shape {x.shape}")
    for name, v in (("gamma", gamma), ("beta", beta)):
        check_float_array(layer, name, v, ndim=1, dtype=x.dtype)
    if gamma.shape == beta.shape != (C,):
        raise ValueError(f"{layer}: expected x with {gamma.shape[0]} channels (the size of gamma and beta), "
                         f"got x of shape {x.shape}")
    for name, v in (("gamma", gamma), ("beta", beta)):
        if v.shape != (C,):
            raise ValueError(f"{layer}: expected {name} of shape ({C},), one value per channel of x, got {v.shape}")
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"{layer}: expected training to be True or False, got {training!r}")
    for name, v in (("running_mean", running_mean), ("running_var", running_var)):
        if v is None:
            continue
        check_float_array(layer, name, v, ndim=1)
        check_shape(layer, name, v, (C,))
        if training and not v.flags.writeable:
            raise ValueError(f"{layer}: expected a writeable {name} (training mode updates it in place), "
                             f"got a read-only array")
    if not training and (running_mean is None or running_var is None):
        raise ValueError(f"{layer}: eval mode (training=False) expects running_mean and running_var, got None")
    if training and x.shape[0] * x.shape[2] * x.shape[3] < 2:
        raise ValueError(f"{layer}: expected more than 1 value per channel in training mode, "
                         f"got input of shape {x.shape}")
    return check_number(layer, "momentum", momentum, 0, 1), check_number(layer, "eps", eps, 0, np.inf, low_open=True)


def check_pool_args(layer, x, kernel_size, stride, padding):
    """Validate a pooling call; return ``(kernel_size, stride, padding, (H_out, W_out))`` as pairs."""
    check_float_array(layer, "x", x, ndim=4)
    check_pixels(layer, x)
    kernel_size = pair(layer, "kernel_size", kernel_size, 1)
    stride = kernel_size if stride is None else pair(layer, "stride", stride, 1)
    padding = pair(layer, "padding", padding, 0)
    for k, p in zip(kernel_size, padding):
        if p > k // 2:
            raise ValueError(f"{layer}: expected padding at most half the kernel size ({k // 2}), got {p}")
    H_out = conv_out_size(layer, x.shape[2], kernel_size[0], stride[0], padding[0], "H")
    W_out = conv_out_size(layer, x.shape[3], kernel_size[1], stride[1], padding[1], "W")
    return kernel_size, stride, padding, (H_out, W_out)


def check_add_args(layer, x, y):
    """Validate the two inputs of a sum ``x + y`` (same shape and dtype: no broadcasting)."""
    check_float_array(layer, "x", x)
    check_float_array(layer, "y", y, dtype=x.dtype)
    check_shape(layer, "y", y, x.shape)


def check_concat_args(layer, a, b):
    """Validate the two inputs of ``concatenate([a, b], axis=1)``: NCHW, one dtype, the same N, H and W."""
    check_float_array(layer, "a", a, ndim=4)
    check_float_array(layer, "b", b, ndim=4, dtype=a.dtype)
    N, _, H, W = a.shape
    if b.shape[:1] + b.shape[2:] != (N, H, W):
        raise ValueError(f"{layer}: expected b of shape (N, C_b, H, W) = ({N}, C_b, {H}, {W}) like a, got {b.shape}")


def check_shuffle_args(layer, x, groups):
    """Validate a channel shuffle call; return ``groups``."""
    check_float_array(layer, "x", x, ndim=4)
    groups = check_int(layer, "groups", groups, 1)
    check_divisible(layer, "channels", x.shape[1], groups)
    return groups


def check_batchnorm_cache(layer, training, count, x_shape):
    """Refuse a batch-norm cache whose mode flag disagrees with the statistics it holds.

    ``count`` is the number of values per channel the statistics were taken over: ``N*H*W`` for batch statistics
    (training mode), 0 for the running statistics (eval mode).
    """
    N, C, H, W = x_shape
    if training is not (count == N * H * W) or count not in (0, N * H * W):
        raise ValueError(f"{layer}: the cache is inconsistent (training={training!r}, but its statistics were "
                         f"taken over {count} values per channel of an input of shape {tuple(x_shape)}); pass the "
                         f"cache of the forward pass unchanged")


def check_same_keys(who, expected, state, what):
    """Refuse a state dict that misses or adds entries; ``what`` says what ``expected`` holds."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise ValueError(f"{who}: expected {what}; missing {missing}, unexpected {unexpected}")


def check_out_dir(path, caller):
    """Refuse an output folder that is an existing file or lies under one; returns ``Path(path)``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{caller}: expected an output folder, got {path}, which is a file")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{caller}: expected an output folder, got {path}, which lies under the file "
                                 f"{parent}")
            break
    return path


def check_out_file(path, caller):
    """Refuse a file to write whose folder is missing or is a file; returns ``Path(path)``."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "does not exist"
        raise ValueError(f"{caller}: expected {path} in an existing folder, got the folder {folder}, which {what}")
    if path.is_dir():
        raise ValueError(f"{caller}: expected a file name, got {path}, which is a folder")
    return path
