"""A generated image-classification data set ("shapes"), so that training needs no download.

Each image is one of eight outline or filled shapes drawn at a random position and size, in a random colour on a
random background colour, with Gaussian pixel noise::

    0 disk    1 ring    2 square    3 frame    4 diamond    5 plus    6 cross (x)    7 triangle

Position, size and colours vary, so no single pixel tells the class: a linear classifier on raw pixels does
poorly, while a small convolutional network, which can detect edges and corners anywhere, does well. The same
seed always gives the same images.
"""

import numpy as np

from .._checks import check_int

CLASSES = ("disk", "ring", "square", "frame", "diamond", "plus", "cross", "triangle")


def _masks(dx, dy, r):
    """Boolean masks of every class, for offsets ``dx, dy`` from each shape's centre, in units of pixels."""
    d = np.sqrt(dx ** 2 + dy ** 2)
    box = np.maximum(np.abs(dx), np.abs(dy))
    bar = 0.3 * r
    return [
        d <= r,                                                           # disk
        (d <= r) & (d >= 0.55 * r),                                       # ring
        box <= 0.85 * r,                                                  # square
        (box <= 0.85 * r) & (box >= 0.5 * r),                             # frame
        np.abs(dx) + np.abs(dy) <= r,                                     # diamond
        ((np.abs(dx) <= bar) | (np.abs(dy) <= bar)) & (box <= r),         # plus
        ((np.abs(dx - dy) <= 1.41 * bar) | (np.abs(dx + dy) <= 1.41 * bar)) & (box <= 0.85 * r),   # cross
        (dy <= 0.6 * r) & (dy >= -r + 1.8 * np.abs(dx)),                  # triangle, apex up
    ]


def make_shapes(n, image_size=32, *, seed=0, noise=0.1, radius=(0.28, 0.45), dtype=np.float32):
    """Generate ``n`` labelled images.

    Parameters
    ----------
    n : int >= 0, number of images (classes are balanced up to rounding and shuffled; 0 gives empty arrays)
    image_size : int >= 1, side in pixels (at least 32 for ShuffleNet)
    seed : int
    noise : float, standard deviation of the Gaussian pixel noise (pixel values are in [0, 1] before noise)
    radius : (low, high), the range of a shape's half-width as a fraction of the image side,
        ``0 < low <= high <= 0.5`` (a shape must fit inside the image)

    Returns
    -------
    x : ndarray, shape (n, 3, image_size, image_size), ``dtype``, roughly zero-mean (0.5 is subtracted)
    y : int64 ndarray, shape (n,), values in ``[0, 8)``
    """
    n = check_int("make_shapes", "n", n, 0)
    image_size = check_int("make_shapes", "image_size", image_size, 1)
    if isinstance(noise, bool) or not isinstance(noise, (int, float, np.integer, np.floating)) \
            or not np.isfinite(noise) or noise < 0:
        raise ValueError(f"make_shapes: expected noise to be a finite number >= 0, got {noise!r}")
    try:
        low, high = (float(v) for v in radius)
    except (TypeError, ValueError):
        raise ValueError(f"make_shapes: expected radius to be a pair (low, high) of numbers, got {radius!r}") \
            from None
    if not 0 < low <= high <= 0.5:
        raise ValueError(f"make_shapes: expected radius (low, high) with 0 < low <= high <= 0.5, got {radius!r}")
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise TypeError(f"make_shapes: expected a float dtype, got {np.dtype(dtype)}")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % len(CLASSES))
    size = image_size
    r = rng.uniform(low, high, n) * size                       # shape "radius" in pixels
    cx = rng.uniform(r, size - r)                                         # keep the shape inside the image
    cy = rng.uniform(r, size - r)
    grid = np.arange(size) + 0.5
    dx = grid[None, None, :] - cx[:, None, None]                          # (n, 1, W)
    dy = grid[None, :, None] - cy[:, None, None]                          # (n, H, 1)
    dx, dy = np.broadcast_arrays(dx, dy)
    masks = np.stack(_masks(dx, dy, r[:, None, None]), axis=1)            # (n, classes, H, W)
    mask = masks[np.arange(n), y][:, None]                                # (n, 1, H, W)
    background = rng.uniform(0, 1, (n, 3, 1, 1))
    # A foreground colour far enough from the background that the shape is visible.
    offset = rng.uniform(0.35, 0.65, (n, 3, 1, 1)) * rng.choice([-1.0, 1.0], (n, 1, 1, 1))
    foreground = np.clip(background + offset, 0, 1)
    foreground = np.where(np.abs(foreground - background).mean(axis=1, keepdims=True) < 0.25,
                          1 - background, foreground)
    x = np.where(mask, foreground, background) + noise * rng.standard_normal((n, 3, size, size))
    return (x - 0.5).astype(dtype), y.astype(np.int64)


def batches(x, y, batch_size, *, rng=None):
    """Yield ``(x_batch, y_batch)`` pairs covering the data once, in a random order when ``rng`` is given."""
    batch_size = check_int("batches", "batch_size", batch_size, 1)
    if len(x) != len(y):
        raise ValueError(f"batches: expected as many labels as images, got {len(x)} images and {len(y)} labels")
    order = np.arange(len(x)) if rng is None else rng.permutation(len(x))
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        yield x[idx], y[idx]
