"""``Parameter`` and ``Module``: the small amount of machinery that turns the pure functions of
:mod:`numpy_shufflenet.functional` into layers that hold their weights.

A module keeps the cache of its last forward pass; ``backward(dout)`` uses it, writes a *fresh* ``.grad`` into
each of its parameters (nothing accumulates across calls) and returns ``dx``. Every module's backward takes the
keyword ``input_grad``: ``backward(dout, input_grad=False)`` still fills the ``.grad`` of its parameters but
returns None, and may skip computing ``dx`` (a network's first convolution then skips its largest product).
Parameters and sub-modules are found by walking the module's attributes in the order they were assigned, so a
module that assigns its layers in forward order lists its parameters in forward order too.
"""

import functools

import numpy as np

from .._checks import check_float_array, check_same_keys
from ..kernels import kernel_pair


class Parameter:
    """A trainable array: ``.data`` (the values) and ``.grad`` (the last backward pass's gradient, or None)."""

    def __init__(self, data):
        self.data = data
        self.grad = None

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        return self.data.size

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class of every layer and network.

    Subclasses implement ``forward(x)`` (store what backward needs in ``self._cache``), ``backward(dout, *,
    input_grad=True)`` (return ``dx``, or None when ``input_grad`` is False) and, for leaf layers,
    ``output_shape(input_shape)`` (the per-sample shape, without the batch axis), which the counting tools use
    to propagate shapes without running the network.
    """

    buffer_names = ()       # names of non-trainable arrays saved in the state dict (batch norm's statistics)

    def __init__(self):
        self.training = True
        self._cache = None

    # -- running -----------------------------------------------------------------------------------------
    def __call__(self, *inputs):
        return self.forward(*inputs)

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, dout, *, input_grad=True):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def _run(self, pair, *args, **kwargs):
        """Run the active kernel set's ``<pair>_forward`` and keep its cache *with* the matching backward, so that
        :meth:`_run_backward` uses the same set even if :func:`~numpy_shufflenet.use_kernels` changed between."""
        forward, backward = kernel_pair(pair)
        out, cache = forward(*args, **kwargs)
        self._cache = (backward, cache)
        return out

    def _run_backward(self, dout, **options):
        """The backward pass of the pair that ran the last forward pass (``options``: e.g. conv2d's ``need_dx``)."""
        backward, cache = self._take_cache()
        return backward(dout, cache, **options)

    def _take_cache(self):
        """The cache of the last forward pass; a clear error if there was none."""
        if self._cache is None:
            raise ValueError(f"{type(self).__name__}: backward called before forward (expected the cache of a "
                             f"forward pass, got None)")
        return self._cache

    def output_shape(self, input_shape):
        """Shape of one sample's output for one sample's ``input_shape`` (e.g. ``(C, H, W)``)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement output_shape")

    def shape_trace(self, input_shape, prefix=""):
        """Yield ``(name, leaf_module, input_shape, output_shape)`` for every leaf layer, in forward order.

        Containers override this to say how shapes flow through their children.
        """
        yield prefix or type(self).__name__, self, tuple(input_shape), tuple(self.output_shape(input_shape))

    # -- walking the tree ----------------------------------------------------------------------------------
    def named_children(self):
        """``(name, module)`` for each direct sub-module, in assignment order."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self):
        return (m for _, m in self.named_children())

    def named_modules(self, prefix=""):
        """``(dotted_name, module)`` for this module and every module below it."""
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix=""):
        """``(dotted_name, Parameter)`` through the children, in forward order (e.g. ``"stage2.0.conv1.weight"``)."""
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield (f"{prefix}.{name}" if prefix else name), value
        for name, child in self.named_children():
            yield from child.named_parameters(f"{prefix}.{name}" if prefix else name)

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self):
        for module_name, module in self.named_modules():
            for name in module.buffer_names:
                yield (f"{module_name}.{name}" if module_name else name), module, name

    # -- modes, dtype, gradients ---------------------------------------------------------------------------
    def train(self, mode=True):
        """Training mode (batch norm uses batch statistics); returns self."""
        for _, module in self.named_modules():
            module.training = mode
        return self

    def eval(self):
        """Evaluation mode (batch norm uses its running statistics); returns self."""
        return self.train(False)

    def to(self, dtype):
        """Cast every parameter and buffer to ``dtype`` (e.g. ``np.float64`` for gradient checks); returns self."""
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(f"{type(self).__name__}.to: expected a float dtype, got {dtype}")
        for _, p in self.named_parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        for _, module, name in self.named_buffers():
            setattr(module, name, getattr(module, name).astype(dtype))
        return self

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    # -- saving and loading -----------------------------------------------------------------------------
    def state_dict(self):
        """``{dotted_name: array copy}`` of every parameter and buffer (``<bn>.running_mean``, ``<bn>.running_var``)."""
        state = {name: p.data.copy() for name, p in self.named_parameters()}
        for full_name, module, name in self.named_buffers():
            state[full_name] = getattr(module, name).copy()
        return state

    def load_state_dict(self, state):
        """Copy arrays from ``state`` into this module, after checking every name, type, shape and value.

        All or nothing: every entry is checked (a NumPy array, a real float dtype, the module's shape, finite
        values) before the first one is copied, so a failed load leaves the module as it was.
        """
        who = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, dict):
            raise TypeError(f"{who}: expected a dict of name -> array, got {type(state).__name__}")
        own = self.state_dict()
        check_same_keys(who, own, state, "exactly the module's entries")
        for name, value in state.items():
            if not isinstance(value, np.ndarray):
                hint = " (call .numpy() on a torch tensor)" if hasattr(value, "numpy") else ""
                raise TypeError(f"{who}: expected {name} to be a NumPy array{hint}, got {type(value).__name__}")
            if value.shape != own[name].shape:
                raise ValueError(f"{who}: expected {name} of shape {own[name].shape}, got {value.shape}")
            if value.dtype.kind != "f":
                raise TypeError(f"{who}: expected {name} to have a real float dtype, got {value.dtype}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{who}: expected {name} to be finite, got {int(np.sum(~np.isfinite(value)))} "
                                 f"NaN or inf value(s)")
        params = dict(self.named_parameters())
        new = {name: state[name].astype(own[name].dtype, copy=True) for name in own}    # every copy made first
        for name, p in params.items():
            p.data = new[name]
        for full_name, module, name in self.named_buffers():
            setattr(module, name, new[full_name])

    # -- printing ------------------------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines + [")"])


def parameter_gradients(model):
    """``model.backward`` for training and timing a training step, ``backward(dout, input_grad=False)``: it fills
    every parameter's ``.grad`` but skips the gradient of the input, which nobody needs (a ShuffleNet's stem then
    saves its largest matrix product), and returns None."""
    return functools.partial(model.backward, input_grad=False)


def check_input_dtype(module, x, dtype):
    """A clear error when ``x`` is not a float array of the module's parameter dtype."""
    check_float_array(type(module).__name__, "x", x)
    if x.dtype != dtype:
        raise TypeError(f"{type(module).__name__}: expected input of the parameters' dtype {dtype}, got {x.dtype} "
                        f"(cast the input, or the module with .to({x.dtype}))")
