r"""Student copies of exercise notebooks: blank out the solutions, drop the hidden tests.

An instructor writes one notebook *with* its solutions, and marks them with nbgrader's marker lines (only the
marker syntax is borrowed; nbgrader itself is not needed)::

    def channel_shuffle_backward(dout, groups):
        ### BEGIN SOLUTION
        N, C, H, W = dout.shape
        return dout.reshape(N, C // groups, groups, H, W).transpose(0, 2, 1, 3, 4).reshape(N, C, H, W)
        ### END SOLUTION

    ### BEGIN HIDDEN TESTS
    assert ...            # extra checks that students do not see
    ### END HIDDEN TESTS

``python -m numpy_shufflenet make-student SRC_DIR DEST_DIR`` (or :func:`make_student_dir`) writes, for every
``*.ipynb`` in ``SRC_DIR``, a student copy of the same name in ``DEST_DIR``:

* each ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region, markers included, becomes a stub at the
  indentation of its ``BEGIN`` marker::

        # YOUR CODE HERE
        raise NotImplementedError("exercise: channel_shuffle_backward")

  The hint names the function the region sits in (the nearest enclosing ``def``), or else the cell's id;
* each ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` region, markers included, is deleted; blank lines
  left at the end of a cell are trimmed, and a code cell left with nothing but blank lines is dropped;
* every code cell loses its outputs and execution count; everything else (markdown, cell ids, tags, notebook
  metadata) is copied unchanged.

Rules for the markers:

* a marker is a line of its own: exactly ``### BEGIN SOLUTION``, ``### END SOLUTION``, ``### BEGIN HIDDEN
  TESTS`` or ``### END HIDDEN TESTS`` after any indentation (trailing spaces allowed);
* markers work in **code cells only**. A region opens and closes in the same cell; regions do not nest.
  A solution region and a hidden-test region may sit one after the other in a cell;
* in a code cell, anything that looks like a broken marker (a ``##``/``###`` comment line mentioning BEGIN or END
  and SOLUTION or HIDDEN, e.g. ``### BEGIN SOLUTIONS`` or ``### end solution``) is an error rather than silently
  left in, because it would leak a solution into the student copy; so is an exact marker line in a markdown or
  raw cell. (Mentioning a marker inside a sentence, e.g. in backquotes, is fine: only whole lines count.)

Every violation raises ``ValueError`` naming the notebook, the cell (index and id) and the line. Nothing is
written to ``DEST_DIR`` unless every notebook of ``SRC_DIR`` converts.

Only :mod:`nbformat` is used. Whether to commit the student copies is the instructor's choice; the tests
(``tests/test_student.py``) generate them and check that no solution text survives, that every stub compiles,
and that a student copy runs up to its first exercise and stops there with ``NotImplementedError``.
"""

import copy
import json
import re
from pathlib import Path

import nbformat

__all__ = [
    "BEGIN_SOLUTION", "END_SOLUTION", "BEGIN_HIDDEN", "END_HIDDEN", "STUB_COMMENT",
    "Region", "find_regions", "student_source", "check_notebook", "make_student_notebook", "strip_outputs",
    "make_student_dir",
]

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
STUB_COMMENT = "# YOUR CODE HERE"

_MARKERS = {BEGIN_SOLUTION: ("begin", "solution"), END_SOLUTION: ("end", "solution"),
            BEGIN_HIDDEN: ("begin", "hidden"), END_HIDDEN: ("end", "hidden")}
_KIND_NAME = {"solution": "SOLUTION", "hidden": "HIDDEN TESTS"}
# A '###' line that talks about a marker but is not one, e.g. '### BEGIN SOLUTIONS', '###END SOLUTION'.
_NEAR_MISS = re.compile(r"^#{2,}.*\b(BEGIN|END)\b.*\b(SOLUTION|HIDDEN)", re.IGNORECASE)
_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+([A-Za-z_]\w*)")


class Region:
    """One marked region of a cell: ``kind`` is ``"solution"`` or ``"hidden"``; ``begin`` and ``end`` are the
    0-based line numbers of its two marker lines; ``indent`` is the ``BEGIN`` marker's indentation."""

    __slots__ = ("kind", "begin", "end", "indent")

    def __init__(self, kind, begin, end, indent):
        self.kind, self.begin, self.end, self.indent = kind, begin, end, indent

    def __repr__(self):
        return f"Region({self.kind!r}, begin={self.begin}, end={self.end}, indent={self.indent!r})"


def _marker(line):
    """``(action, kind)`` when ``line`` is a marker line, else None; ValueError for a malformed marker."""
    text = line.strip()
    if text in _MARKERS:
        return _MARKERS[text]
    if _NEAR_MISS.match(text):
        raise ValueError(f"malformed marker {text!r}: expected exactly one of {', '.join(_MARKERS)} "
                         f"on a line of its own")
    return None


def find_regions(source, where="cell"):
    """The marked regions of one code cell's ``source``, in order.

    Raises ``ValueError`` (prefixed with ``where``) for an ``END`` without its ``BEGIN``, a ``BEGIN`` never
    closed in the cell, one region opened inside another, or a malformed marker.
    """
    regions, open_kind, open_line, open_indent = [], None, None, ""
    for i, line in enumerate(source.splitlines()):
        try:
            found = _marker(line)
        except ValueError as err:
            raise ValueError(f"{where}, line {i + 1}: {err}") from None
        if found is None:
            continue
        action, kind = found
        if action == "begin":
            if open_kind is not None:
                raise ValueError(f"{where}, line {i + 1}: nested markers: '### BEGIN {_KIND_NAME[kind]}' inside "
                                 f"the {_KIND_NAME[open_kind]} region opened at line {open_line + 1} (expected "
                                 f"'### END {_KIND_NAME[open_kind]}' first)")
            open_kind, open_line, open_indent = kind, i, line[:len(line) - len(line.lstrip())]
        else:
            if open_kind is None:
                raise ValueError(f"{where}, line {i + 1}: unbalanced markers: '### END {_KIND_NAME[kind]}' "
                                 f"without a '### BEGIN {_KIND_NAME[kind]}' before it")
            if open_kind != kind:
                raise ValueError(f"{where}, line {i + 1}: unbalanced markers: '### END {_KIND_NAME[kind]}' closes "
                                 f"the {_KIND_NAME[open_kind]} region opened at line {open_line + 1} (expected "
                                 f"'### END {_KIND_NAME[open_kind]}')")
            regions.append(Region(kind, open_line, i, open_indent))
            open_kind = None
    if open_kind is not None:
        raise ValueError(f"{where}, line {open_line + 1}: unbalanced markers: '### BEGIN {_KIND_NAME[open_kind]}' "
                         f"is never closed in this cell (expected '### END {_KIND_NAME[open_kind]}'; a region "
                         f"cannot span cells)")
    return regions


def _hint(lines, region, fallback):
    """The name of the nearest ``def`` enclosing the region, else ``fallback``."""
    for line in reversed(lines[:region.begin]):
        m = _DEF.match(line)
        if m and len(m.group(1)) < len(region.indent):
            return m.group(2)
    return fallback


def student_source(source, where="cell", fallback_hint="exercise"):
    """One code cell's source with its solution regions stubbed and its hidden-test regions removed."""
    lines = source.splitlines()
    regions = find_regions(source, where)
    out, pos = [], 0
    for r in regions:
        out.extend(lines[pos:r.begin])
        if r.kind == "solution":
            message = json.dumps(f"exercise: {_hint(lines, r, fallback_hint)}")
            out += [f"{r.indent}{STUB_COMMENT}", f"{r.indent}raise NotImplementedError({message})"]
        pos = r.end + 1
    out.extend(lines[pos:])
    while regions and out and not out[-1].strip():        # no blank tail where a hidden-test region was
        out.pop()
    return "\n".join(out)


def _cell_label(name, index, cell):
    cell_id = cell.get("id")
    return f"{name}: cell {index}" + (f" (id {cell_id})" if cell_id else "")


def check_notebook(nb, name="notebook"):
    """Check every marker of a notebook; return ``{cell_index: [Region, ...]}`` for the code cells that have some.

    Raises ``ValueError`` naming ``name`` and the cell for any unbalanced, nested or malformed marker, and for a
    marker line in a markdown or raw cell (markers work in code cells only).
    """
    found = {}
    for index, cell in enumerate(nb.cells):
        where = _cell_label(name, index, cell)
        if cell.cell_type == "code":
            regions = find_regions(cell.source, where)
            if regions:
                found[index] = regions
            continue
        for i, line in enumerate(cell.source.splitlines()):
            if line.strip() in _MARKERS:
                raise ValueError(f"{where}, line {i + 1}: marker {line.strip()!r} in a {cell.cell_type} cell: "
                                 f"markers work in code cells only (expected it in a code cell, or inside a "
                                 f"sentence)")
    return found


def strip_outputs(nb):
    """Remove the outputs and execution counts of every code cell, in place; returns ``nb``."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def make_student_notebook(nb, name="notebook"):
    """The student copy of ``nb`` (a new notebook; ``nb`` is not modified). ``name`` labels error messages."""
    check_notebook(nb, name)
    student = copy.deepcopy(nb)
    cells = []
    for index, cell in enumerate(student.cells):
        if cell.cell_type == "code":
            original = cell.source
            cell.source = student_source(original, _cell_label(name, index, cell),
                                         fallback_hint=cell.get("id") or f"cell {index}")
            if cell.source.strip() == "" and original.strip() != "":
                continue                                    # the cell held hidden tests only
        cells.append(cell)
    student.cells = cells
    return strip_outputs(student)


def make_student_dir(src_dir, dest_dir):
    """Write the student copy of every ``*.ipynb`` of ``src_dir`` into ``dest_dir`` (created if needed).

    Returns the list of written paths, sorted. ``ValueError`` when ``src_dir`` is not a directory, when
    ``dest_dir`` is ``src_dir`` (it would overwrite the solutions), or when any notebook has a marker error; in
    every error case nothing is written.
    """
    src, dest = Path(src_dir), Path(dest_dir)
    if not src.is_dir():
        raise ValueError(f"make-student: expected SRC_DIR to be a directory, got {str(src_dir)!r}")
    if dest.exists() and dest.resolve() == src.resolve():
        raise ValueError(f"make-student: DEST_DIR is SRC_DIR ({str(src_dir)!r}); expected another directory "
                         f"(the student copies would overwrite the solutions)")
    converted = []
    for path in sorted(src.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        student = make_student_notebook(nb, path.name)
        nbformat.validate(student)
        converted.append((dest / path.name, student))
    dest.mkdir(parents=True, exist_ok=True)
    for path, student in converted:
        nbformat.write(student, path)
    return [path for path, _ in converted]
