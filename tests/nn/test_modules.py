"""The modules of numpy_shufflenet.nn: parameters and their names, fresh gradients, train/eval, state dicts,
dtypes, shapes, and a gradient check of a small network holding one layer of every kind."""

import numpy as np
import pytest

from numpy_shufflenet import nn
from numpy_shufflenet.gradcheck import check_module

from conftest import assert_same


def randomize_batchnorm(net, rng):
    """Random gamma/beta and running statistics in every BatchNorm2d.

    Needed for a meaningful check: with beta = 0 a BN -> ReLU -> depthwise -> BN chain makes gamma's gradient
    structurally ~0, and a gradient that is ~0 on both sides cannot be checked.
    """
    for _, m in net.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            C = m.num_features
            dtype = m.weight.dtype
            m.weight.data = rng.uniform(0.5, 1.5, C).astype(dtype)
            m.bias.data = rng.standard_normal(C).astype(dtype)
            m.running_mean = rng.standard_normal(C).astype(dtype)
            m.running_var = rng.uniform(0.5, 2.0, C).astype(dtype)
    return net


def small_net(seed=0, dtype=np.float64):
    """One module of every kind, in a ShuffleNet-like order. Input (N, 6, 6, 6) -> output (N, 3)."""
    rng = np.random.default_rng(seed)
    net = nn.Sequential(
        nn.Conv2d(6, 6, 1, groups=3, rng=rng),                              # 0  pointwise group conv
        nn.BatchNorm2d(6),                                                  # 1
        nn.ReLU(),                                                          # 2
        nn.ChannelShuffle(3),                                               # 3
        nn.Conv2d(6, 6, 3, padding=1, groups=6, rng=rng),                   # 4  depthwise 3x3 (*)
        nn.BatchNorm2d(6),                                                  # 5
        nn.MaxPool2d(3, stride=2, padding=1),                               # 6  6x6 -> 3x3
        nn.Conv2d(6, 4, 3, padding=1, bias=True, rng=rng),                  # 7  dense 3x3
        nn.AvgPool2d(2),                                                    # 8  3x3 -> 1x1
        nn.GlobalAvgPool2d(),                                               # 9
        nn.Linear(4, 3, rng=rng),                                           # 10
    ).to(dtype)
    # (*) no bias before a batch norm: in training mode the batch norm subtracts it again, so its gradient is
    #     exactly 0 and a gradient check of it is vacuous
    return randomize_batchnorm(net, rng)


EXPECTED_PARAMETER_NAMES = ["0.weight", "1.weight", "1.bias", "4.weight", "5.weight", "5.bias", "7.weight",
                            "7.bias", "10.weight", "10.bias"]


# --------------------------------------------------------------------------------------------------------------
# parameters and their names
# --------------------------------------------------------------------------------------------------------------
def test_named_parameters_order_and_names():
    net = small_net()
    names = [name for name, _ in net.named_parameters()]
    assert names == EXPECTED_PARAMETER_NAMES
    assert [p for _, p in net.named_parameters()] == net.parameters()
    shapes = {name: p.shape for name, p in net.named_parameters()}
    assert shapes["0.weight"] == (6, 2, 1, 1)            # (C_out, C_in // groups, KH, KW)
    assert shapes["4.weight"] == (6, 1, 3, 3)            # depthwise
    assert shapes["10.weight"] == (3, 4)                 # (F_out, F_in)


def test_nested_sequential_names():
    net = nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)), nn.ReLU(), nn.Linear(4, 2))
    assert [n for n, _ in net.named_parameters()] == ["0.0.weight", "0.1.weight", "0.1.bias", "2.weight",
                                                      "2.bias"]
    assert [n for n, *_ in net.named_buffers()] == ["0.1.running_mean", "0.1.running_var"]


def test_constructor_defaults_and_reproducible_init():
    conv = nn.Conv2d(4, 8, 3, rng=np.random.default_rng(5))
    assert conv.bias is None and [n for n, _ in conv.named_parameters()] == ["weight"]
    assert conv.weight.dtype == np.float32 and conv.weight.grad is None
    again = nn.Conv2d(4, 8, 3, rng=np.random.default_rng(5))
    assert np.array_equal(conv.weight.data, again.weight.data)
    lin = nn.Linear(4, 2)
    assert lin.bias is not None and np.all(lin.bias.data == 0)
    bn = nn.BatchNorm2d(3)
    assert np.all(bn.weight.data == 1) and np.all(bn.bias.data == 0)
    assert np.all(bn.running_mean == 0) and np.all(bn.running_var == 1)


def test_he_init_scale():
    # w ~ N(0, 2 / fan_in), fan_in = in_channels // groups * KH * KW: 64 * 9 = 576 for the dense conv, 9 depthwise
    dense = nn.Conv2d(64, 256, 3, rng=np.random.default_rng(1))
    depthwise = nn.Conv2d(256, 256, 3, groups=256, rng=np.random.default_rng(2))
    assert dense.weight.data.std() == pytest.approx(np.sqrt(2 / 576), rel=0.03)
    assert depthwise.weight.data.std() == pytest.approx(np.sqrt(2 / 9), rel=0.05)


# --------------------------------------------------------------------------------------------------------------
# backward writes fresh gradients
# --------------------------------------------------------------------------------------------------------------
def test_backward_twice_gives_the_same_grad_no_accumulation(rng):
    net = small_net()
    x = rng.standard_normal((2, 6, 6, 6))
    out = net(x)
    dout = rng.standard_normal(out.shape)
    dx1 = net.backward(dout)
    first = {name: p.grad.copy() for name, p in net.named_parameters()}
    dx2 = net.backward(dout)
    assert_same(dx1, dx2)
    for name, p in net.named_parameters():
        assert_same(p.grad, first[name])                 # not 2x: nothing accumulates
    net.backward(3 * dout)                                # a new dout replaces the gradient, it is not added
    for name, p in net.named_parameters():
        assert_same(p.grad, 3 * first[name])
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_call_is_forward(rng):
    net = small_net()
    x = rng.standard_normal((2, 6, 6, 6))
    assert np.array_equal(net(x), net.forward(x))


# --------------------------------------------------------------------------------------------------------------
# train / eval
# --------------------------------------------------------------------------------------------------------------
def test_train_and_eval_switch_batchnorm(rng):
    bn = nn.BatchNorm2d(3).to(np.float64)
    x = 5 * rng.standard_normal((4, 3, 5, 5)) + 12
    out_train = bn(x)                                    # batch statistics: mean 0 per channel
    np.testing.assert_allclose(out_train.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    running = bn.running_mean.copy(), bn.running_var.copy()
    assert not np.allclose(running[0], 0)                # training updated the running statistics

    assert bn.eval() is bn and not bn.training
    out_eval = bn(x)                                     # running statistics
    assert_same(out_eval, (x - running[0][:, None, None]) / np.sqrt(running[1][:, None, None] + bn.eps))
    assert np.array_equal(bn.running_mean, running[0])   # and eval leaves them alone
    assert np.array_equal(bn.running_var, running[1])

    assert bn.train() is bn and bn.training
    assert_same(bn(x), out_train)


def test_train_eval_reach_every_submodule():
    net = small_net()
    net.eval()
    assert all(not m.training for _, m in net.named_modules())
    net.train()
    assert all(m.training for _, m in net.named_modules())


# --------------------------------------------------------------------------------------------------------------
# state dicts
# --------------------------------------------------------------------------------------------------------------
def test_state_dict_names_include_running_statistics():
    state = small_net().state_dict()
    buffers = ["1.running_mean", "1.running_var", "5.running_mean", "5.running_var"]
    assert sorted(state) == sorted(EXPECTED_PARAMETER_NAMES + buffers)


def test_state_dict_round_trip(rng):
    source, target = small_net(seed=1), small_net(seed=2)
    x = rng.standard_normal((2, 6, 6, 6))
    source(x)                                            # move the running statistics away from their init
    state = source.state_dict()
    target.load_state_dict(state)
    for name, value in target.state_dict().items():
        assert np.array_equal(value, state[name]), name
    for mode in ("train", "eval"):
        getattr(source, mode)(), getattr(target, mode)()
        assert np.array_equal(source(x), target(x))


def test_state_dict_holds_copies(rng):
    net = small_net()
    state = net.state_dict()
    state["0.weight"][...] = 0
    state["1.running_mean"][...] = 99
    assert not np.all(net[0].weight.data == 0)
    assert not np.any(net[1].running_mean == 99)
    fresh = small_net(seed=3).state_dict()
    net.load_state_dict(fresh)
    fresh["0.weight"][...] = 0                           # loading copied too
    assert not np.all(net[0].weight.data == 0)


# --------------------------------------------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------------------------------------------
def test_to_float64_casts_parameters_and_buffers():
    net = small_net(dtype=np.float32)
    assert all(p.dtype == np.float32 for p in net.parameters())
    assert net.to(np.float64) is net
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert all(getattr(m, name).dtype == np.float64 for _, m, name in net.named_buffers())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_module_dtype_in_is_dtype_out(rng, dtype):
    net = small_net(dtype=dtype)
    x = rng.standard_normal((2, 6, 6, 6)).astype(dtype)
    out = net(x)
    dx = net.backward(np.ones_like(out))
    assert out.dtype == dtype and dx.dtype == dtype
    assert all(p.grad.dtype == dtype for p in net.parameters())
    assert all(getattr(m, name).dtype == dtype for _, m, name in net.named_buffers())


# --------------------------------------------------------------------------------------------------------------
# shapes
# --------------------------------------------------------------------------------------------------------------
def test_output_shape_matches_forward(rng):
    net = small_net()
    x = rng.standard_normal((2, 6, 6, 6))
    assert net.output_shape((6, 6, 6)) == (3,)
    rows = list(net.shape_trace((6, 6, 6)))
    assert [name for name, *_ in rows] == [str(i) for i in range(len(net))]
    for (name, layer, in_shape, out_shape), module in zip(rows, net):
        assert layer is module
        assert in_shape == x.shape[1:], name
        x = module(x)
        assert out_shape == x.shape[1:], name


@pytest.mark.parametrize("module, in_shape", [
    (nn.Conv2d(6, 4, (3, 2), stride=(2, 1), padding=(1, 0), groups=2), (6, 7, 5)),
    (nn.Conv2d(3, 24, 3, stride=2, padding=1), (3, 15, 15)),
    (nn.MaxPool2d(3, stride=2, padding=1), (4, 7, 5)),
    (nn.AvgPool2d(3, stride=2, padding=1), (4, 7, 5)),
    (nn.AvgPool2d(2), (4, 7, 5)),
    (nn.BatchNorm2d(4), (4, 3, 3)),
    (nn.ChannelShuffle(2), (4, 3, 3)),
    (nn.ReLU(), (4, 3, 3)),
    (nn.GlobalAvgPool2d(), (4, 3, 3)),
    (nn.Linear(5, 2), (5,)),
], ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else None)
def test_leaf_output_shape_matches_forward(rng, module, in_shape):
    out = module(rng.standard_normal((2,) + in_shape).astype(np.float32))
    assert module.output_shape(in_shape) == out.shape[1:]


# --------------------------------------------------------------------------------------------------------------
# a gradient check of the whole small network
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_check_module_on_every_layer_kind(rng, mode):
    net = small_net()
    getattr(net, mode)()
    x = rng.standard_normal((2, 6, 6, 6))
    buffers = {name: getattr(m, attr).copy() for name, m, attr in net.named_buffers()}
    results = check_module(net, x, tol=1e-6, rng=np.random.default_rng(1), verbose=False)
    assert len(results) == 1 + len(EXPECTED_PARAMETER_NAMES)
    failed = [str(r) for r in results if not (r and r.max_rel_error < 1e-6)]    # no "within the noise" passes
    assert not failed, "\n".join(failed)
    assert all(r.scale > 1e-6 for r in results), "a ~0 gradient makes its check vacuous"
    for name, m, attr in net.named_buffers():           # check_module restored the running statistics
        assert np.array_equal(getattr(m, attr), buffers[name]), name


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
    return nn.Sequential(nn.Linear(4, 3, rng=rng), nn.Linear(3, 2, rng=rng))


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


def test_flatten_keeps_an_empty_batch():
    flatten = nn.Flatten()
    assert flatten.forward(np.zeros((0, 3, 2, 2))).shape == (0, 12)           # as PyTorch's nn.Flatten
    assert flatten.backward(np.zeros((0, 12))).shape == (0, 3, 2, 2)
# backward(dout, *, input_grad=True) everywhere
# --------------------------------------------------------------------------------------------------------------
def _module_classes():
    import numpy_shufflenet.models  # noqa: F401  (its Module subclasses register themselves)
    import numpy_shufflenet.paper.experiments  # noqa: F401
    seen, todo = set(), [nn.Module]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub not in seen and sub.__module__.startswith("numpy_shufflenet"):
                seen.add(sub)
                todo.append(sub)
    return sorted(seen, key=lambda c: c.__qualname__)


def test_every_modules_backward_takes_the_input_grad_keyword():
    import inspect
    classes = _module_classes()
    assert {"Conv2d", "BatchNormReLU2d", "AddReLU", "ConcatReLU", "Sequential", "ShuffleUnit",
            "ShuffleNet"} <= {c.__name__ for c in classes}
    for cls in classes:
        param = inspect.signature(cls.backward).parameters.get("input_grad")
        assert param is not None and param.kind is inspect.Parameter.KEYWORD_ONLY and param.default is True, cls


@pytest.mark.parametrize("module, shape", [
    (nn.Conv2d(3, 4, 3, padding=1, bias=True), (2, 3, 5, 5)), (nn.BatchNorm2d(3), (2, 3, 4, 4)),
    (nn.BatchNormReLU2d(3), (2, 3, 4, 4)), (nn.ReLU(), (2, 3, 4, 4)), (nn.ChannelShuffle(3), (2, 3, 4, 4)),
    (nn.MaxPool2d(2), (2, 3, 4, 4)), (nn.CeilMaxPool2d(3, 2), (2, 3, 6, 6)), (nn.AvgPool2d(3, 2, 1), (2, 3, 5, 5)),
    (nn.GlobalAvgPool2d(), (2, 3, 4, 4)), (nn.Flatten(), (2, 3, 2, 2)), (nn.Linear(3, 2), (4, 3)),
    (nn.GroupReadout(1, 3), (2, 3, 4, 4)),
    (nn.Sequential(nn.Conv2d(3, 6, 1), nn.BatchNormReLU2d(6), nn.Conv2d(6, 3, 1, groups=3)), (2, 3, 4, 4)),
    (nn.Concat(nn.Conv2d(3, 2, 1), nn.AvgPool2d(3, 1, 1)), (2, 3, 4, 4)),
    (nn.Residual(nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3))), (2, 3, 4, 4)),
], ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else None)
def test_input_grad_false_returns_none_and_the_same_parameter_gradients(rng, module, shape):
    module = module.to(np.float64)
    x = rng.standard_normal(shape)
    out = module(x)
    dout = rng.standard_normal(out.shape)
    dx = module.backward(dout)
    grads = [p.grad.copy() for p in module.parameters()]
    module(x)
    assert dx.shape == x.shape and module.backward(dout, input_grad=False) is None
    for p, g in zip(module.parameters(), grads):
        np.testing.assert_array_equal(p.grad, g)


@pytest.mark.parametrize("kernels", ["fast", "reference"])
def test_the_two_input_relus_end_a_unit(rng, kernels):
    import numpy_shufflenet as ns
    x, y, b = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 5, 4, 4))
    dout, dcat = rng.standard_normal(x.shape), rng.standard_normal((2, 8, 4, 4))
    add, cat = nn.AddReLU(), nn.ConcatReLU()
    with ns.use_kernels(kernels):
        assert_same(add(x, y), np.maximum(x + y, 0))
        dx, dy = add.backward(dout)
        assert_same(dx, dout * (x + y > 0)) and assert_same(dy, dout * (x + y > 0))
        assert_same(cat(x, b), np.maximum(np.concatenate([x, b], axis=1), 0))
        da, db = cat.backward(dcat)
        mask = np.concatenate([x, b], axis=1) > 0
        assert_same(da, (dcat * mask)[:, :3]) and assert_same(db, (dcat * mask)[:, 3:])
        assert add.backward(dout, input_grad=False) is None
    assert isinstance(add, nn.ReLU) and add.output_shape((3, 4, 4)) == (3, 4, 4)
