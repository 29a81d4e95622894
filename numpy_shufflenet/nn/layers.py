"""The layers of ShuffleNet as modules: thin wrappers that hold weights and call a forward/backward pair of the
active kernel set (:func:`numpy_shufflenet.use_kernels`: the tuned :mod:`numpy_shufflenet.fast` by default, the
textbook :mod:`numpy_shufflenet.functional` with ``use_kernels("reference")``, or your own functions).

Three layers are two of the paper's operations that always come one after the other, each calling the fused
pair of the same name (:mod:`numpy_shufflenet.functional.fused`): ``BatchNormReLU2d`` (the "BN ReLU" box of
paper Fig. 2), ``AddReLU`` and ``ConcatReLU`` (the "Add" or "Concat" and the "ReLU" that end a ShuffleNet unit).

Initial weights (``rng`` is a ``numpy.random.Generator``; pass one for reproducible weights, otherwise a fresh
unseeded generator is used):

* ``Conv2d``: He / Kaiming normal, ``w ~ N(0, 2 / fan_in)`` with ``fan_in = in_channels // groups * KH * KW``
  (a depthwise 3x3 has fan_in 9), which keeps activations at a steady scale through ReLU layers.
* ``Linear``: ``w ~ N(0, 1 / in_features)`` (no ReLU follows the classifier), or ``N(0, init_std^2)`` when
  ``init_std`` is given; bias zero.
* ``BatchNorm2d``: ``gamma = 1``, ``beta = 0``, ``running_mean = 0``, ``running_var = 1``.

Parameters are float32 unless ``dtype`` says otherwise; ``module.to(np.float64)`` converts a whole network.
"""

import numpy as np

from .._checks import (FLOAT_DTYPES, as_rng, check_divisible, check_float_array, check_int, check_number,
                       conv_out_size, pair)
from .module import Module, Parameter, check_input_dtype


def _float_dtype(layer, dtype):
    """The parameters' dtype: float32 or float64, or a clear TypeError."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{layer}: expected dtype float32 or float64, got {dtype!r}") from None
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{layer}: expected dtype float32 or float64, got {dtype}")
    return dtype


class Conv2d(Module):
    """2-D convolution, weight ``(out_channels, in_channels // groups, KH, KW)``; ``groups=in_channels`` is
    depthwise, a 1x1 kernel with ``groups=g`` is a pointwise group convolution."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1, bias=False, *,
                 rng=None, dtype=np.float32):
        super().__init__()
        self.in_channels = check_int("Conv2d", "in_channels", in_channels, 1)
        self.out_channels = check_int("Conv2d", "out_channels", out_channels, 1)
        self.kernel_size = pair("Conv2d", "kernel_size", kernel_size, 1)
        self.stride = pair("Conv2d", "stride", stride, 1)
        self.padding = pair("Conv2d", "padding", padding, 0)
        self.groups = check_int("Conv2d", "groups", groups, 1)
        check_divisible("Conv2d", "in_channels", self.in_channels, self.groups)
        check_divisible("Conv2d", "out_channels", self.out_channels, self.groups)
        dtype = _float_dtype("Conv2d", dtype)
        fan_in = in_channels // groups * self.kernel_size[0] * self.kernel_size[1]
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter((as_rng(rng).standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype))
        self.bias = Parameter(np.zeros(out_channels, dtype=dtype)) if bias else None

    def forward(self, x):
        check_input_dtype(self, x, self.weight.dtype)
        b = None if self.bias is None else self.bias.data
        return self._run("conv2d", x, self.weight.data, b, stride=self.stride, padding=self.padding,
                         groups=self.groups)

    def backward(self, dout, *, input_grad=True):
        dx, self.weight.grad, db = self._run_backward(dout, need_dx=input_grad)     # dx is None without input_grad
        if self.bias is not None:
            self.bias.grad = db
        return dx

    def output_shape(self, input_shape):
        C, H, W = input_shape
        if C != self.in_channels:
            raise ValueError(f"Conv2d: expected {self.in_channels} input channels, got input shape {input_shape}")
        (KH, KW), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (self.out_channels, conv_out_size("Conv2d", H, KH, sh, ph, "H"),
                conv_out_size("Conv2d", W, KW, sw, pw, "W"))

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")


class BatchNorm2d(Module):
    """Batch normalisation of each channel; batch statistics in training mode, running statistics in eval mode."""

    buffer_names = ("running_mean", "running_var")
    pair_name = "batchnorm2d"     # the kernel pair it runs (BatchNormReLU2d: "batchnorm2d_relu")

    def __init__(self, num_features, momentum=0.1, eps=1e-5, *, rng=None, dtype=np.float32):
        super().__init__()
        name = type(self).__name__
        self.num_features = check_int(name, "num_features", num_features, 1)
        dtype = _float_dtype(name, dtype)
        self.momentum = check_number(name, "momentum", momentum, 0, 1)
        self.eps = check_number(name, "eps", eps, 0, np.inf, low_open=True)
        self.weight = Parameter(np.ones(num_features, dtype=dtype))     # gamma
        self.bias = Parameter(np.zeros(num_features, dtype=dtype))      # beta
        self.running_mean = np.zeros(num_features, dtype=dtype)
        self.running_var = np.ones(num_features, dtype=dtype)

    def forward(self, x):
        check_input_dtype(self, x, self.weight.dtype)
        return self._run(self.pair_name, x, self.weight.data, self.bias.data, running_mean=self.running_mean,
                         running_var=self.running_var, training=self.training, momentum=self.momentum, eps=self.eps)

    def backward(self, dout, *, input_grad=True):
        dx, self.weight.grad, self.bias.grad = self._run_backward(dout)
        return dx if input_grad else None

    def output_shape(self, input_shape):
        if input_shape[0] != self.num_features:
            raise ValueError(f"{type(self).__name__}: expected {self.num_features} channels, got input shape "
                             f"{input_shape}")
        return tuple(input_shape)

    def extra_repr(self):
        return f"{self.num_features}, momentum={self.momentum}, eps={self.eps}"


class BatchNormReLU2d(BatchNorm2d):
    """Batch norm followed by a ReLU, ``relu(batchnorm2d(x))``, as one layer: the "BN ReLU" box of paper Fig. 2
    (PyTorch has the same fused layer, ``torch.ao.nn.intrinsic.BNReLU2d``).

    It holds what a ``BatchNorm2d`` holds (``weight``, ``bias``, the running statistics, so the same state-dict
    entries) and runs the pair ``batchnorm2d_relu``. In the textbook that pair is the batch-norm pair and the ReLU
    pair one after the other (:mod:`numpy_shufflenet.functional.fused`); the fast kernels do both in one pass
    over memory, which is why the network builds its BN + ReLU as this one layer.
    """

    pair_name = "batchnorm2d_relu"


class ChannelShuffle(Module):
    """Channel shuffle with ``groups`` groups (paper Sec. 3.1); no parameters."""

    def __init__(self, groups):
        super().__init__()
        self.groups = check_int("ChannelShuffle", "groups", groups, 1)

    def forward(self, x):
        return self._run("channel_shuffle", x, self.groups)

    def backward(self, dout, *, input_grad=True):
        return self._run_backward(dout) if input_grad else None

    def output_shape(self, input_shape):
        check_divisible("ChannelShuffle", "channels", input_shape[0], self.groups)
        return tuple(input_shape)

    def extra_repr(self):
        return f"groups={self.groups}"


class ReLU(Module):
    """``max(x, 0)`` element by element; the gradient passes where ``x > 0`` (and at NaN, as PyTorch)."""

    def forward(self, x):
        return self._run("relu", x)

    def backward(self, dout, *, input_grad=True):
        return self._run_backward(dout) if input_grad else None

    def output_shape(self, input_shape):
        return tuple(input_shape)


class AddReLU(ReLU):
    """``relu(x + y)``: a residual connection and the ReLU after it (the "Add" and "ReLU" of paper Fig. 2 b).

    ``forward(x, y)`` runs the pair ``add_relu``; ``backward(dout)`` returns ``(dx, dy)``, the gradients of both
    inputs (the same array: the sum passes its gradient to each unchanged). In the shape tables it is the ReLU
    of the unit, with the shape of its output.
    """

    def forward(self, x, y):
        return self._run("add_relu", x, y)


class ConcatReLU(ReLU):
    """``relu(concatenate([a, b], axis=1))``: the "Concat" and "ReLU" of paper Fig. 2 c.

    ``forward(a, b)`` runs the pair ``concat_relu``; ``backward(dout)`` returns ``(da, db)``, the gradient cut
    into the channels of ``a`` and those of ``b``. In the shape tables it is the ReLU of the unit, with the shape
    of its output.
    """

    def forward(self, a, b):
        return self._run("concat_relu", a, b)


class _Pool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = pair(name, "kernel_size", kernel_size, 1)
        self.stride = self.kernel_size if stride is None else pair(name, "stride", stride, 1)
        self.padding = pair(name, "padding", padding, 0)

    def output_shape(self, input_shape):
        C, H, W = input_shape
        name = type(self).__name__
        (KH, KW), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (C, conv_out_size(name, H, KH, sh, ph, "H"), conv_out_size(name, W, KW, sw, pw, "W"))

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    def forward(self, x):
        return self._run("max_pool2d", x, kernel_size=self.kernel_size, stride=self.stride, padding=self.padding)

    def backward(self, dout, *, input_grad=True):
        return self._run_backward(dout) if input_grad else None


class AvgPool2d(_Pool2d):
    """Average pooling with ``count_include_pad=True`` (PyTorch's default)."""

    def forward(self, x):
        return self._run("avg_pool2d", x, kernel_size=self.kernel_size, stride=self.stride, padding=self.padding)

    def backward(self, dout, *, input_grad=True):
        return self._run_backward(dout) if input_grad else None


class GlobalAvgPool2d(Module):
    """Mean over each channel's plane: ``(N, C, H, W) -> (N, C)``; works on any spatial size."""

    def forward(self, x):
        return self._run("global_avg_pool2d", x)

    def backward(self, dout, *, input_grad=True):
        return self._run_backward(dout) if input_grad else None

    def output_shape(self, input_shape):
        return (input_shape[0],)


class Flatten(Module):
    """``(N, C, H, W) -> (N, C*H*W)`` (a view); backward reshapes the gradient back."""

    def forward(self, x):
        check_float_array("Flatten", "x", x, min_ndim=2)
        self._cache = x.shape
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))       # (0, C*H*W) for an empty batch too

    def backward(self, dout, *, input_grad=True):
        x_shape = self._take_cache()
        return dout.reshape(x_shape) if input_grad else None

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)


class Linear(Module):
    """Fully connected layer, weight ``(out_features, in_features)``."""

    def __init__(self, in_features, out_features, bias=True, *, rng=None, dtype=np.float32, init_std=None):
        super().__init__()
        self.in_features = check_int("Linear", "in_features", in_features, 1)
        self.out_features = check_int("Linear", "out_features", out_features, 1)
        dtype = _float_dtype("Linear", dtype)
        std = np.sqrt(1.0 / in_features) if init_std is None else check_number("Linear", "init_std", init_std, 0,
                                                                                 np.inf)
        w = as_rng(rng).standard_normal((out_features, in_features)) * std
        self.weight = Parameter(w.astype(dtype))
        self.bias = Parameter(np.zeros(out_features, dtype=dtype)) if bias else None

    def forward(self, x):
        check_input_dtype(self, x, self.weight.dtype)
        b = None if self.bias is None else self.bias.data
        return self._run("linear", x, self.weight.data, b)

    def backward(self, dout, *, input_grad=True):
        dx, self.weight.grad, db = self._run_backward(dout)
        if self.bias is not None:
            self.bias.grad = db
        return dx if input_grad else None

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(f"Linear: expected input shape ({self.in_features},), got {tuple(input_shape)}")
        return (self.out_features,)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class CeilMaxPool2d(MaxPool2d):
    """Max pooling whose output size rounds *up*: PyTorch's ``MaxPool2d(..., ceil_mode=True)``, Caffe's pooling.

    GoogLeNet and SqueezeNet were defined in Caffe, whose pooling layers round the output size up:
    ``H_out = ceil((H + 2p - k) / s) + 1`` (minus one if the last window would start in the padding), so a
    3x3 stride-2 pool takes SqueezeNet's 54x54 maps to 27x27 where rounding down gives 26x26. The last window
    then hangs over the bottom and right edges; it is filled with ``-inf`` there, so it takes the maximum of
    the pixels it does cover. Backward crops the gradient back to the input's size.
    """

    def _extra(self, H, W):
        """Rows and columns of ``-inf`` to add at the bottom and right so that every output window fits."""
        out_h, out_w = self.output_shape((1, H, W))[1:]
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (max(0, (out_h - 1) * sh + kh - (H + 2 * ph)), max(0, (out_w - 1) * sw + kw - (W + 2 * pw)))

    def forward(self, x):
        check_float_array("CeilMaxPool2d", "x", x, ndim=4)
        extra_h, extra_w = self._extra(*x.shape[2:])
        padded = np.pad(x, ((0, 0), (0, 0), (0, extra_h), (0, extra_w)), constant_values=-np.inf)
        out = super().forward(padded)
        self._crop = x.shape
        return out

    def backward(self, dout, *, input_grad=True):
        if not input_grad:
            return None
        dx = super().backward(dout)
        _, _, H, W = self._crop
        return dx[:, :, :H, :W]

    def output_shape(self, input_shape):
        C, H, W = input_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        sizes = []
        for size, k, s, p in ((H, kh, sh, ph), (W, kw, sw, pw)):
            if k > size + 2 * p:
                raise ValueError(f"CeilMaxPool2d: kernel size {k} is larger than the padded input "
                                 f"({size} + 2*{p} = {size + 2 * p})")
            out = -(-(size + 2 * p - k) // s) + 1
            if (out - 1) * s >= size + p:              # the last window would start in the padding
                out -= 1
            sizes.append(out)
        return (C, *sizes)


