r"""``gradebook.csv``: one row per student, for an LMS's gradebook import (Canvas, Moodle).

The columns are nbgrader's export columns for a student (``nbgrader export``: ``student_id, last_name,
first_name, email, raw_score, late_submission_penalty, score, max_score``), with one column per notebook between
the student's names and the totals, named by the notebook's file stem::

    student_id,last_name,first_name,email,01_group_convolution_and_parameters,...,raw_score,...,max_score
    alice,,,,12,...,61,...,69

nbgrader's export has one row per student *and assignment* (with ``assignment, duedate, timestamp``); here the
notebooks are the columns, so those three are left out. The names and email are empty (the grader knows a
student only by the folder name; fill them in, or map ``student_id`` to the LMS's id on import). A notebook's
points are its exercises' points; a written answer not graded yet counts 0 (and is part of ``max_score``), so
the totals are final once every ``manual`` row of ``grades.csv`` has its points. ``late_submission_penalty`` is
0: due dates are the LMS's business.
"""

import csv
from pathlib import Path

__all__ = ["STUDENT_COLUMNS", "TOTAL_COLUMNS", "gradebook_rows", "write_gradebook"]

STUDENT_COLUMNS = ("student_id", "last_name", "first_name", "email")
TOTAL_COLUMNS = ("raw_score", "late_submission_penalty", "score", "max_score")


def _csv_safe(text):
    """A spreadsheet runs a cell that starts with = + - @ as a formula: quote such text."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _number(x):
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def gradebook_rows(grades, notebooks):
    """``(columns, rows)``: one dict per student (in the order first seen in ``grades``, a list of
    :class:`~numpy_shufflenet.course.autograde.Grade`) with a column per notebook of ``notebooks`` (file names)."""
    stems = [Path(name).stem for name in notebooks]
    columns = [*STUDENT_COLUMNS, *stems, *TOTAL_COLUMNS]
    students = {}
    for g in grades:
        row = students.setdefault(g.student, {"points": dict.fromkeys(stems, 0.0), "max": 0.0})
        stem = Path(g.notebook).stem
        row["points"][stem] = row["points"].get(stem, 0.0) + (0.0 if g.points is None else float(g.points))
        row["max"] += float(g.max_points)
    rows = []
    for student, found in students.items():
        total = sum(found["points"].values())
        row = {"student_id": _csv_safe(student), "last_name": "", "first_name": "", "email": ""}
        row.update({stem: _number(found["points"][stem]) for stem in stems})
        row.update({"raw_score": _number(total), "late_submission_penalty": "0", "score": _number(total),
                    "max_score": _number(found["max"])})
        rows.append(row)
    return columns, rows


def write_gradebook(grades, path, notebooks):
    """Write ``gradebook.csv`` to ``path`` (see the module's description); returns the path."""
    columns, rows = gradebook_rows(grades, notebooks)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)
