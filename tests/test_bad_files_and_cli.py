"""Bad input to everything that is not a layer: gradient checks, weight and checkpoint files, the ``train``
command line, the data generator, the permutation helpers and the training loop.

Every case asserts the exception type, the argument (or file entry) it names, and the offending value. Files are
untrusted: a broken one must be a clear ``ValueError`` before anything large is allocated and before anything is
copied into the model (checked by comparing the model's state before and after).
"""

import io
import json
import shutil
import zipfile

import numpy as np
import pytest

from numpy_shufflenet import flow
from numpy_shufflenet.cli import main
from numpy_shufflenet.training.loop import batches
from numpy_shufflenet.training.data import make_shapes
from numpy_shufflenet.gradcheck import check_module, numeric_gradient, rel_error, report
from numpy_shufflenet.models import ShuffleNet
from numpy_shufflenet.nn import GroupReadout, Linear, Module, Parameter, Sequential
from numpy_shufflenet.paper.experiments import SGD
from numpy_shufflenet.training.loop import evaluate, progress_bar
from numpy_shufflenet.paper.experiments import fit
from numpy_shufflenet.training.runs import load_run, train_shapes
from numpy_shufflenet.interop.weights import load_weights


# --------------------------------------------------------------------------------------------------------------
# gradient checks never pass on NaN or inf, and refuse a step that is not a positive number
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("a, b", [([np.nan, 1.0], [1.0, 1.0]), ([1.0, 1.0], [1.0, np.inf]),
                                  ([np.inf], [np.inf]), ([np.nan], [np.nan]), ([-np.inf, 0.0], [0.0, 0.0])])
def test_rel_error_of_non_finite_is_inf(a, b):
    assert rel_error(np.array(a), np.array(b)) == np.inf


@pytest.mark.parametrize("h", [0, 0.0, -1e-6, np.nan, np.inf, -np.inf, "1e-6", None, True])
def test_numeric_gradient_refuses_a_bad_step(h):
    with pytest.raises(ValueError, match=rf"numeric_gradient: expected h to be a finite number > 0, got {h!r}"):
        numeric_gradient(lambda v: v, np.ones(3), np.ones(3), h=h)


@pytest.mark.parametrize("x", [np.arange(3), np.ones(3, dtype=bool), np.array([1, 2], dtype=np.uint8)])
def test_numeric_gradient_refuses_a_non_float_x(x):
    with pytest.raises(TypeError, match=rf"numeric_gradient: expected x to have a float dtype .*got {x.dtype}"):
        numeric_gradient(lambda v: v, x, np.ones(x.shape))


@pytest.mark.parametrize("bad", ["x", "dout"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_numeric_gradient_refuses_non_finite_inputs(bad, value):
    arrays = {"x": np.ones((2, 2)), "dout": np.ones((2, 2))}
    arrays[bad][1, 0] = value
    with pytest.raises(ValueError, match=rf"numeric_gradient: expected a finite {bad}, got 1 non-finite value\(s\), "
                                         rf"the first {value} at index \(1, 0\)"):
        numeric_gradient(lambda v: v, arrays["x"], arrays["dout"])


@pytest.mark.parametrize("side, analytic, numeric", [
    ("analytic", [np.nan, 1.0], [1.0, 1.0]),
    ("numeric", [1.0, 1.0], [1.0, np.inf]),
    ("analytic", [np.nan, np.nan], [np.nan, np.nan]),           # equal NaNs are not a pass
])
def test_report_fails_non_finite_gradients_and_says_where(side, analytic, numeric):
    result = report("dx", np.array(analytic), np.array(numeric), verbose=False, noise_floor=1e9)
    assert not result and result.max_rel_error == np.inf
    assert f"{side} gradient: " in str(result) and "FAIL" in str(result) and "PASS" not in str(result)


class Scale(Module):
    """``out = w * x``: a one-parameter module whose backward can be broken on purpose."""

    def __init__(self, w, dx_override=None):
        super().__init__()
        self.weight = Parameter(np.array(w, dtype=np.float64))
        self.dx_override = dx_override

    def forward(self, x):
        self._cache = x
        return self.weight.data * x

    def backward(self, dout, *, input_grad=True):
        x = self._take_cache()
        self.weight.grad = np.array([np.sum(dout * x)])
        if not input_grad:
            return None
        return self.weight.data * dout if self.dx_override is None else self.dx_override(dout)


def test_check_module_fails_a_nan_gradient_and_names_it():
    module = Scale([2.0], dx_override=lambda dout: np.full_like(dout, np.nan))
    results = check_module(module, np.ones((2, 3)), verbose=False)
    assert not results[0] and results[0].name == "x" and "analytic gradient: 6 non-finite" in str(results[0])
    assert results[1]                                               # the weight's gradient is still right


@pytest.mark.parametrize("where, make", [
    ("the input x", lambda: (Scale([2.0]), np.array([[1.0, np.nan]]), {})),
    ("parameter weight", lambda: (Scale([np.inf]), np.ones((1, 2)), {})),
    ("the forward output", lambda: (Scale([1e308]), np.array([[1e308, 1.0]]), {})),
    ("dout", lambda: (Scale([2.0]), np.ones((1, 2)), {"dout": np.array([[1.0, -np.inf]])})),
])
def test_check_module_refuses_non_finite_values_and_says_where(where, make):
    module, x, kwargs = make()
    with np.errstate(over="ignore"), \
            pytest.raises(ValueError, match=rf"check_module: expected {where} to be finite, got 1 non-finite"):
        check_module(module, x, verbose=False, **kwargs)


@pytest.mark.parametrize("h", [0.0, -1e-3, np.nan])
def test_check_module_refuses_a_bad_step(h):
    with pytest.raises(ValueError, match=rf"check_module: expected h to be a finite number > 0, got {h!r}"):
        check_module(Scale([2.0]), np.ones((1, 2)), h=h, verbose=False)


def test_check_module_refuses_a_non_array_input():
    with pytest.raises(TypeError, match=r"check_module: expected a float64 input .*got list"):
        check_module(Scale([2.0]), [1.0, 2.0])


# --------------------------------------------------------------------------------------------------------------
# weight files: refused member by member, before decompression, and nothing half-loaded
# --------------------------------------------------------------------------------------------------------------
def tiny_net(num_classes=5, seed=0):
    return ShuffleNet(groups=2, scale=0.25, num_classes=num_classes, rng=np.random.default_rng(seed))


def npy_bytes(array):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=True)
    return buf.getvalue()


def npy_header(shape, dtype="<f4"):
    """The bytes of a .npy header that claims ``shape`` (no data follows)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def write_npz(path, members, compression=zipfile.ZIP_STORED):
    """An .npz written by hand: ``members`` maps entry names (without .npy) to raw member bytes."""
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, data in members.items():
            z.writestr(f"{name}.npy", data)
    return path


@pytest.fixture(scope="module")
def good_members():
    """The raw .npy bytes of every entry of ``tiny_net()``'s state."""
    return {k: npy_bytes(v) for k, v in tiny_net().state_dict().items()}


FC = "fc.weight"          # (5, 224) float32 in tiny_net()


def replaced(good, **changes):
    members = dict(good)
    for key, data in changes.items():
        key = key.replace("__", ".")
        if data is None:
            del members[key]
        else:
            members[key] = data
    return members


BAD_WEIGHT_FILES = {
    # id: (members or a callable(tmp_path) -> path, expected message regex)
    "shape-mismatch": (lambda g: replaced(g, fc__weight=npy_bytes(np.zeros((6, 224), np.float32))),
                       r"expected fc.weight of shape \(5, 224\), got \(6, 224\)"),
    "header-claims-1e12-elements": (lambda g: replaced(g, fc__weight=npy_header((10**12,))),
                                    r"expected fc.weight of shape \(5, 224\), got \(1000000000000,\)"),
    "header-claims-1e12-with-right-rank": (lambda g: replaced(g, fc__weight=npy_header((10**6, 10**6))),
                                           r"expected fc.weight of shape \(5, 224\), got \(1000000, 1000000\)"),
    "declared-size-too-large": (lambda g: replaced(g, fc__weight=npy_header((5, 224)) + bytes(4 * 10**6)),
                                r"expected fc.weight of shape \(5, 224\) \(at most 27920 bytes\), but the archive "
                                r"declares 4000128 bytes"),
    "truncated-data": (lambda g: replaced(g, fc__weight=npy_header((5, 224)) + bytes(100)),
                       r"fc.weight of shape \(5, 224\) and dtype float32 needs 4608 bytes, but the archive declares "
                       r"228"),
    "garbage-member": (lambda g: replaced(g, fc__weight=b"this is not an npy file at all"),
                       r"fc.weight is not a valid .npy array"),
    "object-dtype": (lambda g: replaced(g, fc__weight=npy_bytes(np.array([{"evil": 1}], dtype=object))),
                     r"fc.weight holds pickled Python objects \(dtype object\).*refused"),
    "complex-dtype": (lambda g: replaced(g, fc__weight=npy_bytes(np.zeros((5, 224), np.complex64))),
                      r"expected fc.weight to hold real floats, got dtype complex64"),
    "integer-dtype": (lambda g: replaced(g, fc__weight=npy_bytes(np.zeros((5, 224), np.int32))),
                      r"expected fc.weight to hold real floats, got dtype int32"),
    "nan-values": (lambda g: replaced(g, fc__weight=npy_bytes(np.full((5, 224), np.nan, np.float32))),
                   r"expected fc.weight to be finite, got 1120 NaN or inf value\(s\)"),
    "inf-in-a-buffer": (lambda g: {**g, "stem.bn.running_var": spoil(g["stem.bn.running_var"], inf_at_end)},
                        r"expected stem.bn.running_var to be finite, got 1 NaN or inf"),
    "missing-and-unexpected": (lambda g: replaced(g, fc__weight=None, extra=npy_bytes(np.zeros(3, np.float32))),
                               r"expected exactly the model's entries; missing \['fc.weight'\], unexpected "
                               r"\['extra'\]"),
    "zero-bytes-member": (lambda g: replaced(g, fc__weight=b"\x00" * 8),
                          r"fc.weight is not a valid .npy array \(the magic string is not correct"),
    "empty-member": (lambda g: replaced(g, fc__weight=b""), r"fc.weight is not a valid .npy array"),
}


def inf_at_end(a):
    a = a.copy()
    a.reshape(-1)[-1] = np.inf
    return a


def spoil(member, change):
    """The bytes of a .npy member after ``change(array)``; the member is our own, trusted test data."""
    return npy_bytes(change(np.lib.format.read_array(io.BytesIO(member))))


@pytest.mark.parametrize("case", list(BAD_WEIGHT_FILES))
def test_bad_weight_file_is_refused_and_nothing_is_loaded(case, good_members, tmp_path):
    make, message = BAD_WEIGHT_FILES[case]
    path = write_npz(tmp_path / "w.npz", make(good_members))
    model = tiny_net(seed=1)
    before = model.state_dict()
    with pytest.raises(ValueError, match=rf"load_weights: {tmp_path / 'w.npz'}: {message}"):
        load_weights(model, path)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=f"{case}: {name} changed")


def test_mismatched_member_is_refused_without_decompressing_it(good_members, tmp_path, monkeypatch):
    """A deflated member of 50 MB of zeros (a ~50 kB file) is refused from its declared size alone."""
    path = write_npz(tmp_path / "bomb.npz", replaced(good_members, fc__weight=npy_header((5, 224)) + bytes(5 * 10**7)),
                     compression=zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 10**6
    opened = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open",
                        lambda self, name, *a, **k: opened.append(getattr(name, "filename", name))
                        or real_open(self, name, *a, **k))
    with pytest.raises(ValueError, match=r"fc.weight of shape \(5, 224\) \(at most 27920 bytes\), but the archive "
                                         r"declares 50000128 bytes"):
        load_weights(tiny_net(), path)
    assert "fc.weight.npy" not in opened


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "absent.npz", r"absent.npz not found"),
    (lambda d: d, r"expected a .npz file, got .*, which is a directory"),
    (lambda d: (d / "junk.npz").write_text("not a zip") and d / "junk.npz", r"junk.npz, which is not a .npz"),
    (lambda d: (d / "empty.npz").write_bytes(b"") or d / "empty.npz", r"empty.npz, which is not a .npz"),
])
def test_weight_path_problems(make, message, tmp_path):
    with pytest.raises(ValueError, match=rf"load_weights: .*{message}"):
        load_weights(tiny_net(), make(tmp_path))


def test_a_good_file_written_by_hand_still_loads(good_members, tmp_path):
    load_weights(tiny_net(seed=1), write_npz(tmp_path / "w.npz", good_members, compression=zipfile.ZIP_DEFLATED))
    fortran = dict(good_members, **{FC: npy_bytes(np.asfortranarray(tiny_net().state_dict()[FC]))})
    model = load_weights(tiny_net(seed=1), write_npz(tmp_path / "f.npz", fortran))
    np.testing.assert_array_equal(model.state_dict()[FC], tiny_net().state_dict()[FC])


# --------------------------------------------------------------------------------------------------------------
# load_state_dict: checked entirely before anything is copied
# --------------------------------------------------------------------------------------------------------------
class FakeTensor:
    """Looks like a torch tensor to load_state_dict: not an ndarray, has ``.numpy()``."""

    def __init__(self, array):
        self.array = array

    def numpy(self):
        return self.array


def two_layer():
    rng = np.random.default_rng(0)
    return Sequential(Linear(4, 3, rng=rng), Linear(3, 2, rng=rng))


@pytest.mark.parametrize("last, error, message", [
    (lambda v: v.tolist(), TypeError, r"expected 1.weight to be a NumPy array, got list"),
    (lambda v: FakeTensor(v), TypeError,
     r"expected 1.weight to be a NumPy array \(call .numpy\(\) on a torch tensor\), got FakeTensor"),
    (lambda v: v.astype(np.complex128), TypeError, r"expected 1.weight to have a real float dtype, got complex128"),
    (lambda v: v.astype(np.int64), TypeError, r"expected 1.weight to have a real float dtype, got int64"),
    (lambda v: np.full_like(v, np.nan), ValueError, r"expected 1.weight to be finite, got 6 NaN or inf value\(s\)"),
    (lambda v: v[:1], ValueError, r"expected 1.weight of shape \(2, 3\), got \(1, 3\)"),
])
def test_load_state_dict_is_atomic(last, error, message):
    """Every entry but the last is valid (and different): a failure at the last must leave all of them unset."""
    model = two_layer()
    before = model.state_dict()
    state = {k: v + 1 for k, v in before.items()}
    state["1.weight"] = last(state["1.weight"])
    with pytest.raises(error, match=rf"Sequential.load_state_dict: {message}"):
        model.load_state_dict(state)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_load_state_dict_refuses_a_non_dict():
    with pytest.raises(TypeError, match=r"Sequential.load_state_dict: expected a dict of name -> array, got list"):
        two_layer().load_state_dict([np.zeros(3)])


def test_real_torch_tensor_gets_the_numpy_hint():
    torch = pytest.importorskip("torch")
    model = two_layer()
    state = model.state_dict()
    state["0.weight"] = torch.zeros(3, 4)
    with pytest.raises(TypeError, match=r"expected 0.weight to be a NumPy array \(call .numpy\(\) on a torch tensor\)"):
        model.load_state_dict(state)


# --------------------------------------------------------------------------------------------------------------
# checkpoints: resume errors name the file and the key; a run that cannot be continued is refused
# --------------------------------------------------------------------------------------------------------------
TINY_RUN = dict(scale=0.25, epochs=1, train_size=32, val_size=16, batch_size=16, seed=0)


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """One tiny finished run (1 epoch, 2 steps), trained once for the module; tests copy it."""
    out = tmp_path_factory.mktemp("run")
    train_shapes(out, progress=False, baseline=False, **TINY_RUN)
    return out


@pytest.fixture
def run_dir(saved_run, tmp_path):
    return shutil.copytree(saved_run, tmp_path / "run")


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


def test_resume_command_reports_errors_without_a_traceback(run_dir, capsys):
    assert main(["train", "--resume", "--epochs", "1", "--out", str(run_dir), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: resume: the run in") and "Traceback" not in err


# --------------------------------------------------------------------------------------------------------------
# the train command line: argparse errors naming the option, before any work
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("option, value, expected", [
    ("--epochs", "0", "expected an integer >= 1, got 0"),
    ("--epochs", "-3", "expected an integer >= 1, got -3"),
    ("--epochs", "2.5", "expected an integer >= 1, got '2.5'"),
    ("--batch-size", "0", "expected an integer >= 1, got 0"),
    ("--train-size", "-1", "expected an integer >= 1, got -1"),
    ("--val-size", "0", "expected an integer >= 1, got 0"),
    ("--lr", "nan", "expected a finite number >= 0, got 'nan'"),
    ("--lr", "inf", "expected a finite number >= 0, got 'inf'"),
    ("--lr", "-0.1", "expected a finite number >= 0, got '-0.1'"),
    ("--lr", "fast", "expected a number >= 0, got 'fast'"),
    ("--seed", "-1", "expected an integer >= 0, got -1"),
])
def test_train_command_refuses_bad_numbers(option, value, expected, tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", option, value, "--out", str(out), "--quiet"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: {expected}" in err and "Traceback" not in err
    assert not out.exists()                                       # nothing was done


@pytest.mark.parametrize("where, expected", [
    ("file", "expected an output folder, got {file}, which is a file"),
    ("under-file", "expected an output folder, got {file}/sub, which lies under the file {file}"),
])
def test_train_command_refuses_an_out_that_is_a_file(where, expected, tmp_path, capsys):
    file = tmp_path / "notes.txt"
    file.write_text("x")
    out = file if where == "file" else file / "sub"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--out", str(out), "--quiet"])
    assert exit_info.value.code == 2
    assert f"argument --out: {expected.format(file=file)}" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-2"])
def test_summary_command_refuses_depth_below_one(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["summary", "--depth", value])
    assert exit_info.value.code == 2
    assert f"argument --depth: expected an integer >= 1, got {value}" in capsys.readouterr().err


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


# --------------------------------------------------------------------------------------------------------------
# data, permutations, the training loop
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


@pytest.mark.parametrize("fn, args, error, message", [
    ("inverse_permutation", ([0, 0, 1],), ValueError,
     r"expected perm to be a 1-D permutation of 0..2 .*got \[0, 0, 1\]"),
    ("inverse_permutation", ([0, 2],), ValueError, r"expected perm .*permutation of 0..1 .*got \[0, 2\]"),
    ("inverse_permutation", ([-1, 0],), ValueError, r"expected perm .*got \[-1, 0\]"),
    ("inverse_permutation", ([[0, 1], [1, 0]],), ValueError, r"expected perm to be a 1-D .*got \[\[0, 1\], \[1, 0\]\]"),
    ("inverse_permutation", ([0.0, 1.0],), TypeError, r"expected perm to be an array of integers, got dtype float64"),
    ("inverse_permutation", ([True, False],), TypeError, r"expected perm to be an array of integers, got dtype bool"),
    ("compose_permutations", ([1, 0], [1, 1]), ValueError, r"expected second to be a 1-D permutation .*got \[1, 1\]"),
    ("compose_permutations", ([3, 0], [1, 0]), ValueError, r"expected first to be a 1-D permutation .*got \[3, 0\]"),
    ("compose_permutations", ([1, 0], [0, 2, 1]), ValueError, r"expected two permutations of the same length, got "
                                                             r"\(2,\) and \(3,\)"),
])
def test_permutation_helpers_refuse_non_permutations(fn, args, error, message):
    with pytest.raises(error, match=rf"flow.{fn}: {message}"):
        getattr(flow, fn)(*args)


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


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(lr=float("nan")), ValueError, r"SGD: expected lr, momentum, weight_decay >= 0 and finite, got nan"),
    (dict(momentum=float("inf")), ValueError, r"SGD: .*finite, got 0.1, inf"),
    (dict(weight_decay=-1e-4), ValueError, r"SGD: .*finite, got 0.1, 0.9, -0.0001"),
    (dict(lr="0.1"), TypeError, r"SGD: expected lr to be a number, got '0.1'"),
])
def test_sgd_refuses_bad_hyperparameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        SGD([Parameter(np.zeros(3))], **kwargs)


def test_batches_refuse_a_bad_batch_size_or_mismatched_labels():
    with pytest.raises(ValueError, match=r"batches: expected batch_size >= 1, got 0"):
        next(batches(np.zeros((4, 2)), np.zeros(4), 0))
    with pytest.raises(ValueError, match=r"batches: expected as many labels as images, got 4 images and 3 labels"):
        next(batches(np.zeros((4, 2)), np.zeros(3), 2))


@pytest.mark.parametrize("args, error, message", [
    ((3, 3), ValueError, r"GroupReadout: expected group in \[0, 3\), got 3"),
    ((-1, 3), ValueError, r"GroupReadout: expected group >= 0, got -1"),
    ((0, 0), ValueError, r"GroupReadout: expected groups >= 1, got 0"),
    ((0.0, 3), TypeError, r"GroupReadout: expected group to be an integer, got 0.0"),
])
def test_group_readout_refuses_bad_groups(args, error, message):
    with pytest.raises(error, match=message):
        GroupReadout(*args)


def test_group_readout_refuses_indivisible_channels():
    with pytest.raises(ValueError, match=r"GroupReadout: expected channels divisible by groups=3, got 7"):
        GroupReadout(0, 3).forward(np.zeros((1, 7, 2, 2)))


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
