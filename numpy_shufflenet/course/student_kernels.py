"""A student's exercise functions as a kernel set, so that the package's modules (and a whole ShuffleNet) run on
them: notebook 09 trains a network on the layers a student wrote in notebooks 01-04."""

from collections import Counter

import numpy as np

from .. import functional as F

__all__ = ["StudentKernels"]


class StudentKernels:
    """A kernel set for :func:`numpy_shufflenet.use_kernels` built from the course's exercise functions.

    ``StudentKernels(namespace)`` takes a dict (``globals()`` of the notebook) or any object, and uses these of
    its functions, in the exercises' signatures:

    ================================  ==========================================  ===========================
    name                              signature                                    runs
    ================================  ==========================================  ===========================
    ``group_conv1x1_forward``         ``(x, w, groups) -> out``                    1x1 convolutions
    ``pointwise_group_conv_backward`` ``(dout, x, w, groups) -> (dx, dw)``         their backward
    ``depthwise_conv_forward``        ``(x, w, stride) -> out``                    3x3 depthwise, padding 1
    ``depthwise_conv_backward``       ``(dout, x, w, stride) -> (dx, dw)``         their backward
    ``channel_shuffle_forward``       ``(x, groups) -> out``                       channel shuffle
    ``channel_shuffle_backward``      ``(dout, groups) -> dx``                     its backward
    ``batchnorm_train_forward``       ``(x, gamma, beta, rm, rv, momentum, eps)``  batch norm, training mode
    ``batchnorm_eval_forward``        ``(x, gamma, beta, rm, rv, eps) -> out``     batch norm, eval mode
    ``batchnorm_backward``            ``(dout, x, gamma, eps) -> (dx, dg, db)``    its backward (training)
    ``linear_backward``               ``(dout, x, w) -> (dx, dw, db)``             the classifier's backward
    ``softmax_cross_entropy``         ``(logits, labels) -> (loss, dlogits)``      the loss
    ================================  ==========================================  ===========================

    Every other layer (the dense stem convolution, ReLU, pooling, a convolution with a bias) and every function
    that is missing or still raises ``NotImplementedError`` falls back to :mod:`numpy_shufflenet.functional`;
    ``calls`` counts which ran (``"yours: <name>"`` or ``"package: <name>"``) and ``missing`` lists the functions
    that fell back because they are not written yet.
    """

    NAMES = ("group_conv1x1_forward", "pointwise_group_conv_backward", "depthwise_conv_forward",
             "depthwise_conv_backward", "channel_shuffle_forward", "channel_shuffle_backward",
             "batchnorm_train_forward", "batchnorm_eval_forward", "batchnorm_backward", "linear_backward",
             "softmax_cross_entropy")

    def __init__(self, namespace):
        get = namespace.get if isinstance(namespace, dict) else (lambda n: getattr(namespace, n, None))
        self.yours = {name: get(name) for name in self.NAMES if callable(get(name))}
        self.missing = set(name for name in self.NAMES if name not in self.yours)
        self.calls = Counter()

    def probe(self):
        """Call each function once on a tiny input; those that raise ``NotImplementedError`` join ``missing``.

        Returns ``self``. (Other errors are left for the checks to report.)
        """
        rng = np.random.default_rng(0)
        x, d = rng.standard_normal((1, 2, 2, 2)), rng.standard_normal((1, 2, 2, 2))
        w = rng.standard_normal((2, 1, 1, 1))
        wd = rng.standard_normal((2, 1, 3, 3))
        g, b, rm, rv = np.ones(2), np.zeros(2), np.zeros(2), np.ones(2)
        xl, wl, dl = rng.standard_normal((2, 3)), rng.standard_normal((4, 3)), rng.standard_normal((2, 4))
        tries = {"group_conv1x1_forward": (x, w, 2), "pointwise_group_conv_backward": (d, x, w, 2),
                 "depthwise_conv_forward": (x, wd, 1), "depthwise_conv_backward": (d, x, wd, 1),
                 "channel_shuffle_forward": (x, 2), "channel_shuffle_backward": (d, 2),
                 "batchnorm_train_forward": (x, g, b, rm, rv, 0.1, 1e-5),
                 "batchnorm_eval_forward": (x, g, b, rm, rv, 1e-5), "batchnorm_backward": (d, x, g, 1e-5),
                 "linear_backward": (dl, xl, wl), "softmax_cross_entropy": (dl, np.array([0, 3]))}
        for name, args in tries.items():
            fn = self.yours.get(name)
            if fn is None:
                continue
            try:
                fn(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
            except NotImplementedError:
                self.missing.add(name)
            except Exception:                                  # noqa: BLE001 - the checks report it
                pass
        return self

    def _use(self, name, *args):
        """Run the student's ``name``; None (and fall back) when it is missing or not written yet."""
        fn = self.yours.get(name)
        if fn is None or name in self.missing:
            return None
        try:
            result = fn(*args)
        except NotImplementedError:
            self.missing.add(name)
            return None
        self.calls[f"yours: {name}"] += 1
        return (result,)

    def _package(self, name):
        self.calls[f"package: {name}"] += 1

    # -- convolution ---------------------------------------------------------------------------------------
    def conv2d_forward(self, x, w, b=None, *, stride=1, padding=0, groups=1):
        C_out, _, KH, KW = w.shape
        if b is None and (KH, KW) == (1, 1) and stride in (1, (1, 1)) and padding in (0, (0, 0)):
            got = self._use("group_conv1x1_forward", x, w, groups)
            if got is not None:
                return got[0], ("1x1", x, w, groups)
        depthwise = groups == x.shape[1] == C_out and w.shape[1] == 1
        if b is None and depthwise and (KH, KW) == (3, 3) and padding in (1, (1, 1)) and stride in (1, 2, (1, 1),
                                                                                                   (2, 2)):
            s = stride if isinstance(stride, int) else stride[0]
            got = self._use("depthwise_conv_forward", x, w, s)
            if got is not None:
                return got[0], ("dw", x, w, s)
        self._package("conv2d_forward")
        out, cache = F.conv2d_forward(x, w, b, stride=stride, padding=padding, groups=groups)
        return out, ("package", cache)

    def conv2d_backward(self, dout, cache):
        route = cache[0]
        if route in ("1x1", "dw"):                  # the 4th entry: the groups (1x1) or the stride (depthwise)
            _, x, w, arg = cache
            name = "pointwise_group_conv_backward" if route == "1x1" else "depthwise_conv_backward"
            got = self._use(name, dout, x, w, arg)
            if got is not None:
                dx, dw = got[0]
                return dx, dw, None
            kwargs = {"groups": arg} if route == "1x1" else {"stride": arg, "padding": 1, "groups": x.shape[1]}
            cache = ("package", F.conv2d_forward(x, w, **kwargs)[1])
        self._package("conv2d_backward")
        return F.conv2d_backward(dout, cache[1])

    # -- channel shuffle -----------------------------------------------------------------------------------
    def channel_shuffle_forward(self, x, groups):
        got = self._use("channel_shuffle_forward", x, groups)
        if got is not None:
            return got[0], ("yours", groups, x)
        self._package("channel_shuffle_forward")
        out, cache = F.channel_shuffle_forward(x, groups)
        return out, ("package", cache)

    def channel_shuffle_backward(self, dout, cache):
        if cache[0] == "yours":
            got = self._use("channel_shuffle_backward", dout, cache[1])
            if got is not None:
                return got[0]
            cache = ("package", F.channel_shuffle_forward(cache[2], cache[1])[1])
        self._package("channel_shuffle_backward")
        return F.channel_shuffle_backward(dout, cache[1])

    # -- batch norm ----------------------------------------------------------------------------------------
    def batchnorm2d_forward(self, x, gamma, beta, *, running_mean=None, running_var=None, training=True,
                            momentum=0.1, eps=1e-5):
        if training:
            rm = running_mean if running_mean is not None else np.zeros(x.shape[1], x.dtype)
            rv = running_var if running_var is not None else np.ones(x.shape[1], x.dtype)
            got = self._use("batchnorm_train_forward", x, gamma, beta, rm, rv, momentum, eps)
            if got is not None:
                return got[0], ("yours", x, gamma, beta, eps)
        elif running_mean is not None and running_var is not None:
            got = self._use("batchnorm_eval_forward", x, gamma, beta, running_mean, running_var, eps)
            if got is not None:
                return got[0], ("eval", x, gamma, beta, running_mean.copy(), running_var.copy(), eps)
        self._package("batchnorm2d_forward")
        out, cache = F.batchnorm2d_forward(x, gamma, beta, running_mean=running_mean, running_var=running_var,
                                           training=training, momentum=momentum, eps=eps)
        return out, ("package", cache)

    def batchnorm2d_backward(self, dout, cache):
        if cache[0] == "yours":
            _, x, gamma, beta, eps = cache
            got = self._use("batchnorm_backward", dout, x, gamma, eps)
            if got is not None:
                return tuple(got[0])
            cache = ("package", F.batchnorm2d_forward(x, gamma, beta, training=True, eps=eps)[1])
        elif cache[0] == "eval":
            _, x, gamma, beta, rm, rv, eps = cache
            cache = ("package", F.batchnorm2d_forward(x, gamma, beta, running_mean=rm, running_var=rv,
                                                      training=False, eps=eps)[1])
        self._package("batchnorm2d_backward")
        return F.batchnorm2d_backward(dout, cache[1])

    # -- classifier and loss -------------------------------------------------------------------------------
    def linear_forward(self, x, w, b=None):
        out = x @ w.T if b is None else x @ w.T + b
        return out, (x, w, b)

    def linear_backward(self, dout, cache):
        x, w, b = cache
        got = self._use("linear_backward", dout, x, w)
        if got is not None:
            dx, dw, db = got[0]
            return dx, dw, (None if b is None else db)
        self._package("linear_backward")
        return F.linear_backward(dout, F.linear_forward(x, w, b)[1])

    def softmax_cross_entropy(self, logits, labels, **kwargs):
        if not kwargs.get("label_smoothing"):
            got = self._use("softmax_cross_entropy", logits, labels)
            if got is not None:
                loss, dlogits = got[0]
                return float(loss), np.asarray(dlogits, dtype=logits.dtype)
        self._package("softmax_cross_entropy")
        return F.softmax_cross_entropy(logits, labels, **kwargs)

    def summary(self):
        """A few lines: which of your functions ran how often, and which layers the package ran."""
        lines = []
        for key in sorted(self.calls):
            lines.append(f"  {key:<44s} {self.calls[key]:>6d} calls")
        if self.missing:
            lines.append("  not written yet (the package ran instead): " + ", ".join(sorted(self.missing)))
        return "\n".join(lines)
