r"""The runner: runs a student's program and calls its functions, and writes back only plain data.

The grader (the trusted process, :mod:`numpy_shufflenet.course.autograde`) writes a job folder and starts this
script in a sandbox (:mod:`numpy_shufflenet.course.sandbox`), with only the job folder's ``out/`` writable::

    python runner.py JOB                              # or: python -m numpy_shufflenet.course.runner JOB

The job folder (the protocol; ``EXERCISE_API.md`` of the course's developers holds the same):

==========================  =======================================================================================
``in/cells.json``           ``[{"label": "cell 7 (double)", "source": "..."}]``: the program, i.e. the code cells
                            of the student copy in order, the solution cells replaced by the student's answers
``in/calls.json``           ``[{"id": "double/0", "function": "double", "args": [...], "kwargs": {...},
                            "return_args": false}]``
``in/arrays/<key>.npy``     the arrays the encoded arguments refer to
``out/results.jsonl``       one JSON object a line, written as each step ends: ``{"cell": label, "error": null |
                            "..."}`` for each cell, then ``{"id": ..., "value": <encoded>, "error": null | "...",
                            "args_after": <encoded> | null, "facts": [["view", 0], ...]}`` for each call, then
                            ``{"done": true}``
``out/arrays/<key>.npy``    the arrays the encoded results refer to
==========================  =======================================================================================

**Encoding** (the same both ways): ``None``, ``bool``, ``int``, ``float`` (``NaN`` and ``Infinity`` as Python's
``json`` writes them) and ``str`` are themselves; a list is a JSON list; a tuple is ``{"__tuple__": [...]}``; a
dict with ``str`` keys is ``{"__dict__": {...}}``; an array of bool, integer or float dtype is ``{"__array__":
key}`` (saved with ``allow_pickle=False``; a subclass of ``np.ndarray`` is saved as its plain data); a NumPy scalar
is ``{"__scalar__": [dtype name, number]}``, so that it comes back of its type. Anything else a function returns
is an error of that call ("not plain data").

``facts`` are what only the process that made the call can see (:func:`facts`): a returned array that is a view
of an argument, a list argument whose arrays were replaced instead of updated in place.

Every cell runs even when one before it raised (as *Run All* with errors allowed); an error is recorded as
``"<ExceptionType>: <message>"``, ``NotImplementedError`` as ``"not done: <message>"``. ``SystemExit`` and
``KeyboardInterrupt`` are errors like any other; a student's code that kills the process ends the run, and the
grader sees which steps were written.

Nothing written here is trusted: the grader reads it with every check (:mod:`numpy_shufflenet.course.jobs`) and
computes every verdict itself. This script imports only the standard library and NumPy (the student's program
imports what it needs), so that it starts fast and runs from a copy outside the package.
"""

import builtins
import json
import os
import sys
import traceback

import numpy as np

MAX_DEPTH = 32               # nesting of lists, tuples and dicts in one value
MAX_ERROR = 2000             # characters of an error message
NOT_DONE = "not done"        # the error of a call that raised NotImplementedError
_SCALARS = {"b": bool, "i": int, "u": int, "f": float}
_SIZES = {"b": (1,), "i": (1, 2, 4, 8), "u": (1, 2, 4, 8), "f": (2, 4, 8)}
_TOO_HARD = getattr(getattr(np, "exceptions", np), "TooHardError")


class NotPlainData(TypeError):
    """A value that cannot be written as plain data (an object, an array of object or complex dtype, ...)."""


def plain_array(value):
    """``value`` (an ``np.ndarray`` or a subclass) as a plain ``np.ndarray`` of a dtype the grader reads."""
    array = np.ndarray.view(value, np.ndarray)           # the data, whatever a subclass says about itself
    dtype = array.dtype
    if dtype.kind not in _SIZES or dtype.itemsize not in _SIZES[dtype.kind] or dtype.fields is not None:
        raise NotPlainData(f"an array of dtype {dtype}, expected bool, integer or float numbers")
    return np.ascontiguousarray(array).astype(dtype.newbyteorder("="), copy=False)


def encode(value, save_array, depth=0):
    """``value`` as JSON-ready data; arrays go through ``save_array(array) -> key``. ``NotPlainData`` otherwise."""
    if depth > MAX_DEPTH:
        raise NotPlainData(f"nested deeper than {MAX_DEPTH} levels")
    if value is None or type(value) in (bool, str):
        return value
    if isinstance(value, bool):
        return bool.__bool__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, np.ndarray):
        return {"__array__": save_array(plain_array(value))}
    if isinstance(value, np.generic):
        dtype = np.dtype(type(value))
        if dtype.kind not in _SIZES or dtype.itemsize not in _SIZES[dtype.kind]:
            raise NotPlainData(f"a NumPy {type(value).__name__}, expected a bool, integer or float number")
        return {"__scalar__": [dtype.name, _SCALARS[dtype.kind](np.asarray(value).item())]}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, save_array, depth + 1) for v in tuple.__iter__(value)]}
    if isinstance(value, list):
        return [encode(v, save_array, depth + 1) for v in list.__iter__(value)]
    if isinstance(value, dict):
        items = list(dict.items(value))
        if not all(type(k) is str for k, _ in items):
            raise NotPlainData("a dict whose keys are not all strings")
        return {"__dict__": {k: encode(v, save_array, depth + 1) for k, v in items}}
    raise NotPlainData(f"a {type(value).__module__}.{type(value).__qualname__} object")


def decode(data, load_array, depth=0):
    """The inverse of :func:`encode` for data the grader wrote (trusted); ``load_array(key) -> array``."""
    if depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(data, list):
        return [decode(v, load_array, depth + 1) for v in data]
    if isinstance(data, dict):
        if set(data) == {"__array__"}:
            return load_array(data["__array__"])
        if set(data) == {"__tuple__"}:
            return tuple(decode(v, load_array, depth + 1) for v in data["__tuple__"])
        if set(data) == {"__dict__"}:
            return {k: decode(v, load_array, depth + 1) for k, v in data["__dict__"].items()}
        if set(data) == {"__scalar__"}:
            name, number = data["__scalar__"]
            return np.dtype(name).type(number)
        raise ValueError(f"unknown encoded object with keys {sorted(data)[:5]}")
    return data


def describe(err):
    """``"<ExceptionType>: <message>"`` of an exception (``"not done: <message>"`` for ``NotImplementedError``),
    cut to :data:`MAX_ERROR` characters."""
    try:
        message = str(err)
    except BaseException:                                    # a message that raises when printed
        message = ""
    if isinstance(err, NotImplementedError):
        text = NOT_DONE + (f": {message}" if message else "")
    else:
        text = f"{type(err).__name__}: {message}" if message else type(err).__name__
    return text if len(text) <= MAX_ERROR else text[:MAX_ERROR - 3] + "..."


def facts(value, args, before):
    """What only this process can see about a call: ``["view", i]`` when a returned array shares memory with
    an array of positional argument ``i``; ``["replaced", i]`` when the list argument ``i`` holds other arrays
    than it was given (``before``: the ids of each list argument's items before the call)."""
    found = []
    returned = list(_arrays(value))
    for i, arg in enumerate(args):
        if any(_shares(r, a) for r in returned for a in _arrays(arg)):
            found.append(["view", i])
        if isinstance(arg, list) and i in before and [id(v) for v in arg] != before[i]:
            found.append(["replaced", i])
    return found


def _arrays(value, depth=0):
    if isinstance(value, np.ndarray):
        yield value
    elif depth < MAX_DEPTH and isinstance(value, (list, tuple)):
        for v in list(value):
            yield from _arrays(v, depth + 1)
    elif depth < MAX_DEPTH and isinstance(value, dict):
        for v in list(value.values()):
            yield from _arrays(v, depth + 1)


def _shares(a, b):
    try:
        return bool(np.shares_memory(a, b, max_work=10**5))
    except _TOO_HARD:                                        # an answer too costly to be exact: the bounds say
        return bool(np.may_share_memory(a, b))


class _Writer:
    """Appends result lines and saves result arrays; opens the files anew each time, so a program that closes
    or replaces file descriptors cannot take the results with it."""

    def __init__(self, out):
        self.results = os.path.join(out, "results.jsonl")
        self.arrays = os.path.join(out, "arrays")
        self.count = 0

    def save_array(self, array):
        key = f"r{self.count}"
        self.count += 1
        with open(os.path.join(self.arrays, key + ".npy"), "wb") as f:
            np.lib.format.write_array(f, array, allow_pickle=False)
        return key

    def write(self, record):
        line = json.dumps(record) + "\n"
        with open(self.results, "a", encoding="utf-8") as f:
            f.write(line)


def _read_job(job):
    def read_json(name):
        with open(os.path.join(job, "in", name), encoding="utf-8") as f:
            return json.load(f)

    def load_array(key):
        return np.load(os.path.join(job, "in", "arrays", key + ".npy"), allow_pickle=False)

    cells = read_json("cells.json")
    calls = []
    for call in read_json("calls.json"):
        kwargs = {key: decode(value, load_array) for key, value in call["kwargs"].items()}
        calls.append(dict(call, args=decode(call["args"], load_array), kwargs=kwargs))
    return cells, calls


def run_cells(cells, namespace, writer):
    """Run every cell in ``namespace``; record each one's error (or None)."""
    for cell in cells:
        error = None
        try:
            exec(compile(cell["source"], cell["label"], "exec"), namespace)
        except BaseException as err:                         # SystemExit, KeyboardInterrupt: errors too
            error = describe(err)
        writer.write({"cell": cell["label"], "error": error})


def run_calls(calls, namespace, writer):
    """Call each function on its arguments; record what it returned (or raised), as plain data."""
    for call in calls:
        record = {"id": call["id"], "value": None, "error": None, "args_after": None, "facts": []}
        fn = namespace.get(call["function"])
        if not callable(fn):
            record["error"] = (f"NameError: name {call['function']!r} is not defined" if fn is None else
                               f"TypeError: {call['function']!r} is a {type(fn).__name__}, not a function")
            writer.write(record)
            continue
        args = call["args"]
        before = {i: [id(v) for v in a] for i, a in enumerate(args) if isinstance(a, list)}
        try:
            value = fn(*args, **call["kwargs"])
        except BaseException as err:
            record["error"] = describe(err)
            value = None
        try:
            record["facts"] = facts(value, args, before)
            record["value"] = encode(value, writer.save_array)
            if call.get("return_args"):
                record["args_after"] = encode(tuple(call["args"]), writer.save_array)
        except BaseException as err:
            record["value"], record["args_after"], record["facts"] = None, None, []
            what = describe(err).removeprefix("NotPlainData: ")
            record["error"] = record["error"] or f"the result is not plain data: {what}"
        writer.write(record)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python runner.py JOB", file=sys.stderr)
        return 2
    job = argv[0]
    if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]                                      # run as a file: not the course's folder on the path
    cells, calls = _read_job(job)
    writer = _Writer(os.path.join(job, "out"))
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        run_cells(cells, namespace, writer)
        run_calls(calls, namespace, writer)
        writer.write({"done": True})
    except BaseException:                                    # the runner itself failed (a full disk, say)
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
