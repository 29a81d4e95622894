"""Optimizer, generated data, the training loop, checkpoints and the two shuffle experiments."""

import json

import numpy as np
import pytest

from numpy_shufflenet.cli import main
from numpy_shufflenet.training.data import CLASSES, make_shapes
from numpy_shufflenet.training.loop import batches
from numpy_shufflenet.nn import GroupReadout
from numpy_shufflenet.paper.experiments import (format_ablation, information_flow_demo, information_flow_task,
                                                shuffle_ablation)
from numpy_shufflenet.nn import GroupReadout as NnGroupReadout
from numpy_shufflenet.analysis.plotting import plot_history
from numpy_shufflenet.analysis.plotting import plot_history as train_plot_history
from numpy_shufflenet.gradcheck import numeric_gradient, rel_error
from numpy_shufflenet.functional import softmax_cross_entropy
from numpy_shufflenet.models import ShuffleNet
from numpy_shufflenet.nn import Conv2d, Flatten, GlobalAvgPool2d, Linear, Parameter, Sequential
from numpy_shufflenet.paper.experiments import SGD
from numpy_shufflenet.training.loop import linear_lr
from numpy_shufflenet.nn.module import parameter_gradients
from numpy_shufflenet.training.loop import evaluate
from numpy_shufflenet.training.runs import train_shapes


def test_sgd_step_matches_the_formula_and_skips_decay_on_1d_params():
    w = Parameter(np.array([[1.0, -2.0]]))
    b = Parameter(np.array([0.5]))
    opt = SGD([w, b], lr=0.1, momentum=0.9, weight_decay=0.01)
    for step in range(2):
        w.grad, b.grad = np.array([[0.2, 0.4]]), np.array([1.0])
        opt.step()
    # step 1: buf_w = g + wd*w = [0.21, 0.38]; w = [0.979, -2.038]; buf_b = 1; b = 0.4
    # step 2: buf_w = 0.9*[0.21, 0.38] + [0.2, 0.4] + 0.01*[0.979, -2.038] = [0.39879, 0.72162]
    np.testing.assert_allclose(w.data, [[0.979 - 0.039879, -2.038 - 0.072162]], rtol=0, atol=1e-12)
    np.testing.assert_allclose(b.data, [0.4 - 0.19], rtol=0, atol=1e-12)


def test_sgd_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    w0, grads = rng.standard_normal((3, 4)), rng.standard_normal((5, 3, 4))
    w = Parameter(w0.copy())
    opt = SGD([w], lr=0.05, momentum=0.9, weight_decay=1e-3)
    tw = torch.tensor(w0, requires_grad=True)
    topt = torch.optim.SGD([tw], lr=0.05, momentum=0.9, weight_decay=1e-3)
    for g in grads:
        w.grad = g
        opt.step()
        tw.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(w.data, tw.detach().numpy(), rtol=0, atol=1e-12)


def test_sgd_rejects_bad_arguments():
    with pytest.raises(TypeError, match=r"SGD: expected Parameters .*got ndarray"):
        SGD([np.zeros(3)])
    with pytest.raises(ValueError, match=r"SGD: expected lr, momentum, weight_decay >= 0 and finite, got -1"):
        SGD([Parameter(np.zeros(3))], lr=-1)


def test_linear_lr_decays_to_zero():
    assert [linear_lr(0.5, t, 4) for t in range(5)] == [0.5, 0.375, 0.25, 0.125, 0.0]


def test_shapes_are_seeded_balanced_and_in_range():
    x, y = make_shapes(80, 32, seed=3)
    x2, y2 = make_shapes(80, 32, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert x.shape == (80, 3, 32, 32) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y, minlength=len(CLASSES)).tolist() == [10] * 8
    assert not np.array_equal(make_shapes(80, 32, seed=4)[0], x)
    assert -1.0 < x.mean() < 1.0


def test_batches_cover_the_data_once():
    x, y = np.arange(10.0)[:, None], np.arange(10)
    seen = np.concatenate([yb for _, yb in batches(x, y, 4, rng=np.random.default_rng(0))])
    assert sorted(seen.tolist()) == list(range(10))


def test_evaluate_restores_training_mode():
    model = Sequential(Conv2d(3, 4, 3), GlobalAvgPool2d(), Linear(4, 8))
    x, y = make_shapes(16, 32, seed=0)
    loss, acc = evaluate(model, x, y)
    assert model.training and 0 <= acc <= 1 and loss > 0


def test_moved_names_stay_importable_from_their_old_homes():
    assert GroupReadout is NnGroupReadout and train_plot_history is plot_history


def test_group_readout_backward():
    layer = GroupReadout(1, 3)
    x = np.random.default_rng(0).standard_normal((2, 6, 2, 2))
    dout = np.random.default_rng(1).standard_normal((2, 2, 2, 2))
    layer.forward(x)
    num = numeric_gradient(layer.forward, x, dout)
    assert rel_error(layer.backward(dout), num) < 1e-9


def test_information_flow_task_needs_both_groups():
    x, y = information_flow_task(4000, seed=0)
    a, b = x[:, 0, 0, 0], x[:, 8, 0, 0]
    assert set(np.unique(a)) == {-1.0, 1.0} and np.array_equal(y, (a == b).astype(int))
    assert abs(np.mean(y[a > 0]) - 0.5) < 0.05 and abs(np.mean(y[b > 0]) - 0.5) < 0.05   # one sign says nothing


def test_information_flow_demo_shuffle_learns_no_shuffle_stays_at_chance():
    results = information_flow_demo(seeds=(0, 1, 2))
    assert min(results["shuffle"]) >= 0.95, results
    assert max(results["no shuffle"]) <= 0.60, results


def test_resume_continues_the_same_loss_curve(tmp_path):
    settings = dict(scale=0.25, epochs=2, train_size=96, val_size=32, batch_size=32, seed=1)
    _, straight = train_shapes(None, progress=False, baseline=False, **settings)          # in memory only
    _, paused = train_shapes(tmp_path / "b", progress=False, baseline=False, stop_after=1, **settings)
    assert len(paused["epochs"]) == 1
    _, resumed = train_shapes(tmp_path / "b", resume=True, progress=False, baseline=False)
    assert len(resumed["step_loss"]) == len(straight["step_loss"]) == 6
    np.testing.assert_allclose(resumed["step_loss"], straight["step_loss"], rtol=1e-5, atol=0)
    assert resumed["epochs"][-1]["val_acc"] == pytest.approx(straight["epochs"][-1]["val_acc"], abs=1e-9)
    assert json.loads((tmp_path / "b" / "history.json").read_text())["config"]["scale"] == 0.25
    assert (tmp_path / "b" / "curves.png").stat().st_size > 1000


def test_resume_with_corrupt_or_mismatched_files(tmp_path):
    settings = dict(scale=0.25, epochs=1, train_size=64, val_size=32, batch_size=32)
    train_shapes(tmp_path, progress=False, baseline=False, **settings)
    with pytest.raises(ValueError, match=r"resume: the run in .* was saved with groups=3, scale=0.25, "
                                         r"shuffle=True, image_size=32; got groups=2"):
        train_shapes(tmp_path, resume=True, progress=False, baseline=False, groups=2)     # another network
    (tmp_path / "weights.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"not a .npz"):
        train_shapes(tmp_path, resume=True, progress=False, baseline=False, epochs=2)
    (tmp_path / "history.json").write_text("{oops")
    with pytest.raises(ValueError, match=r"history.json is not a training history"):
        train_shapes(tmp_path, resume=True, progress=False, baseline=False, epochs=2)
    with pytest.raises(ValueError, match=r"expected history.json in"):
        train_shapes(tmp_path / "nothing", resume=True, progress=False)


def test_train_command_small_run(tmp_path, capsys):
    assert main(["train", "--scale", "0.25", "--epochs", "1", "--train-size", "64", "--val-size", "32", "--quiet",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "held-out accuracy" in out and "linear classifier on pixels" in out
    assert {p.name for p in tmp_path.iterdir()} >= {"weights.npz", "optimizer.npz", "history.json", "curves.png"}


def test_shuffle_ablation_runs_and_formats():
    rows = shuffle_ablation(groups=(3,), seeds=(0,), epochs=1, train_size=64, val_size=32)
    assert rows[0]["groups"] == 3 and len(rows[0]["with"]) == len(rows[0]["without"]) == 1
    assert rows[0]["paper_error"] == (56.3, 55.0)
    text = format_ablation(rows)
    assert "56.3% -> 55.0%" in text and "+-" in text


def test_fit_skips_the_image_gradient_of_every_model():
    rng = np.random.default_rng(9)
    model = ShuffleNet(groups=3, scale=0.25, num_classes=10, rng=rng, dtype=np.float64)
    x, y = rng.standard_normal((4, 3, 32, 32)), rng.integers(0, 10, 4)
    _, dlogits = softmax_cross_entropy(model(x), y)
    with_dx = model.backward(dlogits)
    expected = [p.grad.copy() for p in model.parameters()]
    model(x)
    assert parameter_gradients(model)(dlogits) is None                 # no image gradient computed
    for p, g in zip(model.parameters(), expected):
        np.testing.assert_allclose(p.grad, g, rtol=1e-12, atol=1e-15)   # the same parameter gradients
    assert with_dx.shape == x.shape
    linear = Sequential({"flatten": Flatten(), "fc": Linear(12, 3, rng=rng, dtype=np.float64)})
    d = rng.standard_normal((2, 3))
    linear(rng.standard_normal((2, 3, 2, 2)))
    assert linear.backward(d).shape == (2, 3, 2, 2)
    expected = [p.grad.copy() for p in linear.parameters()]
    assert parameter_gradients(linear)(d) is None                     # every module takes input_grad
    for p, g in zip(linear.parameters(), expected):
        np.testing.assert_array_equal(p.grad, g)


# --------------------------------------------------------------------------------------------------------------
# bad input to the data generator and the optimizer
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, message", [
    (dict(n=-1), ValueError, r"make_shapes: expected n >= 0, got -1"),
    (dict(n=2.0), TypeError, r"make_shapes: expected n to be an integer, got 2.0"),
    (dict(n=4, image_size=0), ValueError, r"make_shapes: expected image_size >= 1, got 0"),
    (dict(n=4, image_size=-32), ValueError, r"make_shapes: expected image_size >= 1, got -32"),
    (dict(n=4, noise=-0.1), ValueError, r"make_shapes: expected noise to be a finite number >= 0, got -0.1"),
    (dict(n=4, noise=float("nan")), ValueError, r"make_shapes: expected noise .*, got nan"),
    (dict(n=4, radius=(0.3, 0.6)), ValueError,
     r"make_shapes: expected radius .*0 < low <= high <= 0.5, got \(0.3, 0.6\)"),
    (dict(n=4, radius=(0.4, 0.2)), ValueError, r"make_shapes: expected radius .*, got \(0.4, 0.2\)"),
    (dict(n=4, radius=0.3), ValueError, r"make_shapes: expected radius to be a pair .*, got 0.3"),
    (dict(n=4, dtype=np.int32), TypeError, r"make_shapes: expected a float dtype, got int32"),
])
def test_make_shapes_refuses_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        make_shapes(**kwargs)


def test_make_shapes_of_zero_images_is_empty():
    x, y = make_shapes(0, 32)
    assert x.shape == (0, 3, 32, 32) and y.shape == (0,)


def test_batches_refuse_a_bad_batch_size_or_mismatched_labels():
    with pytest.raises(ValueError, match=r"batches: expected batch_size >= 1, got 0"):
        next(batches(np.zeros((4, 2)), np.zeros(4), 0))
    with pytest.raises(ValueError, match=r"batches: expected as many labels as images, got 4 images and 3 labels"):
        next(batches(np.zeros((4, 2)), np.zeros(3), 2))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(lr=float("nan")), ValueError, r"SGD: expected lr, momentum, weight_decay >= 0 and finite, got nan"),
    (dict(momentum=float("inf")), ValueError, r"SGD: .*finite, got 0.1, inf"),
    (dict(weight_decay=-1e-4), ValueError, r"SGD: .*finite, got 0.1, 0.9, -0.0001"),
    (dict(lr="0.1"), TypeError, r"SGD: expected lr to be a number, got '0.1'"),
])
def test_sgd_refuses_bad_hyperparameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        SGD([Parameter(np.zeros(3))], **kwargs)
