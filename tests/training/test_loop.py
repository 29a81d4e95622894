"""The training loop (``training.loop``): ``evaluate`` and ``fit`` refuse bad arguments, and the progress bar
writes a few times per epoch off a terminal."""

import io

import numpy as np
import pytest

from numpy_shufflenet.nn import Linear
from numpy_shufflenet.training.loop import evaluate, fit, progress_bar
from numpy_shufflenet.training.optim import SGD


# --------------------------------------------------------------------------------------------------------------
# bad arguments
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("x, y, message", [
    (np.zeros((0, 4), np.float32), np.zeros(0, np.int64), r"got 0 images and 0 labels"),
    (np.zeros((3, 4), np.float32), np.zeros(2, np.int64), r"got 3 images and 2 labels"),
])
def test_evaluate_refuses_an_empty_or_mismatched_set(x, y, message):
    with pytest.raises(ValueError, match=rf"evaluate: expected a non-empty set with one label per image, {message}"):
        evaluate(Linear(4, 2), x, y)


@pytest.mark.parametrize("kwargs, train, error, message", [
    (dict(epochs=0), 4, ValueError, r"fit: expected epochs >= 1, got 0"),
    (dict(batch_size=0), 4, ValueError, r"fit: expected batch_size >= 1, got 0"),
    (dict(epochs=1.5), 4, TypeError, r"fit: expected epochs to be an integer, got 1.5"),
    ({}, 0, ValueError, r"fit: expected a non-empty training set .*got 0 images and 0 labels"),
])
def test_fit_refuses_bad_arguments(kwargs, train, error, message):
    model = Linear(4, 2)
    data = (np.zeros((train, 4), np.float32), np.zeros(train, np.int64))
    settings = {**dict(epochs=1, batch_size=2, lr=0.1, progress=False), **kwargs}
    with pytest.raises(error, match=message):
        fit(model, SGD(model.parameters()), data, data, **settings)


# --------------------------------------------------------------------------------------------------------------
# progress output: a few writes per epoch off a terminal
# --------------------------------------------------------------------------------------------------------------
class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("steps", [8, 200, 2000])
def test_progress_bar_writes_a_few_times_per_epoch_off_a_terminal(steps):
    stream = io.StringIO()
    for _ in progress_bar(range(steps), total=steps, desc="epoch 1/1", file=stream):
        pass
    writes = stream.getvalue().count("\r")
    assert 2 <= writes <= 6, f"{writes} refreshes for {steps} steps"
    assert stream.getvalue().rstrip().endswith(f"{steps}/{steps} [" + stream.getvalue().rstrip().split("[")[-1])


def test_progress_bar_on_a_terminal_is_the_usual_tqdm():
    bar = progress_bar(range(5), total=5, desc="e", file=FakeTerminal())
    assert bar.mininterval == 0.1 and bar.maxinterval == 10.0
    bar.close()


def test_fit_progress_to_a_pipe_is_a_few_lines_per_epoch(capsys):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((600, 4)).astype(np.float32), rng.integers(0, 2, 600)
    model = Linear(4, 2, rng=rng)
    fit(model, SGD(model.parameters()), (x, y), (x, y), epochs=2, batch_size=2, lr=0.01)      # 300 steps an epoch
    captured = capsys.readouterr()
    assert captured.err.count("\r") <= 2 * 6, captured.err[:500]               # 300 steps: 6 writes an epoch
    assert captured.out.count("held-out loss") == 2                             # and one summary line each
