r"""Grade submitted notebooks: each student's answers, run inside the instructor's notebook.

``python -m numpy_shufflenet grade SUBMISSIONS --source notebooks --out grades.csv`` (or :func:`grade_dir`)
grades every ``SUBMISSIONS/<student>/<notebook>.ipynb`` whose name is a notebook of ``--source`` that has graded
cells. The exercises are read from nbgrader's cell metadata (schema 3, checked by
:func:`numpy_shufflenet.course.release.check_nbgrader`):

* a **solution cell** (code, ``solution: true``, ``grade_id`` ``<name>``) holds what the student writes;
* its **check cells** (code, ``grade: true``, locked, ``grade_id`` ``<name>_check``, ``<name>_check2``, ...)
  hold the visible checks and the hidden tests; exercise ``<name>`` is worth the sum of their ``points``;
* a **written answer** (markdown, ``solution: true, grade: true``) is graded by hand: status ``manual``.

For each submission:

1. **Take only the student's answers.** The solution cells and written answers are matched by their
   ``grade_id`` (else by their cell id); nothing else of the submission is used, so an edited check cell or a
   deleted hidden test counts for nothing. A solution cell that is missing, or still the stub of the student
   copy, is ``missing`` or ``not done``.
2. **Put them into the instructor notebook** in place of the solutions, and run it top to bottom in a fresh
   kernel (nbclient, errors allowed, so one failing cell does not stop the cells after it): the course's checks
   raise ``ExerciseNotDone`` for a function that still raises ``NotImplementedError``, in grading as in the
   student's own notebook. (``NUMPY_SHUFFLENET_GRADING=1`` is still set, for notebooks whose own checks read
   it.) The kernel starts in an empty temporary folder and gets ``timeout`` seconds for all the cells of the notebook
   (counted from the start of the first cell; the kernel's start-up has its own limit). When the time runs out
   inside one exercise (an infinite loop, say), that exercise gets ``timeout`` and the notebook is run again
   with its solution blanked, so the other exercises are still graded (at most :data:`MAX_RUNS` runs). The
   outputs kept are capped at :data:`MAX_OUTPUT_BYTES` per run.
3. **Award points.** A check cell that ran without raising earns its ``points``; one that raised earns 0, and
   its error is the message.

The statuses, one per exercise: ``passed`` (every check ran without error), ``failed`` (some check raised; the
points count the ones that passed), ``not done`` (the stub is still there, or a check met
``NotImplementedError`` or the course checks' ``ExerciseNotDone``), ``error`` (the student's own cell raised, or
the kernel died in it; the checks still decide the points), ``timeout``, ``not run`` (the run stopped before
this exercise's checks), ``missing`` (the cell or the whole notebook is not in the submission), ``invalid``
(the file is not valid JSON, not a notebook, or larger than :data:`MAX_NOTEBOOK_BYTES`) and ``manual`` (a
written answer: ``points`` is left empty for the grader, or 0 when nothing was written).

Nothing about one submission stops the others: every failure is a status and a message. The results go to
``grades.csv`` (columns :data:`COLUMNS`, one row per student, notebook and exercise) and to one feedback file
per student, ``<feedback>/<student>.md``, with every exercise's points, status and message, what its checks
printed, and the student's written answers.

**The student's code runs with the grader's rights.** Grade in an account or container that holds nothing
else of value. The checks run in the same Python process as the student's code: grading stops accidents and
honest mistakes, not a determined cheat who rewrites the checking functions from an answer cell; read the code
behind a surprising full mark.

:mod:`nbclient` and :mod:`nbformat` (the dev extra) are imported by the functions that need them.
"""

import copy
import csv
import dataclasses
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

from .manual import merge_manual, read_manual, rubrics, total_rows
from .release import (ANSWER_STUB, MAX_NOTEBOOK_BYTES, check_nbgrader, check_notebook, exercise_of_check,
                      nbgrader_meta, read_notebook, strip_outputs, student_source)

__all__ = [
    "COLUMNS", "STATUSES", "DEFAULT_TIMEOUT", "MAX_OUTPUT_BYTES", "MAX_RUNS", "MAX_NOTEBOOK_BYTES",
    "Exercise", "Assignment", "Grade", "load_assignment", "grade_notebook", "grade_dir", "check_timeout", "write_csv",
    "write_feedback", "format_table",
]

COLUMNS = ("student", "notebook", "exercise", "points", "max_points", "status", "message")
STATUSES = ("passed", "failed", "not done", "error", "timeout", "not run", "missing", "invalid", "manual", "total")
DEFAULT_TIMEOUT = 300.0          # seconds for all the cells of one run of one notebook
MAX_OUTPUT_BYTES = 2 * 2**20     # outputs kept per run; beyond it, printed text and pictures are dropped
MAX_RUNS = 3                     # runs of one notebook: the first, and one more per exercise that hangs
MAX_MESSAGE = 300                # characters of a grades.csv message
MAX_PRINTED = 2000               # characters of a check's printed output kept for the feedback file

# Errors that mean "not written yet": the stub's, and numpy_shufflenet.course's subclass of it.
_NOT_DONE = ("NotImplementedError", "ExerciseNotDone")


# ----------------------------------------------------------------------------------------------------------------
# the instructor notebook: which cells are exercises
# ----------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Exercise:
    """One exercise of an instructor notebook.

    ``kind`` is ``"code"`` (solution cells and check cells) or ``"manual"`` (a written answer); ``solutions``
    are the indices of the cells the student writes, ``checks`` the indices of the graded cells, each with its
    ``points``; ``max_points`` is their sum.
    """

    name: str
    kind: str
    solutions: tuple
    checks: tuple                # ((cell index, grade_id, points), ...)
    max_points: float

    @property
    def cells(self):
        """The indices of all its cells, solutions and checks."""
        return self.solutions + tuple(index for index, _, _ in self.checks)


@dataclasses.dataclass
class Assignment:
    """An instructor notebook, ready to grade: ``name`` is its file name, ``nb`` the notebook."""

    name: str
    nb: object
    exercises: list

    def solution_cells(self):
        """``{cell index: exercise}`` for every cell a student writes (solutions and written answers)."""
        return {i: ex for ex in self.exercises for i in ex.solutions}


def load_assignment(path):
    """Read an instructor notebook and find its exercises; ``None`` when it has no graded cell.

    ``ValueError`` when the file cannot be read, or its markers or nbgrader metadata are inconsistent
    (:func:`~numpy_shufflenet.course.release.check_notebook`, :func:`~numpy_shufflenet.course.release.check_nbgrader`).
    """
    path = Path(path)
    nb = read_notebook(path, "grade: --source notebook")
    check_notebook(nb, path.name)
    check_nbgrader(nb, path.name)
    exercises, by_name = [], {}
    for index, cell in enumerate(nb.cells):
        meta = nbgrader_meta(cell)
        grade_id, solution, grade = meta.get("grade_id"), meta.get("solution") is True, meta.get("grade") is True
        if not (solution or grade):
            continue
        if cell.cell_type == "markdown":
            exercises.append(Exercise(grade_id, "manual", (index,), (), float(meta["points"])))
            continue
        name = grade_id
        if grade and not solution:
            name = exercise_of_check(grade_id) or grade_id
        entry = by_name.setdefault(name, {"solutions": [], "checks": []})
        if solution:
            entry["solutions"].append(index)
        if grade:
            entry["checks"].append((index, grade_id, float(meta["points"])))
        if len(entry["solutions"]) + len(entry["checks"]) == 1:
            exercises.append(name)                           # keep the notebook's order
    result = []
    for item in exercises:
        if isinstance(item, Exercise):
            result.append(item)
        else:
            entry = by_name[item]
            result.append(Exercise(item, "code", tuple(entry["solutions"]), tuple(entry["checks"]),
                                   sum(points for _, _, points in entry["checks"])))
    if not any(ex.max_points > 0 for ex in result):
        return None
    return Assignment(path.name, nb, result)


# ----------------------------------------------------------------------------------------------------------------
# one submission
# ----------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Grade:
    """One row of ``grades.csv``; ``details`` (what the checks printed, the written answer) goes to the
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


def _rows(student, assignment, status, message):
    """The same status for every exercise of ``assignment`` (an unreadable or missing notebook)."""
    return [Grade(student, assignment.name, ex.name, 0, ex.max_points, status, message,
                  manual=ex.kind == "manual") for ex in assignment.exercises]


def grade_notebook(assignment, path, student, timeout=DEFAULT_TIMEOUT, max_bytes=MAX_NOTEBOOK_BYTES,
                   max_output_bytes=MAX_OUTPUT_BYTES, kernel_name="python3"):
    """Grade one submitted notebook ``path`` of ``student`` against ``assignment``; returns a list of
    :class:`Grade`, one per exercise, in the notebook's order. Never raises for a bad submission."""
    path = Path(path)
    if not path.exists():
        return _rows(student, assignment, "missing", f"{assignment.name} is not in the submission")
    try:
        submitted = read_notebook(path, "submission", max_bytes=max_bytes, validate=False)
    except ValueError as err:
        return _rows(student, assignment, "invalid", str(err).replace(str(path), path.name))
    by_grade_id, by_id = _index_cells(submitted)

    nb = strip_outputs(copy.deepcopy(assignment.nb))
    notes = {}                      # exercise name -> notes about how its cells were found
    missing, stubbed, answers = {}, set(), {}      # missing: exercise name -> why
    for index, ex in assignment.solution_cells().items():
        original = assignment.nb.cells[index]
        cell, note = _find_answer(original, by_grade_id, by_id)
        if note and cell is not None:
            notes.setdefault(ex.name, []).append(note)
        if ex.kind == "manual":
            answers[ex.name] = (cell is not None, note if cell is None else cell.source)
            nb.cells[index].source = ANSWER_STUB if cell is None else cell.source
            continue
        stub = student_source(original.source, fallback_hint=original.get("id") or f"cell {index}")
        if cell is None:
            missing[ex.name] = note
            nb.cells[index].source = stub
        elif _normalised(cell.source) == _normalised(stub):
            stubbed.add(ex.name)
            nb.cells[index].source = stub
        else:
            nb.cells[index].source = cell.source

    code_exercises = [ex for ex in assignment.exercises if ex.kind == "code"]
    hung, runs, run = {}, 0, None
    to_run = {ex.name for ex in code_exercises if ex.solutions} - set(missing) - stubbed
    while to_run and runs < MAX_RUNS:
        runs += 1
        run = _execute(nb, timeout, max_output_bytes, kernel_name)
        if run.stopped_at is None:
            break
        owner = _owner(assignment, run.stopped_at)
        if owner is None or owner.name in hung or runs == MAX_RUNS:
            break
        hung[owner.name] = (run.stop_status, run.stop_reason)   # blank it and run again without it
        for index in owner.solutions:
            original = assignment.nb.cells[index]
            nb.cells[index].source = student_source(original.source, fallback_hint=original.get("id") or "")
        to_run.discard(owner.name)
        run = None

    grades = []
    for ex in assignment.exercises:
        grade = _grade_exercise(student, assignment, ex, run, missing, stubbed, hung, answers)
        extra = notes.get(ex.name, [])
        if extra:
            grade.message = "; ".join([grade.message] + extra)
        grades.append(grade)
    return grades


def _owner(assignment, index):
    """The exercise a cell belongs to (its solution or one of its checks), else ``None``."""
    for ex in assignment.exercises:
        if index in ex.cells:
            return ex
    return None


def _grade_exercise(student, assignment, ex, run, missing, stubbed, hung, answers):
    """The :class:`Grade` of one exercise, from what was found in the submission and the last run."""
    def grade(points, status, message, details=""):
        return Grade(student, assignment.name, ex.name, points, ex.max_points, status, message, details,
                     manual=ex.kind == "manual")

    if ex.kind == "manual":
        found, answer = answers[ex.name]
        if not found:
            return grade(0, "manual", f"no written answer: {answer}")
        if not answer.strip() or _normalised(answer) == ANSWER_STUB:
            return grade(0, "manual", "not answered (still 'YOUR ANSWER HERE')")
        return grade(None, "manual", f"written answer ({len(answer.split())} words): graded by hand",
                     details=answer)
    if ex.name in missing:
        return grade(0, "missing", missing[ex.name])
    if ex.name in stubbed:
        return grade(0, "not done", "not done yet (the solution cell is still the stub)")
    if ex.name in hung:
        status, reason = hung[ex.name]
        return grade(0, status, f"{reason}; graded the other exercises without this one")
    if run is None and not ex.solutions:                     # a check of the earlier exercises as a whole
        return grade(0, "not done", "not done yet: none of the exercises it builds on was written")
    if run is None:
        return grade(0, "not run", "the notebook was not run")
    if run.stopped_at in ex.cells:                           # it hung or killed the kernel in the last run
        return grade(0, run.stop_status, run.stop_reason)
    capped = " (output capped: only the first part of what it printed was kept)" \
        if run.capped.intersection(ex.cells) else ""
    own_error = None
    for index in ex.solutions:
        result = run.cells.get(index)
        if result and result.error and own_error is None:
            own_error = result.error
    points, failures, not_done, not_run, details = 0.0, [], [], [], []
    for index, grade_id, check_points in ex.checks:
        result = run.cells.get(index)
        if result is None:
            not_run.append(grade_id)
            continue
        if result.printed:
            details.append(f"{grade_id} printed:\n{result.printed}")
        if result.error is None:
            points += check_points
            continue
        ename, evalue = result.error
        (not_done if ename in _NOT_DONE else failures).append(f"{grade_id}: {ename}: {evalue}")
    details = "\n".join(details)
    if own_error is not None:                                # the student's own cell raised
        ename, evalue = own_error
        status = "not done" if ename in _NOT_DONE else "error"
        checks = "; ".join(failures + not_done) or "the checks passed on what it defined before"
        return grade(points, status, f"your solution cell raised {ename}: {evalue}; {checks}{capped}", details)
    if failures:
        return grade(points, "failed", "; ".join(failures + not_done) + capped, details)
    if not_done:
        return grade(points, "not done", "not done yet: " + "; ".join(not_done), details)
    if not_run:
        reason = run.stop_reason or "the run stopped"
        return grade(points, "not run", f"{', '.join(not_run)} did not run: {reason}", details)
    return grade(points, "passed", "all checks passed" + capped, details)


# ----------------------------------------------------------------------------------------------------------------
# running a notebook
# ----------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _CellResult:
    error: object = None         # (ename, evalue) of the first error output, else None
    printed: str = ""            # the start of what the cell printed


@dataclasses.dataclass
class _Run:
    cells: dict                  # cell index -> _CellResult, for the cells that ran
    capped: set                  # indices of the cells whose outputs were dropped by the cap
    stopped_at: object = None    # index of the cell where the run stopped early (timeout, dead kernel)
    stop_status: str = ""        # "timeout" or "error"
    stop_reason: str = ""


_CLIENT_CLASS = None


def _client_class():
    """A :class:`nbclient.NotebookClient` that keeps at most ``max_output_bytes`` of outputs per run and
    remembers which cell it is running."""
    global _CLIENT_CLASS
    if _CLIENT_CLASS is not None:
        return _CLIENT_CLASS
    import nbclient                                          # the dev extra

    class GradingClient(nbclient.NotebookClient):
        def __init__(self, nb, max_output_bytes, **kwargs):
            super().__init__(nb, **kwargs)
            self.max_output_bytes = max_output_bytes
            self.output_bytes = 0
            self.capped_cells = set()
            self.current_index = None

        async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
            self.current_index = cell_index
            return await super().async_execute_cell(cell, cell_index, *args, **kwargs)

        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            if msg.get("msg_type") == "error":              # errors are always kept (they are the grade), cut
                content["evalue"] = str(content.get("evalue", ""))[:MAX_PRINTED]
                content["traceback"] = [str(line)[:MAX_PRINTED] for line in content.get("traceback", [])[-20:]]
            else:
                size = len(content.get("text", "")) + sum(len(str(v)) for v in content.get("data", {}).values())
                self.output_bytes += size
                if self.output_bytes > self.max_output_bytes:
                    self.capped_cells.add(cell_index)
                    return None
            return super().output(outs, msg, display_id, cell_index)

    _CLIENT_CLASS = GradingClient
    return GradingClient


def _cell_name(nb, index):
    if index < 0:
        return "before the first cell"
    cell = nb.cells[index]
    name = nbgrader_meta(cell).get("grade_id") or cell.get("id")
    return f"cell {index}" + (f", {name}" if name else "")


def _index(client):
    """The index of the cell the client was running, -1 before the first."""
    return -1 if client.current_index is None else client.current_index


def _kill(km):
    """Make sure the kernel of ``km`` is gone, whatever happened to the run."""
    from jupyter_core.utils import run_sync

    try:
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)
    except Exception:                                        # already dead, or never started
        pass


def _execute(nb, timeout, max_output_bytes, kernel_name):
    """Run ``nb`` (in place) in a fresh kernel in grading mode; return a :class:`_Run`."""
    from jupyter_client.manager import AsyncKernelManager    # the dev extra (nbclient's dependency)
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    strip_outputs(nb)
    workdir = tempfile.mkdtemp(prefix="numpy_shufflenet_grade_")
    deadline = []                                            # set when the first cell starts

    def time_left(cell):
        if not deadline:
            deadline.append(time.monotonic() + timeout)
        return max(1, math.ceil(deadline[0] - time.monotonic()))

    env = dict(os.environ, NUMPY_SHUFFLENET_GRADING="1", MPLBACKEND="Agg")
    km = AsyncKernelManager(kernel_name=kernel_name, transport="ipc", ip=os.path.join(workdir, "kernel"))
    client = _client_class()(
        nb, max_output_bytes, km=km, kernel_name=kernel_name, allow_errors=True, interrupt_on_timeout=False,
        timeout_func=time_left, shutdown_kernel="immediate",
        startup_timeout=max(10, min(60, int(timeout))), resources={"metadata": {"path": workdir}})
    stopped_at, status, reason = None, "", ""
    try:
        client.execute(env=env, cwd=workdir, cleanup_kc=True)       # shut the kernel down at the end
    except CellTimeoutError:
        stopped_at, status = _index(client), "timeout"
        reason = f"still running when the notebook's {timeout:g} s ran out ({_cell_name(nb, stopped_at)})"
    except DeadKernelError:
        stopped_at, status = _index(client), "error"
        reason = f"the kernel died while running {_cell_name(nb, stopped_at)}"
    except Exception as err:                                 # kernel start-up or messaging failed
        stopped_at = _index(client)
        status, reason = "error", f"the run failed: {type(err).__name__}: {_one_line(err, 200)}"
    finally:
        _kill(km)
        shutil.rmtree(workdir, ignore_errors=True)
    cells = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or cell.get("execution_count") is None:
            continue
        if stopped_at is not None and index >= stopped_at >= 0:
            continue                                         # the cell that hung or killed the kernel
        result = _CellResult()
        printed = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error" and result.error is None:
                result.error = (out.get("ename", "Error"), _one_line(out.get("evalue", ""), 500))
            elif out.get("output_type") == "stream":
                printed.append(out.get("text", ""))
        text = "".join(printed)
        result.printed = text if len(text) <= MAX_PRINTED else text[:MAX_PRINTED] + "\n[... more output]"
        cells[index] = result
    return _Run(cells, set(client.capped_cells), stopped_at, status, reason)


# ----------------------------------------------------------------------------------------------------------------
# a folder of submissions
# ----------------------------------------------------------------------------------------------------------------
def check_timeout(timeout):
    """``timeout`` as a float, after checking it is a finite number of seconds > 0 (``grade_dir``'s argument and
    the command line's ``--timeout``)."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
            or timeout <= 0:
        raise ValueError(f"grade: expected --timeout to be a number of seconds > 0, got {timeout!r}")
    return float(timeout)


def grade_dir(submissions, source="notebooks", out="grades.csv", feedback=None, timeout=DEFAULT_TIMEOUT,
              log=None, manual=None, **options):
    """Grade every ``submissions/<student>/<notebook>.ipynb`` against the notebooks of ``source``.

    Writes ``out`` (a CSV file with the columns :data:`COLUMNS`) and ``feedback/<student>.md`` (default: a
    folder ``feedback`` beside ``out``); returns the list of :class:`Grade`. ``log`` (e.g. ``print``) is called
    with one line per graded notebook. ``options`` go to :func:`grade_notebook`.

    Every argument is checked before anything runs: ``ValueError`` naming it when ``submissions`` or ``source``
    is not a directory, ``source`` has no notebook with graded cells, a source notebook cannot be read or has
    inconsistent metadata, ``out`` is a directory or lies under a file, ``feedback`` is a file or lies under one,
    or ``timeout`` is not a number > 0. Students are the sub-folders of ``submissions`` (hidden ones skipped).
    """
    timeout = check_timeout(timeout)
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
    assignments = [a for a in (load_assignment(p) for p in sorted(source.glob("*.ipynb"))) if a is not None]
    if not assignments:
        raise ValueError(f"grade: --source {str(source)!r} holds no notebook with graded cells (nbgrader "
                         f"metadata with grade: true)")
    students = sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")
                      and p.resolve() != feedback.resolve())
    if not students:
        raise ValueError(f"grade: SUBMISSIONS {str(submissions)!r} holds no student folder (expected "
                         f"SUBMISSIONS/<student>/<notebook>.ipynb)")
    written = {(s.name, a.name, ex.name): ex.max_points for s in students for a in assignments
               for ex in a.exercises if ex.kind == "manual"}
    by_hand = {} if manual is None else read_manual(manual, written)
    grades = []
    for student_dir in students:
        for assignment in assignments:
            try:
                rows = grade_notebook(assignment, student_dir / assignment.name, student_dir.name,
                                      timeout=timeout, **options)
            except Exception as err:                         # a bug of ours must not stop the other students
                rows = _rows(student_dir.name, assignment, "error",
                             f"grading failed: {type(err).__name__}: {_one_line(err, 200)}")
            grades.extend(rows)
            if log is not None:
                log(_summary_line(rows))
    merge_manual(grades, by_hand)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(grades, out)
    write_feedback(grades, feedback, {s.name: _ungraded(s, assignments) for s in students}, rubrics(assignments))
    return grades


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
