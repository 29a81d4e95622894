"""numpy_shufflenet.interop: PyTorch checkpoints in without torch, the two published layouts both ways.

Without torch: the small committed checkpoints of ``tests/fixtures`` (made once by
``tests/fixtures/make_interop_checkpoints.py``) load and give PyTorch's stored logits; a pickle that would run
``os.system`` is refused before anything runs; truncated, oversized and garbled files are clear ``ValueError``\\ s.
With torch (skipped without it): the authors' and mmpretrain's networks rebuilt from their published structure
(``tests/fixtures/torch_shufflenet_v1.py``), random weights both ways, logits, ``dx`` and every parameter
gradient equal to 1e-10 in float64.
"""

import importlib.util
import json
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from numpy_shufflenet import ShuffleNet, ShuffleUnit
from numpy_shufflenet.cli import main
from numpy_shufflenet.gradcheck import check_module, rel_error
from numpy_shufflenet.interop import (CheckpointRefusedError, from_mmpretrain, from_official, load_checkpoint,
                                      to_torch_state_dict)
from numpy_shufflenet.interop.imagenet import (MMPRETRAIN_MEAN, MMPRETRAIN_STD, imagenet_classes,
                                               preprocess, resize)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EXPECTED = json.loads((FIXTURES / "interop_expected.json").read_text())
NETWORKS = {"official": ("shufflenet_official.pth.tar", from_official),
            "mmpretrain": ("shufflenet_mmpretrain.pth", from_mmpretrain)}
SAME = 1e-10
_worst = {}          # "direction quantity" -> worst relative error, printed at the end of the module


def fixture_input():
    """The input the fixture script used (computed, not stored)."""
    shape = (2, 3, 32, 32)
    return np.sin(0.37 * np.arange(np.prod(shape))).reshape(shape) * 2.0


def record(name, a, b, tol=SAME):
    err = rel_error(a, b)
    _worst[name] = max(_worst.get(name, 0.0), err)
    assert err < tol, f"{name}: relative error {err:.2e} >= {tol:.0e}"


@pytest.fixture(scope="module", autouse=True)
def print_worst_errors():
    yield
    if _worst:
        print("\ninterop: worst relative error (max|a - b| / (max|a| + max|b|))")
        for name, err in sorted(_worst.items()):
            print(f"  {name:45s} {err:.1e}")


# --------------------------------------------------------------------------------------------------------------
# Reading checkpoints
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", NETWORKS)
def test_fixture_networks_give_pytorchs_logits(layout):
    name, convert = NETWORKS[layout]
    checkpoint = load_checkpoint(FIXTURES / name)
    model = convert(checkpoint, dtype=np.float64)
    assert (model.groups, model.widths, model.num_classes) == (3, (6, 12, 24, 48), 10)
    assert model.shuffle_order == ("official" if layout == "official" else "paper")
    assert not model.training
    record(f"fixture {layout} logits", model(fixture_input()), np.array(EXPECTED[f"logits_{layout}"]))
    if layout == "mmpretrain":
        assert checkpoint["meta"]["CLASSES"][:2] == ("class 0", "class 1")
    else:
        assert all(k.startswith("module.") for k in checkpoint["state_dict"])


@pytest.mark.parametrize("name", ["tensors_zip.pth", "tensors_legacy.pth"])
def test_tensors_of_every_dtype_with_strides_and_offsets(name):
    saved = load_checkpoint(FIXTURES / name)
    assert saved["extras"] == {"size": (2, 3), "dtype": "torch.float16", "bytes": b"\x00\xff", "set": {1, 2},
                               "bytearray": bytearray(b"ab"), "complex": 1 + 2j,
                               "nested": [1, 2.5, None, (True, "x")]}
    np.testing.assert_array_equal(saved["parameter"], np.ones(2, np.float32))
    tensors = saved["tensors"]
    assert list(tensors) == list(EXPECTED["tensors"])
    for key, want in EXPECTED["tensors"].items():
        got = tensors[key]
        assert isinstance(got, np.ndarray) and got.flags.c_contiguous and got.flags.writeable, key
        assert (str(got.dtype), list(got.shape)) == (want["dtype"], want["shape"]), key
        np.testing.assert_array_equal(got.astype(np.float64).ravel(), want["values"], err_msg=key)


def _primitive(value):
    """The opcodes pickling ``value`` (protocol 2), without PROTO and STOP."""
    return pickle.dumps(value, protocol=2)[2:-1]


def _tensor_pickle(numel, size, stride, storage="FloatStorage"):
    """A hand-written pickle of one tensor, as torch.save's zip format writes it: {'w': tensor}."""
    persistent_id = (b"(" + _primitive("storage") + f"ctorch\n{storage}\n".encode() + _primitive("0")
                     + _primitive("cpu") + _primitive(numel) + b"tQ")
    return (b"\x80\x02}" + _primitive("w") + b"ctorch._utils\n_rebuild_tensor_v2\n(" + persistent_id
            + _primitive(0) + _primitive(tuple(size)) + _primitive(tuple(stride)) + b"\x89"
            + b"ccollections\nOrderedDict\n)RtRs.")


def _write_zip(path, data_pkl, storages=()):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", "little")
        for key, raw in storages:
            archive.writestr(f"archive/data/{key}", raw)
    return path


def _write_legacy(path, obj_pickle, tail=b""):
    header = b"".join(pickle.dumps(v, protocol=2) for v in
                      (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}))
    path.write_bytes(header + obj_pickle + tail)
    return path


def test_hand_written_tensor_pickle_loads(tmp_path):
    """The test's own pickle writer is right (so the refusals below are refusals of the content, not of it)."""
    raw = np.arange(6, dtype="<f4").tobytes()
    got = load_checkpoint(_write_zip(tmp_path / "ok.pth", _tensor_pickle(6, (3, 2), (1, 3)), [("0", raw)]))
    np.testing.assert_array_equal(got["w"], np.arange(6, dtype=np.float32).reshape(2, 3).T)


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    command = f"touch {marker}"
    evil = b"\x80\x02cos\nsystem\n" + _primitive(command) + b"\x85R."        # os.system(command)
    files = [_write_zip(tmp_path / "evil.pth", evil), _write_legacy(tmp_path / "evil_legacy.pth", evil),
             tmp_path / "evil_first.pth"]
    files[2].write_bytes(evil)                                # in place of the legacy magic number
    for path in files:
        with pytest.raises(CheckpointRefusedError,
                           match=rf"{path.name}: refused: the file asks for the global 'os.system'"):
            load_checkpoint(path)
        assert not marker.exists(), f"{path.name}: the pickled command ran"
    with pytest.raises(CheckpointRefusedError) as info:
        load_checkpoint(files[0])
    print(f"\nrefused: {info.value}")
    module = b"\x80\x02ctorch.nn.modules.conv\nConv2d\n)\x81."      # a whole pickled module object
    with pytest.raises(CheckpointRefusedError, match="torch.nn.modules.conv.Conv2d"):
        load_checkpoint(_write_zip(tmp_path / "module.pth", module))


@pytest.mark.parametrize("opcodes", [
    b"ctorch._utils\n_rebuild_tensor_v2\nN}X\x02\x00\x00\x00fnK\x01s\x86b.",     # BUILD: re-point a function
    b"ccollections\nOrderedDict\n}X\x03\x00\x00\x00fooK\x01sb.",                  # BUILD on the class itself
    b"ctorch\nFloatStorage\n)\x81.",                                                 # NEWOBJ of a storage type
], ids=["re-point function", "patch OrderedDict", "instantiate storage type"])
def test_allowed_globals_cannot_be_changed_or_misused(tmp_path, opcodes):
    path = _write_zip(tmp_path / "sneaky.pth", b"\x80\x02" + opcodes)
    with pytest.raises(ValueError, match="^load_checkpoint: .*sneaky.pth: the pickle inside is broken"):
        load_checkpoint(path)
    assert load_checkpoint(FIXTURES / "tensors_zip.pth")["tensors"]["int64_scalar"] == 7      # still works


def test_broken_files_are_clear_errors(tmp_path):
    legacy = (FIXTURES / "shufflenet_official.pth.tar").read_bytes()
    zipped = (FIXTURES / "shufflenet_mmpretrain.pth").read_bytes()
    cases = {
        "truncated legacy": (legacy[:-1000], "truncated"),
        "truncated zip": (zipped[:len(zipped) // 2], "broken zip"),
        "empty": (b"", "neither a zip nor a legacy"),
        "garbled": (bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8)), "neither"),
        "garbled pickle": (b"\x80\x02" + legacy[200:4000], "broken|expected"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / name.replace(" ", "_")
        path.write_bytes(data)
        with pytest.raises(ValueError, match=f"^load_checkpoint: .*({message})"):
            load_checkpoint(path)
    raw = np.zeros(6, dtype="<f4").tobytes()
    oversized = {
        "storage larger than its record": (_tensor_pickle(10**12, (10**12,), (1,)), [("0", raw)],
                                           "expected record data/0 to hold 4000000000000"),
        "tensor outside its storage": (_tensor_pickle(6, (4, 2), (2, 1)), [("0", raw)], "reaches element 7"),
        "stride-0 expansion": (_tensor_pickle(6, (10**6, 10**6), (0, 0)), [("0", raw)], "claim"),
        "missing storage record": (_tensor_pickle(6, (6,), (1,)), [], "record archive/data/0 is missing"),
        "not a tensor dtype": (_tensor_pickle(6, (6,), (1,), storage="QInt8Storage"), [("0", raw)],
                               "torch.QInt8Storage"),
    }
    for name, (data_pkl, storages, message) in oversized.items():
        path = _write_zip(tmp_path / f"{name.replace(' ', '_')}.pth", data_pkl, storages)
        with pytest.raises(ValueError, match=message):
            load_checkpoint(path)
    counted = _write_legacy(tmp_path / "count.pth", _tensor_pickle(6, (6,), (1,)).replace(b"tQ", b"NtQ"),
                            pickle.dumps(["0"], protocol=2) + struct.pack("<q", 7) + raw)
    with pytest.raises(ValueError, match="declared with 6 elements but stored with 7"):
        load_checkpoint(counted)
    with pytest.raises(ValueError, match="not a file"):
        load_checkpoint(tmp_path)


# --------------------------------------------------------------------------------------------------------------
# Layouts
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", NETWORKS)
def test_round_trip_returns_the_checkpoint_exactly(layout):
    name, convert = NETWORKS[layout]
    state = {k.removeprefix("module."): v for k, v in load_checkpoint(FIXTURES / name)["state_dict"].items()}
    back = to_torch_state_dict(convert(state, dtype=np.float64), layout)
    assert list(back) == list(state)
    for key, value in state.items():
        np.testing.assert_array_equal(back[key], value, err_msg=key)


def test_layout_mismatches_are_clear_errors():
    state = load_checkpoint(FIXTURES / "shufflenet_official.pth.tar")
    with pytest.raises(ValueError, match="from_mmpretrain: expected 16 ShuffleNet units"):
        from_mmpretrain(state)
    extra = dict(state["state_dict"], **{"module.features.0.extra": np.zeros(1, np.float32)})
    with pytest.raises(ValueError, match="features.0.extra"):
        from_official(extra)
    wrong = dict(state["state_dict"])
    wrong["module.features.3.branch_main_1.3.weight"] = np.zeros((4, 1, 3, 3), np.float32)
    shapes = r"features.3.branch_main_1.3.weight' of shape \(3, 1, 3, 3\).*got \(4, 1, 3, 3\)"
    with pytest.raises(ValueError, match=shapes):
        from_official(wrong)
    paper = ShuffleNet(3, widths=(6, 12, 24, 48), num_classes=10, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="needs shuffle_order='official'"):
        to_torch_state_dict(paper, "official")
    with pytest.raises(ValueError, match="needs shuffle_order='paper'"):
        to_torch_state_dict(from_official(state), "mmpretrain")
    with pytest.raises(ValueError, match="shuffle_order"):
        ShuffleUnit(12, 12, groups=3, stride=1, shuffle_order="random")


def test_official_order_is_the_authors_unit_and_the_default_is_unchanged():
    default = ShuffleUnit(24, 24, groups=3, stride=1)
    official = ShuffleUnit(24, 24, groups=3, stride=1, shuffle_order="official")
    assert default.branch.names == ["conv1", "bn1", "shuffle", "conv2", "bn2", "conv3", "bn3"]
    assert official.branch.names == ["conv1", "bn1", "conv2", "bn2", "shuffle", "conv3", "bn3"]
    assert official.branch.shuffle.groups == 2 and default.branch.shuffle.groups == 3     # mid // g = 6 // 3


def test_official_order_unit_gradients_are_numeric_gradients():
    rng, stride = np.random.default_rng(2), 2                # stride 2: the branch, the pooled shortcut, concat
    unit = ShuffleUnit(24 if stride == 1 else 12, 24, groups=3, stride=stride, shuffle_order="official",
                       rng=rng, dtype=np.float64)          # bottleneck 6: the two orders differ (6 // 3 != 3)
    x = np.abs(rng.standard_normal((2, unit.in_channels, 4, 4))) + 0.1     # the output of a ReLU, as in a net
    results = check_module(unit, x, rng=rng, verbose=False)
    assert all(results), [str(r) for r in results if not r]


def test_preprocessing_of_each_source():
    image = np.empty((300, 400, 3))
    image[...] = (10.0, 20.0, 30.0)                          # RGB
    official, mm = preprocess(image, "official"), preprocess(image, "mmpretrain")
    assert official.shape == mm.shape == (1, 3, 224, 224) and official.dtype == np.float32
    np.testing.assert_array_equal(official[0, :, 0, 0], [30, 20, 10])            # BGR, 0..255, no normalisation
    np.testing.assert_allclose(mm[0, :, 0, 0], (np.array([10, 20, 30]) - MMPRETRAIN_MEAN) / MMPRETRAIN_STD,
                               rtol=1e-6)
    ramp = np.repeat(np.arange(400.0)[None, :, None] * 255 / 399, 300, axis=0).repeat(3, axis=2)
    crop = preprocess(ramp, "official")[0, 0]                # short side 300 -> 256, long 400 -> 341, crop 224
    assert abs(crop[0, 0] - round(255 * (341 - 224) / 2 / 340)) <= 2 and abs(crop[0, -1] - crop[0, 0] - 167) <= 3


def test_convert_and_predict_commands(tmp_path, capsys):
    import matplotlib.image

    out = tmp_path / "w.npz"
    assert main(["convert", str(FIXTURES / "shufflenet_mmpretrain.pth"), "--out", str(out)]) == 0
    assert "mmpretrain ShuffleNet v1, g=3, widths (6, 12, 24, 48), 10 classes" in capsys.readouterr().out
    image = tmp_path / "photo.png"
    matplotlib.image.imsave(image, np.random.default_rng(0).random((40, 60, 3)))
    assert main(["predict", "--weights", str(out), str(image), "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(image) and len(lines) == 4 and all("class " in line for line in lines[1:])
    out.with_suffix(".json").unlink()
    assert main(["predict", "--weights", str(out), str(image)]) == 2
    assert "expected" in capsys.readouterr().err and len(imagenet_classes()) == 1000


# --------------------------------------------------------------------------------------------------------------
# Against PyTorch (skipped without it)
# --------------------------------------------------------------------------------------------------------------
def _torch_reference():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)          # tiny tensors: more threads only spin against our own on a shared machine
    spec = importlib.util.spec_from_file_location("torch_shufflenet_v1", FIXTURES / "torch_shufflenet_v1.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return torch, module


def _grads_as_torch_state(model, layout):
    """Our parameter gradients under the layout's names and channel order (permutations act on gradients as on
    weights), via a copy of the model whose parameter values are the gradients."""
    grads = {name: p.grad for name, p in model.named_parameters()}
    copy = ShuffleNet(model.groups, widths=model.widths, num_classes=model.num_classes,
                      shuffle_order=model.shuffle_order, fc_bias=model.fc.bias is not None, dtype=np.float64)
    copy.load_state_dict(dict(model.state_dict(), **grads))
    return to_torch_state_dict(copy, layout)


@pytest.mark.parametrize("layout", NETWORKS)
def test_same_function_and_gradients_as_pytorch_both_ways(layout):
    torch, ref = _torch_reference()
    cls = ref.OfficialShuffleNetV1 if layout == "official" else ref.MMPretrainShuffleNetV1
    convert = NETWORKS[layout][1]
    widths, rng = (6, 24, 48, 96), np.random.default_rng(1)
    theirs = ref.randomize(cls(widths, 3, 10), torch.Generator().manual_seed(1)).double()
    x = rng.standard_normal((2, 3, 64, 64))

    # torch -> ours: eval-mode logits
    ours = convert({"state_dict": {f"module.{k}": v.numpy() for k, v in theirs.state_dict().items()}},
                   dtype=np.float64)
    with torch.no_grad():
        record(f"torch->ours {layout} eval logits", ours(x), theirs.eval()(torch.from_numpy(x)).numpy())

    # training mode (batch statistics): logits, dx, every parameter gradient, updated running statistics
    ours.train(), theirs.train()
    tx = torch.tensor(x, requires_grad=True)
    t_logits = theirs(tx)
    dout = rng.standard_normal(t_logits.shape)
    t_logits.backward(torch.from_numpy(dout))
    record(f"torch->ours {layout} train logits", ours(x), t_logits.detach().numpy())
    record(f"torch->ours {layout} dx", ours.backward(dout), tx.grad.numpy())
    t_grads = {name: p.grad.numpy() for name, p in theirs.named_parameters()}
    o_grads = _grads_as_torch_state(ours, layout)
    floor = 1e-9 * max(np.abs(g).max() for g in t_grads.values())
    for name, grad in t_grads.items():
        if np.abs(grad).max() < floor:      # exactly 0 but for rounding: a BN's beta before a train-mode BN
            assert np.abs(o_grads[name]).max() < floor, name
        else:
            record(f"torch->ours {layout} parameter gradients", o_grads[name], grad)
    after = to_torch_state_dict(ours, layout)
    for name, value in theirs.state_dict().items():
        if name.endswith(("running_mean", "running_var")):
            record(f"torch->ours {layout} running statistics", after[name], value.numpy())

    # ours -> torch: a fresh random network of ours, loaded strictly into the reference
    mine = ShuffleNet(3, widths=widths, num_classes=10, shuffle_order=ours.shuffle_order,
                      fc_bias=layout == "mmpretrain", rng=rng, dtype=np.float64)
    for _, module in mine.named_modules():
        if hasattr(module, "running_var"):
            module.running_mean, module.running_var = rng.normal(0, 0.1, module.num_features), \
                rng.uniform(0.5, 1.5, module.num_features)
    fresh = cls(widths, 3, 10).double().eval()
    fresh.load_state_dict({k: torch.from_numpy(v) for k, v in to_torch_state_dict(mine, layout).items()})
    with torch.no_grad():
        record(f"ours->torch {layout} eval logits", mine.eval()(x), fresh(torch.from_numpy(x)).numpy())


def test_resize_matches_opencv_and_pillow_conventions():
    """OpenCV's INTER_LINEAR and Pillow's bilinear are PyTorch's bilinear interpolation without and with
    anti-aliasing (half-pixel centres); ours agrees up to the rounding to whole grey levels."""
    torch, _ = _torch_reference()
    image = np.random.default_rng(2).integers(0, 256, (75, 103, 3)).astype(np.float64)
    for (h, w), antialias in (((32, 45), False), ((32, 45), True), ((150, 200), False), ((150, 200), True)):
        want = torch.nn.functional.interpolate(torch.from_numpy(image.transpose(2, 0, 1)[None]), size=(h, w),
                                               mode="bilinear", align_corners=False, antialias=antialias)
        want = want[0].numpy().transpose(1, 2, 0)
        assert np.abs(resize(image, h, w, antialias=antialias) - want).max() <= 0.5 + 1e-9
