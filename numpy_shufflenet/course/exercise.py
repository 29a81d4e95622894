r"""The exercise record and the one driver that checks any exercise.

Every exercise of the course is one :class:`Exercise` record in :mod:`numpy_shufflenet.course.exercises` (one
module per notebook): its name and signature, how to draw its inputs for a seed, its reference, what it returns,
and the mistakes students make, each written as a wrong *implementation*. This module runs any record:

* :meth:`Exercise.cases` draws the calls for a seed (seed 0: the ones a notebook shows), as plain data;
* :func:`call` makes one call of a student's function on copies of a case's arguments and returns an
  :class:`Outcome` (plain data: the value, the error, the arguments as they are after the call);
* :meth:`Exercise.judge` turns cases and outcomes into a :class:`Verdict`, from data alone, so the same judge
  serves the notebooks' check cells (in-process) and the grader (outcomes read back from a sandbox);
* :func:`check` is what ``course.check_<name>(fn)`` runs in a notebook: the cases of seed 0 and of a fresh
  seed, one line when everything is right, an exception with the diagnosis when not.

**The judge.** For every case it applies the *universal checks* first, each with a name a student can act on:
the inputs are unchanged (compared with the case's own copies; ``modified its input x in place``), arguments
that must be updated in place are (``did not update running_mean in place``), the output's dtype is the input's
for float32 and float64 (``returned float64 for float32 input``), no returned array shares memory with an
input (``returned a view of its input x``), the number and types of the returned values are the ones asked for
(``returned integers where booleans are asked for``). Then it compares every value with the reference on the
same inputs. A wrong value is *diagnosed* by running each catalogued mistake on the same inputs: a mistake is
named when the student's outputs equal its outputs in the wrong cases (and it differs from the reference
there). When no mistake matches, the message says what is wrong in the data: which output, how many entries,
by how much, in which cases, and which parameter separates the wrong cases from the right ones ("wrong in every
case with stride=2, right in the others"). Nothing is ever called "hard-coded" unless a catalogued mistake that
ignores a varied argument matches.

Counts, orders and sizes are drawn at random within stated ranges, every argument independently, so no
constant answer survives; the check of a notebook adds the cases of a fresh seed each time it runs.
"""

import dataclasses
import os
import re
from typing import Callable, NamedTuple

import numpy as np

from ..gradcheck import rel_error

__all__ = ["Case", "Outcome", "Verdict", "Out", "Mistake", "Exercise", "ExerciseNotDone", "CheckFailed", "call",
           "run", "check", "fresh_seed", "TOL", "NOT_DONE"]

TOL = {np.dtype(np.float64): 1e-8, np.dtype(np.float32): 1e-4}   # relative error a right answer stays below
NOT_DONE = "not done"          # Outcome.error of a function that raised NotImplementedError
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class Case(NamedTuple):
    """One call of a student's function, in plain data only."""
    args: tuple                  # np.ndarray, int, float, bool, str, None, and tuples/lists/dicts of these
    kwargs: dict
    label: str                   # "N=2, C=12, g=3, float32": ``name=value`` pairs, then the dtype
    function: str | None = None  # the name to call; None: the exercise's own function
    return_args: bool = False    # the grader also needs the arguments as they are after the call


class Outcome(NamedTuple):
    """What one call gave, however it was obtained (in-process or from the runner)."""
    value: object = None
    error: str | None = None     # "ZeroDivisionError: ..."; "not done" (or "not done: <message>") for a stub
    args_after: tuple | None = None
    facts: tuple = ()            # what only the calling process can see: ("view", i) a returned array shares
                                 # memory with positional argument i; ("replaced", i) an array of the list
                                 # argument i was replaced by another instead of being updated in place


class Verdict(NamedTuple):
    points: float
    max_points: float
    status: str                  # "passed", "failed", "not done", "error", "manual"
    message: str


class Out(NamedTuple):
    """One returned value: its name and kind.

    ``array`` a float array of the input's dtype; ``bool`` a boolean array; ``int`` a Python or NumPy integer;
    ``number`` a real number (a loss, a learning rate, a ratio); ``ints`` a sequence of integers (a
    permutation); ``arrays`` a dict of float arrays (parameter gradients by name).
    """
    name: str
    kind: str = "array"


class Mistake(NamedTuple):
    """A mistake students make, as a wrong implementation with the exercise's signature."""
    name: str                    # what the diagnosis calls it; for a universal one, exactly the universal name
    explanation: str             # what to do instead
    wrong: Callable


class ExerciseNotDone(NotImplementedError):
    """Raised by a check whose exercise still raises ``NotImplementedError`` (the stub of a student copy)."""

    def _render_traceback_(self):            # IPython shows the message, not the checks' own frames
        return [f"{type(self).__name__}: {self}"]


class CheckFailed(AssertionError):
    """Raised by a check whose exercise gives a wrong answer; the message is the diagnosis."""

    def _render_traceback_(self):
        return [f"{type(self).__name__}: {self}"]


# ----------------------------------------------------------------------------------------------------------------
# calling a function on a case
# ----------------------------------------------------------------------------------------------------------------
def _copy(value):
    """A deep copy of plain data (arrays copied, containers rebuilt)."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(v) for v in value)
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


def _arrays(value):
    """Every array inside ``value`` (a returned value or an argument)."""
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _arrays(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _arrays(v)


def _facts(value, args, before):
    """``("view", i)`` for each argument a returned array shares memory with; ``("replaced", i)`` for each list
    argument whose arrays are no longer the ones passed in."""
    facts = []
    returned = list(_arrays(value))
    for i, arg in enumerate(args):
        if any(np.shares_memory(r, a) for r in returned for a in _arrays(arg)):
            facts.append(("view", i))
        if isinstance(arg, list) and i in before and [id(v) for v in arg] != before[i]:
            facts.append(("replaced", i))
    return tuple(facts)


def call(fn, case):
    """Call ``fn`` on copies of ``case``'s arguments; the :class:`Outcome`, in plain data.

    ``NotImplementedError`` becomes ``error="not done: <message>"``, any other exception
    ``error="<Name>: <message>"``. The returned value and the arguments after the call are copied.
    """
    args, kwargs = _copy(tuple(case.args)), _copy(dict(case.kwargs))
    before = {i: [id(v) for v in a] for i, a in enumerate(args) if isinstance(a, list)}
    try:
        with np.errstate(all="ignore"):
            value = fn(*args, **kwargs)
    except NotImplementedError as err:
        return Outcome(error=NOT_DONE + (f": {err}" if str(err) else ""))
    except Exception as err:                                    # noqa: BLE001 - a wrong answer, reported
        return Outcome(error=f"{type(err).__name__}: {err}")
    return Outcome(value=_copy(value), args_after=_copy(args) if case.return_args else None,
                   facts=_facts(value, args, before))


def _resolve(exercise, fn, case, namespace):
    """The function a case calls: ``fn`` itself, or another function of the student's notebook by name."""
    if case.function in (None, exercise.function):
        return fn
    found = (namespace or getattr(fn, "__globals__", {})).get(case.function)
    if found is None:
        def missing(*args, **kwargs):
            raise NameError(f"name {case.function!r} is not defined (run the cells above first)")
        return missing
    return found


def run(exercise, fn, cases, namespace=None):
    """The outcomes of ``fn`` (and of the other functions the cases name) on ``cases``, in-process; stops at the
    first case that is not done (the rest would say the same)."""
    outcomes = []
    for case in cases:
        outcome = call(_resolve(exercise, fn, case, namespace), case)
        outcomes.append(outcome)
        if _is_not_done(outcome):
            break
    return outcomes


def fresh_seed():
    """A seed nobody can know before the check runs."""
    return int.from_bytes(os.urandom(4), "little") % 1_000_000


def check(exercise, fn, *, seed=None, namespace=None):
    """Check ``fn`` against ``exercise`` in this process: the notebooks' check cells.

    ``seed=None`` runs the cases of seed 0 and of a fresh seed. Prints one line and returns None when every case
    is right; raises :class:`ExerciseNotDone` when the function (or one it needs) is still a stub, and
    :class:`CheckFailed` with the diagnosis when an answer is wrong. Nothing is returned, so a check cell
    displays nothing more than its line.
    """
    seeds = (0, fresh_seed()) if seed is None else (seed,)
    cases = [case for s in seeds for case in exercise.cases(s)]
    outcomes = run(exercise, fn, cases, namespace)
    verdict = exercise.judge(cases, outcomes)
    if verdict.status == "passed":
        print(verdict.message)
        return None
    where = f" (seeds {', '.join(map(str, seeds))}: course.check_{exercise.name}(fn, seed=...) repeats a seed)"
    if verdict.status == "not done":
        raise ExerciseNotDone(verdict.message)
    raise CheckFailed(verdict.message + where)


# ----------------------------------------------------------------------------------------------------------------
# comparing values
# ----------------------------------------------------------------------------------------------------------------
def _dtype_of(args):
    """The float dtype of a case: that of its first float array argument (None when it has none)."""
    for a in _arrays(list(args)):
        if a.dtype in _FLOATS:
            return a.dtype
    return None


def _is_not_done(outcome):
    return isinstance(outcome.error, str) and outcome.error.startswith(NOT_DONE)


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_number(v):
    if isinstance(v, np.ndarray):
        return v.ndim == 0 and v.dtype.kind in "iuf"
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _where(a):
    return "(" + ", ".join(map(str, a)) + ")" if isinstance(a, tuple) else str(a)


class _Seen(NamedTuple):
    """How one value compares with another: ``type_problem`` (a universal name, or ""), and ``same`` with
    ``detail`` (what differs, for a student)."""
    type_problem: str
    same: bool
    detail: str


def _compare(spec, got, want, tol, dtype, floor=0.0):
    """Compare one returned value ``got`` with the reference's ``want`` (kind ``spec.kind``). An array that differs
    by at most ``floor`` everywhere is right too (a gradient that is zero by the network's structure is rounding
    noise on both sides)."""
    name, kind = spec.name, spec.kind
    if kind == "arrays":
        if not isinstance(got, dict):
            return _Seen(f"returned a {type(got).__name__} where a dict of arrays is asked for", False, "")
        if not isinstance(want, dict) or set(got) != set(want):
            return _Seen("", False, f"{name}: keys {sorted(got)}, expected {sorted(want or ())}")
        floor = tol * max((float(np.max(np.abs(w))) for w in want.values() if np.size(w)), default=0.0)
        seen = [_compare(Out(f"{name}[{k!r}]"), got[k], want[k], tol, dtype, floor) for k in want]
        problem = next((s.type_problem for s in seen if s.type_problem), "")
        wrong = [s.detail for s in seen if not s.same]
        return _Seen(problem, not wrong, "; ".join(wrong[:3]))
    if kind == "int":
        if isinstance(got, (float, np.floating)) and float(got).is_integer():
            return _Seen("returned a float where an int is asked for", int(got) == want,
                         "" if int(got) == want else f"{name}: {got!r}, expected {want!r}")
        if not _is_int(got):
            return _Seen(f"returned a {type(got).__name__} where an int is asked for", False,
                         f"{name}: {got!r}, expected {want!r}")
        return _Seen("", int(got) == want, "" if int(got) == want else f"{name}: {int(got):,d}, expected {want:,d}")
    if kind == "number":
        if not _is_number(got):
            return _Seen(f"returned a {type(got).__name__} where a number is asked for", False,
                         f"{name}: {got!r}, expected {want!r}")
        g, w = float(got), float(want)
        same = bool(np.isfinite(g)) and abs(g - w) <= tol * max(abs(g) + abs(w), 1e-300) or g == w or \
            (np.isnan(g) and np.isnan(w))
        return _Seen("", same, "" if same else f"{name}: {g:.6g}, expected {w:.6g}")
    if kind == "ints":
        values = got.tolist() if isinstance(got, np.ndarray) else got
        if not isinstance(values, (list, tuple)) or not all(_is_int(v) for v in values):
            return _Seen("returned something else than a list of ints", False, f"{name}: {got!r}")
        values = [int(v) for v in values]
        want = [int(v) for v in want]
        if len(values) != len(want):
            return _Seen("", False, f"{name}: {len(values)} numbers, expected {len(want)}")
        wrong = [i for i, (a, b) in enumerate(zip(values, want)) if a != b]
        return _Seen("", not wrong, "" if not wrong else
                     f"{name}: wrong at {len(wrong)} of {len(want)} positions (first: position {wrong[0]}, "
                     f"{values[wrong[0]]} where {want[wrong[0]]} belongs)")
    # arrays: "array" (float) and "bool"
    if not isinstance(want, np.ndarray):                    # a mistake's value of another kind
        return _Seen("", False, "")
    if not isinstance(got, np.ndarray):
        return _Seen(f"returned a {type(got).__name__} where an array is asked for", False,
                     f"{name} is a {type(got).__name__}")
    problem = ""
    if kind == "bool":
        if got.dtype != np.bool_:
            problem = ("returned integers where booleans are asked for" if got.dtype.kind in "iu"
                       else f"returned {got.dtype} where booleans are asked for")
            if got.dtype.kind not in "iuf":
                return _Seen(problem, False, "")
            got = got != 0
    elif got.dtype.kind not in "iuf":
        return _Seen(f"returned an array of {got.dtype} where numbers are asked for", False, "")
    elif dtype is not None and got.dtype != dtype:
        problem = f"returned {got.dtype} for {dtype} input"
    if got.shape != want.shape:
        return _Seen(problem, False, f"{name} has shape {got.shape}, expected {want.shape}")
    if kind == "bool":
        wrong = np.argwhere(got != want)
        return _Seen(problem, not len(wrong), "" if not len(wrong) else
                     f"{name}: {len(wrong)} of {want.size} entries wrong (first at {_where(tuple(wrong[0]))})")
    g = got.astype(np.float64)
    w = np.asarray(want, dtype=np.float64)
    if not np.all(np.isfinite(w)):                          # a mistake that overflows: the same nan and inf
        finite = np.isfinite(w)
        same = np.array_equal(np.isfinite(g), finite) and np.array_equal(g[~finite], w[~finite], equal_nan=True)
        return _Seen(problem, same and rel_error(g[finite], w[finite]) <= tol, "")
    if not np.all(np.isfinite(g)):
        return _Seen(problem, False, f"{name} holds {int(np.sum(~np.isfinite(g)))} nan or inf entries")
    if w.size == 0:
        return _Seen(problem, True, "")
    err = rel_error(g, w)
    diff = np.abs(g - w)
    if err <= tol or diff.max() <= floor:
        return _Seen(problem, True, "")
    scale = tol * (np.max(np.abs(g)) + np.max(np.abs(w)))
    bad = np.argwhere(diff > scale)
    first = tuple(int(i) for i in np.unravel_index(np.argmax(diff), diff.shape))
    return _Seen(problem, False, f"{name}: {len(bad)} of {w.size} entries wrong, largest difference "
                                 f"{diff.max():.3g} at {_where(first)} (relative error {err:.1e}, a right answer "
                                 f"stays below {tol:.0e})")


def _same_args(a, b):
    """Exactly equal plain data (nan equal to nan)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
                and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_args(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(_same_args(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _params(label):
    """The ``name=value`` pairs (and the dtype) of a case's label."""
    found = dict(re.findall(r"([A-Za-z_]\w*)=([^,]+)", label))
    dtype = re.search(r"\b(float32|float64)\b", label)
    if dtype:
        found["dtype"] = dtype.group(1)
    return found


# ----------------------------------------------------------------------------------------------------------------
# the record
# ----------------------------------------------------------------------------------------------------------------
class _CaseResult(NamedTuple):
    ok: bool                      # every value right and no universal problem
    values_ok: bool               # every value right
    problems: tuple               # universal names found in this case
    details: tuple                # what is wrong in the data
    mistakes: tuple               # names of the catalogued mistakes the outcome equals (where they are wrong)
    error: str = ""


@dataclasses.dataclass(frozen=True)
class Exercise:
    """One exercise of the course (see the module docstring).

    ``kind`` is ``"function"`` (graded from calls) or ``"written"`` (graded by hand). For a function exercise:
    ``args`` names the positional arguments (for messages); ``returns`` lists the returned values as
    :class:`Out` (empty: the function returns nothing and updates ``in_place`` arguments); ``draw(rng, i)``
    returns the ``i``-th :class:`Case` of a seed; ``reference`` has the student's signature and is right;
    ``mistakes`` are :class:`Mistake`; ``needs`` names the exercises this one calls; ``requires`` names an
    exercise whose cases come first and must all pass before this one earns its points; ``accept(case, value)``
    replaces the comparison with ``reference`` where there is no single right value (a training run):
    it returns ``(ok, detail, mistake name or "")``.
    """

    name: str
    notebook: str
    title: str
    points: float
    kind: str = "function"
    function: str = ""
    args: tuple = ()
    returns: tuple = (Out("out"),)
    draw: Callable = None
    n_cases: int = 6
    reference: Callable = None
    in_place: tuple = ()
    mistakes: tuple = ()
    needs: tuple = ()
    requires: object = None       # another Exercise
    accept: Callable = None

    # -- the cases ------------------------------------------------------------------------------------------
    def cases(self, seed):
        """The cases for ``seed`` (0: the ones the notebook shows), those of ``requires`` first."""
        if self.kind != "function":
            return []
        rng = np.random.default_rng([int(seed), _name_seed(self.name)])
        own = [self.draw(rng, i) for i in range(self.n_cases)]
        own = [c._replace(return_args=True, function=c.function or self.function) for c in own]
        return (self.requires.cases(seed) if self.requires is not None else []) + own

    # -- the verdict ----------------------------------------------------------------------------------------
    def judge(self, cases, outcomes):
        """The :class:`Verdict` from data alone: ``outcomes`` align with ``cases``; a missing one did not run."""
        if self.kind != "function":
            return Verdict(0.0, self.points, "manual", f"{self.name}: a written answer, graded by hand")
        outcomes = list(outcomes) + [Outcome(error="not run")] * (len(cases) - len(outcomes))
        if self.requires is not None:
            mine = [c.function != self.requires.function for c in cases]
            first = self.requires.judge([c for c, m in zip(cases, mine) if not m],
                                        [o for o, m in zip(outcomes, mine) if not m])
            if first.status == "not done":
                return Verdict(0.0, self.points, "not done", f"{self.name}: not done yet: it needs "
                                                             f"{self.requires.name} first. {first.message}")
            if first.status != "passed":
                return Verdict(0.0, self.points, "failed",
                               f"{self.name} earns its points only when {self.requires.name} passes; "
                               f"{self.requires.name} does not pass yet. {first.message}")
            cases = [c for c, m in zip(cases, mine) if m]
            outcomes = [o for o, m in zip(outcomes, mine) if m]
        stub = next((o for o in outcomes if _is_not_done(o)), None)
        if stub is not None:
            why = re.sub(r"^exercise: (\w+)$", r"\1 still raises NotImplementedError",
                         stub.error[len(NOT_DONE):].lstrip(": "))
            needs = f" (it uses {', '.join(self.needs)})" if self.needs else ""
            return Verdict(0.0, self.points, "not done", f"{self.name}: not done yet{needs}" +
                           (f": {why}" if why else "") + ". Write it, run its cell, then this check again.")
        results = [self._safely_judge_case(c, o) for c, o in zip(cases, outcomes)]
        if all(r.ok for r in results):
            return Verdict(float(self.points), self.points, "passed",
                           f"{self.name}: right in all {len(cases)} cases.")
        status = "error" if all(r.error for r in results) else "failed"
        return Verdict(0.0, self.points, status, self._message(cases, results))

    def _reference(self, case):
        """The reference's returned values (as a list) and its arguments after the call, on copies."""
        args, kwargs = _copy(tuple(case.args)), _copy(dict(case.kwargs))
        value = self.reference(*args, **kwargs)
        return self._values(value), args

    def _values(self, value):
        if not self.returns:
            return []
        return [value] if len(self.returns) == 1 else list(value)

    def _unpack(self, value):
        """The returned values as a list, or a universal problem (a wrong number of values)."""
        n = len(self.returns)
        if n == 0:
            return [], ""
        single_ok = self.returns[0].kind == "ints"       # a permutation may be a list or a tuple
        if n == 1:
            if isinstance(value, (tuple, list)) and not single_ok:
                return None, f"returned {len(value)} values where one is asked for"
            return [value], ""
        if not isinstance(value, (tuple, list)):
            return None, f"returned one value where {n} are asked for"
        if len(value) != n:
            return None, f"returned {len(value)} values where {n} are asked for"
        return list(value), ""

    def _arg_name(self, i):
        return self.args[i] if i < len(self.args) else f"argument {i + 1}"

    def _outputs(self, outcome, case, dtype):
        """``(values or None, problems, details)`` of one outcome before any comparison of numbers."""
        values, problem = self._unpack(outcome.value)
        problems = [problem] if problem else []
        for kind, i in outcome.facts:
            if kind == "view" and self.returns:
                problems.append(f"returned a view of its input {self._arg_name(i)}")
            elif kind == "replaced" and self._arg_name(i) in self.in_place:
                problems.append(f"replaced the arrays of {self._arg_name(i)} instead of updating them in place")
        if outcome.args_after is not None:
            for i, (before, after) in enumerate(zip(case.args, outcome.args_after)):
                if self._arg_name(i) not in self.in_place and not _same_args(before, after):
                    problems.append(f"modified its input {self._arg_name(i)} in place")
        return values, problems

    def _safely_judge_case(self, case, outcome):
        """:meth:`_judge_case`, and a wrong case (never an exception) for a value it cannot compare."""
        try:
            return self._judge_case(case, outcome)
        except Exception as err:                                # noqa: BLE001 - untrusted data, any shape
            detail = f"the returned value could not be compared with the reference ({type(err).__name__}: {err})"
            return _CaseResult(False, False, (), (detail,), ())

    def _judge_case(self, case, outcome):
        if outcome.error:
            ename = outcome.error.split(":")[0]
            return _CaseResult(False, False, (f"raised {ename}",), (outcome.error,),
                               self._matching_error(case, ename), outcome.error)
        dtype = _dtype_of(case.args)
        values, problems = self._outputs(outcome, case, dtype)
        if self.accept is not None:
            ok, detail, named = self.accept(case, outcome.value)
            return _CaseResult(ok and not problems, ok, tuple(problems), (detail,) if detail else (),
                               (named,) if named else ())
        want, want_args = self._reference(case)
        tol = TOL.get(dtype, TOL[np.dtype(np.float64)])
        details, values_ok = [], values is not None
        if values is not None:
            for spec, got, ref in zip(self.returns, values, want):
                seen = _compare(spec, got, ref, tol, dtype)
                if seen.type_problem:
                    problems.append(seen.type_problem)
                if not seen.same:
                    values_ok = False
                    details.append(seen.detail)
        for i, name in enumerate(self.args):
            if name in self.in_place and outcome.args_after is not None:
                after, right, before = outcome.args_after[i], want_args[i], case.args[i]
                if _same_args(after, before) and not _same_args(right, before):
                    problems.append(f"did not update {name} in place")
                    values_ok = False
                else:
                    for a, r in zip(_arrays([after]), _arrays([right])):
                        seen = _compare(Out(f"{name} after the call"), a, r, tol, dtype)
                        if not seen.same:
                            values_ok = False
                            details.append(seen.detail)
        problems = tuple(dict.fromkeys(p for p in problems if p))
        mistakes = () if values_ok else self._matching(case, outcome, want, want_args, tol, dtype)
        return _CaseResult(values_ok and not problems, values_ok, problems, tuple(d for d in details if d),
                           mistakes)

    def _run_mistake(self, mistake, case):
        """The mistake's returned values (None when it returns another number of values) and arguments after."""
        args, kwargs = _copy(tuple(case.args)), _copy(dict(case.kwargs))
        with np.errstate(all="ignore"):
            value = mistake.wrong(*args, **kwargs)
        return self._unpack(value)[0], args

    def _matching(self, case, outcome, want, want_args, tol, dtype):
        """The catalogued mistakes whose outputs equal the student's on this case, where they are wrong."""
        got, _ = self._unpack(outcome.value)
        if got is None and self.returns:
            return ()
        named = []
        for mistake in self.mistakes:
            try:                                                # a mistake may raise or return other kinds here
                values, args = self._run_mistake(mistake, case)
                if values is None:
                    continue
                wrong = any(not _compare(s, v, r, tol, dtype).same for s, v, r in zip(self.returns, values, want))
                wrong |= any(not _same_close(args[i], want_args[i], tol) for i, n in enumerate(self.args)
                             if n in self.in_place)
                same = all(_compare(s, g, v, tol, dtype).same for s, g, v in zip(self.returns, got, values))
                if outcome.args_after is not None:
                    same &= all(_same_close(outcome.args_after[i], args[i], tol) for i, n in enumerate(self.args)
                                if n in self.in_place)
            except Exception:                                   # noqa: BLE001 - then it is not this mistake
                continue
            if wrong and same:
                named.append(mistake.name)
        return tuple(named)

    def _matching_error(self, case, ename):
        """The catalogued mistakes that raise the same exception as the student on this case."""
        named = []
        for mistake in self.mistakes:
            try:
                self._run_mistake(mistake, case)
            except Exception as err:                            # noqa: BLE001
                if type(err).__name__ == ename:
                    named.append(mistake.name)
        return tuple(named)

    # -- the message ----------------------------------------------------------------------------------------
    def _explain(self, name):
        for m in self.mistakes:
            if m.name == name:
                return m.explanation
        for pattern, explanation in _UNIVERSAL.items():
            if re.fullmatch(re.escape(pattern).replace(r"\*", r"\S+"), name):
                return explanation
        return ""

    def _message(self, cases, results):
        """The diagnosis first (it is what a grades.csv cell shows), then the explanations, then the cases."""
        wrong = [i for i, r in enumerate(results) if not r.ok]
        counts = {}
        for i in wrong:
            for name in dict.fromkeys(results[i].problems + results[i].mistakes):
                counts[name] = counts.get(name, 0) + 1
        catalogued = self._mistake_names()
        named = sorted((n for n, k in counts.items() if 2 * k >= len(wrong)),     # catalogued, then inputs first
                       key=lambda n: (n not in catalogued, n.startswith("raised "), not n.startswith("modified"),
                                      -counts[n]))
        lines = [f"{self.name} is not right yet ({len(wrong)} of {len(cases)} cases wrong): "
                 + ("; ".join(named) if named else "wrong values") + "."]
        errors = [results[i].error for i in wrong if results[i].error]
        for name in named:
            share = "" if counts[name] == len(wrong) else f" (in {counts[name]} of the {len(wrong)} wrong cases)"
            why = self._explain(name) or next((e for e in errors if e.startswith(name[len("raised "):] + ":")), "")
            lines.append(f"Diagnosis: {name}{share}. {why}".rstrip())
        if self.accept is not None or not any(n in catalogued for n in named):
            value_wrong = [i for i in wrong if not results[i].values_ok]
            if value_wrong:
                first = value_wrong[0]
                detail = "; ".join(results[first].details[:2]) or "the values differ from the reference"
                lines.append(f"What is wrong: {detail} (case {cases[first].label}).")
                split = _separating(cases, [r.values_ok for r in results])
                if split:
                    lines.append(split)
        labels = [cases[i].label for i in wrong]
        more = f"; and {len(labels) - 3} more" if len(labels) > 3 else ""
        lines.append("Wrong cases: " + "; ".join(labels[:3]) + more + ".")
        return "\n".join(lines)

    def _mistake_names(self):
        return {m.name for m in self.mistakes}


def _same_close(a, b, tol):
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.shape == b.shape and rel_error(a.astype(np.float64), b.astype(np.float64)) <= tol
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_close(x, y, tol) for x, y in zip(a, b))
    return _same_args(a, b)


def _separating(cases, right):
    """A sentence naming the parameter value that separates the wrong cases from the right ones, if one does."""
    if all(right) or not any(right):
        return ""
    params = [_params(c.label) for c in cases]
    for key in params[0]:
        wrong_values = {p.get(key) for p, ok in zip(params, right) if not ok}
        right_values = {p.get(key) for p, ok in zip(params, right) if ok}
        if len(wrong_values) == 1 and not wrong_values & right_values:
            return f"Wrong in every case with {key}={wrong_values.pop()}, right in the others."
    return ""


def _name_seed(name):
    return int.from_bytes(name.encode()[:8].ljust(8, b"\0"), "little") % 2**31


_UNIVERSAL = {
    "modified its input * in place":
        "Work on new arrays (x - mean, not x -= mean; np.maximum(a, 0), not np.maximum(a, 0, out=a)): the caller "
        "still needs its input, e.g. for the backward pass, and another layer may read it.",
    "did not update * in place":
        "Assigning a new array to the name inside the function leaves the caller's array as it was; write into "
        "it: a *= ..., a += ..., or a[...] = ....",
    "replaced the arrays of * instead of updating them in place":
        "The caller keeps the arrays it passed in; update each one in place (p -= lr * buf), do not put new "
        "arrays into the list.",
    "returned a view of its input *":
        "The result shares memory with the input (reshape and transpose return views when they can): writing into "
        "one changes the other, and a numeric gradient check reads 0. Return a new array (.copy()).",
}
_SAME_DTYPE = ("A layer keeps the dtype of its input: create new arrays with dtype=x.dtype (np.zeros_like(x), "
               "np.zeros(shape, dtype=x.dtype)), and do not mix in float64 arrays.")
_UNIVERSAL.update({
    "returned float64 for float32 input": _SAME_DTYPE,
    "returned float32 for float64 input": _SAME_DTYPE,
    "returned integers where booleans are asked for":
        "A 0/1 count says how many paths there are; the question is whether there is one: compare with > 0.",
    "returned a float where an int is asked for": "A count is a whole number: use // (integer division), not /.",
})
