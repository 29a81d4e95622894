"""What ``python -m numpy_shufflenet convert`` and ``predict`` do: a checkpoint to a ``.npz`` weight file (with a
small ``.json`` beside it saying which network it belongs to), and the top classes of images.
"""

import json
from pathlib import Path

import numpy as np

from .._checks import check_int
from ..models.shufflenet import ShuffleNet
from .weights import load_weights, save_weights
from .checkpoint import load_checkpoint
from .imagenet import SOURCES, imagenet_classes, preprocess, read_image, top_k
from .layouts import from_mmpretrain, from_official, unwrap_state_dict

FORMAT = "numpy_shufflenet.interop.convert/1"
ARCH_KEYS = ("groups", "widths", "num_classes", "in_channels", "shuffle_order", "fc_bias")
MAX_JSON_BYTES = 2**20


def detect_layout(state_dict):
    """``"official"`` (names ``first_conv.*``, ``features.*``) or ``"mmpretrain"`` (``backbone.*``, ``head.*``)."""
    names = list(unwrap_state_dict(state_dict, "detect_layout"))
    if any(n.startswith("first_conv.") for n in names):
        return "official"
    if any(n.startswith("backbone.") for n in names):
        return "mmpretrain"
    raise ValueError(f"detect_layout: expected the authors' names (first_conv.*, features.*) or mmpretrain's "
                     f"(backbone.*, head.*), got names such as {names[:4]}")


def _class_names(checkpoint, num_classes):
    """Class names stored in an mmpretrain checkpoint's ``meta`` (``CLASSES`` or ``dataset_meta.classes``)."""
    meta = checkpoint.get("meta") if isinstance(checkpoint, dict) else None
    if not isinstance(meta, dict):
        return None
    names = meta.get("CLASSES", (meta.get("dataset_meta") or {}).get("classes"))
    if isinstance(names, (list, tuple)) and len(names) == num_classes and all(isinstance(n, str) for n in names):
        return list(names)
    return None


def convert(checkpoint_path, out, layout=None):
    """Convert a PyTorch checkpoint of the authors' or mmpretrain's ShuffleNet v1 to ``out`` (``.npz``) plus
    ``out`` with suffix ``.json`` (source, architecture, class names); return ``(model, info)``."""
    checkpoint = load_checkpoint(checkpoint_path)
    layout = detect_layout(checkpoint) if layout is None else layout
    if layout not in SOURCES:
        raise ValueError(f"convert: expected layout in {SOURCES}, got {layout!r}")
    model = (from_official if layout == "official" else from_mmpretrain)(checkpoint)
    info = {"format": FORMAT, "source": layout, "checkpoint": Path(checkpoint_path).name,
            "groups": model.groups, "widths": list(model.widths), "num_classes": model.num_classes,
            "in_channels": model.in_channels, "shuffle_order": model.shuffle_order,
            "fc_bias": model.fc.bias is not None,
            "classes": _class_names(checkpoint, model.num_classes)}
    out = Path(out)
    if out.suffix != ".npz":
        out = out.with_name(out.name + ".npz")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_weights(model, out)
    out.with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
    return model, info


def read_info(weights):
    """The ``.json`` that :func:`convert` wrote beside ``weights``, checked."""
    path = Path(weights).with_suffix(".json")
    if not path.is_file():
        raise ValueError(f"predict: expected {path} beside {weights} (written by 'python -m numpy_shufflenet "
                         f"convert'), which says which network and preprocessing the weights need; it is missing")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ValueError(f"predict: expected {path} of at most {MAX_JSON_BYTES} bytes")
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"predict: {path} is not valid JSON ({err})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT or info.get("source") not in SOURCES \
            or any(k not in info for k in ARCH_KEYS):
        raise ValueError(f"predict: {path} was not written by convert (expected format {FORMAT!r}, a source in "
                         f"{SOURCES} and the keys {ARCH_KEYS})")
    return info


def load_converted(weights):
    """The ShuffleNet (eval mode) and the info of a weight file written by :func:`convert`."""
    info = read_info(weights)
    try:
        model = ShuffleNet(groups=info["groups"], widths=tuple(info["widths"]), num_classes=info["num_classes"],
                           in_channels=info["in_channels"], shuffle_order=info["shuffle_order"],
                           fc_bias=bool(info["fc_bias"]), rng=np.random.default_rng(0))
    except (TypeError, ValueError) as err:
        raise ValueError(f"predict: the architecture in {Path(weights).with_suffix('.json')} is invalid ({err})") \
            from None
    return load_weights(model, weights).eval(), info


def predict(weights, images, k=5):
    """Top-``k`` classes of each image, for a weight file written by :func:`convert`.

    Each image is read with matplotlib's reader and prepared as the weights' source evaluated ImageNet
    (:func:`numpy_shufflenet.interop.imagenet.preprocess`):

    * resize the short side to 256 (bilinear; the long side to ``int(256 * long / short + 0.5)``), take the
      central 224x224 crop;
    * the authors' weights (``official``): OpenCV-style bilinear (no anti-aliasing), then BGR channels as floats
      in 0..255, not normalised (their ``OpencvResize(256)``, ``CenterCrop(224)``, ``ToBGRTensor()``);
    * mmpretrain's: Pillow-style bilinear (anti-aliased), then RGB normalised by mean (123.675, 116.28, 103.53)
      and std (58.395, 57.12, 57.375).

    Returns ``[(image, [(class index, name, probability), ...]), ...]``; names are ImageNet's for 1000 classes,
    else those stored in the checkpoint, else the indices.
    """
    k = check_int("predict", "k", k, 1)
    model, info = load_converted(weights)
    names = info.get("classes")
    if not (isinstance(names, list) and len(names) == model.num_classes):
        names = list(imagenet_classes()) if model.num_classes == 1000 else None
    results = []
    for image in images:
        x = preprocess(read_image(image), info["source"])
        if x.shape[1] != model.in_channels:
            raise ValueError(f"predict: the network takes {model.in_channels} channels, the image gives 3")
        results.append((image, top_k(model(x)[0], k, names)))
    return results
