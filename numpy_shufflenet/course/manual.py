"""Written answers graded by hand: the instructor's points merged into the grades, totals, and the rubrics.

A written answer's row of ``grades.csv`` has status ``manual`` and no points. The instructor reads the answers in
the feedback files, next to the question's rubric and model answer (the instructor notebook's answer cell, which
``make-student`` replaces with ``YOUR ANSWER HERE``), and writes the points into a CSV file with the columns
:data:`COLUMNS`::

    student,notebook,exercise,points
    alice,01_group_convolution_and_parameters,question_equal_cost,1.5

``grade ... --manual MANUAL.csv`` checks every row before grading (:func:`read_manual`: a known student, a
notebook of ``--source``, one of its written answers, points from 0 to the answer's maximum, no row twice) and
merges the points into the grades (:func:`merge_manual`). :func:`total_rows` adds a ``TOTAL`` row per student and
notebook and one per student over all notebooks (notebook ``ALL``).
"""

import csv
import dataclasses
import io
import math
from pathlib import Path

__all__ = ["COLUMNS", "TOTAL", "ALL", "MAX_MANUAL_BYTES", "read_manual", "merge_manual", "total_rows", "rubrics"]

COLUMNS = ("student", "notebook", "exercise", "points")
TOTAL = "TOTAL"                  # the exercise column of a total row
ALL = "ALL"                      # the notebook column of a student's total over every notebook
MAX_MANUAL_BYTES = 10 * 2**20


def _number(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def read_manual(path, written):
    """The hand-given points of ``path``: ``{(student, notebook, exercise): points}``.

    ``written`` maps ``(student, notebook file name, exercise)`` to the maximum points of every written answer
    being graded. A row's notebook may be given with or without ``.ipynb``. ``ValueError`` listing every problem
    (with its line) when the file is missing, too large, not UTF-8 CSV with the header :data:`COLUMNS`, or has a
    row that names an unknown student, notebook or written answer, gives points that are not a number from 0 to
    the maximum, or repeats a row; nothing is merged then.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"grade: --manual {str(path)!r} is not a file")
    if path.stat().st_size > MAX_MANUAL_BYTES:
        raise ValueError(f"grade: --manual {str(path)!r} is larger than {MAX_MANUAL_BYTES // 2**20} MB")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"grade: --manual {str(path)!r} is not UTF-8 text ({err.reason})") from None
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    if tuple(header) != COLUMNS:
        raise ValueError(f"grade: --manual {str(path)!r}: expected the header {','.join(COLUMNS)}, got "
                         f"{','.join(header) or 'an empty file'}")
    maxima = {}
    for (student, notebook, exercise), most in written.items():
        maxima[student, notebook, exercise] = most
        maxima[student, Path(notebook).stem, exercise] = most
    points, problems = {}, []
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(COLUMNS):
            problems.append(f"line {line}: expected {len(COLUMNS)} columns, got {len(row)}")
            continue
        student, notebook, exercise, given = (cell.strip() for cell in row)
        name = notebook if notebook.endswith(".ipynb") else notebook + ".ipynb"
        key = (student, name, exercise)
        most = maxima.get((student, notebook, exercise))
        value = _number(given)
        if most is None:
            problems.append(f"line {line}: no written answer {exercise!r} of student {student!r} in notebook "
                            f"{notebook!r} is graded")
        elif value is None or not 0 <= value <= most:
            problems.append(f"line {line}: expected points from 0 to {most:g} for {student}/{exercise}, got "
                            f"{given!r}")
        elif key in points:
            problems.append(f"line {line}: {student}/{notebook}/{exercise} is given twice")
        else:
            points[key] = value
    if problems:
        raise ValueError(f"grade: --manual {str(path)!r}: " + "; ".join(problems))
    return points


def merge_manual(grades, points):
    """Put the hand-given ``points`` (from :func:`read_manual`) into the written answers' rows of ``grades``, in
    place; returns how many rows were graded."""
    merged = 0
    for g in grades:
        value = points.get((g.student, g.notebook, g.exercise))
        if value is not None and g.manual:
            g.points = value
            g.message = f"graded by hand: {value:g} of {g.max_points:g}"
            merged += 1
    return merged


def _total(rows, notebook):
    auto = [g for g in rows if not g.manual]
    hand = [g for g in rows if g.manual]
    got = sum(g.points or 0 for g in rows)
    pending = sum(g.max_points for g in hand if g.points is None)
    message = (f"{sum(g.points for g in auto):g} of {sum(g.max_points for g in auto):g} autograded, "
               f"{sum(g.points or 0 for g in hand):g} of {sum(g.max_points for g in hand):g} by hand")
    if pending:
        message += f"; written answers worth {pending:g} points not graded yet"
    return dataclasses.replace(rows[0], notebook=notebook, exercise=TOTAL, points=got,
                               max_points=sum(g.max_points for g in rows), status="total", message=message,
                               details="", manual=False)


def total_rows(grades):
    """A ``TOTAL`` row per student and notebook, then one per student over every notebook (notebook ``ALL``)."""
    by_student = {}
    for g in grades:
        by_student.setdefault(g.student, {}).setdefault(g.notebook, []).append(g)
    rows = []
    for student, notebooks in by_student.items():
        rows += [_total(notebook_rows, notebook) for notebook, notebook_rows in notebooks.items()]
        rows.append(_total([g for notebook_rows in notebooks.values() for g in notebook_rows], ALL))
    return rows


def rubrics(assignments):
    """``{(notebook file name, exercise): text}``: the instructor notebook's cell of every written answer (its model
    answer and rubric), for the feedback the instructor grades from."""
    from .release import nbgrader_meta

    found = {}
    for assignment in assignments:
        for cell in assignment.nb.cells:
            meta = nbgrader_meta(cell)
            if cell.cell_type == "markdown" and meta.get("solution") is True and meta.get("grade") is True:
                found[assignment.name, meta.get("grade_id")] = cell.source.strip()
    return found
