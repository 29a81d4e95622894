r"""Grade submitted notebooks: run each student's code in a sandbox, and judge only the data it returns.

``python -m numpy_shufflenet grade SUBMISSIONS --source notebooks --out grades.csv`` (or :func:`grade_dir`)
grades every ``SUBMISSIONS/<student>/<notebook>.ipynb`` whose name is a notebook of ``--source`` with exercises
in the exercise catalogue (``numpy_shufflenet.course.exercises``, or ``--catalogue``). Each exercise of the
catalogue is a solution cell of the instructor notebook (nbgrader metadata, ``grade_id`` = the exercise's name,
checked by :func:`numpy_shufflenet.course.release.check_nbgrader`) or a written answer (a markdown cell).

For each submission, the **trusted process** (this module) and the **runner** (the student's code, in a
sandbox) share only plain data:

1. **The program.** The code cells of the student copy (:func:`~numpy_shufflenet.course.release.
   make_student_notebook`: no solution, no hidden test), in order, with each solution cell replaced by the
   student's cell of the same ``grade_id`` (else the same cell id); check cells (``grade: true``) are left out,
   so nothing but the student's answers comes from the submission: an edited or deleted check counts for
   nothing. A solution cell that is missing, or still the stub, is ``missing`` or ``not done`` without a run.
2. **The inputs.** Each exercise draws its cases from the catalogue (``Exercise.cases(seed)``) with a seed chosen
   now, one per student, notebook and exercise (from ``--seed``, or a random one for the run): nothing the
   student could have computed in advance.
3. **The run.** The program and the calls go into a job folder (:mod:`.jobs`), and the runner
   (:mod:`.runner`) runs them in a sandbox (:mod:`.sandbox`: bubblewrap, no network, no view of the grader's
   files, limits on memory, CPU time, wall time, file size and processes). It writes back each cell's error and
   each call's returned value (and the arguments after it, for an in-place update) as JSON and ``.npy`` files.
4. **The verdict.** Everything the runner wrote is read with every check (:func:`.jobs.read_results`: no
   symbolic links, ``.npy`` headers checked before loading, sizes bounded, nothing unpickled) into ``Outcome``
   records, and the catalogue's ``Exercise.judge(cases, outcomes)`` gives the points, the status and the
   message, here, in the trusted process. Nothing the student's code says about itself is a point.

A run that ends early (an infinite loop past ``--timeout``, a crash, memory exhausted) is read as far as it got:
the step it stopped in (a cell, or one call) gets ``timeout`` or ``error``, and the runner is started again
without it for the rest (at most :data:`MAX_RUNS` runs per notebook). Nothing about one submission stops the
others: every failure is a status and a message.

The statuses: ``passed``, ``failed``, ``not done``, ``error`` (the catalogue's judge), ``timeout`` and ``error``
(the runner hung or died in this exercise's cell or calls), ``missing`` (no such cell or notebook in the
submission), ``invalid`` (the file is not valid JSON, not a notebook, or larger than
:data:`MAX_NOTEBOOK_BYTES`) and ``manual`` (a written answer: ``points`` is left empty for the grader, or 0 when
nothing was written).

The results go to ``grades.csv`` (columns :data:`COLUMNS`, one row per student, notebook and exercise), to
``gradebook.csv`` beside it (one row per student: :mod:`.gradebook`) and to one feedback file per student,
``<feedback>/<student>.md``. Submissions are graded ``jobs`` at a time (one sandbox each); the results do not
depend on ``jobs``.

:mod:`nbformat` (the dev extra) is imported by the functions that need it.
"""

import copy
import csv
import dataclasses
import hashlib
import importlib
import importlib.util
import math
import os
import secrets
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .manual import merge_manual, read_manual, rubrics, total_rows
from .release import (ANSWER_STUB, MAX_NOTEBOOK_BYTES, check_nbgrader, check_notebook, make_student_notebook,
                      nbgrader_meta, read_notebook)

__all__ = [
    "COLUMNS", "STATUSES", "DEFAULT_TIMEOUT", "DEFAULT_CATALOGUE", "MAX_RUNS", "MAX_NOTEBOOK_BYTES",
    "Assignment", "Grade", "Program", "load_catalogue", "load_assignment", "build_program", "exercise_seed",
    "grade_notebook", "grade_dir", "check_timeout", "write_csv", "write_feedback", "format_table",
]

COLUMNS = ("student", "notebook", "exercise", "points", "max_points", "status", "message")
STATUSES = ("passed", "failed", "not done", "error", "timeout", "not run", "missing", "invalid", "manual", "total")
DEFAULT_TIMEOUT = 300.0          # seconds of wall time for one run of the runner (a notebook's program and calls)
DEFAULT_CATALOGUE = "numpy_shufflenet.course.exercises"
MAX_RUNS = 3                     # runs of one notebook: the first, and one more per step that hangs or crashes
MAX_MESSAGE = 300                # characters of a grades.csv message
NOT_DONE = "not done"            # the runner's error for NotImplementedError (and a stub's, without a run)


# ----------------------------------------------------------------------------------------------------------------
# the catalogue and the instructor notebooks
# ----------------------------------------------------------------------------------------------------------------
def load_catalogue(spec=None):
    """The exercise catalogue: a module (or a module name, or the path of a ``.py`` file) with ``CATALOGUE``
    and ``exercises_of(notebook_stem)``; ``None`` is :data:`DEFAULT_CATALOGUE`. ``ValueError`` when it cannot
    be imported or lacks those names."""
    spec = DEFAULT_CATALOGUE if spec is None else spec
    if not isinstance(spec, (str, os.PathLike)):
        module = spec
    elif str(spec).endswith(".py"):
        path = Path(spec)
        if not path.is_file():
            raise ValueError(f"grade: --catalogue {str(path)!r} is not a file")
        name = "numpy_shufflenet_catalogue_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
        module = sys.modules.get(name)
        if module is None:
            loader_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[name] = module
            try:
                loader_spec.loader.exec_module(module)
            except Exception as err:
                del sys.modules[name]
                raise ValueError(f"grade: the catalogue {str(path)!r} cannot be loaded: {type(err).__name__}: "
                                 f"{err}") from None
    else:
        try:
            module = importlib.import_module(str(spec))
        except ImportError as err:
            raise ValueError(f"grade: the exercise catalogue {str(spec)!r} cannot be imported ({err})") from None
    missing = [n for n in ("CATALOGUE", "exercises_of") if not hasattr(module, n)]
    if missing:
        raise ValueError(f"grade: the catalogue {getattr(module, '__name__', spec)!r} has no {' or '.join(missing)}")
    return module


def _outcome_class(catalogue):
    """The catalogue's ``Outcome`` record (its own, else ``numpy_shufflenet.course.exercise.Outcome``)."""
    found = getattr(catalogue, "Outcome", None)
    if found is None:
        from .exercise import Outcome as found               # the course's exercise record
    return found


@dataclasses.dataclass
class Assignment:
    """An instructor notebook ready to grade: ``name`` is its file name, ``nb`` the instructor notebook,
    ``student`` its student copy, ``exercises`` the catalogue's exercises of it (in the catalogue's order) and
    ``outcome`` the catalogue's ``Outcome`` record."""

    name: str
    nb: object
    student: object
    exercises: list
    outcome: type = tuple

    @property
    def stem(self):
        return Path(self.name).stem


def load_assignment(path, catalogue):
    """Read an instructor notebook and match it with its exercises in ``catalogue`` (a module from
    :func:`load_catalogue`); ``None`` when the catalogue has none for it and it has no graded cell.

    ``ValueError`` when the file cannot be read, its markers or nbgrader metadata are inconsistent, it has graded
    cells but no exercise in the catalogue, or an exercise of the catalogue has no cell of its ``name`` (a code
    solution cell, or a markdown answer for a written one). An exercise that checks the notebook's earlier work
    (a training run of the student's layers) may have no solution cell, only its check cell ``<name>_check``: its
    function is defined by a cell of the notebook that the student does not write.
    """
    path = Path(path)
    nb = read_notebook(path, "grade: --source notebook")
    check_notebook(nb, path.name)
    check_nbgrader(nb, path.name)
    exercises = list(catalogue.exercises_of(path.stem))
    graded = any(nbgrader_meta(c).get("grade") is True for c in nb.cells)
    if not exercises:
        if graded:
            raise ValueError(f"grade: {path.name} has graded cells, but the catalogue "
                             f"{getattr(catalogue, '__name__', '')!r} has no exercise for it")
        return None
    cells = {nbgrader_meta(c).get("grade_id"): c for c in nb.cells if nbgrader_meta(c).get("solution") is True}
    checks = {nbgrader_meta(c).get("grade_id") for c in nb.cells if nbgrader_meta(c).get("grade") is True}
    for ex in exercises:
        cell = cells.get(ex.name)
        kind = "markdown" if ex.kind == "written" else "code"
        if cell is not None and cell.cell_type == kind:
            continue
        if cell is None and kind == "code" and f"{ex.name}_check" in checks:
            continue                         # a check of the notebook's earlier work, with no answer cell of its own
        raise ValueError(f"grade: {path.name}: the catalogue's exercise {ex.name!r} has no {kind} solution cell with "
                         f"grade_id {ex.name!r} (or, for a check of earlier work, a check cell {ex.name}_check) in the "
                         f"notebook")
    return Assignment(path.name, nb, make_student_notebook(copy.deepcopy(nb), path.name), exercises,
                      _outcome_class(catalogue))


# ----------------------------------------------------------------------------------------------------------------
# one submission: its program
# ----------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Grade:
    """One row of ``grades.csv``; ``details`` (the notes about how the answer was found and run) goes to the
    feedback file only. ``points`` is ``None`` for a written answer waiting to be graded by hand."""

    student: str
    notebook: str
    exercise: str
    points: object
    max_points: float
    status: str
    message: str
    details: str = ""
    manual: bool = False         # a written answer, graded by hand

    def row(self):
        return {"student": self.student, "notebook": self.notebook, "exercise": self.exercise,
                "points": "" if self.points is None else _number(self.points),
                "max_points": _number(self.max_points), "status": self.status,
                "message": _csv_safe(_one_line(self.message, MAX_MESSAGE))}


def _number(x):
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _one_line(text, limit):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _csv_safe(text):
    """A spreadsheet runs a cell that starts with = + - @ as a formula: quote such text."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _normalised(source):
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def _index_cells(nb):
    """``({grade_id: [cell, ...]}, {cell id: cell})`` of a submitted notebook's cells."""
    by_grade_id, by_id = {}, {}
    for cell in nb.cells:
        if not isinstance(cell.get("cell_type"), str) or not isinstance(cell.get("source"), str):
            continue                                         # a malformed cell is no answer
        grade_id = nbgrader_meta(cell).get("grade_id")
        if isinstance(grade_id, str):
            by_grade_id.setdefault(grade_id, []).append(cell)
        if isinstance(cell.get("id"), str):
            by_id.setdefault(cell["id"], cell)
    return by_grade_id, by_id


def _find_answer(instructor_cell, by_grade_id, by_id):
    """The student's cell for one instructor solution cell: ``(cell or None, note)``."""
    grade_id = nbgrader_meta(instructor_cell).get("grade_id")
    found = by_grade_id.get(grade_id, [])
    note = ""
    if len(found) > 1:
        note = f"{len(found)} cells carry grade_id {grade_id!r}: graded the last one"
    cell = found[-1] if found else by_id.get(instructor_cell.get("id"))
    if cell is None:
        return None, f"no cell with grade_id {grade_id!r} in the submission"
    if not found:
        note = f"matched by cell id {cell.get('id')!r} (the cell lost its nbgrader metadata)"
    if cell.cell_type != instructor_cell.cell_type:
        return None, (f"the cell with grade_id {grade_id!r} is a {cell.cell_type} cell, expected a "
                      f"{instructor_cell.cell_type} cell")
    return cell, note


@dataclasses.dataclass
class Program:
    """What the runner runs for one submission: ``cells`` (``{"label", "source"}``, in order), and for each
    exercise: ``cell_of`` (its solution cell's label), ``missing`` (why it has no answer), ``stubbed`` (still the
    stub), ``written`` (``(found, text)`` of a written answer) and ``notes`` (how its cell was found)."""

    cells: list
    cell_of: dict
    missing: dict
    stubbed: set
    written: dict
    notes: dict


def build_program(assignment, submitted):
    """The :class:`Program` of the submitted notebook ``submitted`` (an nbformat notebook) for ``assignment``."""
    by_grade_id, by_id = _index_cells(submitted)
    names = {ex.name for ex in assignment.exercises}
    cells, cell_of, missing, stubbed, written, notes = [], {}, {}, set(), {}, {}
    for index, cell in enumerate(assignment.student.cells):
        meta = nbgrader_meta(cell)
        grade_id = meta.get("grade_id")
        if meta.get("solution") is True and grade_id in names:
            answer, note = _find_answer(cell, by_grade_id, by_id)
            if note and answer is not None:
                notes.setdefault(grade_id, []).append(note)
            if cell.cell_type == "markdown":
                written[grade_id] = (answer is not None, note if answer is None else answer.source)
                continue
            source = cell.source                             # the stub, unless the student wrote something
            if answer is None:
                missing[grade_id] = note
            elif _normalised(answer.source) == _normalised(cell.source):
                stubbed.add(grade_id)
            else:
                source = answer.source
            label = f"cell {index} ({grade_id})"
            cell_of[grade_id] = label
            cells.append({"label": label, "source": source})
        elif cell.cell_type == "code" and meta.get("grade") is not True:
            cells.append({"label": f"cell {index}", "source": cell.source})
    return Program(cells, cell_of, missing, stubbed, written, notes)


def exercise_seed(root_seed, student, notebook, exercise):
    """The seed of one exercise's cases for one student: a 63-bit number from ``root_seed`` and the three names
    (never 0, the seed of the visible cases)."""
    text = f"{root_seed}\0{student}\0{notebook}\0{exercise}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") >> 1 or 1


# ----------------------------------------------------------------------------------------------------------------
# one submission: the runs and the verdicts
# ----------------------------------------------------------------------------------------------------------------
def _rows(student, assignment, status, message):
    """The same status for every exercise of ``assignment`` (an unreadable or missing notebook)."""
    return [Grade(student, assignment.name, ex.name, 0, ex.points, status, message, manual=ex.kind == "written")
            for ex in assignment.exercises]


def _calls(assignment, program, student, root_seed):
    """``({exercise: [Case, ...]}, [jobs.Call, ...])`` of the exercises that have an answer to run."""
    from .jobs import Call

    cases, calls = {}, []
    for ex in assignment.exercises:
        if ex.kind == "written":
            continue
        cases[ex.name] = list(ex.cases(exercise_seed(root_seed, student, assignment.stem, ex.name)))
        if ex.name in program.missing or ex.name in program.stubbed:
            continue
        for i, case in enumerate(cases[ex.name]):
            calls.append(Call(f"{ex.name}/{i}", case.function or ex.function, tuple(case.args), dict(case.kwargs),
                              bool(case.return_args)))
    return cases, calls


class _RunState:
    """What the runs of one submission found: outcomes by call id, each cell's error, and what stopped a run
    (``stopped``: ``{cell label or exercise name: (status, reason)}``)."""

    def __init__(self):
        self.outcomes, self.cell_errors, self.stopped, self.problems = {}, {}, {}, []


def _run(program, calls, sandbox, slot, workdir):
    """Run the program and the calls in the sandbox, again without a step that hangs or kills the runner (at most
    :data:`MAX_RUNS` runs); a :class:`_RunState`."""
    from .jobs import read_results, write_job
    from .sandbox import remove_tree

    state, blanked, remaining = _RunState(), set(), list(calls)
    labels = [c["label"] for c in program.cells]
    for attempt in range(MAX_RUNS):
        cells = [dict(c, source="pass") if c["label"] in blanked else c for c in program.cells]
        job = tempfile.mkdtemp(prefix=f"job{slot}_", dir=workdir)
        os.chmod(job, 0o711)                             # entered by the runner's user id, listed by nobody
        try:
            write_job(os.path.join(job, "j"), cells, remaining)
            report = sandbox.run(os.path.join(job, "j"), slot)
            results = read_results(os.path.join(job, "j"), labels, [c.id for c in remaining])
        finally:
            remove_tree(job)
        for label, error in results.cells.items():
            state.cell_errors.setdefault(label, error)
        state.outcomes.update(results.calls)
        state.problems += results.problems
        remaining = [c for c in remaining if c.id not in state.outcomes]
        finished = results.done and report.returncode == 0 and not report.timed_out
        if finished or not remaining:
            break
        status = "timeout" if report.timed_out else "error"
        reason = report.reason() or "the runner stopped before it finished"
        culprit = next((c["label"] for c in cells if c["label"] not in results.cells), None)
        if culprit is not None:                          # a cell hung or killed the runner: run again without it
            state.stopped[culprit] = (status, f"{culprit}: {reason}")
            blanked.add(culprit)
        else:                                # a call did: its exercise gets that error, the others run again
            exercise = remaining[0].id.rsplit("/", 1)[0]
            state.stopped[exercise] = (status, f"{remaining[0].function}: {reason}")
            for call in [c for c in remaining if c.id.rsplit("/", 1)[0] == exercise]:
                state.outcomes[call.id] = (None, f"{status}: {reason}", None, ())
            remaining = [c for c in remaining if c.id not in state.outcomes]
        if attempt == MAX_RUNS - 1:
            for call in remaining:
                state.outcomes[call.id] = (None, f"not run: {reason}", None, ())
    return state


def _verdict(ex, cases, outcomes):
    """The catalogue's verdict, or an ``error`` verdict naming the catalogue when its judge fails."""
    try:
        v = ex.judge(cases, outcomes)
        return float(v.points), float(v.max_points), str(v.status), str(v.message)
    except Exception as err:                             # a bug of the catalogue must not stop the others
        return 0.0, float(ex.points), "error", f"grading failed: {type(err).__name__}: {_one_line(err, 200)}"


def _grade_exercise(student, assignment, ex, program, cases, state):
    """The :class:`Grade` of one exercise."""
    def grade(points, max_points, status, message, details=""):
        notes = program.notes.get(ex.name, [])
        details = "\n".join([*notes, details] if details else notes)
        return Grade(student, assignment.name, ex.name, points, max_points, status, message, details,
                     manual=ex.kind == "written")

    if ex.kind == "written":
        found, answer = program.written[ex.name]
        if not found:
            return grade(0, ex.points, "manual", f"no written answer: {answer}")
        if not answer.strip() or _normalised(answer) == ANSWER_STUB:
            return grade(0, ex.points, "manual", "not answered (still 'YOUR ANSWER HERE')")
        return grade(None, ex.points, "manual", f"written answer ({len(answer.split())} words): graded by hand",
                     details=answer)
    Outcome = assignment.outcome
    if ex.name in program.missing or ex.name in program.stubbed:
        outcomes = [Outcome(error=NOT_DONE) for _ in cases]
    else:
        with_facts = "facts" in getattr(Outcome, "_fields", ())
        outcomes = []
        for i in range(len(cases)):
            value, error, after, facts = state.outcomes.get(f"{ex.name}/{i}", (None, "not run", None, ()))
            extra = {"facts": facts} if with_facts else {}
            outcomes.append(Outcome(value=value, error=error, args_after=after, **extra))
    points, most, status, message = _verdict(ex, cases, outcomes)
    if ex.name in program.missing:
        return grade(points, most, "missing", f"{program.missing[ex.name]}; {message}")
    label = program.cell_of.get(ex.name)
    stops = [state.stopped[key] for key in (label, ex.name) if key in state.stopped]
    if stops and points < most:                          # the runner hung or died in this exercise
        run_status, reason = stops[0]
        return grade(points, most, run_status, f"{reason}; the other exercises were graded without it")
    error = state.cell_errors.get(label)
    if error and not error.startswith(NOT_DONE) and points < most:
        return grade(points, most, status, f"your cell raised {error}. {message}")
    return grade(points, most, status, message)


def grade_notebook(assignment, path, student, sandbox=None, root_seed=0, slot=0, workdir=None,
                   max_bytes=MAX_NOTEBOOK_BYTES):
    """Grade one submitted notebook ``path`` of ``student`` against ``assignment`` with ``sandbox`` (a
    :class:`~numpy_shufflenet.course.sandbox.Sandbox`; needed only when there is an answer to run); returns a
    list of :class:`Grade`, one per exercise, in the catalogue's order. Never raises for a bad submission."""
    path = Path(path)
    if not path.exists():
        return _rows(student, assignment, "missing", f"{assignment.name} is not in the submission")
    try:
        submitted = read_notebook(path, "submission", max_bytes=max_bytes, validate=False)
    except ValueError as err:
        return _rows(student, assignment, "invalid", str(err).replace(str(path), path.name))
    program = build_program(assignment, submitted)
    cases, calls = _calls(assignment, program, student, root_seed)
    state = _RunState()
    if calls:
        if sandbox is None:
            raise ValueError("grade_notebook: this submission has answers to run, and no sandbox was given")
        with tempfile.TemporaryDirectory(prefix="numpy_shufflenet_grade_", dir=workdir) as folder:
            os.chmod(folder, 0o711)
            state = _run(program, calls, sandbox, slot, folder)
    return [_grade_exercise(student, assignment, ex, program, cases.get(ex.name, []), state)
            for ex in assignment.exercises]


# ----------------------------------------------------------------------------------------------------------------
# a folder of submissions
# ----------------------------------------------------------------------------------------------------------------
def check_timeout(timeout):
    """``timeout`` as a float, after checking it is a number of seconds > 0: the one check of ``--timeout``."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
            or timeout <= 0:
        raise ValueError(f"grade: expected --timeout to be a number of seconds > 0, got {timeout!r}")
    return float(timeout)


def _check_jobs(jobs):
    if jobs is None:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"grade: expected --jobs to be an integer >= 1, got {jobs!r}")
    return jobs


def make_sandbox(sandbox="auto", timeout=DEFAULT_TIMEOUT, memory=None, log=None):
    """The :class:`~numpy_shufflenet.course.sandbox.Sandbox` for ``--sandbox`` (``"auto"``: bubblewrap, checked
    to work here, else :class:`~numpy_shufflenet.course.sandbox.SandboxUnavailable`; ``"none"``: no isolation,
    with a warning through ``log``)."""
    from .sandbox import DEFAULT_MEMORY, MODES, Limits, Sandbox, check_bwrap

    if sandbox not in MODES:
        raise ValueError(f"grade: expected --sandbox to be one of {', '.join(MODES)}, got {sandbox!r}")
    memory = DEFAULT_MEMORY if memory is None else memory
    if isinstance(memory, bool) or not isinstance(memory, int) or memory < 2**27:
        raise ValueError(f"grade: expected --memory to be at least 128 MiB, got {memory!r}")
    limits = Limits(timeout=check_timeout(timeout), memory=memory)
    if sandbox == "auto":
        check_bwrap(limits)
        return Sandbox("bwrap", limits)
    box = Sandbox("none", limits)
    if log is not None:
        log(f"warning: --sandbox none: the students' code runs without isolation ({box.describe()}); the data "
            f"boundary and the limits on memory, time and file size still hold. Use it only where each grading run "
            f"is isolated otherwise.")
    return box


def grade_dir(submissions, source="notebooks", out="grades.csv", feedback=None, timeout=DEFAULT_TIMEOUT,
              log=None, *, jobs=None, sandbox="auto", memory=None, seed=None, catalogue=None, gradebook=None,
              progress=False, manual=None):
    """Grade every ``submissions/<student>/<notebook>.ipynb`` against the notebooks of ``source``.

    Writes ``out`` (a CSV file with the columns :data:`COLUMNS`), ``gradebook`` (default ``gradebook.csv``
    beside ``out``: :func:`~numpy_shufflenet.course.gradebook.write_gradebook`) and ``feedback/<student>.md``
    (default: a folder ``feedback`` beside ``out``); returns the list of :class:`Grade`, ordered by student and
    then by notebook, whatever ``jobs`` is.

    ``jobs`` submissions (student notebooks) are graded at once, one sandbox each (default: the cores this
    process may use). ``sandbox`` is ``"auto"`` (bubblewrap; :class:`~numpy_shufflenet.course.sandbox.
    SandboxUnavailable` before anything is graded when it cannot run here) or ``"none"``; ``memory`` (bytes,
    default 2 GiB) and ``timeout`` (seconds of one run) limit each runner. ``seed`` fixes the cases drawn
    (default: a new random seed). ``catalogue``: see :func:`load_catalogue`. ``manual``: a CSV file of points
    given by hand to written answers (:func:`~numpy_shufflenet.course.manual.read_manual`, checked before anything
    runs), merged into ``out`` and the feedback. ``log`` (e.g. ``print``) is called
    with one line per graded notebook; ``progress`` shows a progress bar (tqdm, only on a terminal).

    Every argument is checked before anything runs: ``ValueError`` naming it when ``submissions`` or ``source``
    is not a directory, ``source`` has no notebook with exercises, a source notebook cannot be read or does not
    match the catalogue, ``out`` is a directory or lies under a file, ``feedback`` is a file or lies under one,
    or ``timeout``, ``jobs`` or ``memory`` is out of range. Students are the sub-folders of ``submissions``
    (hidden ones skipped).
    """
    timeout, jobs = check_timeout(timeout), _check_jobs(jobs)
    submissions, source, out = Path(submissions), Path(source), Path(out)
    if not submissions.is_dir():
        raise ValueError(f"grade: expected SUBMISSIONS to be a directory, got {str(submissions)!r}")
    if not source.is_dir():
        raise ValueError(f"grade: expected --source to be a directory of notebooks, got {str(source)!r}")
    if out.is_dir():
        raise ValueError(f"grade: --out {str(out)!r} is a directory, expected a CSV file name")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"grade: --out {str(out)!r} lies under {str(parent)!r}, which is a file")
            break
    from .._checks import check_out_dir

    feedback = check_out_dir(out.parent / "feedback" if feedback is None else feedback, "grade: --feedback")
    gradebook = out.parent / "gradebook.csv" if gradebook is None else Path(gradebook)
    catalogue = load_catalogue(catalogue)
    assignments = [a for a in (load_assignment(p, catalogue) for p in sorted(source.glob("*.ipynb")))
                   if a is not None]
    if not assignments:
        raise ValueError(f"grade: --source {str(source)!r} holds no notebook with exercises in the catalogue "
                         f"{getattr(catalogue, '__name__', '')!r}")
    students = sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")
                      and p.resolve() != feedback.resolve())
    if not students:
        raise ValueError(f"grade: SUBMISSIONS {str(submissions)!r} holds no student folder (expected "
                         f"SUBMISSIONS/<student>/<notebook>.ipynb)")
    written = {(s.name, a.name, ex.name): ex.points for s in students for a in assignments
               for ex in a.exercises if ex.kind == "written"}
    by_hand = {} if manual is None else read_manual(manual, written)
    box = make_sandbox(sandbox, timeout, memory, log)
    root_seed = secrets.randbits(64) if seed is None else seed
    if log is not None:
        log(f"grading {len(students)} students x {len(assignments)} notebooks, {jobs} at a time; sandbox: "
            f"{box.describe()}; seed {root_seed}")
    tasks = [(s, a) for s in students for a in assignments]
    results = _grade_all(tasks, box, root_seed, jobs, log, progress)
    grades = [g for rows in results for g in rows]
    merge_manual(grades, by_hand)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(grades, out)
    from .gradebook import write_gradebook

    write_gradebook(grades, gradebook, [a.name for a in assignments])
    write_feedback(grades, feedback, {s.name: _ungraded(s, assignments) for s in students}, rubrics(assignments))
    return grades


class _Longest:
    """Hands out tasks (``(student folder, assignment)``) slowest notebook first, as far as it has seen: each
    notebook's first submission in the order given, then the remaining ones of the notebook whose submissions
    took longest on average. Long tasks go early and short ones fill the end, so that the last worker does not
    run alone (longest processing time first, with estimates learned while grading)."""

    def __init__(self, tasks):
        self.lock = threading.Lock()
        self.waiting = {}                            # notebook name -> [task index, ...] in the order given
        for i, (_, assignment) in enumerate(tasks):
            self.waiting.setdefault(assignment.name, []).append(i)
        self.seconds = {}                            # notebook name -> [seconds of each graded submission]
        self.started = set()

    def next(self):
        """The index of the next task, or None when none is left."""
        with self.lock:
            left = [name for name, indices in self.waiting.items() if indices]
            if not left:
                return None
            unstarted = [name for name in left if name not in self.started]
            if unstarted:
                name = unstarted[0]
            else:                                    # not timed yet counts as slowest: it may well be
                name = max(left, key=lambda n: sum(self.seconds[n]) / len(self.seconds[n]) if n in self.seconds
                           else math.inf)
            self.started.add(name)
            return self.waiting[name].pop(0)

    def done(self, name, seconds):
        with self.lock:
            self.seconds.setdefault(name, []).append(seconds)


def _grade_all(tasks, box, root_seed, jobs, log, progress):
    """Grade ``tasks`` (``(student folder, assignment)`` pairs) ``jobs`` at a time, one sandbox each; the rows
    of each, in the order of ``tasks`` (whatever order they were graded in)."""
    from tqdm import tqdm

    from .sandbox import remove_tree

    workdir = tempfile.mkdtemp(prefix="numpy_shufflenet_grading_")
    os.chmod(workdir, 0o711)                         # the runner's user enters its job folder, sees no other
    order, results, lock = _Longest(tasks), [None] * len(tasks), threading.Lock()
    bar = tqdm(total=len(tasks), unit="notebook", desc="grading", disable=None if progress else True,
               file=sys.stderr)

    def worker(slot):                                # slot: which unprivileged user id its sandboxes run as
        while (i := order.next()) is not None:
            student_dir, assignment = tasks[i]
            start = time.monotonic()
            try:
                rows = grade_notebook(assignment, student_dir / assignment.name, student_dir.name, box, root_seed,
                                      slot, workdir)
            except Exception as err:                 # a bug of ours must not stop the other students
                rows = _rows(student_dir.name, assignment, "error",
                             f"grading failed: {type(err).__name__}: {_one_line(err, 200)}")
            order.done(assignment.name, time.monotonic() - start)
            results[i] = rows
            with lock:
                bar.update(1)
                if log is not None and bar.disable:
                    log(_summary_line(rows))
                elif log is not None:
                    tqdm.write(_summary_line(rows), file=sys.stderr)

    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for future in [pool.submit(worker, slot) for slot in range(jobs)]:
                future.result()
        return results
    finally:
        bar.close()
        remove_tree(workdir)


def _ungraded(student_dir, assignments):
    names = {a.name for a in assignments}
    return sorted(p.name for p in student_dir.iterdir() if p.name not in names and not p.name.startswith("."))


def _totals(rows):
    auto = [g for g in rows if not g.manual]
    return (sum(g.points for g in auto), sum(g.max_points for g in auto),
            sum(g.max_points for g in rows if g.manual))


def _summary_line(rows):
    got, most, manual = _totals(rows)
    counts = {}
    for g in rows:
        counts[g.status] = counts.get(g.status, 0) + 1
    by_hand = f" (+{_number(manual)} by hand)" if manual else ""
    return (f"{rows[0].student}/{rows[0].notebook}: {_number(got)}/{_number(most)}{by_hand}  "
            + ", ".join(f"{n} {s}" for s, n in counts.items()))


def write_csv(grades, path):
    """Write ``grades`` to the CSV file ``path`` (columns :data:`COLUMNS`), then their totals per student and
    notebook and per student (:func:`~numpy_shufflenet.course.manual.total_rows`)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for g in list(grades) + total_rows(grades):
            writer.writerow(g.row())


def write_feedback(grades, directory, ungraded=None, rubrics=None):
    """Write one Markdown file per student, ``directory/<student>.md``: every exercise's points, status and
    message, what the checks of the exercises not passed printed, and the written answers, each followed by its
    model answer and rubric from ``rubrics`` (``{(notebook, exercise): text}``) for the instructor who grades
    them. Returns the paths written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    by_student = {}
    for g in grades:
        by_student.setdefault(g.student, {}).setdefault(g.notebook, []).append(g)
    paths = []
    for student, notebooks in by_student.items():
        got = sum(_totals(rows)[0] for rows in notebooks.values())
        most = sum(_totals(rows)[1] for rows in notebooks.values())
        manual = sum(_totals(rows)[2] for rows in notebooks.values())
        lines = [f"# Feedback for {student}", "",
                 f"Autograded: **{_number(got)} of {_number(most)} points**"
                 + (f"; written answers worth {_number(manual)} points are graded by hand." if manual else "."),
                 f"Total: {_total_line([g for rows in notebooks.values() for g in rows])}.", ""]
        for notebook, rows in notebooks.items():
            lines += [f"## {notebook}: {_total_line(rows)}", ""]
            if len(rows) > 1 and len({(g.status, g.message) for g in rows}) == 1:     # the notebook as a whole
                lines += [f"- every exercise ({rows[0].status}): {_one_line(rows[0].message, 2000)}", ""]
                continue
            for g in rows:
                points = "by hand" if g.points is None else f"{_number(g.points)}/{_number(g.max_points)}"
                lines.append(f"- **{g.exercise}** ({points}, {g.status}): {_one_line(g.message, 2000)}")
                if g.details and g.status != "passed":           # what the checks printed, where it helps
                    fence = "````" if "```" in g.details else "```"
                    lines += ["", f"  {fence}"] + [f"  {line}" for line in g.details.splitlines()] + [f"  {fence}"]
                lines += _rubric_lines(g, rubrics or {})
            lines.append("")
        extra = (ungraded or {}).get(student, [])
        if extra:
            lines += ["Files not graded (no notebook of that name in the course): " + ", ".join(extra), ""]
        path = directory / f"{student}.md"
        path.write_text("\n".join(lines), encoding="utf-8")
        paths.append(path)
    return paths


def _total_line(rows):
    """``"7 of 11 points (2 of 2 by hand)"``, or with the written answers still to grade."""
    total = total_rows(rows)[-1]
    return f"{_number(total.points)} of {_number(total.max_points)} points ({total.message})"


def _rubric_lines(g, rubrics):
    """The model answer and rubric under a written answer in the feedback (quoted), if the notebook has one."""
    text = rubrics.get((g.notebook, g.exercise)) if g.manual else None
    if not text:
        return []
    return ["", "  Model answer and rubric (instructor notebook):", ""] + [f"  > {line}" for line in text.splitlines()]


def format_table(grades):
    """A plain-text table: one line per student and notebook (points, maximum, statuses), then each student's
    total."""
    groups = {}
    for g in grades:
        groups.setdefault((g.student, g.notebook), []).append(g)
    header = ("student", "notebook", "points", "max", "by hand", "exercises")
    table = []
    totals = {}
    for (student, notebook), rows in groups.items():
        got, most, manual = _totals(rows)
        t = totals.setdefault(student, [0.0, 0.0, 0.0])
        t[0] += got
        t[1] += most
        t[2] += manual
        statuses = ", ".join(f"{g.exercise} {g.status}" for g in rows if g.status != "passed") or "all passed"
        table.append((student, notebook, _number(got), _number(most), _number(manual), statuses))
    for student, (got, most, manual) in totals.items():
        table.append((student, "TOTAL", _number(got), _number(most), _number(manual), ""))
    widths = [max(len(str(row[i])) for row in [header] + table) for i in range(len(header) - 1)]
    lines = []
    for row in [header] + table:
        cells = [str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells + [row[-1]]).rstrip())
    return "\n".join(lines)
