"""ImageNet inputs and outputs: the 1000 class names, and the evaluation preprocessing each source trained with.

Both sources evaluate on one centre crop of 224x224 from an image whose short side was resized to 256:

* **official** (the authors' ``ShuffleNetV1/train.py``: ``OpencvResize(256)``, ``CenterCrop(224)``,
  ``ToBGRTensor()``): OpenCV's bilinear resize (``INTER_LINEAR``: two taps per axis at half-pixel centres, no
  anti-aliasing) of the 8-bit image, the long side to ``int(256 * long / short + 0.5)``; the crop; then the
  channels in **BGR** order as floats in **0..255**, with no mean or standard deviation applied.
* **mmpretrain** (``imagenet_bs64_pil_resize.py``: ``ResizeEdge(256, edge='short', backend='pillow')``,
  ``CenterCrop(224)``, and the data preprocessor): Pillow's bilinear resize, whose triangle filter widens by the
  downscale factor (anti-aliased); the crop; then **RGB**, ``(x - mean) / std`` with mean ``(123.675, 116.28,
  103.53)`` and std ``(58.395, 57.12, 57.375)``.

Both resizes are written here with NumPy (:func:`resize`); they agree with OpenCV and Pillow up to their
fixed-point rounding (about one grey level).
"""

from functools import lru_cache
from importlib import resources

import numpy as np

SOURCES = ("official", "mmpretrain")
RESIZE, CROP = 256, 224
MMPRETRAIN_MEAN = np.array([123.675, 116.28, 103.53])      # RGB
MMPRETRAIN_STD = np.array([58.395, 57.12, 57.375])
MAX_PIXELS = 100_000_000                                    # a larger image is refused before resizing


@lru_cache(maxsize=1)
def imagenet_classes():
    """The 1000 ImageNet-1k class names, index ``i`` being class ``i`` (source: the file's header)."""
    text = resources.files(__package__).joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    names = [line for line in text.splitlines() if line and not line.startswith("#")]
    if len(names) != 1000:
        raise ValueError(f"imagenet_classes: expected 1000 names in imagenet_classes.txt, got {len(names)}")
    return tuple(names)


def read_image(path):
    """An image file as an ``(H, W, 3)`` float64 array of RGB values in 0..255 (matplotlib's reader: PNG natively,
    JPEG and others through Pillow); grey images are repeated to three channels, alpha is dropped."""
    import matplotlib.image                      # imported here, so the package loads without matplotlib

    try:
        image = np.asarray(matplotlib.image.imread(path))
    except (OSError, ValueError, SyntaxError) as err:
        raise ValueError(f"read_image: cannot read {path} as an image ({err})") from None
    if image.dtype.kind == "f":                  # PNG: floats in 0..1
        image = image * 255.0
    image = image.astype(np.float64)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"read_image: expected an RGB, RGBA or grey image, got {path} of shape {image.shape}")
    return image[:, :, :3]


def _taps(size_in, size_out, antialias):
    """Source indices and weights ``(size_out, K)`` of a bilinear resize along one axis.

    Output pixel ``i`` has its centre at ``c = (i + 0.5) * scale`` in input coordinates (``scale = size_in /
    size_out``); input pixel ``j`` (centre ``j + 0.5``) gets the triangle weight ``max(0, 1 - |j + 0.5 - c| / s)``,
    normalised over the pixels inside the image, with ``s = 1`` (OpenCV: the two nearest pixels, clamped at the
    border) or ``s = max(scale, 1)`` (Pillow: every pixel the shrunken output pixel covers).
    """
    scale = size_in / size_out
    support = max(scale, 1.0) if antialias else 1.0
    centres = (np.arange(size_out) + 0.5) * scale
    width = int(np.ceil(support)) * 2 + 2            # every pixel within the support
    first = np.floor(centres - support).astype(int)
    idx = first[:, None] + np.arange(width)[None, :]
    w = np.maximum(0.0, 1.0 - np.abs(idx + 0.5 - centres[:, None]) / support)
    if not antialias:                                       # OpenCV repeats the border pixel
        idx = np.clip(idx, 0, size_in - 1)
    else:                                                   # Pillow drops taps outside the image
        w[(idx < 0) | (idx >= size_in)] = 0.0
        idx = np.clip(idx, 0, size_in - 1)
    return idx, w / w.sum(axis=1, keepdims=True)


def resize(image, height, width, *, antialias):
    """Bilinear resize of an ``(H, W, C)`` image to ``(height, width, C)``; ``antialias`` as Pillow, else as
    OpenCV (:func:`_taps`); values rounded to whole grey levels, as both do on 8-bit images."""
    rows, wr = _taps(image.shape[0], height, antialias)
    cols, wc = _taps(image.shape[1], width, antialias)
    out = sum(wr[:, k, None, None] * image[rows[:, k]] for k in range(rows.shape[1]))         # along H
    out = sum(wc[None, :, k, None] * out[:, cols[:, k]] for k in range(cols.shape[1]))        # along W
    return np.clip(np.rint(out), 0, 255)


def center_crop(image, size=CROP):
    """The central ``size x size`` window (the top/left offset rounded, as torchvision's and mmcv's)."""
    H, W = image.shape[:2]
    if H < size or W < size:
        raise ValueError(f"center_crop: expected an image of at least {size}x{size}, got {H}x{W}")
    top, left = int(round((H - size) / 2)), int(round((W - size) / 2))
    return image[top:top + size, left:left + size]


def preprocess(image, source="official"):
    """One RGB image in 0..255, ``(H, W, 3)``, as the ``(1, 3, 224, 224)`` float32 input of ``source``'s network.

    Parameters
    ----------
    image : ndarray (H, W, 3), RGB values in 0..255 (e.g. from :func:`read_image`)
    source : "official" or "mmpretrain" (module docstring: resize the short side to 256, centre crop 224,
        then BGR 0..255 for the authors' weights, normalised RGB for mmpretrain's)
    """
    if source not in SOURCES:
        raise ValueError(f"preprocess: expected source in {SOURCES}, got {source!r}")
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"preprocess: expected an (H, W, 3) RGB image, got shape {image.shape}")
    H, W = image.shape[:2]
    if H * W > MAX_PIXELS or min(H, W) < 1:
        raise ValueError(f"preprocess: expected an image of 1 to {MAX_PIXELS} pixels, got {H}x{W}")
    if H < W:
        size = (RESIZE, int(RESIZE / H * W + 0.5))
    else:
        size = (int(RESIZE / W * H + 0.5), RESIZE)
    image = center_crop(resize(image, *size, antialias=(source == "mmpretrain")))
    if source == "official":
        x = image[:, :, ::-1]                                   # BGR, 0..255
    else:
        x = (image - MMPRETRAIN_MEAN) / MMPRETRAIN_STD          # RGB, normalised
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def top_k(logits, k=5, names=None):
    """``[(class index, name, probability)]`` of the ``k`` largest softmax probabilities of one logits row."""
    logits = np.asarray(logits, dtype=np.float64).ravel()
    p = np.exp(logits - logits.max())
    p /= p.sum()
    order = np.argsort(-p, kind="stable")[:k]
    names = names if names is not None else [str(i) for i in range(logits.size)]
    return [(int(i), names[i], float(p[i])) for i in order]
