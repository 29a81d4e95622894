r"""Checks for the course's exercises: several shapes each, errors next to the size a right answer gives, and
the common mistakes named.

Every exercise of the notebooks has a check here, ``check_<exercise>(your_function)``. A check

* runs your function on **several** shapes and numbers of groups, so an answer that is right for one shape only
  (a hard-coded size) fails visibly, and says which cases are wrong;
* prints, for every case, the relative error of your result next to the size a right answer gives
  (``rel error 2.1e-17 (expect < 1e-10)``), against the package's own kernels in
  :mod:`numpy_shufflenet.functional` and, for backward passes, against numeric gradients
  (:mod:`numpy_shufflenet.gradcheck`);
* recognises the common wrong answers and **names** them (the shuffle applied forward again instead of its
  inverse; batch norm without the variance path; ``=`` instead of ``+=``; the padding border not cropped;
  groups interleaved instead of contiguous; a wrong number of returned values; ...);
* returns True when everything is right, and raises ``AssertionError`` (with the diagnosis) when not.

**Student mode and grading mode.** While your function still raises ``NotImplementedError`` (the stub of a
student copy), its check prints ``not done yet`` and returns None instead of raising, so that *Run All* goes on
to the end of the notebook; a check that needs the function of an earlier exercise says which. With the
environment variable ``NUMPY_SHUFFLENET_GRADING=1`` the check raises instead (a grader counts it as failed).

:class:`StudentKernels` collects a student's functions into a kernel set for
:func:`numpy_shufflenet.use_kernels`, so that a whole ShuffleNet can run (and train) on them.
"""

import functools
import os
from collections import Counter

import numpy as np

from .. import functional as F
from ..gradcheck import numeric_gradient, rel_error

__all__ = [
    "GRADING_ENV", "NUMERIC", "EXACT", "grading_mode", "ExerciseNotDone", "not_done",
    "check_group_conv1x1_forward", "check_conv_params", "check_blog_numbers", "check_unit_cost",
    "check_channel_shuffle_forward", "check_shuffled_order", "check_stacked_connectivity",
    "check_groups_after_one_shuffle",
    "check_depthwise_conv_forward", "check_batchnorm_train_forward", "check_batchnorm_eval_forward",
    "check_stride2_unit_forward", "check_stride2_unit_backward",
    "check_channel_shuffle_backward", "check_pointwise_group_conv_backward", "check_depthwise_conv_backward",
    "check_batchnorm_backward", "check_max_pool_backward", "check_linear_backward",
    "check_softmax_cross_entropy", "check_sgd_step",
    "StudentKernels", "check_kernels", "check_training",
]

GRADING_ENV = "NUMPY_SHUFFLENET_GRADING"
NUMERIC = 1e-7      # analytic vs numeric gradient, float64, h = 1e-6: a right answer is below this
EXACT = 1e-10       # your result vs the package's: the same numbers up to rounding
MATCH = 1e-8        # "your result is exactly this known mistake"


def grading_mode():
    """True when ``NUMPY_SHUFFLENET_GRADING=1``: checks of unfinished exercises raise instead of printing."""
    return os.environ.get(GRADING_ENV, "") == "1"


class ExerciseNotDone(NotImplementedError):
    """Raised by a check in grading mode when the exercise still raises ``NotImplementedError``."""


def not_done(exercise, err=None, needs=None):
    """Report an unfinished exercise: print it (student mode) or raise :class:`ExerciseNotDone` (grading mode)."""
    what = f" ({err})" if err is not None and str(err) else ""
    message = f"{exercise}: not done yet{what}"
    if needs:
        message += f"; this check needs {needs}"
    if grading_mode():
        raise ExerciseNotDone(message)
    print(message + ". Run All goes on; come back to it.")
    return None


class _Report:
    """What one check found: a line per comparison, the cases that failed, and the mistakes recognised."""

    def __init__(self, exercise):
        self.exercise = exercise
        self.cases = []              # (label, passed)
        self.diagnoses = {}          # name -> (explanation, count)
        self.errors = []

    def line(self, text):
        print("  " + text)

    def compare(self, what, got, expected, tol, floor=0.0):
        """Print and return whether ``got`` matches ``expected`` within relative error ``tol`` (or differs by at
        most ``floor``: a gradient that is zero by the network's structure is rounding noise on both sides)."""
        try:
            got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
        except (TypeError, ValueError):
            self.line(f"{what:<34s} WRONG: expected an array of numbers, got {type(got).__name__}")
            return False
        if got.shape != expected.shape:
            self.line(f"{what:<34s} WRONG SHAPE: got {got.shape}, expected {expected.shape}")
            return False
        if not np.all(np.isfinite(got)):
            self.line(f"{what:<34s} WRONG: your result holds nan or inf")
            return False
        err = rel_error(got, expected)
        noise = got.size > 0 and float(np.max(np.abs(got - expected))) <= floor
        ok = err < tol or noise
        note = "ok (zero up to rounding)" if noise and err >= tol else ("ok" if ok else "WRONG")
        self.line(f"{what:<34s} rel error {err:8.1e}   (expect < {tol:.0e})   {note}")
        return ok

    def case(self, label, passed):
        self.cases.append((label, bool(passed)))
        return passed

    def diagnose(self, name, explanation):
        _, count = self.diagnoses.get(name, (explanation, 0))
        self.diagnoses[name] = (explanation, count + 1)

    def finish(self):
        failed = [label for label, ok in self.cases if not ok]
        if not failed and not self.errors:
            print(f"{self.exercise}: all {len(self.cases)} cases right. Well done.")
            return True
        # a mistake is named when it explains at least half of the failing cases (one match among many failures
        # is a coincidence of that shape, e.g. a hard-coded number of groups that happens to be right once)
        self.diagnoses = {name: (explanation, count) for name, (explanation, count) in self.diagnoses.items()
                          if 2 * count >= len(failed)}
        print(f"{self.exercise}: {len(failed)} of {len(self.cases)} cases WRONG" +
              (f" ({', '.join(failed[:4])}{', ...' if len(failed) > 4 else ''})" if failed else ""))
        for name, (explanation, count) in self.diagnoses.items():
            print(f"  diagnosis: {name}. {explanation}")
        if not self.diagnoses and 0 < len(failed) < len(self.cases):
            print("  diagnosis: right for some shapes only. Is something hard-coded (a shape, a number of "
                  "groups, a channel count)? Compare the cases that pass with those that fail.")
        names = "; ".join(self.diagnoses) or "see the cases above"
        raise AssertionError(f"{self.exercise} is not right yet: {names}")


def _exercise(title, needs=None):
    """Decorator for a check: an unfinished exercise (``NotImplementedError``) is reported, not raised."""
    def wrap(check):
        @functools.wraps(check)
        def run(*args, **kwargs):
            print(f"Checking {title} ...")
            try:
                return check(*args, **kwargs)
            except ExerciseNotDone:
                raise
            except NotImplementedError as err:
                return not_done(title, err, needs)
        return run
    return wrap


def _call(report, label, fn, *args, **kwargs):
    """Call the student's function; other exceptions than NotImplementedError become a failed case."""
    try:
        return True, fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as err:                                   # noqa: BLE001 - reported to the student
        report.line(f"{label}: your function raised {type(err).__name__}: {err}")
        report.errors.append(label)
        report.case(label, False)
        return False, None


def _arity(report, got, names):
    """Unpack ``got`` into ``len(names)`` values, diagnosing a wrong number of returned values (None if so)."""
    n = len(names)
    want = names[0] if n == 1 else "(" + ", ".join(names) + ")"
    if n == 1:
        if isinstance(got, (tuple, list)):
            report.diagnose("wrong return arity",
                            f"Expected one array, {want}; your function returned a {type(got).__name__} of "
                            f"{len(got)} values. (The package's kernels return (out, cache); this exercise "
                            f"returns the array only.)")
            return None
        return (got,)
    if not isinstance(got, (tuple, list)):
        report.diagnose("wrong return arity", f"Expected {n} values, {want}; your function returned one "
                                              f"{type(got).__name__}.")
        return None
    if len(got) != n:
        report.diagnose("wrong return arity", f"Expected {n} values, {want}; your function returned "
                                              f"{len(got)}.")
        return None
    return tuple(got)


def _matches(got, candidate):
    try:
        got, candidate = np.asarray(got, dtype=np.float64), np.asarray(candidate, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return got.shape == candidate.shape and np.all(np.isfinite(got)) and rel_error(got, candidate) < MATCH


def _differs(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape != b.shape or rel_error(a, b) > 1e-6


def _try_mistakes(report, got, right, mistakes):
    """Name every known mistake whose result ``got`` equals (where that mistake changes the answer).

    ``mistakes`` maps a name to ``(explanation, result)``, or to a list of such pairs (variants of one mistake).
    """
    for name, variants in mistakes.items():
        variants = variants if isinstance(variants, list) else [variants]
        for explanation, result in variants:
            if result is not None and _differs(result, right) and _matches(got, result):
                report.diagnose(name, explanation)
                break


def _rng(seed):
    return np.random.default_rng(seed)


def _interleaved(channels, groups):
    """Channel order that puts channels k, k + groups, k + 2 groups, ... into block k (the interleaved split)."""
    return np.arange(channels).reshape(channels // groups, groups).T.reshape(-1)


def _shuffle(x, groups):
    return F.channel_shuffle_forward(x, groups)[0]


# ================================================================================================================
# Notebook 01: group convolution and counting
# ================================================================================================================
_INTERLEAVED = ("groups interleaved instead of contiguous",
                "Group k is the k-th block of C/g *consecutive* channels (channels k*C/g ... (k+1)*C/g - 1), so "
                "reshape the channel axis to (groups, C // groups), groups first. Reshaping to "
                "(C // groups, groups) puts channels k, k+g, k+2g, ... into group k.")


def _conv1x1_interleaved(x, w, g):
    """The 1x1 group convolution with interleaved groups: on the input only, and on input and output."""
    N, C_in = x.shape[:2]
    C_out = w.shape[0]
    idx_in, idx_out = _interleaved(C_in, g), _interleaved(C_out, g)
    out_a = F.conv2d_forward(x[:, idx_in], w, groups=g)[0]
    out_b = np.empty_like(out_a)
    out_b[:, idx_out] = out_a
    return out_a, out_b


@_exercise("group_conv1x1_forward")
def check_group_conv1x1_forward(fn, *, seed=0, cases=None):
    """Check ``fn(x, w, groups) -> out``, a 1x1 group convolution without bias, on several shapes."""
    rng = _rng(seed)
    cases = cases or [(2, 6, 4, 2, 3, 3), (1, 12, 6, 3, 2, 4), (2, 8, 8, 4, 1, 1), (1, 4, 6, 1, 2, 2),
                      (2, 6, 6, 6, 2, 1)]
    report = _Report("group_conv1x1_forward")
    for N, C_in, C_out, g, H, W in cases:
        label = f"C_in={C_in} C_out={C_out} groups={g} x{(N, C_in, H, W)}"
        x = rng.standard_normal((N, C_in, H, W))
        w = rng.standard_normal((C_out, C_in // g, 1, 1))
        ok, got = _call(report, label, fn, x.copy(), w.copy(), g)
        if not ok:
            continue
        got = _arity(report, got, ["out"])
        if got is None:
            report.case(label, False)
            continue
        right = F.conv2d_forward(x, w, groups=g)[0]
        out_a, out_b = _conv1x1_interleaved(x, w, g)
        report.line(label)
        passed = report.compare("  out vs package conv2d_forward", got[0], right, EXACT)
        if not passed:
            _try_mistakes(report, got[0], right, {_INTERLEAVED[0]: [(_INTERLEAVED[1], out_a),
                                                                    (_INTERLEAVED[1], out_b)]})
        report.case(label, passed)
    return report.finish()


def _conv_params_reference(c_in, c_out, k, groups):
    from ..analysis.counting import count_params
    from ..nn import Conv2d
    return count_params(Conv2d(c_in, c_out, k, groups=groups, bias=False))


@_exercise("conv_params")
def check_conv_params(fn, *, cases=None):
    """Check ``fn(c_in, c_out, kernel_size, groups) -> int`` against ``count_params`` of real layers."""
    cases = cases or [(256, 256, 3, 1), (256, 256, 3, 8), (240, 60, 1, 3), (64, 64, 3, 64), (12, 18, 5, 6),
                      (3, 24, 3, 1)]
    report = _Report("conv_params")
    for c_in, c_out, k, g in cases:
        label = f"conv_params({c_in}, {c_out}, {k}, groups={g})"
        ok, got = _call(report, label, fn, c_in, c_out, k, g)
        if not ok:
            continue
        right = _conv_params_reference(c_in, c_out, k, g)
        passed = isinstance(got, (int, np.integer)) and int(got) == right
        report.line(f"{label:<40s} yours {got!s:>8s}   count_params {right:>8,d}   {'ok' if passed else 'WRONG'}")
        if not passed and isinstance(got, (int, float, np.number)):
            if got == right:
                report.diagnose("a float, not an int", "A parameter count is a whole number: use // (integer "
                                                       "division), not /.")
            mistakes = {
                "divided by groups twice": c_in * c_out * k * k // (g * g),
                "the kernel's area left out": c_in * c_out // g,
                "groups ignored": c_in * c_out * k * k,
                "kernel size not squared": c_in * c_out * k // g,
            }
            for name, value in mistakes.items():
                if value != right and got == value:
                    report.diagnose(name, "Each of the c_out filters sees c_in / groups input channels through a "
                                          "k x k window: c_out * (c_in // groups) * k * k weights.")
        report.case(label, passed)
    return report.finish()


@_exercise("blog_numbers", needs="conv_params (the exercise above)")
def check_blog_numbers(fn):
    """Check ``fn() -> (dense, grouped, bottleneck)``: the blog's three parameter counts."""
    report = _Report("blog_numbers")
    ok, got = _call(report, "blog_numbers()", fn)
    if ok:
        got = _arity(report, got, ["dense", "grouped", "bottleneck"])
        if got is None:
            report.case("blog_numbers()", False)
        for name, value, right in zip(("dense 3x3, 256 -> 256", "group 3x3, g = 8", "bottleneck 256-64-64-256"),
                                      got or (), (589_824, 73_728, 69_632)):
            passed = int(value) == right
            report.line(f"{name:<28s} yours {value!s:>8s}   blog {right:>8,d}   {'ok' if passed else 'WRONG'}")
            if name.startswith("bottleneck") and value == 256 * 64 + 64 * 9 + 64 * 256:
                report.diagnose("the blog's 3x3 taken as depthwise",
                                "The blog's middle term is 64*3*3*64: a dense 3x3 from 64 to 64 channels.")
            report.case(name, passed)
    return report.finish()


def _unit_reference(c, g, h, w):
    from ..analysis.counting import count_flops, count_params
    from ..models import ShuffleUnit
    unit = ShuffleUnit(c, c, groups=g, stride=1, rng=_rng(0))
    return count_params(unit), count_flops(unit, (c, h, w))


@_exercise("unit_cost")
def check_unit_cost(fn, *, cases=None):
    """Check ``fn(c, m, g, h, w) -> (params, mult_adds)`` of a stride-1 ShuffleUnit against the counters."""
    cases = cases or [(240, 60, 3, 28, 28), (256, 64, 8, 56, 56), (480, 120, 3, 14, 14), (96, 24, 4, 7, 7),
                      (48, 12, 1, 5, 5), (144, 36, 2, 9, 9)]
    report = _Report("unit_cost")
    for c, m, g, h, w in cases:
        label = f"c={c} m={m} g={g} {h}x{w}"
        ok, got = _call(report, label, fn, c, m, g, h, w)
        if not ok:
            continue
        got = _arity(report, got, ["params", "mult_adds"])
        if got is None:
            report.case(label, False)
            continue
        params, macs = got
        right_p, right_m = _unit_reference(c, g, h, w)
        ok_p, ok_m = params == right_p, macs == right_m
        report.line(f"{label:<22s} params {params!s:>9s} (count_params {right_p:>9,d}) {'ok' if ok_p else 'WRONG'}"
                    f"   mult-adds {macs!s:>11s} (count_flops {right_m:>11,d}) {'ok' if ok_m else 'WRONG'}")
        conv_weights = 2 * c * m // g + 9 * m
        if not ok_p and params == conv_weights:
            report.diagnose("batch-norm parameters left out",
                            "count_params counts every trainable number: the three batch norms add gamma and beta "
                            "per channel, 2 * (m + m + c).")
        if not ok_m and macs == h * w * (2 * c * m // g + 9 * m * m):
            report.diagnose("the 3x3 counted as a dense convolution",
                            "The 3x3 of a ShuffleNet unit is depthwise: 9 multiply-adds per pixel and channel, "
                            "9m, not 9m^2.")
        if not ok_m and macs == h * w * (2 * c * m + 9 * m):
            report.diagnose("the 1x1 convolutions not divided by g",
                            "Each 1x1 *group* convolution costs hw * c * m / g.")
        if (params, macs) == (right_m, right_p) and right_m != right_p:
            report.diagnose("values swapped", "Return (params, mult_adds), in that order.")
        report.case(label, ok_p and ok_m)
    return report.finish()


# ================================================================================================================
# Notebook 02: channel shuffle and information flow
# ================================================================================================================
_SHUFFLE_CASES = [(6, 3), (12, 3), (12, 4), (8, 2), (8, 1), (16, 8), (18, 6), (4, 4)]


@_exercise("channel_shuffle_forward")
def check_channel_shuffle_forward(fn, *, seed=0, cases=None):
    """Check ``fn(x, groups) -> out``, the paper's channel shuffle, for several (C, groups)."""
    rng = _rng(seed)
    report = _Report("channel_shuffle_forward")
    for C, g in cases or _SHUFFLE_CASES:
        label = f"C={C} groups={g}"
        x = rng.standard_normal((2, C, 2, 3))
        ok, got = _call(report, label, fn, x.copy(), g)
        if not ok:
            continue
        got = _arity(report, got, ["out"])
        if got is None:
            report.case(label, False)
            continue
        right = _shuffle(x, g)
        passed = report.compare(f"{label}: out vs package", got[0], right, EXACT)
        if not passed:
            _try_mistakes(report, got[0], right, {
                "reshaped to (C // groups, groups) instead of (groups, C // groups)": (
                    "That is the inverse shuffle (the authors' code order, and the shuffle's backward). The paper "
                    "reshapes the channels to (g, n): one row per group, then transposes.", _shuffle(x, C // g)),
                "the channels were not moved": (
                    "Your output equals the input: the transpose is missing (or undone by the last reshape).", x),
            })
        report.case(label, passed)
    return report.finish()


@_exercise("shuffled_order")
def check_shuffled_order(fn):
    """Check ``fn() -> list``: the shuffled channel order for C = 12, g = 3, predicted by hand."""
    from ..analysis.flow import inverse_permutation, shuffle_permutation
    report = _Report("shuffled_order")
    ok, got = _call(report, "shuffled_order()", fn)
    if ok:
        right = shuffle_permutation(12, 3)
        got = list(np.asarray(got).ravel()) if got is not None else []
        passed = [int(v) for v in got] == right.tolist()
        report.line(f"yours    {[int(v) for v in got]}")
        report.line(f"{'ok' if passed else 'WRONG'}: out[:, k] = x[:, order[k]], k = 0 ... 11")
        if not passed and [int(v) for v in got] == inverse_permutation(right).tolist():
            report.diagnose("where each input channel goes, not which input each output takes",
                            "Your list is the inverse permutation. Output channel k is input channel order[k]: "
                            "write the table (g rows of n), read it column by column.")
        if not passed and len(got) != 12:
            report.diagnose("not 12 channels", f"Expected a list of the 12 channel numbers, got {len(got)} values.")
        report.case("C=12 g=3", passed)
    return report.finish()


@_exercise("stacked_connectivity")
def check_stacked_connectivity(fn, *, cases=None):
    """Check ``fn(C, g, shuffle) -> (C, C) boolean matrix`` of GConv -> [shuffle] -> GConv."""
    from ..analysis.flow import compose, group_conv_matrix, shuffle_matrix
    report = _Report("stacked_connectivity")
    for C, g in cases or [(12, 3), (12, 4), (8, 2), (6, 3), (16, 4), (4, 4)]:
        G = group_conv_matrix(C, C, g)
        for shuffle in (False, True):
            label = f"C={C} g={g} shuffle={shuffle}"
            ok, got = _call(report, label, fn, C, g, shuffle)
            if not ok:
                continue
            right = compose(G, shuffle_matrix(C, g), G) if shuffle else compose(G, G)
            got = np.asarray(got)
            if got.shape != right.shape:
                report.line(f"{label:<28s} WRONG SHAPE: got {got.shape}, expected {right.shape}")
                report.case(label, False)
                continue
            if got.dtype != bool and set(np.unique(got).tolist()) - {0, 1}:
                report.diagnose("counts instead of booleans",
                                "A matrix product of 0/1 matrices counts paths; 'can depend' is whether that count "
                                "is > 0. Convert with `> 0`.")
            got = got != 0
            passed = np.array_equal(got, right)
            report.line(f"{label:<28s} {int((got != right).sum()):>4d} of {right.size} entries differ   "
                        f"{'ok' if passed else 'WRONG'}")
            if not passed:
                interleaved = (np.arange(C)[:, None] % g) == (np.arange(C)[None, :] % g)
                if not shuffle and np.array_equal(got, interleaved):
                    report.diagnose(*_INTERLEAVED)
                if shuffle and np.array_equal(got, compose(G, shuffle_matrix(C, g).T, G)) and not \
                        np.array_equal(right, compose(G, shuffle_matrix(C, g).T, G)):
                    report.diagnose("the permutation matrix transposed",
                                    "Row k of the shuffle's matrix has its True at column perm[k] "
                                    "(out[:, k] = x[:, perm[k]]); yours uses the inverse.")
                if shuffle and got.all() and not right.all():
                    report.diagnose("assumed one shuffle always mixes everything",
                                    "With n = C/g < g channels per group, one shuffle is not enough.")
            report.case(label, passed)
    return report.finish()


@_exercise("groups_after_one_shuffle")
def check_groups_after_one_shuffle(fn, *, cases=None):
    """Check ``fn(C, g) -> int``: how many input groups each output channel of GConv -> shuffle -> GConv sees."""
    from ..analysis.flow import compose, group_conv_matrix, groups_seen, shuffle_matrix
    report = _Report("groups_after_one_shuffle")
    for C, g in cases or [(12, 3), (12, 4), (8, 4), (4, 4), (24, 3), (18, 6), (60, 3), (20, 5), (10, 5)]:
        label = f"C={C} g={g} (n={C // g})"
        ok, got = _call(report, label, fn, C, g)
        if not ok:
            continue
        G = group_conv_matrix(C, C, g)
        seen = groups_seen(compose(G, shuffle_matrix(C, g), G), g)
        right = int(seen.min())
        passed = isinstance(got, (int, np.integer)) and got == right
        report.line(f"{label:<18s} yours {got!s:>3s}   measured {right:>3d}   {'ok' if passed else 'WRONG'}")
        if not passed and got == g:
            report.diagnose("assumed one shuffle is always enough",
                            "When n = C/g < g, a group of the next convolution takes only n channels of the "
                            "shuffled order, so it can meet at most n groups.")
        if not passed and got == C // g and C // g > g:
            report.diagnose("n where min(n, g) belongs", "Nobody sees more than the g groups there are.")
        report.case(label, passed)
    return report.finish()


# ================================================================================================================
# Notebook 03: depthwise convolution, batch norm, the stride-2 unit
# ================================================================================================================
_DW_CASES = [(2, 3, 4, 5, 1), (1, 4, 6, 6, 2), (2, 2, 5, 7, 2), (1, 1, 1, 1, 1), (1, 3, 3, 2, 1)]


def _dw_ref(x, w, stride):
    return F.conv2d_forward(x, w, stride=stride, padding=1, groups=x.shape[1])[0]


@_exercise("depthwise_conv_forward")
def check_depthwise_conv_forward(fn, *, seed=0, cases=None):
    """Check ``fn(x, w, stride) -> out``: 3x3 depthwise convolution, padding 1, stride 1 or 2."""
    rng = _rng(seed)
    report = _Report("depthwise_conv_forward")
    for N, C, H, W, s in cases or _DW_CASES:
        label = f"x{(N, C, H, W)} stride={s}"
        x, w = rng.standard_normal((N, C, H, W)), rng.standard_normal((C, 1, 3, 3))
        ok, got = _call(report, label, fn, x.copy(), w.copy(), s)
        if not ok:
            continue
        got = _arity(report, got, ["out"])
        if got is None:
            report.case(label, False)
            continue
        right = _dw_ref(x, w, s)
        passed = report.compare(f"{label}: out vs package", got[0], right, EXACT)
        if not passed:
            out = np.asarray(got[0])
            _try_mistakes(report, out, right, {
                "kernel flipped": ("A deep-learning 'convolution' is a cross-correlation: tap (p, q) multiplies "
                                   "x_pad[..., i*s + p, j*s + q], without flipping the kernel.",
                                   _dw_ref(x, w[:, :, ::-1, ::-1], s)),
            })
            if out.ndim == 4 and out.shape[2:] == (H - 2, W - 2):
                report.diagnose("no zero padding", "The output must keep the size (padding 1): pad x with one "
                                                   "pixel of zeros on every side first.")
            if s == 2 and out.ndim == 4 and out.shape[2:] == (H, W):
                report.diagnose("stride ignored", "With stride 2 take every second window: "
                                                  "x_pad[:, :, p:p + 2*H_out - 1:2, q:q + 2*W_out - 1:2].")
        report.case(label, passed)
    return report.finish()


def _bn_stats(x):
    M = x.shape[0] * x.shape[2] * x.shape[3]
    return x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3)), M


_BN_CASES = [(4, 3, 2, 2), (2, 5, 3, 1), (3, 2, 1, 4)]


@_exercise("batchnorm_train_forward")
def check_batchnorm_train_forward(fn, *, seed=0, cases=None):
    """Check ``fn(x, gamma, beta, running_mean, running_var, momentum, eps) -> out`` in training mode, including
    the in-place update of the running buffers (PyTorch's rule: unbiased variance in ``running_var``)."""
    rng = _rng(seed)
    report = _Report("batchnorm_train_forward")
    for shape in cases or _BN_CASES:
        C = shape[1]
        label = f"x{shape}"
        x = 5 * rng.standard_normal(shape) + 12
        gamma, beta = rng.uniform(0.5, 1.5, C), rng.standard_normal(C)
        rm0, rv0 = rng.standard_normal(C), rng.uniform(0.5, 2.0, C)
        rm, rv = rm0.copy(), rv0.copy()
        ok, got = _call(report, label, fn, x.copy(), gamma.copy(), beta.copy(), rm, rv, 0.1, 1e-5)
        if not ok:
            continue
        got = _arity(report, got, ["out"])
        if got is None:
            report.case(label, False)
            continue
        rm_ref, rv_ref = rm0.copy(), rv0.copy()
        right = F.batchnorm2d_forward(x, gamma, beta, running_mean=rm_ref, running_var=rv_ref, training=True,
                                      momentum=0.1, eps=1e-5)[0]
        mu, var, M = _bn_stats(x)
        report.line(label)
        ok_out = report.compare("  out", got[0], right, EXACT)
        ok_rm = report.compare("  running_mean after the step", rm, rm_ref, EXACT)
        ok_rv = report.compare("  running_var after the step", rv, rv_ref, EXACT)
        if not ok_out:
            unbiased = var * M / (M - 1)
            xhat_u = (x - mu[None, :, None, None]) / np.sqrt(unbiased[None, :, None, None] + 1e-5)
            _try_mistakes(report, got[0], right, {
                "normalised with the unbiased variance": (
                    "In training mode batch norm divides by the *biased* batch variance (divide by M, np.var's "
                    "default); only running_var stores the unbiased one.",
                    gamma[None, :, None, None] * xhat_u + beta[None, :, None, None]),
                "statistics of the running buffers used in training mode": (
                    "Training mode normalises with the statistics of *this batch*.",
                    F.batchnorm2d_forward(x, gamma, beta, running_mean=rm0.copy(), running_var=rv0.copy(),
                                          training=False)[0]),
            })
        if not (ok_rm and ok_rv):
            if np.array_equal(rm, rm0) and np.array_equal(rv, rv0):
                report.diagnose("running buffers not updated in place",
                                "Assigning `running_mean = ...` inside the function makes a new local array; the "
                                "caller's buffer stays unchanged. Write into it: running_mean *= ..., "
                                "running_mean += ... or running_mean[...] = ....")
            elif _matches(rv, 0.9 * rv0 + 0.1 * var) and not _matches(rv_ref, 0.9 * rv0 + 0.1 * var):
                report.diagnose("running_var updated with the biased variance",
                                "PyTorch stores the unbiased variance, var * M / (M - 1), in running_var.")
            elif _matches(rm, 0.1 * rm0 + 0.9 * mu):
                report.diagnose("momentum the wrong way round",
                                "PyTorch's rule: running = (1 - momentum) * running + momentum * batch_statistic, "
                                "with momentum = 0.1.")
        report.case(label, ok_out and ok_rm and ok_rv)
    return report.finish()


@_exercise("batchnorm_eval_forward")
def check_batchnorm_eval_forward(fn, *, seed=0, cases=None):
    """Check ``fn(x, gamma, beta, running_mean, running_var, eps) -> out`` in eval mode (buffers unchanged)."""
    rng = _rng(seed)
    report = _Report("batchnorm_eval_forward")
    for shape in cases or _BN_CASES:
        C = shape[1]
        label = f"x{shape}"
        x = 5 * rng.standard_normal(shape) + 12
        gamma, beta = rng.uniform(0.5, 1.5, C), rng.standard_normal(C)
        rm0, rv0 = 12 + rng.standard_normal(C), rng.uniform(10.0, 30.0, C)
        rm, rv = rm0.copy(), rv0.copy()
        ok, got = _call(report, label, fn, x.copy(), gamma.copy(), beta.copy(), rm, rv, 1e-5)
        if not ok:
            continue
        got = _arity(report, got, ["out"])
        if got is None:
            report.case(label, False)
            continue
        right = F.batchnorm2d_forward(x, gamma, beta, running_mean=rm0.copy(), running_var=rv0.copy(),
                                      training=False)[0]
        ok_out = report.compare(f"{label}: out", got[0], right, EXACT)
        unchanged = np.array_equal(rm, rm0) and np.array_equal(rv, rv0)
        if not unchanged:
            report.line(f"{label}: the running buffers changed   WRONG")
            report.diagnose("running buffers modified in eval mode", "Eval mode only reads them.")
        if not ok_out:
            _try_mistakes(report, got[0], right, {
                "batch statistics used in eval mode": (
                    "In eval mode batch norm normalises with running_mean and running_var, so that an image's "
                    "output does not depend on the rest of its batch.",
                    F.batchnorm2d_forward(x, gamma, beta, training=True)[0]),
                "divided by the variance, not the standard deviation": (
                    "x_hat = (x - mean) / sqrt(var + eps).",
                    gamma[None, :, None, None] * (x - rm0[None, :, None, None]) / (rv0[None, :, None, None] + 1e-5)
                    + beta[None, :, None, None]),
            })
        report.case(label, ok_out and unchanged)
    return report.finish()


def _avgpool_shortcut(x):
    return F.avg_pool2d_forward(x, kernel_size=3, stride=2, padding=1)[0]


def _stride2_ref(x, branch):
    return np.maximum(np.concatenate([_avgpool_shortcut(x), branch], axis=1), 0)


def _stride2_case(rng, N, C, H, W, Cb):
    x = rng.standard_normal((N, C, H, W))
    H_out, W_out = (H - 1) // 2 + 1, (W - 1) // 2 + 1
    return x, rng.standard_normal((N, Cb, H_out, W_out))


_STRIDE2_CASES = [(2, 3, 4, 4, 3), (1, 4, 5, 6, 8), (2, 2, 3, 3, 4), (1, 6, 7, 2, 6)]


@_exercise("stride2_unit_forward")
def check_stride2_unit_forward(fn, *, seed=0, cases=None):
    """Check ``fn(x, branch) -> out = ReLU(concat([AvgPool3x3/s2/p1(x), branch]))`` (paper Fig. 2 c)."""
    rng = _rng(seed)
    report = _Report("stride2_unit_forward")
    for N, C, H, W, Cb in cases or _STRIDE2_CASES:
        label = f"x{(N, C, H, W)} branch with {Cb} channels"
        x, branch = _stride2_case(rng, N, C, H, W, Cb)
        ok, got = _call(report, label, fn, x.copy(), branch.copy())
        if not ok:
            continue
        got = _arity(report, got, ["out"])
        if got is None:
            report.case(label, False)
            continue
        right = _stride2_ref(x, branch)
        passed = report.compare(f"{label}: out", got[0], right, EXACT)
        if not passed:
            pooled = _avgpool_shortcut(x)
            ones = np.ones((1, 1) + x.shape[2:])
            counts = F.avg_pool2d_forward(ones, kernel_size=3, stride=2, padding=1)[0] * 9
            _try_mistakes(report, got[0], right, {
                "branch first, shortcut second": (
                    "Fig. 2 (c) and the authors' code concatenate [shortcut, branch], the pooled input first.",
                    np.maximum(np.concatenate([branch, pooled], axis=1), 0)),
                "the padding left out of the average": (
                    "The package (and PyTorch's default, count_include_pad=True) divides every window by 9, "
                    "padding zeros included.",
                    np.maximum(np.concatenate([pooled * 9 / counts, branch], axis=1), 0)),
                "ReLU missing": ("The unit ends with a ReLU after the concatenation.",
                                 np.concatenate([pooled, branch], axis=1)),
                "max pool instead of average pool": (
                    "The shortcut of the stride-2 unit is a 3x3 *average* pool.",
                    np.maximum(np.concatenate([F.max_pool2d_forward(x, kernel_size=3, stride=2, padding=1)[0],
                                               branch], axis=1), 0)),
            })
        report.case(label, passed)
    return report.finish()


def _stride2_backward_ref(dout, x, out):
    """``(dx_shortcut, dbranch, d)`` of ``out = ReLU(concat([AvgPool(x), branch]))``; ``d`` is past the ReLU."""
    d = dout * (out > 0)
    C = x.shape[1]
    _, cache = F.avg_pool2d_forward(x, kernel_size=3, stride=2, padding=1)
    return F.avg_pool2d_backward(d[:, :C], cache), d[:, C:], d


@_exercise("stride2_unit_backward")
def check_stride2_unit_backward(fn, *, seed=0, cases=None):
    """Check ``fn(dout, x, out) -> (dx_shortcut, dbranch)`` for ``out = ReLU(concat([AvgPool(x), branch]))``."""
    rng = _rng(seed)
    report = _Report("stride2_unit_backward")
    for i, (N, C, H, W, Cb) in enumerate(cases or _STRIDE2_CASES):
        label = f"x{(N, C, H, W)} branch with {Cb} channels"
        x, branch = _stride2_case(rng, N, C, H, W, Cb)
        out = _stride2_ref(x, branch)
        dout = rng.standard_normal(out.shape)
        right_dx, right_db, d = _stride2_backward_ref(dout, x, out)
        ok, got = _call(report, label, fn, dout.copy(), x.copy(), out.copy())
        if not ok:
            continue
        got = _arity(report, got, ["dx_shortcut", "dbranch"])
        if got is None:
            report.case(label, False)
            continue
        dx, db = got
        report.line(label)
        passed = report.compare("  dbranch vs package", db, right_db, EXACT)
        passed &= report.compare("  dx_shortcut vs package", dx, right_dx, EXACT)
        if i == 0:
            passed &= report.compare("  dbranch vs numeric gradient", db,
                                     numeric_gradient(lambda v: _stride2_ref(x, v), branch, dout), NUMERIC)
            passed &= report.compare("  dx_shortcut vs numeric gradient", dx,
                                     numeric_gradient(lambda v: _stride2_ref(v, branch), x, dout), NUMERIC)
        if not passed:
            _try_mistakes(report, db, right_db, {
                "ReLU mask forgotten": ("The unit's last ReLU passes the gradient only where out > 0: start "
                                        "from dout * (out > 0).", dout[:, C:]),
                "split in the wrong order": ("The first C channels of the output are the shortcut, the rest "
                                             "the branch.", d[:, :d.shape[1] - C] if d.shape[1] - C > 0 else None),
            })
            pooled_shape = (N, C) + out.shape[2:]
            if np.asarray(dx).shape == pooled_shape and pooled_shape != x.shape:
                report.diagnose("the pool's backward missing",
                                "dx_shortcut is the gradient with respect to x, shaped like x: send the "
                                "shortcut's share of the gradient back through the 3x3 average pool.")
            if _matches(dx, 9 * right_dx) and np.abs(right_dx).max() > 0:
                report.diagnose("the pool's gradient not divided by 9",
                                "Each input of a window gets 1/9 of that window's gradient.")
            eq = _avgpool_backward_assign(d[:, :C], x.shape)
            if _differs(eq, right_dx) and _matches(dx, eq):
                report.diagnose("`=` instead of `+=` in the pool's backward",
                                "3x3 windows with stride 2 overlap: a pixel in two windows gets the gradient of "
                                "both, so accumulate with +=.")
        report.case(label, passed)
    return report.finish()


def _avgpool_backward_assign(dout, x_shape):
    """The 3x3/s2/p1 average pool's backward written with ``=`` instead of ``+=`` (a known mistake)."""
    N, C, H, W = x_shape
    H_out, W_out = dout.shape[2:]
    dx_pad = np.zeros((N, C, H + 2, W + 2))
    for p in range(3):
        for q in range(3):
            dx_pad[:, :, p:p + 2 * H_out - 1:2, q:q + 2 * W_out - 1:2] = dout / 9
    return dx_pad[:, :, 1:-1, 1:-1]


# ================================================================================================================
# Notebook 04: backward passes
# ================================================================================================================
@_exercise("channel_shuffle_backward")
def check_channel_shuffle_backward(fn, *, seed=1, cases=None):
    """Check ``fn(dout, groups) -> dx`` for several (C, groups): numeric gradient and the package."""
    rng = _rng(seed)
    report = _Report("channel_shuffle_backward")
    for i, (C, g) in enumerate(cases or _SHUFFLE_CASES):
        label = f"C={C} groups={g}"
        x, dout = rng.standard_normal((2, C, 2, 3)), rng.standard_normal((2, C, 2, 3))
        ok, got = _call(report, label, fn, dout.copy(), g)
        if not ok:
            continue
        got = _arity(report, got, ["dx"])
        if got is None:
            report.case(label, False)
            continue
        _, cache = F.channel_shuffle_forward(x, g)
        right = F.channel_shuffle_backward(dout, cache)
        passed = report.compare(f"{label}: dx vs package", got[0], right, EXACT)
        if i == 0:
            num = numeric_gradient(lambda v: _shuffle(v, g), x, dout)
            passed &= report.compare(f"{label}: dx vs numeric gradient", got[0], num, NUMERIC)
        if not passed:
            _try_mistakes(report, got[0], right, {
                "shuffle applied forward again instead of inverse": (
                    "The gradient flows back along the same wires the other way round: dx must undo the "
                    "forward's reordering (the inverse permutation), not apply it a second time.",
                    _shuffle(dout, g)),
                "dout returned unchanged": ("The shuffle moved the channels; the gradient has to move back.",
                                            dout),
            })
        report.case(label, passed)
    return report.finish()


@_exercise("pointwise_group_conv_backward")
def check_pointwise_group_conv_backward(fn, *, seed=2, cases=None):
    """Check ``fn(dout, x, w, groups) -> (dx, dw)`` of a 1x1 group convolution on several shapes."""
    rng = _rng(seed)
    report = _Report("pointwise_group_conv_backward")
    cases = cases or [(2, 6, 4, 2, 3, 3), (1, 4, 4, 1, 2, 3), (2, 12, 6, 3, 3, 2), (3, 8, 8, 4, 1, 1),
                      (2, 6, 6, 6, 2, 2)]
    for i, (N, C_in, C_out, g, H, W) in enumerate(cases):
        label = f"C_in={C_in} C_out={C_out} groups={g} x{(N, C_in, H, W)}"
        x = rng.standard_normal((N, C_in, H, W))
        w = rng.standard_normal((C_out, C_in // g, 1, 1))
        dout = rng.standard_normal((N, C_out, H, W))
        ok, got = _call(report, label, fn, dout.copy(), x.copy(), w.copy(), g)
        if not ok:
            continue
        got = _arity(report, got, ["dx", "dw"])
        if got is None:
            report.case(label, False)
            continue
        _, cache = F.conv2d_forward(x, w, groups=g)
        right_dx, right_dw, _ = F.conv2d_backward(dout, cache)
        report.line(label)
        passed = report.compare("  dx vs package", got[0], right_dx, EXACT)
        passed &= report.compare("  dw vs package", got[1], right_dw, EXACT)
        if i == 0:
            passed &= report.compare("  dx vs numeric gradient", got[0], numeric_gradient(
                lambda v: F.conv2d_forward(v, w, groups=g)[0], x, dout), NUMERIC)
            passed &= report.compare("  dw vs numeric gradient", got[1], numeric_gradient(
                lambda v: F.conv2d_forward(x, v, groups=g)[0], w, dout), NUMERIC)
        if not passed:
            idx_in, idx_out = _interleaved(C_in, g), _interleaved(C_out, g)
            inv_in = np.argsort(idx_in)
            # interleaved input groups: out = conv(x[:, idx_in], w) -> dx = dx'[:, inv], dw = dw'
            _, c_a = F.conv2d_forward(x[:, idx_in], w, groups=g)
            dx_a, dw_a, _ = F.conv2d_backward(dout, c_a)
            _, c_b = F.conv2d_forward(x[:, idx_in], w, groups=g)
            dx_b, dw_b, _ = F.conv2d_backward(dout[:, idx_out], c_b)
            for dx_m, dw_m in ((dx_a[:, inv_in], dw_a), (dx_b[:, inv_in], dw_b)):
                if (_differs(dx_m, right_dx) and _matches(got[0], dx_m)) or \
                        (_differs(dw_m, right_dw) and _matches(got[1], dw_m)):
                    report.diagnose(*_INTERLEAVED)
            if np.asarray(got[1]).shape == (N,) + w.shape or np.asarray(got[1]).ndim == 5:
                report.diagnose("dw not summed over the batch",
                                "The weight is shared by every sample, so its gradient sums over n.")
        report.case(label, passed)
    return report.finish()


def _dw_backward_assign(dout, x, w, stride):
    """The depthwise backward with ``dx_pad[...] = ...`` instead of ``+=`` (a known mistake)."""
    N, C, H, W = x.shape
    H_out, W_out = dout.shape[2:]
    dx_pad = np.zeros((N, C, H + 2, W + 2))
    for p in range(3):
        for q in range(3):
            dx_pad[:, :, p:p + stride * (H_out - 1) + 1:stride, q:q + stride * (W_out - 1) + 1:stride] = \
                w[:, 0, p, q][None, :, None, None] * dout
    return dx_pad, dx_pad[:, :, 1:-1, 1:-1]


@_exercise("depthwise_conv_backward")
def check_depthwise_conv_backward(fn, *, seed=3, cases=None):
    """Check ``fn(dout, x, w, stride) -> (dx, dw)`` of the 3x3 depthwise convolution (padding 1)."""
    rng = _rng(seed)
    report = _Report("depthwise_conv_backward")
    for i, (N, C, H, W, s) in enumerate(cases or _DW_CASES):
        label = f"x{(N, C, H, W)} stride={s}"
        x, w = rng.standard_normal((N, C, H, W)), rng.standard_normal((C, 1, 3, 3))
        _, cache = F.conv2d_forward(x, w, stride=s, padding=1, groups=C)
        dout = rng.standard_normal(_dw_ref(x, w, s).shape)
        right_dx, right_dw, _ = F.conv2d_backward(dout, cache)
        ok, got = _call(report, label, fn, dout.copy(), x.copy(), w.copy(), s)
        if not ok:
            continue
        got = _arity(report, got, ["dx", "dw"])
        if got is None:
            report.case(label, False)
            continue
        report.line(label)
        ok_dx = report.compare("  dx vs package", got[0], right_dx, EXACT)
        ok_dw = report.compare("  dw vs package", got[1], right_dw, EXACT)
        if i == 0:
            ok_dx &= report.compare("  dx vs numeric gradient", got[0],
                                    numeric_gradient(lambda v: _dw_ref(v, w, s), x, dout), NUMERIC)
            ok_dw &= report.compare("  dw vs numeric gradient", got[1],
                                    numeric_gradient(lambda v: _dw_ref(x, v, s), w, dout), NUMERIC)
        if not ok_dx:
            dx_got = np.asarray(got[0])
            pad_eq, dx_eq = _dw_backward_assign(dout, x, w, s)
            if _differs(dx_eq, right_dx) and (_matches(dx_got, dx_eq) or _matches(dx_got, pad_eq)):
                report.diagnose("`=` instead of `+=`",
                                "An input pixel is seen by several taps; its gradient is the *sum* of their "
                                "contributions, so accumulate into dx_pad with +=. With =, the last tap "
                                "overwrites the others.")
            if dx_got.shape == (N, C, H + 2, W + 2):
                report.diagnose("the padding border not cropped",
                                "dx_pad has the padded size; the padding zeros are not inputs, so dx is dx_pad "
                                "without its one-pixel border, shaped like x.")
            elif dx_got.ndim == 4 and dx_got.shape[:2] == (N, C) and dx_got.shape[2:] in [(H + 1, W + 1)]:
                report.diagnose("the padding border cropped on one side only",
                                "Cut one pixel on every side: dx_pad[:, :, 1:-1, 1:-1].")
            if ok_dw and not ok_dx:
                report.line("  (dw is right, dx is wrong)")
        report.case(label, ok_dx and ok_dw)
    return report.finish()


def _bn_backward_variants(dout, x, gamma, eps=1e-5):
    """Known wrong batch-norm dx formulas: without the variance path, and with constant batch statistics."""
    mu = x.mean(axis=(0, 2, 3), keepdims=True)
    s = 1.0 / np.sqrt(x.var(axis=(0, 2, 3), keepdims=True) + eps)
    dxhat = dout * gamma[None, :, None, None]
    return s * (dxhat - dxhat.mean(axis=(0, 2, 3), keepdims=True)), s * dxhat, mu


@_exercise("batchnorm_backward")
def check_batchnorm_backward(fn, *, seed=4, cases=None):
    """Check ``fn(dout, x, gamma, eps) -> (dx, dgamma, dbeta)`` of batch norm in training mode."""
    rng = _rng(seed)
    report = _Report("batchnorm_backward")
    for i, shape in enumerate(cases or [(4, 3, 2, 2), (2, 1, 1, 2), (3, 5, 1, 2), (2, 4, 3, 3)]):
        C = shape[1]
        label = f"x{shape}"
        x = 5 * rng.standard_normal(shape) + 12
        gamma, beta = rng.uniform(0.5, 1.5, C), rng.standard_normal(C)
        dout = rng.standard_normal(shape)
        ok, got = _call(report, label, fn, dout.copy(), x.copy(), gamma.copy(), 1e-5)
        if not ok:
            continue
        got = _arity(report, got, ["dx", "dgamma", "dbeta"])
        if got is None:
            report.case(label, False)
            continue
        _, cache = F.batchnorm2d_forward(x, gamma, beta, training=True)
        right = F.batchnorm2d_backward(dout, cache)
        report.line(label)
        ok_dx = report.compare("  dx vs package", got[0], right[0], EXACT)
        ok_dg = report.compare("  dgamma vs package", got[1], right[1], EXACT)
        ok_db = report.compare("  dbeta vs package", got[2], right[2], EXACT)
        if i == 0:
            def bn(v):
                return F.batchnorm2d_forward(v, gamma, beta, training=True)[0]
            ok_dx &= report.compare("  dx vs numeric gradient", got[0], numeric_gradient(bn, x, dout), NUMERIC)
        if ok_dg and ok_db and not ok_dx:
            no_var, const_stats, _ = _bn_backward_variants(dout, x, gamma)
            if _matches(got[0], no_var):
                report.diagnose("batch norm without the variance path",
                                "dgamma and dbeta are right, dx is wrong: it is exactly the formula that treats "
                                "the variance as a constant. Moving x_j also moves sigma^2; that path adds the "
                                "term - x_hat_i * sum_j(dx_hat_j * x_hat_j) / M.")
            elif _matches(got[0], const_stats):
                report.diagnose("batch statistics treated as constants",
                                "dgamma and dbeta are right, dx is wrong: dx = dout * gamma / std is the eval-mode "
                                "gradient. In training mode the mean and the variance depend on x too.")
            else:
                report.diagnose("dgamma and dbeta right, dx wrong",
                                "Check the three paths from x_j to x_hat_i: directly, through the mean and "
                                "through the variance.")
        report.case(label, ok_dx and ok_dg and ok_db)
    return report.finish()


def _maxpool_variants(dout, x, k, s):
    """Max-pool backward written with ``=`` instead of ``+=``, and a gradient spread over the whole window."""
    N, C, H, W = x.shape
    H_out, W_out = dout.shape[2:]
    assign, spread = np.zeros_like(x), np.zeros_like(x)
    for i in range(H_out):
        for j in range(W_out):
            win = x[:, :, i * s:i * s + k, j * s:j * s + k].reshape(N, C, -1)
            mask = (win == win.max(axis=2, keepdims=True)).reshape(N, C, k, k)
            d = dout[:, :, i, j][:, :, None, None]
            region = assign[:, :, i * s:i * s + k, j * s:j * s + k]
            region[mask] = (d * mask)[mask]
            spread[:, :, i * s:i * s + k, j * s:j * s + k] += d
    return assign, spread


@_exercise("max_pool_backward")
def check_max_pool_backward(fn, *, seed=5, cases=None):
    """Check ``fn(dout, x, kernel_size, stride) -> dx`` of max pooling without padding."""
    rng = _rng(seed)
    report = _Report("max_pool_backward")
    for i, (N, C, H, W, k, s) in enumerate(cases or [(2, 3, 4, 4, 2, 2), (1, 2, 5, 5, 3, 2), (2, 2, 4, 5, 3, 1),
                                                     (1, 3, 3, 4, 2, 1)]):
        label = f"x{(N, C, H, W)} kernel={k} stride={s}"
        x = rng.permutation(N * C * H * W).reshape(N, C, H, W) / (N * C * H * W) + rng.uniform(0, 0.1)
        out, cache = F.max_pool2d_forward(x, kernel_size=k, stride=s)
        dout = rng.standard_normal(out.shape)
        ok, got = _call(report, label, fn, dout.copy(), x.copy(), k, s)
        if not ok:
            continue
        got = _arity(report, got, ["dx"])
        if got is None:
            report.case(label, False)
            continue
        right = F.max_pool2d_backward(dout, cache)
        passed = report.compare(f"{label}: dx vs package", got[0], right, EXACT)
        if i == 1:
            num = numeric_gradient(lambda v: F.max_pool2d_forward(v, kernel_size=k, stride=s)[0], x, dout)
            passed &= report.compare(f"{label}: dx vs numeric gradient", got[0], num, NUMERIC)
        if not passed:
            assign, spread = _maxpool_variants(dout, x, k, s)
            _try_mistakes(report, got[0], right, {
                "`=` instead of `+=`": ("Overlapping windows (stride < kernel size) can share their maximum; that "
                                        "input gets the gradient of every window it wins, so accumulate with +=.",
                                        assign),
                "gradient spread over the whole window": (
                    "Only the maximum of a window influences the output; the other inputs get no gradient.",
                    spread),
            })
        report.case(label, passed)
    return report.finish()


@_exercise("linear_backward")
def check_linear_backward(fn, *, seed=6, cases=None):
    """Check ``fn(dout, x, w) -> (dx, dw, db)`` of ``out = x @ w.T + b``."""
    rng = _rng(seed)
    report = _Report("linear_backward")
    for i, (N, F_in, F_out) in enumerate(cases or [(4, 5, 3), (1, 3, 7), (6, 2, 2), (3, 8, 1)]):
        label = f"x({N}, {F_in}) w({F_out}, {F_in})"
        x, w, b = rng.standard_normal((N, F_in)), rng.standard_normal((F_out, F_in)), rng.standard_normal(F_out)
        dout = rng.standard_normal((N, F_out))
        ok, got = _call(report, label, fn, dout.copy(), x.copy(), w.copy())
        if not ok:
            continue
        got = _arity(report, got, ["dx", "dw", "db"])
        if got is None:
            report.case(label, False)
            continue
        _, cache = F.linear_forward(x, w, b)
        right = F.linear_backward(dout, cache)
        report.line(label)
        passed = True
        for name, g_, r_ in zip(("dx", "dw", "db"), got, right):
            passed &= report.compare(f"  {name} vs package", g_, r_, EXACT)
        if i == 0:
            passed &= report.compare("  dw vs numeric gradient", got[1], numeric_gradient(
                lambda v: F.linear_forward(x, v, b)[0], w, dout), NUMERIC)
        if not passed:
            if np.asarray(got[1]).shape == w.T.shape and w.shape != w.T.shape:
                report.diagnose("dw transposed", "dw has the shape of w, (F_out, F_in): dw = dout.T @ x.")
            if np.asarray(got[2]).shape == (N, F_out):
                report.diagnose("db not summed over the batch", "The bias is shared by every row: db sums dout "
                                                                "over the batch axis.")
        report.case(label, passed)
    return report.finish()


@_exercise("softmax_cross_entropy")
def check_softmax_cross_entropy(fn, *, seed=7, cases=None):
    """Check ``fn(logits, labels) -> (loss, dlogits)``: mean softmax cross-entropy and its gradient."""
    rng = _rng(seed)
    report = _Report("softmax_cross_entropy")
    for i, (N, K, scale) in enumerate(cases or [(4, 3, 1.0), (1, 5, 1.0), (6, 8, 3.0), (3, 4, 1000.0)]):
        label = f"logits({N}, {K}) of size {scale:g}"
        logits, labels = scale * rng.standard_normal((N, K)), rng.integers(0, K, N)
        ok, got = _call(report, label, fn, logits.copy(), labels.copy())
        if not ok:
            continue
        got = _arity(report, got, ["loss", "dlogits"])
        if got is None:
            report.case(label, False)
            continue
        loss, dlogits = got
        right_loss, right_d = F.softmax_cross_entropy(logits, labels)
        report.line(label)
        passed = report.compare("  loss vs package", np.asarray(loss, dtype=np.float64), right_loss, EXACT)
        passed &= report.compare("  dlogits vs package", dlogits, right_d, EXACT)
        if i == 0:
            num = numeric_gradient(lambda v: np.array(F.softmax_cross_entropy(v, labels)[0]), logits,
                                   np.array(1.0))
            passed &= report.compare("  dlogits vs numeric gradient", dlogits, num, NUMERIC)
        if not passed:
            if not np.all(np.isfinite(np.asarray(loss, dtype=np.float64))) or not np.all(np.isfinite(dlogits)):
                report.diagnose("softmax overflowed", "exp(1000) is inf in float64. Softmax does not change when "
                                                      "a constant is subtracted from a row: subtract each row's "
                                                      "maximum before np.exp.")
            if np.isfinite(loss) and np.isclose(loss, N * right_loss) and N > 1:
                report.diagnose("sum instead of mean over the batch",
                                "The loss is the mean over the N samples, so dlogits is divided by N as well.")
            elif np.asarray(dlogits).shape == right_d.shape and _matches(dlogits, N * right_d) and N > 1:
                report.diagnose("dlogits not divided by N", "The loss is a mean: dlogits = (p - onehot) / N.")
            if np.asarray(dlogits).shape == right_d.shape and _matches(dlogits, -right_d):
                report.diagnose("sign flipped", "dlogits = softmax - onehot (the probability of the right class "
                                                "should go up when we step against the gradient).")
        report.case(label, passed)
    return report.finish()


# ================================================================================================================
# Notebook 09: SGD and training on your own layers
# ================================================================================================================
def _sgd_reference(params, grads_per_step, lrs, momentum, weight_decay):
    from ..nn import Parameter
    from ..training.optim import SGD
    ps = [Parameter(p.copy()) for p in params]
    opt = SGD(ps, lr=lrs[0], momentum=momentum, weight_decay=weight_decay)
    for grads, lr in zip(grads_per_step, lrs):
        for p, g in zip(ps, grads):
            p.grad = g
        opt.lr = lr
        opt.step()
    return [p.data for p in ps], opt.buffers


@_exercise("sgd_step")
def check_sgd_step(fn, *, seed=8):
    """Check ``fn(params, grads, buffers, lr, momentum, weight_decay)``: one SGD step in place, as ``optim.SGD``."""
    rng = _rng(seed)
    report = _Report("sgd_step")
    shapes = [(4, 3, 1, 1), (4,), (2, 5), (3,)]
    for momentum, weight_decay in [(0.9, 1e-2), (0.0, 0.0), (0.5, 0.1)]:
        label = f"momentum={momentum} weight_decay={weight_decay}, 3 steps, lr 0.1 -> 0.05 -> 0.02"
        params0 = [rng.standard_normal(s) for s in shapes]
        grads = [[rng.standard_normal(s) for s in shapes] for _ in range(3)]
        lrs = [0.1, 0.05, 0.02]
        params, buffers = [p.copy() for p in params0], [np.zeros(s) for s in shapes]
        failed = False
        for step, (g, lr) in enumerate(zip(grads, lrs)):
            ok, got = _call(report, label, fn, params, [v.copy() for v in g], buffers, lr, momentum, weight_decay)
            if not ok:
                failed = True
                break
        if failed:
            continue
        right_p, right_b = _sgd_reference(params0, grads, lrs, momentum, weight_decay)
        report.line(label)
        passed = True
        for k, (p, r) in enumerate(zip(params, right_p)):
            passed &= report.compare(f"  parameter {k} {shapes[k]}", p, r, EXACT)
        if not passed:
            if all(np.array_equal(p, p0) for p, p0 in zip(params, params0)):
                report.diagnose("parameters not updated in place",
                                "`p = p - lr * buf` makes a new local array; the caller's list still holds the old "
                                "one. Update it in place: p -= lr * buf.")
            decay_all = _sgd_variant(params0, grads, lrs, momentum, weight_decay, decay_1d=True)
            lr_inside = _sgd_variant(params0, grads, lrs, momentum, weight_decay, lr_in_buffer=True)
            no_buffer = _sgd_variant(params0, grads, lrs, momentum, weight_decay, keep_buffer=False)
            for name, explanation, variant in [
                    ("weight decay on one-axis parameters", "training/optim.py decays only conv and FC weights (arrays "
                     "with more than one axis), not batch-norm gamma and beta or biases.", decay_all),
                    ("the learning rate inside the momentum buffer", "training/optim.py (as PyTorch) keeps "
                     "buf = momentum * buf + g and steps p -= lr * buf; putting lr into buf changes the result "
                     "when the learning rate changes.", lr_inside),
                    ("momentum buffers not kept between steps", "Update the caller's buffers in place "
                     "(buf *= momentum; buf += g), so the next step sees them.", no_buffer)]:
                if any(_differs(v, r) for v, r in zip(variant, right_p)) and \
                        all(_matches(p, v) for p, v in zip(params, variant)):
                    report.diagnose(name, explanation)
        report.case(label, passed)
    return report.finish()


def _sgd_variant(params0, grads_per_step, lrs, momentum, weight_decay, *, decay_1d=False, lr_in_buffer=False,
                 keep_buffer=True):
    params = [p.copy() for p in params0]
    buffers = [np.zeros_like(p) for p in params]
    for grads, lr in zip(grads_per_step, lrs):
        for k, (p, g) in enumerate(zip(params, grads)):
            if weight_decay and (p.ndim > 1 or decay_1d):
                g = g + weight_decay * p
            buf = buffers[k] if keep_buffer else np.zeros_like(p)
            buf *= momentum
            buf += lr * g if lr_in_buffer else g
            p -= buf if lr_in_buffer else lr * buf
    return params


# ================================================================================================================
# Your layers as a kernel set
# ================================================================================================================
class StudentKernels:
    """A kernel set for :func:`numpy_shufflenet.use_kernels` built from the course's exercise functions.

    ``StudentKernels(namespace)`` takes a dict (``globals()`` of the notebook) or any object, and uses these of
    its functions, in the exercises' signatures:

    ================================= ============================================ ==========================
    name                              signature                                    runs
    ================================= ============================================ ==========================
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
    ================================= ============================================ ==========================

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
        rng = _rng(0)
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
        if route == "1x1":
            _, x, w, groups = cache
            got = self._use("pointwise_group_conv_backward", dout, x, w, groups)
            if got is not None:
                dx, dw = got[0]
                return dx, dw, None
            cache = ("package", F.conv2d_forward(x, w, groups=groups)[1])
        elif route == "dw":
            _, x, w, s = cache
            got = self._use("depthwise_conv_backward", dout, x, w, s)
            if got is not None:
                dx, dw = got[0]
                return dx, dw, None
            cache = ("package", F.conv2d_forward(x, w, stride=s, padding=1, groups=x.shape[1])[1])
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


@_exercise("training on your layers", needs="sgd_step and your functions of notebooks 01-04")
def check_training(accuracy, baseline_accuracy, kernels, sgd_written, *, margin=0.25):
    """Check that a network trained on ``kernels`` (and your ``sgd_step``) beat the linear baseline by
    ``margin``, and that your functions ran every layer they cover."""
    missing = sorted(kernels.missing) + ([] if sgd_written else ["sgd_step"])
    if missing:
        raise NotImplementedError("the training ran partly on the package's code: still to write " +
                                  ", ".join(missing))
    report = _Report("training on your layers")
    passed = accuracy >= baseline_accuracy + margin
    report.line(f"held-out accuracy {accuracy:.3f}, linear baseline {baseline_accuracy:.3f}: expected at least "
                f"{baseline_accuracy + margin:.3f}   {'ok' if passed else 'WRONG'}")
    package = {k: v for k, v in kernels.calls.items() if k.startswith("package: conv") or
               k.startswith("package: batchnorm") or k.startswith("package: channel_shuffle")}
    if package:
        report.line(f"these layers ran on the package's code, not yours: {sorted(package)}")
    if not passed:
        report.diagnose("did not learn enough", "Your functions pass their checks one by one; look at the loss "
                                                "curve (does it fall?) and at sgd_step's learning rate.")
    report.case("accuracy", passed)
    return report.finish()


@_exercise("your kernels in a ShuffleUnit", needs="your functions of notebooks 01-04, pasted into this notebook")
def check_kernels(kernels, *, seed=9):
    """Gradient-check a small stride-1 and stride-2 ShuffleUnit running on ``kernels`` (a :class:`StudentKernels`),
    and compare them with the same units on the package's kernels."""
    from ..kernels import use_kernels
    from ..gradcheck import check_module
    from ..models import ShuffleUnit
    from ..gradcheck import randomize_batchnorm

    if kernels.missing:
        probe = sorted(kernels.missing)
        raise NotImplementedError("still to write: " + ", ".join(probe))
    report = _Report("your kernels in a ShuffleUnit")
    rng = _rng(seed)
    for c_in, c_out, stride in [(12, 12, 1), (12, 24, 2)]:
        label = f"ShuffleUnit({c_in}, {c_out}, groups=3, stride={stride})"
        unit = randomize_batchnorm(ShuffleUnit(c_in, c_out, groups=3, stride=stride, rng=rng, dtype=np.float64),
                                   rng)
        x = rng.standard_normal((2, c_in, 6, 6))
        dout = rng.standard_normal((2, c_out, 6 // stride, 6 // stride))
        out_ref = unit.forward(x)
        dx_ref = unit.backward(dout)
        grads_ref = [p.grad.copy() for p in unit.parameters()]
        with use_kernels(kernels):
            out = unit.forward(x)
            dx = unit.backward(dout)
            grads = [p.grad.copy() for p in unit.parameters()]
            report.line(label)
            passed = report.compare("  forward vs the package's kernels", out, out_ref, 1e-9)
            passed &= report.compare("  dx vs the package's kernels", dx, dx_ref, 1e-9)
            floor = 1e-12 * max(float(np.abs(g).max()) for g in grads_ref)
            passed &= all([report.compare(f"  grad {name}", g, r, 1e-9, floor)
                           for (name, _), g, r in zip(unit.named_parameters(), grads, grads_ref)])
            results = check_module(unit, x, dout=dout, num_samples=20, rng=rng, verbose=False)
            zero = [r for r in results if r.within_noise and r.max_rel_error >= r.tol]
            worst = max([r for r in results if r not in zero] or results, key=lambda r: r.max_rel_error)
            zeros = [r.name for r in zero]
            numeric_ok = all(results)
            report.line(f"  numeric gradient check of x and {len(results) - 1} parameters: worst rel error "
                        f"{worst.max_rel_error:.1e} ({worst.name}, expect < 1e-6)   {'ok' if numeric_ok else 'WRONG'}")
            if zeros:
                report.line(f"  (zero by the unit's structure, equal up to rounding noise: {', '.join(zeros)})")
        report.case(label, passed and numeric_ok)
    return report.finish()
