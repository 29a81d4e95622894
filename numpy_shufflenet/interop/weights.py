"""Weight files: a model's ``state_dict`` in a NumPy ``.npz`` archive, one array per parameter or buffer.

A weight file is untrusted input, so it is read member by member with :mod:`zipfile` and the ``.npy`` format
reader, never with ``np.load`` and never unpickled:

1. every member's name must be one of the entries the model expects (and every expected entry must be there);
2. before a member is decompressed, its ``.npy`` header (dtype and shape) must be what the model expects, and
   the size the zip entry declares must be exactly that header plus ``prod(shape) * itemsize`` bytes, so a small
   file that claims to inflate to a gigabyte, or a header that claims 10**12 elements, is refused with a
   ``ValueError`` naming the entry instead of a ``MemoryError``;
3. only then are the bytes read, exactly as many as the header announced, and the values checked to be finite.

Nothing is copied into the model until every entry has passed (``Module.load_state_dict`` is atomic).
"""

import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from .._checks import check_out_file, check_same_keys

MAX_HEADER_BYTES = 10_000       # a .npy header of one array is ~128 bytes; NumPy's own reader stops at 10,000


def save_weights(model, path):
    """Write every parameter and batch-norm buffer of ``model`` to ``path`` (a file name, to which NumPy adds
    ``.npz`` if missing, or an open binary file). The folder must exist (as for ``torch.save``): a clear
    ``ValueError`` otherwise."""
    if not hasattr(path, "write"):
        check_out_file(path, "save_weights")
    np.savez(path, **model.state_dict())


def load_weights(model, path):
    """Load a file written by :func:`save_weights` into ``model``.

    A clear ``ValueError`` names the file and any entry that is missing, unexpected, of the wrong shape or
    dtype, larger than it claims, or not finite; a file that is missing, not a zip archive, or holds pickled
    objects is refused, and the model is left untouched.
    """
    state = read_npz(path, model.state_dict(), caller="load_weights")
    model.load_state_dict(state)
    return model


def read_npz(path, expected, *, caller):
    """Read the arrays of an ``.npz`` archive, checking each one against ``expected`` before reading it.

    Parameters
    ----------
    path : str or Path
    expected : dict ``{name: ndarray}``, exactly the entries the archive must hold; each stored array must have
        the example's shape and the same kind of dtype (real float for a float example, integer for an integer
        one; the precision may differ, the caller casts)
    caller : str, the prefix of every error message (``"load_weights"``, ``"resume"``)

    Returns
    -------
    dict ``{name: ndarray}``, one array per name, finite when it is a float array

    Raises
    ------
    ValueError
        naming ``path`` and the offending entry, for anything but exactly the expected arrays.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{caller}: {path} not found")
    if path.is_dir():
        raise ValueError(f"{caller}: expected a .npz file, got {path}, which is a directory")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{caller}: expected a .npz weight file written by save_weights, got {path}, which is not "
                         f"a .npz (zip) archive")
    try:
        with zipfile.ZipFile(path) as archive:
            members = {}
            for info in archive.infolist():
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if name in members:
                    raise ValueError(f"{caller}: {path} holds the entry {name!r} twice")
                members[name] = info
            check_same_keys(f"{caller}: {path}", expected, members, "exactly the model's entries")
            return {name: _read_member(archive, members[name], name, example, f"{caller}: {path}")
                    for name, example in expected.items()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError) as err:
        raise ValueError(f"{caller}: {path} is not a readable .npz file ({type(err).__name__}: {err})") from None


def _read_member(archive, info, name, example, where):
    """One ``.npy`` member: header checked against ``example``'s shape and dtype kind, declared size checked,
    then exactly its bytes read."""
    shape, kind = tuple(example.shape), np.asarray(example).dtype.kind
    if not info.filename.endswith(".npy"):
        raise ValueError(f"{where}: expected {name} to be a .npy member, got {info.filename!r}")
    largest = MAX_HEADER_BYTES + int(np.prod(shape, dtype=np.int64)) * 16
    if info.file_size > largest:                  # declared size, checked before anything is decompressed
        raise ValueError(f"{where}: expected {name} of shape {shape} (at most {largest} bytes), but the archive "
                         f"declares {info.file_size} bytes for it")
    with archive.open(info) as f:
        try:
            version = npy_format.read_magic(f)
            if version == (1, 0):
                read_header = npy_format.read_array_header_1_0
            elif version in ((2, 0), (3, 0)):
                read_header = npy_format.read_array_header_2_0
            else:
                raise ValueError(f"unsupported .npy format version {version}")
            header_shape, fortran, dtype = read_header(f, max_header_size=MAX_HEADER_BYTES)
        except ValueError as err:
            raise ValueError(f"{where}: {name} is not a valid .npy array ({err})") from None
        if dtype.hasobject:
            raise ValueError(f"{where}: {name} holds pickled Python objects (dtype {dtype}), which are "
                             f"never unpickled; refused")
        if dtype.kind != kind or dtype.itemsize > 16:
            wanted = "real floats" if kind == "f" else "integers" if kind == "i" else f"dtype kind {kind!r}"
            raise ValueError(f"{where}: expected {name} to hold {wanted}, got dtype {dtype}")
        if tuple(header_shape) != shape:
            raise ValueError(f"{where}: expected {name} of shape {shape}, got {tuple(header_shape)}")
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if info.file_size != f.tell() + nbytes:
            raise ValueError(f"{where}: {name} of shape {shape} and dtype {dtype} needs {f.tell() + nbytes} bytes, "
                             f"but the archive declares {info.file_size}")
        data = f.read(nbytes)
    if len(data) != nbytes:
        raise ValueError(f"{where}: {name} is truncated ({len(data)} of {nbytes} bytes)")
    value = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()
    if kind == "f" and not np.all(np.isfinite(value)):
        raise ValueError(f"{where}: expected {name} to be finite, got {int(np.sum(~np.isfinite(value)))} "
                         f"NaN or inf value(s)")
    return value
