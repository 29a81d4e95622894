"""The runner protocol (:mod:`numpy_shufflenet.course.runner`, :mod:`numpy_shufflenet.course.jobs`), without a
sandbox: the runner's encoding of what a function returns, and the grader's reading of a job folder that the
student's code could have filled with anything. Every refusal is checked on a file written as an attacker would
write it; nothing is ever unpickled or followed through a link."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from numpy_shufflenet.course import jobs, runner

RUNNER = runner.__file__


def run_job(tmp_path, cells, calls, timeout=120):
    """Write a job, run the runner on it as a plain process, and read the results back."""
    job = tmp_path / "job"
    jobs.write_job(job, cells, calls)
    proc = subprocess.run([sys.executable, RUNNER, str(job)], capture_output=True, text=True, timeout=timeout,
                          cwd=tmp_path)
    return proc, jobs.read_results(job, [c["label"] for c in cells], [c.id for c in calls])


def cell(label, source):
    return {"label": label, "source": source}


# ----------------------------------------------------------------------------------------------------------------
# the runner
# ----------------------------------------------------------------------------------------------------------------
def test_runner_runs_every_cell_and_call_and_writes_plain_data(tmp_path):
    cells = [cell("cell 0", "import numpy as np\ndef double(x):\n    return 2 * x\n"),
             cell("cell 1", "raise ValueError('a broken cell does not stop the next')"),
             cell("cell 2", "def step(params, lr):\n    for p in params:\n        p -= lr\n"
                            "def stub():\n    raise NotImplementedError('exercise: stub')\n"
                            "def pair():\n    return np.float32(1.5), [np.int64(3), True], {'k': None}\n"
                            "def bye():\n    import sys\n    sys.exit(3)\n"
                            "def view(x, n):\n    return x[n - 1:]\n"
                            "def swap(params):\n    params[0] = params[0] + 1\n")]
    calls = [jobs.Call("d", "double", (np.arange(3.0),), {}),
             jobs.Call("s", "step", ([np.ones(2), np.zeros((1, 2))],), {"lr": 0.5}, return_args=True),
             jobs.Call("n", "stub", (), {}), jobs.Call("p", "pair", (), {}), jobs.Call("b", "bye", (), {}),
             jobs.Call("m", "missing", (), {}), jobs.Call("v", "view", (np.arange(3), np.int8(2)), {}),
             jobs.Call("w", "swap", ([np.ones(2)],), {}, return_args=True)]
    proc, results = run_job(tmp_path, cells, calls)
    assert proc.returncode == 0, proc.stderr
    assert results.done and results.problems == []
    assert results.cells == {"cell 0": None, "cell 1": "ValueError: a broken cell does not stop the next",
                             "cell 2": None}
    value, error, after, facts = results.calls["d"]
    assert error is None and after is None and facts == () and value.dtype == np.float64
    assert value.tolist() == [0, 2, 4]
    value, error, (params,), facts = results.calls["s"]
    assert value is None and error is None and facts == ()
    assert [p.tolist() for p in params] == [[0.5, 0.5], [[-0.5, -0.5]]]          # the arguments after the call
    assert results.calls["n"] == (None, "not done: exercise: stub", None, ())
    value, *rest = results.calls["p"]
    assert value == (1.5, [3, True], {"k": None}) and rest == [None, None, ()]
    assert [type(v) for v in (value[0], value[1][0], value[1][1])] == [np.float32, np.int64, bool]  # types kept
    assert results.calls["b"] == (None, "SystemExit: 3", None, ())
    assert results.calls["m"] == (None, "NameError: name 'missing' is not defined", None, ())
    assert results.calls["v"][3] == (("view", 0),)                            # seen where the call was made
    assert results.calls["w"][3] == (("replaced", 0),)


@pytest.mark.parametrize("returned, message", [
    ("object()", "builtins.object object"),
    ("np.array([1, 'a'], dtype=object)", "dtype object"),
    ("np.ones(2, dtype=complex)", "dtype complex128"),
    ("{1: 2}", "keys are not all strings"),
    ("lambda: 0", "function object"),
])
def test_runner_refuses_to_write_what_is_not_plain_data(tmp_path, returned, message):
    proc, results = run_job(tmp_path, [cell("c", f"import numpy as np\ndef f():\n    return {returned}")],
                            [jobs.Call("f", "f", (), {})])
    value, error, _, _ = results.calls["f"]
    assert value is None and error.startswith("the result is not plain data") and message in error, error


def test_an_array_subclass_is_written_as_its_plain_data(tmp_path):
    source = ("import numpy as np\nclass Liar(np.ndarray):\n    def __eq__(self, other):\n        return True\n"
              "    def __array__(self, *a, **k):\n        return np.full(self.shape, 42.0)\n"
              "    def tolist(self):\n        return [0, 2, 4]\n"
              "def f():\n    return np.zeros(3).view(Liar)\n")
    _, results = run_job(tmp_path, [cell("c", source)], [jobs.Call("f", "f", (), {})])
    value, error, _, _ = results.calls["f"]
    assert error is None and type(value) is np.ndarray and value.tolist() == [0, 0, 0]


def test_a_runner_killed_midway_leaves_the_steps_before(tmp_path):
    cells = [cell("a", "def f():\n    return 1\n"), cell("b", "import os\nos._exit(7)"), cell("c", "x = 1")]
    proc, results = run_job(tmp_path, cells, [jobs.Call("f", "f", (), {})])
    assert proc.returncode == 7
    assert results.cells == {"a": None} and results.calls == {} and not results.done


# ----------------------------------------------------------------------------------------------------------------
# the grader reads untrusted files
# ----------------------------------------------------------------------------------------------------------------
def forged(tmp_path, lines, arrays=()):
    """A job folder whose out/ holds ``lines`` (JSON-encoded unless bytes) and ``arrays`` ({name: bytes or a
    callable making the file}), as a student's code could have written it; the results read back."""
    job = tmp_path / "job"
    jobs.write_job(job, [cell("c", "")], [jobs.Call("f/0", "f", (), {}), jobs.Call("f/1", "f", (), {})])
    for name, content in dict(arrays).items():
        path = job / "out" / "arrays" / name
        content(path) if callable(content) else path.write_bytes(content)
    text = b"".join((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines)
    (job / "out" / "results.jsonl").write_bytes(text)
    return jobs.read_results(job, ["c"], ["f/0", "f/1"])


def npy(array, **kwargs):
    def write(path):
        np.save(path, array, **kwargs)
    return write


def header(shape, data=b"", descr="<f8"):
    """The bytes of an .npy file declaring ``shape`` of ``descr``, followed by ``data``."""
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False, "shape": shape})
    return f.getvalue() + data


def call(key, call_id="f/0"):
    return {"id": call_id, "value": {"__array__": key}, "error": None, "args_after": None}


@pytest.mark.parametrize("arrays, reason", [
    ({"k.npy": npy(np.array([object()]), allow_pickle=True)}, "dtype object"),
    ({"k.npy": npy(np.zeros(2, dtype=[("a", "f8")]))}, "expected bool, integer or float"),
    ({"k.npy": npy(np.zeros(2, dtype=complex))}, "dtype complex128"),
    ({"k.npy": npy(np.array(["text"]))}, "dtype <U4"),
    ({"k.npy": header((10**11,))}, "more than the"),                    # 800 GB declared: never allocated
    ({"k.npy": header((4,), b"\0" * 8)}, "its header says 32"),        # cut short
    ({"k.npy": header((1,), b"\0" * 8 + b"more")}, "its header says 8"),  # longer than it says
    ({"k.npy": b"not an npy file at all"}, "not a valid .npy file"),
    ({"k.npy": lambda p: os.symlink("/etc/passwd", p)}, "symbolic link"),
    ({"k.npy": lambda p: os.mkfifo(p)}, "not a regular file"),
    ({"k.npy": lambda p: os.mkdir(p)}, "not a regular file"),
    ({}, "was not written"),
])
def test_arrays_are_checked_before_they_are_loaded(tmp_path, arrays, reason):
    results = forged(tmp_path, [call("k")], arrays)
    value, error, _, _ = results.calls["f/0"]
    assert value is None and error.startswith("the result was refused") and reason in error, error


def test_a_good_array_is_read_back_exactly(tmp_path):
    data = np.arange(12, dtype=">i4").reshape(3, 4)          # big-endian and Fortran order: still the same numbers
    results = forged(tmp_path, [call("k")], {"k.npy": npy(np.asfortranarray(data))})
    value, error, _, _ = results.calls["f/0"]
    assert error is None and value.dtype == np.int32 and value.dtype.isnative and np.array_equal(value, data)


def test_results_lines_are_refused_one_by_one(tmp_path):
    results = forged(tmp_path, [
        b"not json", [1, 2], {"id": "other/0", "value": 1, "error": None, "args_after": None},
        {"cell": "not a cell of the program", "error": None}, {"id": "f/0", "value": 1, "error": 5,
                                                               "args_after": None},
        {"id": "f/0", "value": {"__class__": "os.system"}, "error": None, "args_after": None},
        {"id": "f/1", "value": [1, {"__tuple__": [2.5, "x"]}], "error": None, "args_after": None},
        {"id": "f/1", "value": "a second line for the same call is ignored", "error": None, "args_after": None},
        {"done": "yes"}])
    assert results.calls["f/0"] == (None, "the result was refused: an encoded value of an unknown kind", None, ())
    assert results.calls["f/1"] == ([1, (2.5, "x")], None, None, ())
    assert not results.done
    assert [p.split(": ", 1)[1] for p in results.problems] == [
        "not a line of JSON", "not a JSON object", "a call that was not asked for", "a cell that is not in the program",
        "an error that is not a string", "an object with keys ['done'], expected a cell, a call or done"]


@pytest.mark.parametrize("value, facts, reason", [
    ({"__scalar__": ["object", 1]}, [], "a scalar of dtype 'object'"),
    ({"__scalar__": ["complex128", 1.0]}, [], "a scalar of dtype 'complex128'"),
    ({"__scalar__": ["int8", 1000]}, [], "a scalar 1000 that is not a int8"),
    ({"__scalar__": ["no such dtype", 1]}, [], "a scalar of unknown dtype"),
    ({"__scalar__": ["float64"]}, [], "an encoded scalar that is not [dtype name, number]"),
    (1, [["view", -1]], "facts that are not a list"),
    (1, [["pickle", 0]], "facts that are not a list"),
    (1, "view", "facts that are not a list"),
])
def test_scalars_and_facts_are_checked(tmp_path, value, facts, reason):
    results = forged(tmp_path, [{"id": "f/0", "value": value, "error": None, "args_after": None, "facts": facts}])
    assert results.calls["f/0"] == (None, f"the result was refused: {reason}", None, ()) or \
        reason in results.calls["f/0"][1], results.calls["f/0"]


def test_results_files_that_are_links_or_too_large_are_refused(tmp_path):
    job = tmp_path / "job"
    jobs.write_job(job, [], [jobs.Call("f/0", "f", (), {})])
    os.symlink(tmp_path / "elsewhere.jsonl", job / "out" / "results.jsonl")
    assert jobs.read_results(job, [], ["f/0"]).problems == ["out/results.jsonl is a symbolic link"]
    os.unlink(job / "out" / "results.jsonl")
    with open(job / "out" / "results.jsonl", "wb") as f:
        f.truncate(jobs.MAX_RESULTS_BYTES + 1)
    assert "more than the" in jobs.read_results(job, [], ["f/0"]).problems[0]
    os.unlink(job / "out" / "results.jsonl")
    (job / "out" / "arrays").rmdir()
    os.rename(job / "out", job / "real_out")
    os.symlink(job / "real_out", job / "out")                 # the folder itself swapped for a link
    assert jobs.read_results(job, [], ["f/0"]).problems == ["out is a symbolic link"]


def test_the_arrays_of_one_job_share_a_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "MAX_TOTAL_BYTES", 3 * 800)
    lines = [call(f"k{i}", f"f/{i % 2}") for i in range(2)]
    arrays = {f"k{i}.npy": npy(np.zeros(200)) for i in range(2)}          # 1600 bytes each
    results = forged(tmp_path, lines, arrays)
    assert results.calls["f/0"][1] is None
    assert "more than the 800 allowed" in results.calls["f/1"][1]
