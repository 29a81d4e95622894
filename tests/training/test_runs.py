"""Runs on disk (``training.runs``): a broken checkpoint is refused naming the file and the key, with nothing
loaded; a run that cannot be continued is refused; ``train_shapes`` checks its settings before any work.

The tiny finished run the tests spoil is ``saved_run`` (``conftest.py``), copied for each test as ``run_dir``.
"""

import json
import zipfile

import numpy as np
import pytest

from numpy_shufflenet.models import ShuffleNet
from numpy_shufflenet.training.optim import SGD
from numpy_shufflenet.training.runs import load_run, train_shapes

from conftest import npy_bytes, spoil, write_npz

FC = "fc.weight"


# --------------------------------------------------------------------------------------------------------------
# checkpoints: resume errors name the file and the key; a run that cannot be continued is refused
# --------------------------------------------------------------------------------------------------------------
def tiny_run_model():
    model = ShuffleNet(groups=3, scale=0.25, num_classes=8, rng=np.random.default_rng(0), zero_init_residual=True)
    return model, SGD(model.parameters())


def edit_history(run_dir, edit):
    path = run_dir / "history.json"
    history = json.loads(path.read_text())
    edit(history)
    path.write_text(json.dumps(history))


def edit_optimizer(run_dir, edit):
    path = run_dir / "optimizer.npz"
    with zipfile.ZipFile(path) as z:
        members = {info.filename[:-4]: z.read(info) for info in z.infolist()}
    edit(members)
    write_npz(path, members)


BAD_CHECKPOINTS = {
    "optimizer-not-a-zip": (lambda d: (d / "optimizer.npz").write_bytes(b"junk"),
                            r"resume: .*optimizer.npz, which is not a .npz"),
    "optimizer-missing-buffer": (lambda d: edit_optimizer(d, lambda m: m.pop("momentum.3")),
                                 r"resume: .*optimizer.npz: .*missing \['momentum.3'\]"),
    "optimizer-nan-buffer": (lambda d: edit_optimizer(d, lambda m: m.update(
                                 {"momentum.0": spoil(m["momentum.0"], lambda a: a * np.nan)})),
                             r"resume: .*optimizer.npz: expected momentum.0 to be finite, got 162 NaN"),
    "optimizer-complex-buffer": (lambda d: edit_optimizer(d, lambda m: m.update(
                                     {"momentum.0": spoil(m["momentum.0"], lambda a: a.astype(np.complex64))})),
                                 r"resume: .*optimizer.npz: expected momentum.0 to hold real floats, got dtype "
                                 r"complex64"),
    "optimizer-float-steps": (lambda d: edit_optimizer(d, lambda m: m.update({"steps": npy_bytes(np.array(2.0))})),
                              r"resume: .*optimizer.npz: expected steps to hold integers, got dtype float64"),
    "optimizer-wrong-shape": (lambda d: edit_optimizer(d, lambda m: m.update(
                                  {"momentum.0": spoil(m["momentum.0"], lambda a: a[..., 0])})),
                              r"resume: .*optimizer.npz: expected momentum.0 of shape \(6, 3, 3, 3\), got \(6, 3, 3\)"),
    "weights-nan": (lambda d: edit_weights_nan(d), r"resume: .*weights.npz: expected fc.weight to be finite"),
    "history-not-json": (lambda d: (d / "history.json").write_text("{oops"),
                         r"resume: .*history.json is not a training history: not valid JSON"),
    "history-a-list": (lambda d: (d / "history.json").write_text("[1, 2]"),
                       r"history.json is not a training history: expected key '\(top level\)' to be a dict, "
                       r"got \[1, 2\]"),
    "history-step-loss-string": (lambda d: edit_history(d, lambda h: h["step_loss"].__setitem__(1, "x")),
                                 r"history.json .*expected key 'step_loss\[1\]' to be a finite number, got 'x'"),
    "history-step-loss-nan": (lambda d: edit_history(d, lambda h: h["step_loss"].__setitem__(0, float("nan"))),
                              r"history.json .*expected key 'step_loss\[0\]' to be a finite number, got nan"),
    "history-no-epochs": (lambda d: edit_history(d, lambda h: h.pop("epochs")),
                          r"history.json .*expected key 'epochs' to be a list, got '\(missing\)'"),
    "history-epoch-missing-key": (lambda d: edit_history(d, lambda h: h["epochs"][0].pop("val_acc")),
                                  r"history.json .*expected key 'epochs\[0\].val_acc' to be a finite number, got "
                                  r"'\(missing\)'"),
    "history-epoch-misnumbered": (lambda d: edit_history(d, lambda h: h["epochs"][0].update(epoch=3)),
                                  r"history.json .*expected key 'epochs\[0\].epoch' to be 1, got 3"),
    "history-steps-disagree": (lambda d: edit_history(d, lambda h: h["step_loss"].pop()),
                               r"resume: .*history.json records 1 steps \(key 'step_loss'\) but .*optimizer.npz made "
                               r"2 \(key 'steps'\)"),
}


def edit_weights_nan(run_dir):
    path = run_dir / "weights.npz"
    with zipfile.ZipFile(path) as z:
        members = {info.filename[:-4]: z.read(info) for info in z.infolist()}
    members[FC] = spoil(members[FC], lambda a: a * np.nan)
    write_npz(path, members)


@pytest.mark.parametrize("case", list(BAD_CHECKPOINTS))
def test_bad_checkpoint_is_refused_and_nothing_is_loaded(case, run_dir):
    spoil, message = BAD_CHECKPOINTS[case]
    spoil(run_dir)
    model, optimizer = tiny_run_model()
    before = model.state_dict()
    with pytest.raises(ValueError, match=message):
        load_run(run_dir, model, optimizer)
    assert optimizer.steps == 0 and all(np.all(b == 0) for b in optimizer.buffers)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=f"{case}: {name} changed")


@pytest.mark.parametrize("override, message", [
    ({"groups": 2}, r"was saved with groups=3, scale=0.25, shuffle=True, image_size=32; got groups=2"),
    ({"scale": 0.5}, r"was saved with groups=3, scale=0.25, .*; got scale=0.5"),
    ({"shuffle": False}, r"was saved with .*shuffle=True.*; got shuffle=False"),
    ({"epochs": 1}, r"has already trained 1 epochs; epochs=1 asks for no more \(expected epochs > 1"),
    ({}, r"has already trained 1 epochs; epochs=1 asks for no more"),
])
def test_resume_refuses_a_run_it_cannot_continue(override, message, run_dir):
    with pytest.raises(ValueError, match=rf"resume: the run in {run_dir} {message}"):
        train_shapes(run_dir, resume=True, progress=False, baseline=False, **override)


def test_resume_of_a_missing_file(run_dir):
    (run_dir / "optimizer.npz").unlink()
    with pytest.raises(ValueError, match=r"resume: expected optimizer.npz in .*, found none"):
        train_shapes(run_dir, resume=True, progress=False, baseline=False, epochs=2)


# --------------------------------------------------------------------------------------------------------------
# train_shapes: every setting checked before any work
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("setting, value, error, message", [
    ("epochs", 0, ValueError, r"expected epochs >= 1, got 0"),
    ("batch_size", -1, ValueError, r"expected batch_size >= 1, got -1"),
    ("train_size", 2.5, TypeError, r"expected train_size to be an integer, got 2.5"),
    ("val_size", 0, ValueError, r"expected val_size >= 1, got 0"),
    ("image_size", 16, ValueError, r"expected image_size >= 32, got 16"),
    ("seed", -1, ValueError, r"expected seed >= 0, got -1"),
    ("lr", float("nan"), ValueError, r"expected lr finite and >= 0, got nan"),
    ("lr", -0.5, ValueError, r"expected lr finite and >= 0, got -0.5"),
    ("weight_decay", float("inf"), ValueError, r"expected weight_decay finite and >= 0, got inf"),
    ("label_smoothing", 1.0, ValueError, r"expected label_smoothing in \[0, 1.0\), got 1.0"),
    ("shuffle", "no", TypeError, r"expected shuffle to be True or False, got 'no'"),
])
def test_train_shapes_refuses_bad_settings(setting, value, error, message):
    with pytest.raises(error, match=rf"train_shapes: {message}"):
        train_shapes(None, progress=False, baseline=False, **{setting: value})


def test_train_shapes_refuses_an_out_under_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match=rf"train_shapes: expected an output folder, got {tmp_path / 'f' / 'g'}, "
                                         rf"which lies under the file {tmp_path / 'f'}"):
        train_shapes(tmp_path / "f" / "g", progress=False, baseline=False)
