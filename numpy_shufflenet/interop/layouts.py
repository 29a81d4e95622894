"""The authors' and mmpretrain's ShuffleNet v1 state dicts, to and from our :class:`~numpy_shufflenet.ShuffleNet`.

Three networks of the same shape, named differently (``U`` is a unit's prefix; the same BN fields ``weight``,
``bias``, ``running_mean``, ``running_var``, plus PyTorch's ``num_batches_tracked``, follow every BN name):

=================  ===========================================  ====================================================
ours               authors' (``ShuffleNetV1/network.py``)       mmpretrain (``ShuffleNetV1`` + ``LinearClsHead``)
=================  ===========================================  ====================================================
stem.conv          first_conv.0                                 backbone.conv1.conv
stem.bn            first_conv.1                                 backbone.conv1.bn
U.branch.conv1     features.K.branch_main_1.0                   backbone.layers.S.I.g_conv_1x1_compress.conv
U.branch.bn1       features.K.branch_main_1.1                   backbone.layers.S.I.g_conv_1x1_compress.bn
U.branch.conv2     features.K.branch_main_1.3                   backbone.layers.S.I.depthwise_conv3x3_bn.conv
U.branch.bn2       features.K.branch_main_1.4                   backbone.layers.S.I.depthwise_conv3x3_bn.bn
U.branch.conv3     features.K.branch_main_2.0                   backbone.layers.S.I.g_conv_1x1_expand.conv
U.branch.bn3       features.K.branch_main_2.1                   backbone.layers.S.I.g_conv_1x1_expand.bn
fc                 classifier.0 (no bias)                       head.fc (with a bias)
=================  ===========================================  ====================================================

with ``U = stage{S+2}.{I}``, ``K`` the unit's index over all 16 units and ``S`` the stage's index from 0.

Where the two shuffle, and how:

* **the authors** shuffle *after* the depthwise conv + BN, in the inverse order (reshape ``(C // g, g)``). We load
  them into ``ShuffleNet(shuffle_order="official")``, whose units do exactly that: names map one to one.
* **mmpretrain** also shuffles after the depthwise conv + BN, but in the paper's order. The depthwise conv and BN
  act on each channel alone, so with ``perm`` the shuffle's permutation (output channel ``k`` is input channel
  ``perm[k]``)::

      shuffle(bn2(dwconv(z))) = bn2'(dwconv'(shuffle(z))),   w'[k] = w[perm[k]] for the dwconv and BN parameters

  which is our default unit (the paper's: shuffle before the depthwise conv) with the depthwise and BN
  parameters permuted. Going back applies the inverse permutation ``argsort(perm)``.

The stride-2 units of both compute ``concat(avgpool(x), relu(branch))``; ours ``relu(concat(avgpool(x),
branch))``, the same numbers because ``x`` (a ReLU's or max pool's output) is never negative.
"""

import re
from collections import OrderedDict

import numpy as np

from ..functional.shuffle import channel_shuffle_indices
from ..models.shufflenet import SCALES, STAGE_REPEATS, ShuffleNet, stage_widths

LAYOUTS = ("official", "mmpretrain")
BN_FIELDS = ("weight", "bias", "running_mean", "running_var")
_PREFIX = {"official": "from_official", "mmpretrain": "from_mmpretrain"}


def _unit_names(layout):
    """``(stage, index, {our layer: their module})`` for the 16 units, in forward order."""
    k = 0
    for s, repeats in enumerate(STAGE_REPEATS):
        for i in range(repeats):
            if layout == "official":
                f = f"features.{k}"
                names = {"conv1": f"{f}.branch_main_1.0", "bn1": f"{f}.branch_main_1.1",
                         "conv2": f"{f}.branch_main_1.3", "bn2": f"{f}.branch_main_1.4",
                         "conv3": f"{f}.branch_main_2.0", "bn3": f"{f}.branch_main_2.1"}
            else:
                u = f"backbone.layers.{s}.{i}"
                names = {"conv1": f"{u}.g_conv_1x1_compress.conv", "bn1": f"{u}.g_conv_1x1_compress.bn",
                         "conv2": f"{u}.depthwise_conv3x3_bn.conv", "bn2": f"{u}.depthwise_conv3x3_bn.bn",
                         "conv3": f"{u}.g_conv_1x1_expand.conv", "bn3": f"{u}.g_conv_1x1_expand.bn"}
            yield s + 2, i, names
            k += 1


def _module_names(layout):
    """``{our module: their module}`` for every conv, BN and the classifier."""
    if layout == "official":
        names = {"stem.conv": "first_conv.0", "stem.bn": "first_conv.1"}
    else:
        names = {"stem.conv": "backbone.conv1.conv", "stem.bn": "backbone.conv1.bn"}
    for stage, i, unit in _unit_names(layout):
        names.update({f"stage{stage}.{i}.branch.{ours}": theirs for ours, theirs in unit.items()})
    names["fc"] = "classifier.0" if layout == "official" else "head.fc"
    return names


def _fields(module_name):
    """The array fields of one of our modules: BN has four, convolutions and the classifier a weight (and bias)."""
    return BN_FIELDS if module_name.rsplit(".", 1)[-1].startswith("bn") else ("weight", "bias")


def _permutation(model, module_name, layout):
    """For mmpretrain, the permutation between their depthwise conv/BN2 channels and ours (module docstring)."""
    match = re.fullmatch(r"(stage\d\.\d+)\.branch\.(conv2|bn2)", module_name)
    if layout != "mmpretrain" or match is None:
        return None
    unit = dict(model.named_modules())[match.group(1)]
    if not unit.shuffle:
        return None
    return channel_shuffle_indices(unit.mid_channels, unit.groups)          # the paper's order


def unwrap_state_dict(checkpoint, layer="unwrap_state_dict"):
    """The ``name -> array`` dict inside a loaded checkpoint: under ``"state_dict"`` if the weights are nested
    there (the authors' ``.pth.tar`` files, mmpretrain's), with the ``module.`` prefix that
    ``torch.nn.DataParallel`` adds removed."""
    state = checkpoint
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{layer}: expected a state dict (name -> array), or a checkpoint holding one under "
                         f"'state_dict', got {type(state).__name__}"
                         + (f" with keys {sorted(map(str, state))[:6]}" if isinstance(state, dict) else ""))
    out = OrderedDict()
    for name, value in state.items():
        if not isinstance(name, str):
            raise ValueError(f"{layer}: expected string names in the state dict, got {name!r}")
        out[name[len("module."):] if name.startswith("module.") else name] = value
    return out


def _get(state, name, layer, ndim=None):
    value = state.get(name)
    if value is None:
        raise ValueError(f"{layer}: expected an entry {name!r} in the state dict; it is missing (first keys: "
                         f"{list(state)[:4]})")
    if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.floating):
        raise ValueError(f"{layer}: expected {name!r} to be a float array, got "
                        f"{getattr(value, 'dtype', type(value).__name__)}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{layer}: expected {name!r} to be {ndim}-D, got shape {value.shape}")
    return value


def _architecture(state, layout, layer):
    """``ShuffleNet`` keyword arguments read from the shapes of the state dict."""
    names = _module_names(layout)
    unit_names = list(_unit_names(layout))
    unit_pattern = r"features\.(\d+)\." if layout == "official" else r"backbone\.layers\.(\d+\.\d+)\."
    units = {m.group(1) for m in map(lambda k: re.match(unit_pattern, k), state) if m}
    if len(units) != len(unit_names):
        raise ValueError(f"{layer}: expected {len(unit_names)} ShuffleNet units (stages of {STAGE_REPEATS}), got "
                         f"{len(units)}; is this a ShuffleNet v1 checkpoint of the {layout} layout?")
    stem_w = _get(state, names["stem.conv"] + ".weight", layer, 4)
    first = unit_names[0][2]
    mid = _get(state, first["conv1"] + ".weight", layer, 4).shape[0]
    expand = _get(state, first["conv3"] + ".weight", layer, 4).shape[1]
    if mid % expand:
        raise ValueError(f"{layer}: expected the bottleneck ({mid}) to be a multiple of the second 1x1 "
                         f"convolution's input channels per group ({expand})")
    widths, width = [stem_w.shape[0]], stem_w.shape[0]
    for stage, i, unit in unit_names:
        if i == 0:                                       # stride 2: concatenates the input with the branch
            width += _get(state, unit["conv3"] + ".weight", layer, 4).shape[0]
            widths.append(width)
    fc_w = _get(state, names["fc"] + ".weight", layer, 2)
    groups, widths = mid // expand, tuple(widths)
    return dict(groups=groups, widths=widths, scale=_scale_of(groups, widths), num_classes=fc_w.shape[0],
                in_channels=stem_w.shape[1], fc_bias=names["fc"] + ".bias" in state,
                shuffle_order="official" if layout == "official" else "paper")


def _scale_of(groups, widths):
    """The width multiplier whose widths (:func:`~numpy_shufflenet.models.stage_widths`) these are; 1.0 (a mere
    label) for widths of no table."""
    for scale in SCALES:
        try:
            if stage_widths(groups, scale) == widths:
                return scale
        except ValueError:
            break
    return 1.0


def _from_layout(checkpoint, layout, dtype):
    layer = _PREFIX[layout]
    state = unwrap_state_dict(checkpoint, layer)
    arch = _architecture(state, layout, layer)
    try:
        model = ShuffleNet(**arch, dtype=dtype, rng=np.random.default_rng(0))
    except (ValueError, TypeError) as err:
        raise ValueError(f"{layer}: the shapes read from the state dict ({arch}) make no ShuffleNet: {err}") from None
    ours = model.state_dict()
    loaded, used = {}, set()
    for module_name, their_module in _module_names(layout).items():
        perm = _permutation(model, module_name, layout)
        for field in _fields(module_name):
            our_name, their_name = f"{module_name}.{field}", f"{their_module}.{field}"
            if our_name not in ours:
                continue
            value = _get(state, their_name, layer)
            if value.shape != ours[our_name].shape:
                raise ValueError(f"{layer}: expected {their_name!r} of shape {ours[our_name].shape} (our "
                                 f"{our_name}), got {value.shape}")
            loaded[our_name] = value if perm is None else value[perm]
            used.add(their_name)
        if module_name.rsplit(".", 1)[-1].startswith("bn"):
            used.add(f"{their_module}.num_batches_tracked")
    unexpected = [k for k in state if k not in used]
    if unexpected:
        raise ValueError(f"{layer}: expected only the {layout} ShuffleNet's entries, got {len(unexpected)} more: "
                         f"{unexpected[:6]}")
    model.load_state_dict(loaded)
    return model.eval()


def from_official(state_dict, *, dtype=np.float32):
    """A :class:`~numpy_shufflenet.ShuffleNet` computing the same function as the authors' ``ShuffleNetV1``
    (megvii-model/ShuffleNet-Series) with these weights.

    Parameters
    ----------
    state_dict : dict
        The authors' state dict (names ``first_conv.*``, ``features.K.*``, ``classifier.0.weight``) or a loaded
        checkpoint holding it under ``"state_dict"``; a ``module.`` prefix is removed.
    dtype : float32 (default) or float64

    Returns
    -------
    ShuffleNet, in eval mode, with ``shuffle_order="official"``; groups, widths, number of classes and input
    channels read from the shapes; batch-norm running statistics carried over.

    The authors evaluate on BGR images in 0..255, not normalised
    (:func:`numpy_shufflenet.interop.imagenet.preprocess` with ``source="official"``).
    """
    return _from_layout(state_dict, "official", dtype)


def from_mmpretrain(state_dict, *, dtype=np.float32):
    """A :class:`~numpy_shufflenet.ShuffleNet` computing the same function as mmpretrain's ``ImageClassifier``
    (``ShuffleNetV1`` backbone, global average pooling, ``LinearClsHead``) with these weights.

    Parameters
    ----------
    state_dict : dict
        mmpretrain's state dict (names ``backbone.*``, ``head.fc.*``) or a checkpoint holding it under
        ``"state_dict"`` (as mmpretrain saves it); a ``module.`` prefix is removed.
    dtype : float32 (default) or float64

    Returns
    -------
    ShuffleNet, in eval mode, in the paper's shuffle order, with a classifier bias; the depthwise convolution and
    its BN parameters permuted so the shuffle can sit where the paper puts it (module docstring).

    mmpretrain evaluates on RGB images normalised with the ImageNet mean and standard deviation
    (:func:`numpy_shufflenet.interop.imagenet.preprocess` with ``source="mmpretrain"``).
    """
    return _from_layout(state_dict, "mmpretrain", dtype)


def to_torch_state_dict(model, layout="official"):
    """The weights of ``model`` under the names and in the channel order of the authors' or mmpretrain's network.

    ``torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})`` then loads them (BN entries
    include ``num_batches_tracked = 0``, so ``strict=True`` works).

    Parameters
    ----------
    model : ShuffleNet
    layout : "official" or "mmpretrain"
        ``"official"`` needs ``model.shuffle_order == "official"`` and no classifier bias (the authors' has none);
        ``"mmpretrain"`` needs the paper's order and writes a zero ``head.fc.bias`` if the model has no bias.
        A network of one order cannot be written in the other's layout: they are different functions.

    Returns
    -------
    OrderedDict name -> NumPy array (copies, in the model's dtype).
    """
    layer = "to_torch_state_dict"
    if layout not in LAYOUTS:
        raise ValueError(f"{layer}: expected layout in {LAYOUTS}, got {layout!r}")
    if not isinstance(model, ShuffleNet):
        raise TypeError(f"{layer}: expected a ShuffleNet, got {type(model).__name__}")
    units = [unit for stage in (model.stage2, model.stage3, model.stage4) for unit in stage]
    if model.groups > 1:
        wanted = "official" if layout == "official" else "paper"
        if not all(unit.shuffle for unit in units):
            raise ValueError(f"{layer}: the {layout} network shuffles in every unit when groups > 1; this model "
                             f"has no shuffle (shuffle=False)")
        if getattr(model, "shuffle_order", "paper") != wanted:
            raise ValueError(f"{layer}: the {layout} layout needs shuffle_order={wanted!r}, got a model with "
                             f"{getattr(model, 'shuffle_order', 'paper')!r} (a different function)")
    if layout == "official" and model.fc.bias is not None:
        raise ValueError(f"{layer}: the authors' classifier has no bias, got a model with fc.bias; use "
                         f"layout='mmpretrain'")
    ours = model.state_dict()
    out = OrderedDict()
    for module_name, their_module in _module_names(layout).items():
        perm = _permutation(model, module_name, layout)
        for field in _fields(module_name):
            value = ours.get(f"{module_name}.{field}")
            if value is None:
                if field == "bias" and module_name == "fc" and layout == "mmpretrain":
                    out[f"{their_module}.bias"] = np.zeros(model.num_classes, dtype=ours["fc.weight"].dtype)
                continue
            out[f"{their_module}.{field}"] = value if perm is None else value[np.argsort(perm)]
        if module_name.rsplit(".", 1)[-1].startswith("bn"):
            out[f"{their_module}.num_batches_tracked"] = np.array(0, dtype=np.int64)
    return out
