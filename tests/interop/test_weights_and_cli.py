"""The command line and weight files."""

import subprocess
import sys

import numpy as np
import pytest

from numpy_shufflenet.cli import main
from numpy_shufflenet.models import ShuffleNet
from numpy_shufflenet.interop.weights import load_weights
from numpy_shufflenet.training.runs import save_weights


def test_table1_command_prints_paper_and_released_figures(capsys):
    assert main(["table1"]) == 0
    out = capsys.readouterr().out
    for g, conv_only, paper in [(1, "142.50", "143="), (3, "136.50", "137="), (8, "136.83", "137=")]:
        assert conv_only in out and paper in out
    assert "137.46" in out and "524.05" in out and "conv" in out.lower()
    assert "!" not in out.split("Released")[0]           # every Table 1 row matches the paper


def test_summary_command(capsys):
    assert main(["summary", "--groups", "3", "--scale", "1.0", "--input-size", "224"]) == 0
    out = capsys.readouterr().out
    assert "137,460,672" in out and "1,864,728" in out and "stage3.7.branch.conv3" in out


def test_summary_command_rejects_small_input(capsys):
    assert main(["summary", "--input-size", "16"]) == 2
    assert "at least 32x32" in capsys.readouterr().err


def test_module_runs_as_a_program():
    done = subprocess.run([sys.executable, "-m", "numpy_shufflenet", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "table1" in done.stdout and "summary" in done.stdout


def _tiny(num_classes=5, seed=0):
    return ShuffleNet(groups=2, scale=0.25, num_classes=num_classes, rng=np.random.default_rng(seed))


def test_weights_round_trip(tmp_path):
    a, b = _tiny(seed=0), _tiny(seed=1)
    a(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))   # move running stats
    save_weights(a, tmp_path / "w.npz")
    load_weights(b, tmp_path / "w.npz")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(x, y, err_msg=name)
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(a.eval()(x), b.eval()(x))


def test_weights_wrong_shape_missing_or_unexpected(tmp_path):
    save_weights(_tiny(num_classes=5), tmp_path / "w.npz")
    with pytest.raises(ValueError, match=r"expected fc.weight of shape \(6, 224\), got \(5, 224\)"):
        load_weights(_tiny(num_classes=6), tmp_path / "w.npz")
    state = _tiny().state_dict()
    del state["stage3.1.branch.conv1.weight"]
    state["extra.weight"] = np.zeros(3, dtype=np.float32)
    np.savez(tmp_path / "bad.npz", **state)
    with pytest.raises(ValueError, match=r"missing \['stage3.1.branch.conv1.weight'\], unexpected \['extra.weight'\]"):
        load_weights(_tiny(), tmp_path / "bad.npz")


def test_weights_refuse_pickles_and_junk(tmp_path):
    state = _tiny().state_dict()
    state["fc.weight"] = np.array([{"evil": 1}], dtype=object)
    np.savez(tmp_path / "pickle.npz", **state)
    with pytest.raises(ValueError, match=r"pickled"):
        load_weights(_tiny(), tmp_path / "pickle.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(ValueError, match=r"not a .npz"):
        load_weights(_tiny(), tmp_path / "junk.npz")
