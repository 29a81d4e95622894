r"""The grader's side of the runner protocol: write a job folder, read back what the runner wrote, as data only.

:func:`write_job` writes ``in/cells.json``, ``in/calls.json`` and ``in/arrays/`` (the protocol is described in
:mod:`numpy_shufflenet.course.runner`); :func:`read_results` reads ``out/results.jsonl`` and ``out/arrays/``,
which the student's code could have written anything into, and trusts none of it:

* files are opened relative to the job folder's own descriptor, never following a symbolic link
  (``O_NOFOLLOW``), and must be regular files (a FIFO, a device or a folder in their place is refused);
* ``results.jsonl`` may hold at most :data:`MAX_RESULTS_BYTES`; each line must be a JSON object of a known
  kind, naming a cell or a call of this job, with an error that is ``null`` or a string;
* an array is read only after its ``.npy`` header says: version 1.0 or 2.0, a dtype of bool, integer or float
  numbers (no object, structured or complex dtype), a shape whose size times the item size is at most
  :data:`MAX_ARRAY_BYTES`, and a file of exactly that many bytes after the header; then it is read with
  ``allow_pickle`` never set. All the arrays of one job together may hold :data:`MAX_TOTAL_BYTES`;
* whatever is refused becomes the error of the call it belongs to; files the grader did not ask for are never
  opened.

Nothing here runs student code or imports what the student's program imported.
"""

import dataclasses
import errno
import json
import math
import os
import re
import stat

import numpy as np

from .runner import MAX_DEPTH, encode

__all__ = ["MAX_RESULTS_BYTES", "MAX_ARRAY_BYTES", "MAX_TOTAL_BYTES", "Call", "Results", "write_job",
           "read_results"]

MAX_RESULTS_BYTES = 16 * 2**20       # out/results.jsonl
MAX_ARRAY_BYTES = 64 * 2**20         # one array of out/arrays
MAX_TOTAL_BYTES = 256 * 2**20        # every array of one job
MAX_ERROR = 2000                     # characters of an error kept
_KEY = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_SIZES = {"b": (1,), "i": (1, 2, 4, 8), "u": (1, 2, 4, 8), "f": (2, 4, 8)}
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_OPEN_DIR = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)


@dataclasses.dataclass(frozen=True)
class Call:
    """One call the runner is asked to make: ``id`` names it in the results."""

    id: str
    function: str
    args: tuple
    kwargs: dict
    return_args: bool = False


@dataclasses.dataclass
class Results:
    """What was read back: ``cells`` maps each cell label the runner reported to its error (or None);
    ``calls`` maps each call id to ``(value, error, args_after, facts)``; ``done`` is True when the runner said it
    finished; ``problems`` lists what was refused (for the grader's log and the feedback)."""

    cells: dict = dataclasses.field(default_factory=dict)
    calls: dict = dataclasses.field(default_factory=dict)
    done: bool = False
    problems: list = dataclasses.field(default_factory=list)


# ----------------------------------------------------------------------------------------------------------------
# writing a job (trusted data)
# ----------------------------------------------------------------------------------------------------------------
def write_job(job, cells, calls):
    """Write the job folder ``job``: ``cells`` is a list of ``{"label", "source"}``, ``calls`` a list of
    :class:`Call`. Creates ``in/`` (readable by all, for a runner under another user id) and an empty ``out/``
    with ``out/arrays/``."""
    os.makedirs(os.path.join(job, "in", "arrays"))
    os.makedirs(os.path.join(job, "out", "arrays"))
    count = [0]

    def save_array(array):
        key = f"a{count[0]}"
        count[0] += 1
        with open(os.path.join(job, "in", "arrays", key + ".npy"), "wb") as f:
            np.lib.format.write_array(f, array, allow_pickle=False)
        return key

    encoded = [{"id": c.id, "function": c.function, "args": encode(tuple(c.args), save_array)["__tuple__"],
                "kwargs": encode(dict(c.kwargs), save_array)["__dict__"], "return_args": bool(c.return_args)}
               for c in calls]
    for name, data in (("cells.json", cells), ("calls.json", encoded)):
        with open(os.path.join(job, "in", name), "w", encoding="utf-8") as f:
            json.dump(data, f)
    for folder, _, files in os.walk(os.path.join(job, "in")):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)


# ----------------------------------------------------------------------------------------------------------------
# reading the results (untrusted data)
# ----------------------------------------------------------------------------------------------------------------
class Refused(ValueError):
    """Something the runner wrote that the grader does not accept."""


def _open_regular(name, dir_fd, limit, what):
    """A read-only file object of the regular file ``name`` in ``dir_fd``, at most ``limit`` bytes."""
    try:
        fd = os.open(name, _OPEN_FILE, dir_fd=dir_fd)
    except FileNotFoundError:
        raise Refused(f"{what} was not written") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise Refused(f"{what} is a symbolic link") from None
        raise Refused(f"{what} cannot be opened ({err.strerror})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise Refused(f"{what} is not a regular file")
    if info.st_size > limit:
        os.close(fd)
        raise Refused(f"{what} is {info.st_size:,} bytes, more than the {limit:,} allowed")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb"), info.st_size


def _open_dir(name, dir_fd, what):
    """A descriptor of the folder ``name`` in ``dir_fd`` (a real folder, not a link to one)."""
    try:
        return os.open(name, _OPEN_DIR, dir_fd=dir_fd)
    except OSError as err:
        try:
            link = stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
        except OSError:
            link = False
        if link or err.errno == errno.ELOOP:
            raise Refused(f"{what} is a symbolic link") from None
        reason = "is not a folder" if err.errno == errno.ENOTDIR else f"cannot be opened ({err.strerror})"
        raise Refused(f"{what} {reason}") from None


def read_npy_header(f, size, limit):
    """``(shape, fortran_order, dtype)`` of the ``.npy`` file ``f`` of ``size`` bytes, checked against the rules
    of this module before any data is read; ``Refused`` otherwise."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise Refused(f"an .npy file of version {version}, expected 1.0 or 2.0")
    except Refused:
        raise
    except Exception as err:                                 # numpy raises ValueError, EOFError, ... for bad headers
        raise Refused(f"not a valid .npy file ({type(err).__name__}: {str(err)[:200]})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in _SIZES \
            or dtype.itemsize not in _SIZES[dtype.kind]:
        raise Refused(f"an array of dtype {dtype}, expected bool, integer or float numbers")
    if not (isinstance(shape, tuple) and len(shape) <= 32
            and all(type(n) is int and n >= 0 for n in shape)):
        raise Refused(f"an array of shape {shape!r}")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > limit:
        raise Refused(f"an array of {nbytes:,} bytes, more than the {limit:,} allowed")
    if size - f.tell() != nbytes:
        raise Refused(f"an .npy file whose data is {size - f.tell():,} bytes, but its header says {nbytes:,}")
    return shape, fortran, dtype


class _ArrayReader:
    """Loads the arrays of ``out/arrays`` that the results refer to, each once, within the job's budget."""

    def __init__(self, arrays_fd):
        self.fd = arrays_fd
        self.loaded = {}
        self.total = 0

    def __call__(self, key):
        if not isinstance(key, str) or not _KEY.match(key):
            raise Refused(f"an array key {str(key)[:40]!r}, expected letters, digits and _")
        if key in self.loaded:
            return self.loaded[key]
        if self.fd is None:
            raise Refused("out/arrays is missing")
        limit = min(MAX_ARRAY_BYTES, MAX_TOTAL_BYTES - self.total)
        f, size = _open_regular(key + ".npy", self.fd, limit + 2**16, f"out/arrays/{key}.npy")
        with f:
            shape, fortran, dtype = read_npy_header(f, size, limit)
            array = np.empty(math.prod(shape), dtype=dtype)
            if array.nbytes and f.readinto(memoryview(array).cast("B")) != array.nbytes:
                raise Refused(f"out/arrays/{key}.npy is shorter than its header says")
        array = array.reshape(shape, order="F" if fortran else "C").astype(dtype.newbyteorder("="), copy=False)
        self.total += array.nbytes
        self.loaded[key] = array
        return array


def _decode(data, load_array, depth=0):
    """Encoded data (see :mod:`~numpy_shufflenet.course.runner`) back to values; ``Refused`` for anything
    else."""
    if depth > MAX_DEPTH:
        raise Refused(f"a value nested deeper than {MAX_DEPTH} levels")
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is list:
        return [_decode(v, load_array, depth + 1) for v in data]
    if type(data) is dict and len(data) == 1:
        (tag, inner), = data.items()
        if tag == "__array__":
            return load_array(inner)
        if tag == "__tuple__" and type(inner) is list:
            return tuple(_decode(v, load_array, depth + 1) for v in inner)
        if tag == "__dict__" and type(inner) is dict:
            return {k: _decode(v, load_array, depth + 1) for k, v in inner.items()}
        if tag == "__scalar__":
            return _scalar(inner)
    raise Refused("an encoded value of an unknown kind")


def _scalar(data):
    """A NumPy scalar from ``[dtype name, number]``, of a bool, integer or float dtype."""
    if type(data) is not list or len(data) != 2 or type(data[0]) is not str or type(data[1]) not in (bool, int,
                                                                                                      float):
        raise Refused("an encoded scalar that is not [dtype name, number]")
    try:
        dtype = np.dtype(data[0])
    except TypeError:
        raise Refused(f"a scalar of unknown dtype {data[0][:20]!r}") from None
    if dtype.name != data[0] or dtype.kind not in _SIZES or dtype.itemsize not in _SIZES[dtype.kind]:
        raise Refused(f"a scalar of dtype {data[0][:20]!r}, expected bool, integer or float numbers")
    try:
        return dtype.type(data[1])
    except (OverflowError, ValueError, TypeError):
        raise Refused(f"a scalar {data[1]!r} that is not a {dtype.name}") from None


def _facts(data):
    """``(("view", 0), ...)`` from the runner's ``[["view", 0], ...]``."""
    if type(data) is not list or len(data) > 64 or not all(
            type(f) is list and len(f) == 2 and f[0] in ("view", "replaced") and type(f[1]) is int and 0 <= f[1] < 256
            for f in data):
        raise Refused("facts that are not a list of ['view' or 'replaced', argument index]")
    return tuple((kind, i) for kind, i in data)


def _error(value):
    if value is None:
        return None
    if not isinstance(value, str):
        raise Refused("an error that is not a string")
    return value if len(value) <= MAX_ERROR else value[:MAX_ERROR - 3] + "..."


def read_results(job, cell_labels, call_ids):
    """Read what the runner wrote into ``job/out``; a :class:`Results` with only the cells of ``cell_labels``
    and the calls of ``call_ids`` (the first line for each wins). Never raises for anything the runner wrote."""
    results = Results()
    cell_labels, call_ids = set(cell_labels), set(call_ids)
    job_fd = os.open(job, _OPEN_DIR)
    out_fd = arrays_fd = None
    try:
        try:
            out_fd = _open_dir("out", job_fd, "out")
            f, _ = _open_regular("results.jsonl", out_fd, MAX_RESULTS_BYTES, "out/results.jsonl")
        except Refused as err:
            results.problems.append(str(err))
            return results
        with f:
            lines = f.read(MAX_RESULTS_BYTES + 1).split(b"\n")
        try:
            arrays_fd = _open_dir("arrays", out_fd, "out/arrays")
        except Refused as err:
            results.problems.append(str(err))
        load_array = _ArrayReader(arrays_fd)
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                _read_line(line, results, cell_labels, call_ids, load_array)
            except Refused as err:
                results.problems.append(f"results.jsonl line {number}: {err}")
        return results
    finally:
        for fd in (arrays_fd, out_fd, job_fd):
            if fd is not None:
                os.close(fd)


def _read_line(line, results, cell_labels, call_ids, load_array):
    try:
        record = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Refused("not a line of JSON") from None
    if not isinstance(record, dict):
        raise Refused("not a JSON object")
    keys = set(record)
    if keys == {"done"} and record["done"] is True:
        results.done = True
    elif keys == {"cell", "error"}:
        if record["cell"] not in cell_labels:
            raise Refused("a cell that is not in the program")
        results.cells.setdefault(record["cell"], _error(record["error"]))
    elif keys in ({"id", "value", "error", "args_after"}, {"id", "value", "error", "args_after", "facts"}):
        call_id = record["id"]
        if call_id not in call_ids:
            raise Refused("a call that was not asked for")
        if call_id in results.calls:
            return
        error = _error(record["error"])
        try:
            value = _decode(record["value"], load_array)
            after = record["args_after"]
            after = None if after is None else _decode(after, load_array)
            if after is not None and type(after) is not tuple:
                raise Refused("arguments after the call that are not a tuple")
            facts = _facts(record.get("facts", []))
        except Refused as err:
            value, after, facts = None, None, ()
            error = f"the result was refused: {err}"
        results.calls[call_id] = (value, error, after, facts)
    else:
        raise Refused(f"an object with keys {sorted(keys)[:6]}, expected a cell, a call or done")
