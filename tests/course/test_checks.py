"""The exercise catalogue and its driver (:mod:`numpy_shufflenet.course.exercise`, ``course.check_<name>``).

* every catalogued mistake, run through its exercise's check, fails with its own diagnosis, and every reference
  passes, for several seeds;
* the solutions written in the instructor notebooks pass their checks;
* the universal checks name what they find (inputs modified, dtype, views, types and shapes, booleans);
* the wrong answers of issue 20 are caught and named, in-process and from data alone;
* a stub raises ``ExerciseNotDone`` (no environment variable), a right answer prints one line and returns None;
* cases are plain data, the same for the same seed, and vary every argument.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from numpy_shufflenet import course
from numpy_shufflenet.course.exercise import (CheckFailed, ExerciseNotDone, Outcome, call, check, run)
from numpy_shufflenet.course.exercises import CATALOGUE, exercises_of
from numpy_shufflenet.course.exercises import nb09

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
FUNCTIONS = [ex for ex in CATALOGUE.values() if ex.kind == "function"]
MISTAKES = [(ex, m) for ex in FUNCTIONS for m in ex.mistakes]
QUICK = [ex for ex in FUNCTIONS if ex.name != "train_on_your_layers"]     # the training case is a whole run


def verdict(exercise, fn, seed=0):
    cases = exercise.cases(seed)
    return exercise.judge(cases, run(exercise, fn, cases))


# ----------------------------------------------------------------------------------------------------------------
# the catalogue against itself
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("exercise, mistake", MISTAKES, ids=[f"{e.name}-{m.name}" for e, m in MISTAKES])
def test_every_catalogued_mistake_fails_with_its_own_diagnosis(exercise, mistake):
    if exercise.requires is not None:                     # the required unit right: the training's own part
        got = _judge_own_part(exercise, mistake.wrong)
    else:
        got = verdict(exercise, mistake.wrong)
    assert got.status in ("failed", "error") and got.points == 0, got
    assert f"Diagnosis: {mistake.name}" in got.message, got.message


def _judge_own_part(exercise, wrong):
    """The training exercise with its required unit answered by the reference."""
    cases = exercise.cases(0)
    outcomes = [call(exercise.requires.reference if c.function == exercise.requires.function else wrong, c)
                for c in cases]
    return exercise.judge(cases, outcomes)


@pytest.mark.parametrize("exercise", QUICK, ids=[e.name for e in QUICK])
@pytest.mark.parametrize("seed", [0, 1, 2, 12345])
def test_the_reference_passes(exercise, seed):
    got = verdict(exercise, exercise.reference, seed)
    assert (got.status, got.points) == ("passed", exercise.points), got.message


@pytest.mark.parametrize("exercise", QUICK, ids=[e.name for e in QUICK])
def test_cases_are_plain_data_the_same_for_a_seed_and_vary_every_argument(exercise):
    def plain(v):
        if isinstance(v, np.ndarray):
            return v.dtype.kind in "biuf"
        if isinstance(v, (list, tuple)):
            return all(plain(x) for x in v)
        if isinstance(v, dict):
            return all(isinstance(k, str) and plain(x) for k, x in v.items())
        return v is None or isinstance(v, (bool, int, float, str))

    first, again, other = exercise.cases(0), exercise.cases(0), exercise.cases(1)
    assert all(plain(c.args) and plain(c.kwargs) and c.return_args for c in first)
    assert all(c.function == exercise.function for c in first)
    assert [c.label for c in first] == [c.label for c in again]
    assert all(np.array_equal(a, b) for c, d in zip(first, again) for a, b in zip(c.args, d.args)
               if isinstance(a, np.ndarray))
    assert [c.label for c in first] != [c.label for c in other]
    many = [c for seed in range(6) for c in exercise.cases(seed)]
    for i, name in enumerate(exercise.args):
        values = {repr(c.args[i]) if not isinstance(c.args[i], np.ndarray) else c.args[i].shape for c in many}
        assert len(values) > 1, f"{exercise.name}: argument {name} never varies"


def test_the_catalogue_has_36_or_more_exercises_in_the_course_notebooks():
    notebooks = {ex.notebook for ex in CATALOGUE.values()}
    assert len(CATALOGUE) >= 36 and len(notebooks) >= 7
    assert {p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")} >= notebooks
    written = [ex for ex in CATALOGUE.values() if ex.kind == "written"]
    assert len(written) >= 7
    assert all(ex.cases(0) == [] and ex.judge([], []).status == "manual" for ex in written)
    assert [ex.name for ex in exercises_of("02_channel_shuffle_and_information_flow")][:2] == [
        "shuffled_order", "channel_shuffle_forward"]


# ----------------------------------------------------------------------------------------------------------------
# the notebooks' own solutions
# ----------------------------------------------------------------------------------------------------------------
def _solutions(stem):
    """The solution cells of one instructor notebook, run in order in one namespace."""
    nb = json.loads((NOTEBOOK_DIR / f"{stem}.ipynb").read_text())
    namespace = {"np": np}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and cell["metadata"].get("nbgrader", {}).get("solution"):
            exec(compile("".join(cell["source"]), stem, "exec"), namespace)
    return namespace


SOLVED = [ex for ex in QUICK if ex.name != "your_layers"]


@pytest.mark.parametrize("exercise", SOLVED, ids=[e.name for e in SOLVED])
def test_the_notebook_solution_passes_its_check(exercise, capsys):
    fn = _solutions(exercise.notebook)[exercise.function]
    assert check(exercise, fn) is None
    assert capsys.readouterr().out.strip() == f"{exercise.name}: right in all {2 * exercise.n_cases} cases."


def test_the_notebook_layers_pass_the_unit_check():
    layers = _solutions("09_train_on_your_own_layers")
    got = verdict(nb09.YOUR_LAYERS, lambda *a: nb09._unit_run(*a, functions=layers), seed=3)
    assert got.status == "passed", got.message


# ----------------------------------------------------------------------------------------------------------------
# what a check cell does
# ----------------------------------------------------------------------------------------------------------------
def test_a_stub_raises_not_done_in_its_check_cell_without_any_environment_variable(monkeypatch):
    monkeypatch.delenv("NUMPY_SHUFFLENET_GRADING", raising=False)

    def channel_shuffle_backward(dout, groups):
        raise NotImplementedError("exercise: channel_shuffle_backward")

    with pytest.raises(ExerciseNotDone, match="channel_shuffle_backward: not done yet") as raised:
        course.check_channel_shuffle_backward(channel_shuffle_backward)
    assert isinstance(raised.value, NotImplementedError)           # graders that look for the stub's error
    assert raised.value._render_traceback_() == [f"ExerciseNotDone: {raised.value}"]   # no traceback shown


def test_a_check_that_needs_an_earlier_exercise_says_which():
    def conv_params(c_in, c_out, kernel_size, groups=1):
        raise NotImplementedError("exercise: conv_params")

    def blog_numbers(c, m, g):
        return conv_params(c, c, 3), 0, 0

    with pytest.raises(ExerciseNotDone, match=r"\(it uses conv_params\): conv_params still raises"):
        course.check_blog_numbers(blog_numbers)


def test_a_wrong_answer_raises_the_diagnosis_and_how_to_repeat_it():
    def channel_shuffle_forward(x, groups):
        N, C, H, W = x.shape
        return x.reshape(N, C // groups, groups, H, W).transpose(0, 2, 1, 3, 4).reshape(N, C, H, W)

    with pytest.raises(CheckFailed) as raised:
        course.check_channel_shuffle_forward(channel_shuffle_forward, seed=5)
    text = str(raised.value)
    assert "Diagnosis: reshaped to (C // groups, groups) instead of (groups, C // groups)" in text
    assert "seeds 5" in text and "course.check_channel_shuffle_forward(fn, seed=...)" in text
    assert isinstance(raised.value, AssertionError)


def test_an_exception_is_a_failed_case_named_by_its_type():
    def broken(x, groups):
        if groups == 1:
            raise ValueError("cannot reshape")
        return course.CATALOGUE["channel_shuffle_forward"].reference(x, groups)

    got = verdict(CATALOGUE["channel_shuffle_forward"], broken)
    assert got.status == "failed" and "raised ValueError" in got.message and "groups=1" in got.message


def test_a_value_wrong_in_no_catalogued_way_is_described_from_the_data():
    exercise = CATALOGUE["depthwise_conv_forward"]

    def slightly_off_with_stride_2(x, w, stride=1):
        out = exercise.reference(x, w, stride)
        return out * 1.01 if stride == 2 else out

    got = verdict(exercise, slightly_off_with_stride_2)
    assert "Diagnosis" not in got.message and "hard-coded" not in got.message
    assert "What is wrong: out:" in got.message and "entries wrong, largest difference" in got.message
    assert "Wrong in every case with stride=2, right in the others." in got.message


# ----------------------------------------------------------------------------------------------------------------
# the universal checks, and the wrong answers of issue 20
# ----------------------------------------------------------------------------------------------------------------
def _shuffle_into_x(x, groups):
    x[...] = course.CATALOGUE["channel_shuffle_forward"].reference(x.copy(), groups)
    return x


def _bn_train_into_x(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5):
    ref = course.CATALOGUE["batchnorm_train_forward"].reference
    x[...] = ref(x.copy(), gamma, beta, running_mean, running_var, momentum, eps)
    return x


def _bn_eval_into_x(x, gamma, beta, running_mean, running_var, eps=1e-5):
    x -= running_mean[None, :, None, None]
    x /= np.sqrt(running_var[None, :, None, None] + eps)
    x *= gamma[None, :, None, None]
    x += beta[None, :, None, None]
    return x


def _stride2_relu_into_branch(x, branch):
    ref = course.CATALOGUE["stride2_unit_forward"].reference(x, branch)
    np.maximum(branch, 0, out=branch)
    return ref


def _depthwise_float64(x, w, stride=1):
    return course.CATALOGUE["depthwise_conv_forward"].reference(x.astype(np.float64), w.astype(np.float64), stride)


def _connectivity_counts(C, g, shuffle):
    return course.CATALOGUE["stacked_connectivity"].reference(C, g, shuffle).astype(np.int64)


ISSUE_WRONG_ANSWERS = [
    ("channel_shuffle_forward", _shuffle_into_x, "modified its input x in place"),
    ("batchnorm_train_forward", _bn_train_into_x, "modified its input x in place"),
    ("batchnorm_eval_forward", _bn_eval_into_x, "modified its input x in place"),
    ("stride2_unit_forward", _stride2_relu_into_branch, "modified its input branch in place"),
    ("depthwise_conv_forward", _depthwise_float64, "returned float64 for float32 input"),
    ("blog_numbers", lambda c, m, g: (589824, 73728, 69632), "the blog's numbers typed in: c, m and g ignored"),
    ("unit_cost", lambda c, m, g, h, w: (2 * c * (c // 4) // g + 9 * (c // 4) + 2 * (2 * (c // 4) + c),
                                         h * w * (2 * c * (c // 4) // g + 9 * (c // 4))),
     "m taken as c / 4: the argument m ignored"),
    ("stacked_connectivity", _connectivity_counts, "returned integers where booleans are asked for"),
]


@pytest.mark.parametrize("name, wrong, diagnosis", ISSUE_WRONG_ANSWERS,
                         ids=[f"{n}-{d}" for n, _, d in ISSUE_WRONG_ANSWERS])
def test_the_wrong_answers_that_used_to_pass_are_caught_and_named(name, wrong, diagnosis):
    got = verdict(CATALOGUE[name], wrong)
    assert got.points == 0 and f"Diagnosis: {diagnosis}" in got.message, got.message


def test_a_view_of_the_input_is_named_only_where_the_runner_saw_it():
    exercise = CATALOGUE["channel_shuffle_backward"]
    case = exercise.cases(0)[1]                               # groups = 1
    dout = case.args[0]
    right = Outcome(value=dout.copy(), args_after=case.args)
    seen = Outcome(value=dout.copy(), args_after=case.args, facts=(("view", 0),))
    assert exercise.judge([case], [right]).status == "passed"
    assert "Diagnosis: returned a view of its input dout" in exercise.judge([case], [seen]).message


def test_judge_works_from_data_alone_as_the_grader_reads_it_back():
    """Outcomes as a runner sends them (no facts; ``not done`` for a stub; ``not run`` after a crash)."""
    exercise = CATALOGUE["linear_backward"]
    cases = exercise.cases(7)
    right = [Outcome(value=exercise.reference(*c.args), args_after=c.args) for c in cases]
    assert exercise.judge(cases, right).status == "passed"
    assert exercise.judge(cases, [Outcome(error="not done")]).status == "not done"
    partial = exercise.judge(cases, right[:2])                         # the runner died after two calls
    assert partial.status == "failed" and partial.points == 0 and "raised not run" in partial.message
    assert exercise.judge(cases, [Outcome(error="MemoryError: ")] * len(cases)).status == "error"


def test_an_in_place_update_left_undone_is_named():
    exercise = CATALOGUE["sgd_step"]

    def sgd_step(params, grads, buffers, lr, momentum, weight_decay):
        for i, (p, g, buf) in enumerate(zip(params, grads, buffers)):
            if weight_decay and p.ndim > 1:
                g = g + weight_decay * p
            buf = momentum * buf + g
            params[i] = p - lr * buf

    got = verdict(exercise, sgd_step)
    assert "did not update buffers in place" in got.message
    assert "replaced the arrays of params instead of updating them in place" in got.message


# ----------------------------------------------------------------------------------------------------------------
# notebook 09: the unit, and the training that needs it
# ----------------------------------------------------------------------------------------------------------------
def test_the_training_earns_nothing_while_the_unit_fails(monkeypatch):
    exercise = CATALOGUE["train_on_your_layers"]
    wrong_unit = nb09.YOUR_LAYERS.mistakes[0].wrong                       # batch norm without the variance path
    trained = nb09._untrained(4, 0, True)
    monkeypatch.setattr(nb09, "held_out_accuracy", lambda state: 0.9)      # as if the weights had learned
    cases = exercise.cases(0)
    outcomes = [call(wrong_unit if c.function == nb09.YOUR_LAYERS.function else (lambda **kw: trained), c)
                for c in cases]
    got = exercise.judge(cases, outcomes)
    assert (got.points, got.status) == (0, "failed")
    assert "earns its points only when your_layers passes" in got.message
    assert "your batchnorm_backward: without the variance path" in got.message
    outcomes = [call(nb09.YOUR_LAYERS.reference if c.function == nb09.YOUR_LAYERS.function else
                     (lambda **kw: trained), c) for c in cases]
    assert exercise.judge(cases, outcomes).points == exercise.points


def test_the_training_is_judged_from_the_weights_not_from_what_the_run_says():
    exercise = CATALOGUE["train_on_your_layers"]
    boast = nb09._untrained(4, 0, True)                                   # claims 0.99, weights untrained
    assert boast["accuracies"][-1] == 0.99
    got = _judge_own_part(exercise, lambda **kw: boast)
    assert got.points == 0 and "Diagnosis: did not learn enough" in got.message
    assert "held-out accuracy is 0.1" in got.message


def test_student_kernels_run_a_shuffle_unit_and_fall_back_where_missing():
    layers = _solutions("09_train_on_your_own_layers")
    kernels = course.StudentKernels(layers).probe()
    assert not kernels.missing
    x = np.random.default_rng(0).standard_normal((2, 24, 5, 5))
    dout = np.random.default_rng(1).standard_normal((2, 24, 5, 5))
    out, dx, grads = nb09._unit_run(x, dout, 24, 24, 1, 3, functions=layers)
    ref = nb09._unit_run(x, dout, 24, 24, 1, 3)
    np.testing.assert_allclose(out, ref[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, ref[1], rtol=1e-9, atol=1e-12)

    def depthwise_conv_backward(dout, x, w, stride=1):
        raise NotImplementedError("exercise: depthwise_conv_backward")

    partial = course.StudentKernels(dict(layers, depthwise_conv_backward=depthwise_conv_backward)).probe()
    assert partial.missing == {"depthwise_conv_backward"}


def test_every_check_is_used_by_a_notebook_and_the_finale_collects_every_function():
    import ast
    sources = [(path.name, "".join(cell["source"]), cell) for path in sorted(NOTEBOOK_DIR.glob("*.ipynb"))
               for cell in json.loads(path.read_text())["cells"]]
    used = {name for _, text, _ in sources for name in course.__all__
            if name.startswith("check_") and f"course.{name}(" in text}
    assert used == {name for name in course.__all__ if name.startswith("check_")}
    finale = [cell for name, _, cell in sources
              if name.startswith("09") and cell["metadata"].get("nbgrader", {}).get("grade_id") == "your_layers"]
    assert len(finale) == 1
    defined = [node.name for node in ast.parse("".join(finale[0]["source"])).body if isinstance(node, ast.FunctionDef)]
    assert sorted(defined) == sorted(course.StudentKernels.NAMES)


WEIRD = [None, "text", {"a": 1}, [1, "x"], np.array(["a"]), (np.zeros(3),) * 3, object(), 1e300, np.zeros(0)]


@pytest.mark.parametrize("exercise", QUICK, ids=[e.name for e in QUICK])
def test_any_returned_value_is_a_verdict_never_an_exception(exercise):
    """The judge reads untrusted data: whatever comes back is a wrong case, with a message."""
    cases = exercise.cases(0)[:2]
    for value in WEIRD:
        got = exercise.judge(cases, [Outcome(value=value, args_after=c.args) for c in cases])
        assert got.status == "failed" and got.points == 0 and got.message, (value, got)
