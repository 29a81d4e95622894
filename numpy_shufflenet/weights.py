"""Weight files: a model's ``state_dict`` in a NumPy ``.npz`` archive, one array per parameter or buffer.

Loading never unpickles (``allow_pickle=False``), so a weight file cannot run code, and every name and shape is
checked before anything is copied into the model.
"""

import zipfile

import numpy as np


def save_weights(model, path):
    """Write every parameter and batch-norm buffer of ``model`` to ``path`` (NumPy adds ``.npz`` if missing)."""
    np.savez(path, **model.state_dict())


def load_weights(model, path):
    """Load a file written by :func:`save_weights` into ``model``; a clear ``ValueError`` names any entry that
    is missing, unexpected or of the wrong shape, and a file holding pickled objects is refused."""
    if not zipfile.is_zipfile(path):
        raise ValueError(f"load_weights: expected a .npz weight file written by save_weights, got {path}, "
                         f"which is not a .npz (zip) archive")
    try:
        with np.load(path, allow_pickle=False) as archive:
            state = {name: archive[name] for name in archive.files}
    except ValueError as err:                 # numpy refuses object arrays when allow_pickle=False
        raise ValueError(f"load_weights: {path} holds pickled (object) data, which is refused: {err}") from None
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"load_weights: {path} is not a readable .npz weight file ({err})") from None
    model.load_state_dict(state)
    return model
