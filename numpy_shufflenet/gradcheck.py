r"""Gradient checking: compare a backward pass with central finite differences.

For a function ``out = f(x)`` and an upstream gradient ``dout`` (what the loss says about ``out``), the
gradient a backward pass must return is ``dx = d(sum(out * dout)) / dx``. Its numeric estimate, one coordinate
at a time, is the central difference::

    dx[i] ~ sum((f(x + h e_i) - f(x - h e_i)) * dout) / (2h)          error O(h^2)

The rules that make the comparison mean something (each one breaks a real check when ignored):

* float64 and ``h = 1e-6``: in float32 the rounding error of ``f`` (about 1e-7 relative) divided by ``2h``
  swamps the answer;
* a *random* ``dout``: with ``dout = 1`` a batch-norm input gradient is exactly zero on both sides and any wrong
  formula passes;
* copy each output of ``f`` before the next call, because an output that is a view of a buffer ``f`` reuses (a
  reshape inside channel shuffle, say) would otherwise change under our feet.

The relative error is taken over the whole tensor, ``max|a - b| / (max|a| + max|b|)``: below 1e-7 is a correct
backward pass in float64, above 1e-3 is a bug. (An element-wise ratio ``|a_i - b_i| / (|a_i| + |b_i|)`` is also
common, but it blows up at entries that are zero by chance, where both sides are rounding noise.) A gradient
check also cannot see gradients smaller than its own noise, about ``1e-16 * |f| / h``: keep checked networks
small and their outputs of order one.

A check must never pass by accident: ``rel_error`` of anything that is not finite (NaN or inf on either side) is
``inf``, and every verdict built on it (``report``, ``check_module``) fails and says where the non-finite value
was found.
"""

import numpy as np

from ._checks import as_rng
from .nn import BatchNorm2d, Module


def rel_error(a, b):
    """Relative error of two tensors: ``max|a - b| / (max|a| + max|b|)`` (0 when both are zero).

    ``inf`` when either tensor holds a NaN or an infinity: a gradient that is not finite is never "close".
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: expected arrays of one shape, got {a.shape} and {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("inf")
    if a.size == 0:
        return 0.0
    scale = np.max(np.abs(a)) + np.max(np.abs(b))
    return float(np.max(np.abs(a - b)) / scale) if scale > 0 else 0.0


def _where_not_finite(a):
    """``None`` when every entry of ``a`` is finite, else a short description of the first bad entry."""
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.inexact):
        return None
    bad = ~np.isfinite(a)
    if not bad.any():
        return None
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    return f"{int(bad.sum())} non-finite value(s), the first {a[first]} at index {first}"


def numeric_gradient(f, x, dout, h=1e-6, *, indices=None):
    """Central-difference estimate of ``d(sum(f(x) * dout)) / dx``.

    Parameters
    ----------
    f : callable taking an array shaped like ``x`` and returning an array shaped like ``dout``
    x : ndarray
        Not modified: ``f`` is called on a private float64 copy.
    dout : ndarray, the upstream gradient (use a random one)
    h : float, the step, finite and > 0
    indices : sequence of flat indices, optional
        Estimate only these coordinates (for big tensors); the others are left at 0.

    Returns
    -------
    grad : float64 ndarray shaped like ``x``

    Raises
    ------
    ValueError
        for a step ``h`` that is not a finite positive number (``h = 0`` would divide 0 by 0), or an ``x`` or
        ``dout`` holding NaN or inf.
    TypeError
        for an ``x`` that is not a float array: ``x + h`` of an integer array cannot hold the step.
    """
    _check_step("numeric_gradient", h)
    x_dtype = np.asarray(x).dtype
    if not np.issubdtype(x_dtype, np.floating):
        raise TypeError(f"numeric_gradient: expected x to have a float dtype (float64 for a gradient check), "
                        f"got {x_dtype}")
    for name, a in (("x", x), ("dout", dout)):
        where = _where_not_finite(a)
        if where:
            raise ValueError(f"numeric_gradient: expected a finite {name}, got {where}")
    xp = np.array(x, dtype=np.float64)                  # private copy: the caller's x is never touched
    dout = np.asarray(dout, dtype=np.float64)
    grad = np.zeros_like(xp)
    flat_x, flat_g = xp.reshape(-1), grad.reshape(-1)
    for i in (range(xp.size) if indices is None else indices):
        old = flat_x[i]
        flat_x[i] = old + h
        plus = np.array(f(xp), dtype=np.float64)        # np.array copies: a returned view cannot change later
        flat_x[i] = old - h
        minus = np.array(f(xp), dtype=np.float64)
        flat_x[i] = old
        if plus.shape != dout.shape:
            raise ValueError(f"numeric_gradient: expected f(x) of dout's shape {dout.shape}, got {plus.shape}")
        flat_g[i] = np.sum((plus - minus) * dout) / (2 * h)
    return grad


def _check_step(caller, h):
    """Refuse a finite-difference step that is not a finite number > 0 (``h = 0`` gives 0 / 0)."""
    if isinstance(h, bool) or not isinstance(h, (int, float, np.integer, np.floating)) or not np.isfinite(h) \
            or h <= 0:
        raise ValueError(f"{caller}: expected h to be a finite number > 0, got {h!r}")


class CheckResult:
    """Outcome of one comparison; ``bool(result)`` is whether it passed, ``str(result)`` a readable line.

    It passes when the relative error is below ``tol``, or when the two gradients differ by no more than
    ``noise_floor``, the rounding noise of the numeric estimate (a gradient that is zero, or nearly zero, by the
    network's structure can only be checked that way: its numeric estimate is mostly noise). It never passes when
    either gradient holds a NaN or an infinity; ``problem`` then says which side and where.
    """

    def __init__(self, name, analytic, numeric, tol, noise_floor=0.0):
        self.name, self.tol, self.noise_floor = name, tol, noise_floor
        analytic = np.asarray(analytic, dtype=np.float64)
        numeric = np.asarray(numeric, dtype=np.float64)
        problems = [f"{side} gradient: {where}" for side, where in
                    (("analytic", _where_not_finite(analytic)), ("numeric", _where_not_finite(numeric))) if where]
        self.problem = "; ".join(problems) or None
        self.max_rel_error = rel_error(analytic, numeric)
        if self.problem:
            self.max_abs_diff, self.scale, self.within_noise = float("inf"), float("inf"), False
        else:
            self.max_abs_diff = float(np.max(np.abs(analytic - numeric))) if analytic.size else 0.0
            self.scale = float(np.max(np.abs(numeric))) if numeric.size else 0.0
            self.within_noise = self.max_abs_diff <= noise_floor
        self.passed = self.problem is None and (self.max_rel_error < tol or self.within_noise)

    def __bool__(self):
        return self.passed

    def __str__(self):
        if self.problem:
            return f"{self.name:<28s} FAIL ({self.problem})"
        if self.max_rel_error >= self.tol and self.within_noise:
            verdict = f"PASS (within the rounding noise {self.noise_floor:.0e})"
        else:
            verdict = "PASS" if self.passed else "FAIL"
        return (f"{self.name:<28s} max|a-n| {self.max_abs_diff:9.2e}  rel err {self.max_rel_error:9.2e}  "
                f"(|grad| up to {self.scale:8.2e}, tol {self.tol:.0e})  {verdict}")

    __repr__ = __str__


def report(name, analytic, numeric, tol=1e-7, *, noise_floor=0.0, verbose=True):
    """Compare two gradients, print a one-line report (when ``verbose``) and return a :class:`CheckResult`."""
    result = CheckResult(name, analytic, numeric, tol, noise_floor)
    if verbose:
        print(result)
    return result


def randomize_batchnorm(module, rng=None):
    """Give every batch norm in ``module`` random ``gamma`` in [0.5, 1.5] and ``beta`` in [-0.5, 0.5]; returns
    the module.

    Freshly built layers have ``gamma = 1, beta = 0``, and then some gradients are structurally near zero: in
    ``BN -> ReLU -> depthwise conv -> BN`` the output does not change when the first ``gamma`` is scaled (ReLU and
    the depthwise convolution commute with a positive scale, and the second batch norm divides it out), so its
    gradient is rounding noise, and a gradient check of it is meaningless. Random ``beta`` breaks that symmetry.
    """
    rng = as_rng(rng, seed=0)
    for _, m in module.named_modules():
        if isinstance(m, BatchNorm2d):
            m.weight.data = rng.uniform(0.5, 1.5, m.weight.shape).astype(m.weight.dtype)
            m.bias.data = rng.uniform(-0.5, 0.5, m.bias.shape).astype(m.bias.dtype)
    return module


def check_module(module, x, *, dout=None, h=1e-6, tol=1e-6, num_samples=None, rng=None, verbose=True):
    """Check a module's input gradient and every parameter gradient against numeric gradients.

    The module must be in float64 (``module.to(np.float64)``) and deterministic between calls. In training
    mode batch norm's running buffers change at every forward pass but do not affect the output, so they are
    saved and restored around the check.

    Parameters
    ----------
    module : Module
    x : float64 ndarray, the input
    dout : ndarray, optional; a random upstream gradient when omitted
    num_samples : int, optional
        Check only this many random coordinates of each tensor (for big ones); all when None.
    rng : numpy.random.Generator, optional

    Returns
    -------
    list of CheckResult, the first for ``x`` and then one per parameter; all passed iff ``all(results)``; a
    gradient holding NaN or inf fails and its line says where.

    Raises
    ------
    ValueError
        when the input, a parameter, the forward output or ``dout`` holds NaN or inf (naming which, and the first
        bad index), or for a bad step ``h``: nothing can be checked then.
    A gradient that is zero by structure (batch norm's ``beta`` before a convolution and another batch norm in
    training mode: the second one subtracts the shift again) passes when the two sides differ by less than the
    rounding noise ``100 eps * sum|out * dout| / h`` of the numeric estimate, and says so.
    """
    if not isinstance(module, Module):
        raise TypeError(f"check_module: expected a Module, got {type(module).__name__}")
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise TypeError(f"check_module: expected a float64 input (gradient checks need float64), "
                        f"got {getattr(x, 'dtype', type(x).__name__)}")
    _check_step("check_module", h)
    _refuse_not_finite("the input x", x)
    for name, p in module.named_parameters():
        _refuse_not_finite(f"parameter {name}", p.data)
    rng = as_rng(rng, seed=0)
    buffers = {name: getattr(m, attr).copy() for name, m, attr in module.named_buffers()}

    def restore_buffers():
        for name, m, attr in module.named_buffers():
            setattr(m, attr, buffers[name].copy())

    out = module.forward(x)
    _refuse_not_finite("the forward output", out)
    if dout is None:
        dout = rng.standard_normal(out.shape)
    _refuse_not_finite("dout", dout)
    # Rounding noise of a central difference: the error of sum(out * dout), over h. Each output carries a
    # rounding error of some eps that grows with depth; 100 eps covers networks of tens of layers.
    noise_floor = float(100 * np.finfo(np.float64).eps * np.sum(np.abs(out * dout)) / h)
    dx = module.backward(dout)
    analytic = {"x": dx}
    analytic.update({name: p.grad.copy() for name, p in module.named_parameters()})

    def pick(size):
        if num_samples is None or num_samples >= size:
            return None
        return rng.choice(size, size=num_samples, replace=False)

    results = []
    idx = pick(x.size)
    num = numeric_gradient(lambda v: module.forward(v), x, dout, h, indices=idx)
    results.append(_compare("x", dx, num, idx, tol, noise_floor, verbose))
    for name, p in module.named_parameters():
        original = p.data

        def f(v, p=p):
            p.data = v
            return module.forward(x)

        idx = pick(p.size)
        num = numeric_gradient(f, original, dout, h, indices=idx)
        p.data = original
        results.append(_compare(name, analytic[name], num, idx, tol, noise_floor, verbose))
    restore_buffers()
    module.forward(x)                          # leave caches and .grad consistent with the original input
    module.backward(dout)
    restore_buffers()
    return results


def _refuse_not_finite(what, a):
    where = _where_not_finite(a)
    if where:
        raise ValueError(f"check_module: expected {what} to be finite, got {where}; a gradient check of "
                         f"non-finite values cannot pass")


def _compare(name, analytic, numeric, idx, tol, noise_floor, verbose):
    if idx is not None:
        analytic, numeric = analytic.reshape(-1)[idx], numeric.reshape(-1)[idx]
    return report(name, analytic, numeric, tol, noise_floor=noise_floor, verbose=verbose)
