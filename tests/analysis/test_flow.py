"""Channel connectivity (numpy_shufflenet.analysis.flow): the analytic rules agree with real backward passes."""

import numpy as np
import pytest

from numpy_shufflenet import flow
from numpy_shufflenet.models import ShuffleNet, ShuffleUnit
from numpy_shufflenet.nn import (AvgPool2d, BatchNorm2d, ChannelShuffle, Conv2d, GlobalAvgPool2d, Linear,
                                 MaxPool2d, Module, ReLU, Sequential)


def block_diagonal(channels, groups):
    n = channels // groups
    return np.kron(np.eye(groups), np.ones((n, n))).astype(bool)


# ----------------------------------------------------------------------------------------------------------------
# the rules of single layers and of Fig. 1
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels, groups", [(12, 3), (16, 4), (6, 2), (8, 8)])
def test_two_group_convs_without_shuffle_keep_the_groups_apart(channels, groups):
    M = flow.connectivity(flow.group_conv_stack(channels, groups, 2, shuffle=False), channels)
    np.testing.assert_array_equal(M, block_diagonal(channels, groups))
    assert np.all(flow.groups_seen(M, groups) == 1)


@pytest.mark.parametrize("channels, groups", [(12, 3), (16, 4), (6, 2), (18, 3)])
def test_a_shuffle_between_two_group_convs_connects_everything(channels, groups):
    M = flow.connectivity(flow.group_conv_stack(channels, groups, 2, shuffle=True), channels)
    assert M.shape == (channels, channels) and M.all()
    assert np.all(flow.groups_seen(M, groups) == groups)


def test_single_layer_rules():
    np.testing.assert_array_equal(flow.connectivity(Conv2d(6, 4, 1), 6), np.ones((4, 6), bool))
    np.testing.assert_array_equal(flow.connectivity(Conv2d(6, 6, 3, groups=6), 6), np.eye(6, dtype=bool))
    np.testing.assert_array_equal(flow.connectivity(Conv2d(6, 9, 1, groups=3), 6),
                                  np.kron(np.eye(3), np.ones((3, 2))).astype(bool))
    for layer in (BatchNorm2d(5), ReLU(), MaxPool2d(2), AvgPool2d(3, 2, 1), GlobalAvgPool2d()):
        np.testing.assert_array_equal(flow.connectivity(layer, 5), np.eye(5, dtype=bool))
    np.testing.assert_array_equal(flow.connectivity(Linear(5, 3), 5), np.ones((3, 5), bool))
    P = flow.connectivity(ChannelShuffle(3), 12)
    np.testing.assert_array_equal(np.nonzero(P)[1], [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11])


def test_shuffle_matrix_matches_the_layer():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 12, 2, 2))
    P = flow.shuffle_matrix(12, 3).astype(float)
    np.testing.assert_array_equal(ChannelShuffle(3).forward(x), np.einsum("oi,nihw->nohw", P, x))


def test_unknown_module_and_wrong_channels_are_clear_errors():
    class Mystery(Module):
        pass

    with pytest.raises(TypeError, match="Mystery"):
        flow.connectivity(Mystery(), 4)
    with pytest.raises(TypeError, match="Mystery"):
        flow.connectivity(Sequential(ReLU(), Mystery()), 4)
    with pytest.raises(ValueError, match="expects 6 input channels"):
        flow.connectivity(Conv2d(6, 6, 1, groups=3), 5)
    with pytest.raises(ValueError, match="compose"):
        flow.compose(np.ones((3, 4), bool), np.ones((2, 5), bool))


def test_unit_rules_add_and_concat():
    unit = ShuffleUnit(12, 12, groups=3, stride=1, shuffle=False)
    np.testing.assert_array_equal(flow.connectivity(unit, 12), block_diagonal(12, 3))    # identity inside blocks
    unit = ShuffleUnit(32, 32, groups=4, stride=1)          # 2 bottleneck channels per group (n < g): the branch
    branch = flow.connectivity(unit.branch, 32)             # alone misses diagonal blocks 1 and 2
    np.testing.assert_array_equal(branch[::8, ::8], [[1, 1, 0, 0], [0, 0, 1, 1], [1, 1, 0, 0], [0, 0, 1, 1]])
    np.testing.assert_array_equal(flow.connectivity(unit, 32), branch | np.eye(32, dtype=bool))
    unit = ShuffleUnit(12, 24, groups=3, stride=2, shuffle=False)
    M = flow.connectivity(unit, 12)
    np.testing.assert_array_equal(M[:12], np.eye(12, dtype=bool))                     # the pooled shortcut first
    np.testing.assert_array_equal(M[12:], np.kron(np.eye(3), np.ones((4, 4))).astype(bool))


def test_whole_network_connects_every_class_to_every_input_channel():
    for shuffle in (True, False):
        net = ShuffleNet(groups=3, scale=0.25, num_classes=7, shuffle=shuffle, rng=np.random.default_rng(0))
        M = flow.connectivity(net, 3)
        assert M.shape == (7, 3) and M.all()


def test_stage_without_shuffle_stays_partly_separated():
    """Stage 3 of the no-shuffle ablation: each output sees 2 of the 3 input groups (the stride-2 unit's concat
    shifts the group boundaries by the shortcut's channels); with shuffle, every output sees all of them."""
    kw = dict(groups=3, rng=np.random.default_rng(0))
    plain = Sequential(ShuffleUnit(24, 48, stride=2, shuffle=False, **kw),
                       ShuffleUnit(48, 48, stride=1, shuffle=False, **kw))
    mixed = Sequential(ShuffleUnit(24, 48, stride=2, **kw), ShuffleUnit(48, 48, stride=1, **kw))
    assert np.all(flow.groups_seen(flow.connectivity(plain, 24), 3) == 2)
    assert flow.connectivity(mixed, 24).all()


# ----------------------------------------------------------------------------------------------------------------
# analytic == measured with backward passes
# ----------------------------------------------------------------------------------------------------------------
def random_stack(rng):
    """A random stack of group convs, shuffles, BN, ReLU and pools; every ReLU follows a BN (as in ShuffleNet)."""
    groups = int(rng.choice([1, 2, 3, 4]))
    c = groups * int(rng.integers(1, 5))
    layers = []
    for _ in range(int(rng.integers(2, 5))):
        c_out = groups * int(rng.integers(1, 5))
        kind = rng.choice(["gconv1x1", "gconv3x3", "dwconv"])
        if kind == "dwconv":
            layers.append(Conv2d(c, c, 3, padding=1, groups=c, rng=rng, dtype=np.float64))
            c_out = c
        else:
            k = 1 if kind == "gconv1x1" else 3
            layers.append(Conv2d(c, c_out, k, padding=k // 2, groups=groups, rng=rng, dtype=np.float64))
        c = c_out
        extra = rng.choice(["none", "bn", "bn_relu", "shuffle", "shuffle", "maxpool"])
        if extra in ("bn", "bn_relu"):
            layers.append(BatchNorm2d(c, dtype=np.float64))
        if extra == "bn_relu":
            layers.append(ReLU())
        if extra == "shuffle" and c % groups == 0:
            layers.append(ChannelShuffle(groups))
        if extra == "maxpool":
            layers.append(MaxPool2d(3, stride=1, padding=1))
    return Sequential(*layers), layers[0].in_channels


@pytest.mark.parametrize("seed", range(16))
def test_random_stacks_analytic_equals_jacobian(seed):
    rng = np.random.default_rng(seed)
    stack, c_in = random_stack(rng)
    x = rng.standard_normal((2, c_in, 5, 5))
    A = flow.connectivity(stack, c_in)
    np.testing.assert_array_equal(flow.jacobian_connectivity(stack, x, rng=rng), A)


def set_bn_to_batch_statistics(module, x):
    """Eval-mode batch norm with running statistics equal to ``x``'s batch statistics: every channel is centred
    before its ReLU, so no channel is negative everywhere (a dead row)."""
    bns = [m for _, m in module.named_modules() if isinstance(m, BatchNorm2d)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.momentum = 1.0
    module.train().forward(x)
    for bn, m in zip(bns, momenta):
        bn.momentum = m


UNIT_CASES = [  # (in, out, groups, stride, shuffle, grouped_first); bottleneck out // 4 has 4 channels per group
    (48, 48, 3, 1, True, True), (48, 48, 3, 1, False, True),
    (12, 48, 3, 2, True, True), (12, 48, 3, 2, False, True),
    (6, 48, 3, 2, True, False), (6, 48, 3, 2, False, False),
    (32, 32, 4, 1, True, True),     # 2 bottleneck channels per group: the branch misses the diagonal, the add not
]


@pytest.mark.parametrize("c_in, c_out, groups, stride, shuffle, grouped_first", UNIT_CASES)
@pytest.mark.parametrize("training", [True, False])
def test_shuffle_unit_analytic_equals_jacobian(c_in, c_out, groups, stride, shuffle, grouped_first, training):
    rng = np.random.default_rng(c_in + c_out + stride)
    unit = ShuffleUnit(c_in, c_out, groups=groups, stride=stride, shuffle=shuffle, grouped_first=grouped_first,
                       rng=rng, dtype=np.float64)
    x = rng.standard_normal((4, c_in, 8, 8))
    if not training:
        set_bn_to_batch_statistics(unit, x)
    A = flow.connectivity(unit, c_in)
    np.testing.assert_array_equal(flow.jacobian_connectivity(unit, x, training=training, rng=rng), A)


@pytest.mark.parametrize("shuffle", [True, False])
def test_stage_analytic_equals_jacobian(shuffle):
    rng = np.random.default_rng(7)
    kw = dict(groups=3, shuffle=shuffle, rng=rng, dtype=np.float64)
    stage = Sequential(ShuffleUnit(12, 36, stride=2, **kw), ShuffleUnit(36, 36, stride=1, **kw),
                       ShuffleUnit(36, 36, stride=1, **kw))
    x = rng.standard_normal((2, 12, 8, 8))
    np.testing.assert_array_equal(flow.jacobian_connectivity(stage, x, rng=rng), flow.connectivity(stage, 12))


def test_whole_network_jacobian():
    rng = np.random.default_rng(3)
    net = ShuffleNet(groups=3, scale=0.25, num_classes=4, shuffle=False, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 3, 32, 32))
    np.testing.assert_array_equal(flow.jacobian_connectivity(net, x, rng=rng), flow.connectivity(net, 3))


@pytest.mark.parametrize("training", [True, False])
def test_jacobian_through_pooling_and_linear(training):
    rng = np.random.default_rng(5)
    head = Sequential(Conv2d(6, 6, 1, groups=3, rng=rng, dtype=np.float64), GlobalAvgPool2d(),
                      Linear(6, 4, rng=rng, dtype=np.float64))
    M = flow.jacobian_connectivity(head, rng.standard_normal((3, 6, 4, 4)), training=training)
    np.testing.assert_array_equal(M, flow.connectivity(head, 6))
    fc = Linear(5, 2, rng=rng, dtype=np.float64)
    assert flow.jacobian_connectivity(fc, rng.standard_normal((3, 5)), training=training).all()


def test_jacobian_restores_modes_and_running_statistics():
    rng = np.random.default_rng(1)
    unit = ShuffleUnit(12, 12, groups=3, stride=1, rng=rng, dtype=np.float64).eval()
    before = unit.state_dict()
    flow.jacobian_connectivity(unit, rng.standard_normal((2, 12, 4, 4)), training=True)
    assert all(not m.training for _, m in unit.named_modules())
    for name, value in unit.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


# ----------------------------------------------------------------------------------------------------------------
# how fast stacks mix; paper order vs official order
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels, groups, shuffle, expected", [
    (12, 3, True, 2), (12, 3, False, None), (12, 1, False, 1), (12, 1, True, 1), (240, 3, True, 2),
    (8, 4, True, 3), (16, 8, True, 4), (4, 4, True, None), (240, 8, False, None),
])
def test_layers_to_full_mixing(channels, groups, shuffle, expected):
    assert flow.layers_to_full_mixing(channels, groups, shuffle) == expected
    if expected is not None and channels <= 16:          # the same answer from real modules
        stack = flow.group_conv_stack(channels, groups, expected, shuffle=shuffle)
        assert flow.connectivity(stack, channels).all()
        if expected > 1:
            stack = flow.group_conv_stack(channels, groups, expected - 1, shuffle=shuffle)
            assert not flow.connectivity(stack, channels).all()


def test_layers_to_full_mixing_respects_max_layers():
    assert flow.layers_to_full_mixing(16, 8, True, max_layers=3) is None
    assert flow.layers_to_full_mixing(16, 8, True, max_layers=4) == 4


def test_golden_shuffle_permutations():
    np.testing.assert_array_equal(flow.shuffle_permutation(12, 3), [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11])
    np.testing.assert_array_equal(flow.shuffle_permutation(12, 3, "official"), [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11])
    np.testing.assert_array_equal(flow.shuffle_permutation(12, 4), [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11])


@pytest.mark.parametrize("channels, groups", [(12, 3), (12, 4), (60, 3), (96, 8), (9, 3), (10, 1), (240, 8)])
def test_paper_and_official_orders_are_inverse(channels, groups):
    paper = flow.shuffle_permutation(channels, groups, "paper")
    official = flow.shuffle_permutation(channels, groups, "official")
    identity = np.arange(channels)
    np.testing.assert_array_equal(flow.compose_permutations(paper, official), identity)
    np.testing.assert_array_equal(flow.compose_permutations(official, paper), identity)
    np.testing.assert_array_equal(flow.inverse_permutation(paper), official)
    P, Q = flow.shuffle_matrix(channels, groups), flow.shuffle_matrix(channels, groups, "official")
    np.testing.assert_array_equal(flow.compose(P, Q), np.eye(channels, dtype=bool))

    counts = flow.group_mixing_counts(channels, groups, "paper")
    n = channels // groups
    assert counts.shape == (groups, groups) and counts.sum() == channels
    np.testing.assert_array_equal(counts.sum(axis=0), np.full(groups, n))
    np.testing.assert_array_equal(counts.sum(axis=1), np.full(groups, n))
    np.testing.assert_array_equal(flow.group_mixing_counts(channels, groups, "official"), counts.T)


def test_group_mixing_counts_golden():
    expected = [[7, 7, 6], [7, 6, 7], [6, 7, 7]]
    np.testing.assert_array_equal(flow.group_mixing_counts(60, 3, "paper"), expected)
    np.testing.assert_array_equal(flow.group_mixing_counts(60, 3, "official"), expected)
    np.testing.assert_array_equal(flow.group_mixing_counts(12, 3), [[2, 1, 1], [1, 2, 1], [1, 1, 2]])
    np.testing.assert_array_equal(flow.group_mixing_counts(9, 3), np.ones((3, 3), int))


def test_groups_seen_counts_distinct_groups():
    M = np.zeros((3, 6), bool)
    M[0, [0, 1]] = True           # group 0 only
    M[1, [1, 2, 5]] = True        # groups 0, 1, 2
    assert flow.groups_seen(M, 3).tolist() == [1, 3, 0]


# --------------------------------------------------------------------------------------------------------------
# the permutation helpers refuse what is not a permutation
# --------------------------------------------------------------------------------------------------------------
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
