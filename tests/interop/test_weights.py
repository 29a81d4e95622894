"""Weight files (``interop.weights``): a round trip, and every broken file refused member by member, before
decompression, with nothing half-loaded.

Every case asserts the exception type, the file entry it names, and the offending value. Files are untrusted: a
broken one must be a clear ``ValueError`` before anything large is allocated and before anything is copied into
the model (checked by comparing the model's state before and after).
"""

import io
import re
import zipfile

import numpy as np
import pytest

from numpy_shufflenet.interop.weights import load_weights, save_weights
from numpy_shufflenet.models import ShuffleNet

from conftest import npy_bytes, spoil, write_npz


def tiny_net(num_classes=5, seed=0):
    """A 0.25x ShuffleNet with 2 groups (``fc.weight`` of shape (5, 224) by default)."""
    return ShuffleNet(groups=2, scale=0.25, num_classes=num_classes, rng=np.random.default_rng(seed))


def npy_header(shape, dtype="<f4"):
    """The bytes of a .npy header that claims ``shape`` (no data follows)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


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



def test_weights_round_trip(tmp_path):
    a, b = tiny_net(seed=0), tiny_net(seed=1)
    a(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))   # move running stats
    save_weights(a, tmp_path / "w.npz")
    load_weights(b, tmp_path / "w.npz")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(x, y, err_msg=name)
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(a.eval()(x), b.eval()(x))


def test_weights_wrong_shape_missing_or_unexpected(tmp_path):
    save_weights(tiny_net(num_classes=5), tmp_path / "w.npz")
    with pytest.raises(ValueError, match=r"expected fc.weight of shape \(6, 224\), got \(5, 224\)"):
        load_weights(tiny_net(num_classes=6), tmp_path / "w.npz")
    state = tiny_net().state_dict()
    del state["stage3.1.branch.conv1.weight"]
    state["extra.weight"] = np.zeros(3, dtype=np.float32)
    np.savez(tmp_path / "bad.npz", **state)
    with pytest.raises(ValueError, match=r"missing \['stage3.1.branch.conv1.weight'\], unexpected \['extra.weight'\]"):
        load_weights(tiny_net(), tmp_path / "bad.npz")


def test_weights_refuse_pickles_and_junk(tmp_path):
    state = tiny_net().state_dict()
    state["fc.weight"] = np.array([{"evil": 1}], dtype=object)
    np.savez(tmp_path / "pickle.npz", **state)
    with pytest.raises(ValueError, match=r"pickled"):
        load_weights(tiny_net(), tmp_path / "pickle.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(ValueError, match=r"not a .npz"):
        load_weights(tiny_net(), tmp_path / "junk.npz")


@pytest.mark.parametrize("where, message", [
    ("missing/w.npz", "expected {path} in an existing folder, got the folder {folder}, which does not exist"),
    ("notes.txt/w.npz", "expected {path} in an existing folder, got the folder {folder}, which is a file"),
])
def test_save_weights_into_a_missing_folder_or_a_file_is_refused(where, message, tmp_path):
    (tmp_path / "notes.txt").write_text("not a folder")
    path = tmp_path / where
    with pytest.raises(ValueError, match=re.escape(f"save_weights: {message}".format(path=path, folder=path.parent))):
        save_weights(tiny_net(), path)
    assert not (tmp_path / "missing").exists()


def test_save_weights_into_a_folder_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match=re.escape(f"save_weights: expected a file name, got {tmp_path}, which is "
                                                   f"a folder")):
        save_weights(tiny_net(), tmp_path)


def test_save_weights_to_an_open_file_still_works(tmp_path):
    with open(tmp_path / "w.npz", "wb") as f:
        save_weights(tiny_net(), f)
    np.testing.assert_array_equal(load_weights(tiny_net(seed=1), tmp_path / "w.npz").state_dict()["fc.weight"],
                                  tiny_net().state_dict()["fc.weight"])
