"""Shared helpers for the tests of the layer kit.

Two kinds of check run through the whole suite:

* **numeric vs analytic**: :func:`check_gradient` compares a backward pass with central finite differences of
  ``sum(f(x) * dout)`` in float64, with ``h = 1e-6`` and a *random* ``dout`` (the rules of
  :mod:`numpy_shufflenet.gradcheck`), and asserts the tensor-wise relative error is below ``GRAD_TOL``;
* **two exact routes**: :func:`assert_same` asserts two float64 computations of the same numbers (the loop conv
  and the fast conv, say) agree to ``SAME_TOL``.

The worst relative error seen per layer and gradient is printed at the end of the run.
"""

import dataclasses
import io
import shutil
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from numpy_shufflenet import functional as F
from numpy_shufflenet.gradcheck import numeric_gradient, rel_error
from numpy_shufflenet.training.runs import train_shapes

from notebook_runner import NOTEBOOK_DIR, run_notebook

GRAD_TOL = 1e-7      # analytic vs numeric gradient of one layer, float64, h = 1e-6
SAME_TOL = 1e-10     # two exact computations of the same thing, float64

_worst_rel_error = {}        # "layer dgrad" -> worst rel error over the configurations checked


# --------------------------------------------------------------------------------------------------------------
# numeric vs analytic, exact agreement
# --------------------------------------------------------------------------------------------------------------
def check_gradient(name, f, x, dout, analytic, tol=GRAD_TOL):
    """Assert ``analytic`` equals the numeric gradient of ``sum(f(x) * dout)``; return the relative error.

    ``name`` (e.g. ``"conv2d dw"``) labels the failure message and the end-of-run table. The check refuses to
    pass vacuously: the numeric gradient must not be ~0 everywhere (a check of 0 against 0 proves nothing).
    """
    assert analytic.shape == x.shape, f"{name}: gradient shape {analytic.shape} != input shape {x.shape}"
    numeric = numeric_gradient(f, x, dout)
    scale = np.max(np.abs(numeric))
    assert scale > 1e-6, f"{name}: vacuous check, the numeric gradient is ~0 everywhere (max {scale:.1e})"
    err = rel_error(analytic, numeric)
    _worst_rel_error[name] = max(_worst_rel_error.get(name, 0.0), err)
    assert err < tol, f"{name}: rel error {err:.2e} >= {tol:.0e}"
    return err


def assert_same(actual, expected, tol=SAME_TOL):
    """Assert two arrays agree to ``tol`` (relative and absolute), shapes included."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol)


# --------------------------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------------------------
def away_from_zero(rng, shape, margin=0.1):
    """Random normal values pushed at least ``margin`` away from 0 (no ReLU kink within reach of h)."""
    x = rng.standard_normal(shape)
    return x + np.where(x >= 0, margin, -margin)


def distinct_values(rng, shape, spacing=0.05):
    """A random arrangement of ``spacing``-spaced distinct values around 0: no ties inside a max-pool window,
    and every gap far wider than the finite-difference step."""
    size = int(np.prod(shape))
    return ((rng.permutation(size) - size / 2) * spacing).reshape(shape)


def snapshot(*arrays):
    """Copies of ``arrays``, to check later with :func:`assert_unchanged` that nothing wrote into them."""
    return [None if a is None else a.copy() for a in arrays]


def assert_unchanged(arrays, copies):
    for i, (a, c) in enumerate(zip(arrays, copies)):
        if a is None:
            continue
        assert a.dtype == c.dtype and a.shape == c.shape, f"input {i} changed dtype or shape"
        assert a.tobytes() == c.tobytes(), f"input {i} was modified in place"


@pytest.fixture
def rng():
    return np.random.default_rng(20180101)


# --------------------------------------------------------------------------------------------------------------
# one small call of every functional layer, for the table-driven contract tests
# --------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class LayerCase:
    """One forward/backward call: ``forward(*args, **kwargs) -> (out, cache)``, ``backward(dout, cache)``."""

    layer: str                   # the layer name the error messages use
    forward: Callable
    args: tuple                  # the array inputs, in the forward's order (None for an absent bias)
    kwargs: dict
    backward: Callable

    def run(self):
        return self.forward(*self.args, **self.kwargs)

    def grads(self, dout, cache):
        """The backward's result as a tuple (single-gradient layers return a bare array)."""
        g = self.backward(dout, cache)
        return g if isinstance(g, tuple) else (g,)


LAYER_CASE_IDS = ["conv2d-dense", "conv2d-grouped", "conv2d-depthwise", "conv2d_naive", "batchnorm2d-train",
                  "batchnorm2d-eval", "channel_shuffle", "relu", "max_pool2d", "avg_pool2d", "global_avg_pool2d",
                  "linear"]


def make_layer_case(case_id, rng, dtype=np.float64):
    """A :class:`LayerCase` for ``case_id`` (one of ``LAYER_CASE_IDS``) with random inputs of ``dtype``."""
    def randn(*shape):
        return rng.standard_normal(shape).astype(dtype)

    x = randn(2, 6, 7, 5)
    if case_id == "conv2d-dense":
        return LayerCase("conv2d", F.conv2d_forward, (x, randn(4, 6, 3, 3), randn(4)), dict(stride=2, padding=1),
                         F.conv2d_backward)
    if case_id == "conv2d-grouped":
        return LayerCase("conv2d", F.conv2d_forward, (x, randn(9, 2, 1, 1), None), dict(groups=3),
                         F.conv2d_backward)
    if case_id == "conv2d-depthwise":
        return LayerCase("conv2d", F.conv2d_forward, (x, randn(6, 1, 3, 3), randn(6)),
                         dict(padding=1, groups=6), F.conv2d_backward)
    if case_id == "conv2d_naive":
        return LayerCase("conv2d_naive", F.conv2d_forward_naive, (x[:1], randn(4, 3, 3, 2), randn(4)),
                         dict(stride=2, padding=1, groups=2), F.conv2d_backward_naive)
    if case_id == "batchnorm2d-train":
        return LayerCase("batchnorm2d", F.batchnorm2d_forward, (5 * x + 12, randn(6), randn(6)),
                         dict(training=True), F.batchnorm2d_backward)
    if case_id == "batchnorm2d-eval":
        running = dict(running_mean=randn(6), running_var=rng.uniform(0.5, 2, 6).astype(dtype))
        return LayerCase("batchnorm2d", F.batchnorm2d_forward, (x, randn(6), randn(6)),
                         dict(training=False, **running), F.batchnorm2d_backward)
    if case_id == "channel_shuffle":
        return LayerCase("channel_shuffle", F.channel_shuffle_forward, (x,), dict(groups=3),
                         F.channel_shuffle_backward)
    if case_id == "relu":
        return LayerCase("relu", F.relu_forward, (x,), {}, F.relu_backward)
    if case_id == "max_pool2d":
        return LayerCase("max_pool2d", F.max_pool2d_forward, (x,), dict(kernel_size=3, stride=2, padding=1),
                         F.max_pool2d_backward)
    if case_id == "avg_pool2d":
        return LayerCase("avg_pool2d", F.avg_pool2d_forward, (x,), dict(kernel_size=3, stride=2, padding=1),
                         F.avg_pool2d_backward)
    if case_id == "global_avg_pool2d":
        return LayerCase("global_avg_pool2d", F.global_avg_pool2d_forward, (x,), {}, F.global_avg_pool2d_backward)
    if case_id == "linear":
        return LayerCase("linear", F.linear_forward, (randn(3, 5), randn(4, 5), randn(4)), {}, F.linear_backward)
    raise KeyError(case_id)


# --------------------------------------------------------------------------------------------------------------
# files: .npz archives written by hand, and one tiny saved training run
# --------------------------------------------------------------------------------------------------------------
def npy_bytes(array):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=True)
    return buf.getvalue()


def write_npz(path, members, compression=zipfile.ZIP_STORED):
    """An .npz written by hand: ``members`` maps entry names (without .npy) to raw member bytes."""
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, data in members.items():
            z.writestr(f"{name}.npy", data)
    return path


def spoil(member, change):
    """The bytes of a .npy member after ``change(array)``; the member is our own, trusted test data."""
    return npy_bytes(change(np.lib.format.read_array(io.BytesIO(member))))


TINY_RUN = dict(scale=0.25, epochs=1, train_size=32, val_size=16, batch_size=16, seed=0)


@pytest.fixture(scope="session")
def saved_run(tmp_path_factory):
    """One tiny finished run of ``train_shapes`` (1 epoch, 2 steps), trained once per session; tests copy it
    (``run_dir``)."""
    out = tmp_path_factory.mktemp("run")
    train_shapes(out, progress=False, baseline=False, **TINY_RUN)
    return out


@pytest.fixture
def run_dir(saved_run, tmp_path):
    """A copy of :func:`saved_run` that a test may spoil."""
    return shutil.copytree(saved_run, tmp_path / "run")



# --------------------------------------------------------------------------------------------------------------
# notebooks, executed once per test session
# --------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class ExecutedNotebook:
    """A notebook after one top-to-bottom run: the executed ``nb`` and the error of the failing cell, if any."""

    path: Path
    nb: object
    error: Exception = None


@pytest.fixture(scope="session")
def executed_notebook():
    """``executed_notebook(path) -> ExecutedNotebook``: each notebook runs at most once per session, however
    many tests look at its outputs."""
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    from nbclient.exceptions import CellExecutionError

    runs = {}

    def run(path):
        path = Path(path)
        if path not in runs:
            nb = nbformat.read(path, as_version=4)
            try:
                run_notebook(nb, NOTEBOOK_DIR)
                runs[path] = ExecutedNotebook(path, nb)
            except CellExecutionError as err:
                runs[path] = ExecutedNotebook(path, nb, err)
        return runs[path]

    return run


# --------------------------------------------------------------------------------------------------------------
# the end-of-run table of gradient-check errors
# --------------------------------------------------------------------------------------------------------------
def pytest_terminal_summary(terminalreporter):
    if not _worst_rel_error:
        return
    terminalreporter.section("worst gradient-check rel error per layer (numeric vs analytic, float64)")
    for name, err in sorted(_worst_rel_error.items()):
        terminalreporter.write_line(f"  {name:<32s} {err:9.2e}   (tol {GRAD_TOL:.0e})")


# --------------------------------------------------------------------------------------------------------------
# grading: the sandbox and the fixture course
# --------------------------------------------------------------------------------------------------------------
GRADING_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "grading"
GRADING_CATALOGUE = GRADING_FIXTURE / "catalogue.py"       # the fixture notebooks' exercise catalogue


@pytest.fixture(scope="session")
def bwrap():
    """Skips the test, with bubblewrap's own reason, where ``--sandbox auto`` cannot run here (bwrap missing, or
    refused by the kernel or AppArmor); ``.ci/run`` installs it where it can."""
    from numpy_shufflenet.course.sandbox import SandboxUnavailable, check_bwrap

    try:
        check_bwrap()
    except SandboxUnavailable as err:
        pytest.skip(f"no bubblewrap sandbox here: {err}")
    return "auto"


@pytest.fixture(scope="session")
def sandbox_mode():
    """``"auto"`` where bubblewrap runs here, else ``"none"``: for grading tests that do not test the isolation
    itself (those use :func:`bwrap` and skip)."""
    from numpy_shufflenet.course.sandbox import SandboxUnavailable, check_bwrap

    try:
        check_bwrap()
    except SandboxUnavailable:
        return "none"
    return "auto"
