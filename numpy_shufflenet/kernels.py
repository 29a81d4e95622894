"""Which forward/backward pairs the :mod:`numpy_shufflenet.nn` modules run.

Three kinds of kernel set share one contract (``*_forward -> (out, cache)``, ``*_backward(dout, cache)``):

* ``"fast"`` (the default): :mod:`numpy_shufflenet.fast`, tuned for speed;
* ``"reference"``: :mod:`numpy_shufflenet.functional`, the textbook code the course reads;
* your own: any module, object or dict holding some of the names in :data:`KERNEL_NAMES`. Names it lacks come
  from the default set, so a student who wrote only ``channel_shuffle_forward`` and ``channel_shuffle_backward``
  can train a whole ShuffleNet with them.

The contract also holds three *fused* pairs, two layers that the network always runs one after the other
(:data:`FUSED`): ``batchnorm2d_relu`` (``relu(batchnorm2d(x))``), ``add_relu`` (``relu(x + y)``, the end of paper
Fig. 2 b) and ``concat_relu`` (``relu(concatenate([a, b], axis=1))``, Fig. 2 c). The textbook writes each as its
plain pairs one after the other (:mod:`numpy_shufflenet.functional.fused`); the fast set does each in one pass.
A set of your own that lacks a fused pair but holds one of the plain pairs it is made of gets the fused pair
composed from them (your ``relu_forward`` then also runs at the end of every unit); a set that holds neither
gets the default set's fused pair; a fused pair of your own is used as it is.

::

    import numpy_shufflenet as ns
    with ns.use_kernels("reference"):          # restores the previous set on exit, also after an exception
        logits = model(x)
    ns.use_kernels({"relu_forward": my_relu_forward, "relu_backward": my_relu_backward})   # a plain call
    ns.active_kernels()                         # 'custom'

A module remembers which backward belongs to its last forward pass, so switching sets between a forward and
its backward pass is harmless.
"""

import numpy as np

from .functional import fused

PAIRS = ("conv2d", "batchnorm2d", "channel_shuffle", "relu", "max_pool2d", "avg_pool2d", "global_avg_pool2d",
         "linear")
# The fused pairs, each with the plain pairs it is made of (in the order its recipe in functional.fused takes them).
FUSED = {"batchnorm2d_relu": ("batchnorm2d", "relu"), "add_relu": ("relu",), "concat_relu": ("relu",)}
# The forward's array arguments, whose gradients the backward returns in this order.
GRADIENTS = {"conv2d": ("dx", "dw", "db"), "batchnorm2d": ("dx", "dgamma", "dbeta"), "linear": ("dx", "dw", "db"),
             "batchnorm2d_relu": ("dx", "dgamma", "dbeta"), "add_relu": ("dx", "dy"), "concat_relu": ("da", "db")}
KERNEL_NAMES = (tuple(f"{p}_{d}" for p in PAIRS + tuple(FUSED) for d in ("forward", "backward"))
                + ("softmax_cross_entropy",))
DEFAULT = "fast"


class KernelSet:
    """A named table ``{kernel name: function}`` holding every name of :data:`KERNEL_NAMES`."""

    def __init__(self, name, functions):
        self.name = name
        self.functions = dict(functions)

    def __getitem__(self, name):
        return self.functions[name]

    def __repr__(self):
        return f"KernelSet({self.name!r})"


def _builtin(name):
    if name == "fast":
        from . import fast as source
    elif name == "reference":
        from . import functional as source
    else:
        raise ValueError(f"use_kernels: expected 'fast', 'reference' or an object holding kernel functions, "
                         f"got {name!r}")
    return KernelSet(name, {k: getattr(source, k) for k in KERNEL_NAMES})


def _lookup(obj):
    """The kernel functions ``obj`` holds: ``{name: function}`` (a dict's keys, or a module's attributes)."""
    if isinstance(obj, dict):
        unknown = [k for k in obj if k not in KERNEL_NAMES]
        if unknown:
            raise ValueError(f"use_kernels: unknown kernel name {unknown[0]!r}; expected names from "
                             f"{', '.join(KERNEL_NAMES)}")
        return dict(obj)
    return {k: getattr(obj, k) for k in KERNEL_NAMES if getattr(obj, k, None) is not None}


def _checked_pair(set_name, pair, forward, backward):
    """Wrap a user's pair so that a broken contract is an error naming the function, not a puzzle later.

    The wrapped backward takes the keyword ``need_dx`` of the contract's ``conv2d_backward``; the user's backward
    is called without it, and its ``dx`` is dropped (None) when ``need_dx`` is False.
    """
    grads = GRADIENTS.get(pair, ("dx",))

    def checked_forward(*args, **kwargs):
        result = forward(*args, **kwargs)
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], np.ndarray)):
            got = f"a tuple of {len(result)}" if isinstance(result, tuple) else type(result).__name__
            raise TypeError(f"use_kernels({set_name}): {pair}_forward must return (out, cache) with out a "
                            f"numpy.ndarray, got {got}")
        shapes = [None if a is None else np.shape(a) for a in args[:len(grads)]]
        return result[0], (result[1], shapes)

    def checked_backward(dout, cache, *, need_dx=True):
        inner, shapes = cache
        result = backward(dout, inner)
        values = result if len(grads) > 1 else (result,)
        if len(grads) > 1 and not (isinstance(result, tuple) and len(result) == len(grads)):
            got = f"a tuple of {len(result)}" if isinstance(result, tuple) else type(result).__name__
            raise TypeError(f"use_kernels({set_name}): {pair}_backward must return ({', '.join(grads)}), got {got}")
        for name, value, shape in zip(grads, values, shapes):
            if shape is None:
                continue
            if not isinstance(value, np.ndarray) or value.shape != shape:
                got = f"shape {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
                raise ValueError(f"use_kernels({set_name}): {pair}_backward must return {name} of the input's "
                                 f"shape {shape}, got {got}")
        if need_dx:
            return result
        return (None,) + tuple(result[1:]) if len(grads) > 1 else None

    return checked_forward, checked_backward


def _custom(obj, name):
    found = _lookup(obj)
    if not found:
        raise ValueError(f"use_kernels: {name} holds none of the kernel names ({', '.join(KERNEL_NAMES)})")
    for key, fn in found.items():
        if not callable(fn):
            raise TypeError(f"use_kernels({name}): expected {key} to be a function, got {type(fn).__name__}")
    functions = dict(_builtin(DEFAULT).functions)
    for pair in PAIRS + tuple(FUSED):
        fwd, bwd = found.get(f"{pair}_forward"), found.get(f"{pair}_backward")
        if (fwd is None) != (bwd is None):
            have, missing = (f"{pair}_forward", f"{pair}_backward")[::1 if fwd is not None else -1]
            raise ValueError(f"use_kernels({name}): {have} comes without {missing}; a backward pass reads the "
                             f"cache of its own forward pass, so give both or neither")
        if fwd is not None:
            functions[f"{pair}_forward"], functions[f"{pair}_backward"] = _checked_pair(name, pair, fwd, bwd)
    for pair, parts in FUSED.items():
        if f"{pair}_forward" not in found and any(f"{part}_forward" in found for part in parts):
            functions[f"{pair}_forward"], functions[f"{pair}_backward"] = _composed(pair, parts, functions)
    if "softmax_cross_entropy" in found:
        functions["softmax_cross_entropy"] = found["softmax_cross_entropy"]
    return KernelSet(name, functions)


def _composed(pair, parts, functions):
    """The fused ``pair`` made of the plain pairs ``parts`` of ``functions`` (the recipe of functional.fused)."""
    recipe = getattr(fused, f"{pair}_pair")
    return recipe(*(functions[f"{part}_{d}"] for part in parts for d in ("forward", "backward")))


_active = None


def _current():
    global _active
    if _active is None:
        _active = _builtin(DEFAULT)
    return _active


class use_kernels:
    """Make ``kernels`` the set the ``nn`` modules run; as a context manager, restore the previous set on exit.

    Parameters
    ----------
    kernels : "fast", "reference", or a module/object/dict holding some of :data:`KERNEL_NAMES`
        A pair's forward and backward must come together; names an object lacks come from the default
        ("fast") set.
    name : str, optional
        What :func:`active_kernels` calls a custom set (default: the module's ``__name__``, or ``"custom"``).
    """

    def __init__(self, kernels, *, name=None):
        global _active
        if isinstance(kernels, str):
            new = _builtin(kernels)
        elif isinstance(kernels, KernelSet):
            new = kernels
        else:
            new = _custom(kernels, name or getattr(kernels, "__name__", None) or "custom")
        self.previous, self.kernels = _current(), new
        _active = new

    def __enter__(self):
        return self.kernels

    def __exit__(self, *exc):
        global _active
        _active = self.previous
        return False


def active_kernels():
    """The name of the kernel set the ``nn`` modules run now: ``"fast"``, ``"reference"`` or a custom name."""
    return _current().name


def kernel(name):
    """The active set's function called ``name`` (one of :data:`KERNEL_NAMES`)."""
    return _current()[name]


def kernel_pair(pair):
    """``(forward, backward)`` of the active set for ``pair`` (``"conv2d"``, ``"relu"``, ...)."""
    k = _current()
    return k[f"{pair}_forward"], k[f"{pair}_backward"]
