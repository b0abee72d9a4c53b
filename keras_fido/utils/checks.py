"""Argument checks whose errors name the argument and the value received."""

import keras
import numpy as np


def check_positive_int(name, value):
    """Returns `value` as an int, or raises a `ValueError` naming `name`.

    `bool` is rejected although Python counts it as an int: `True` passing
    as "1 layer" or "1 passage" would hide a bug.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < 1
    ):
        raise ValueError(
            f"`{name}` must be a positive int. Received: {name}={value!r}"
        )
    return int(value)


def check_token_ids(name, value, vocabulary_size=None):
    """Raises a `ValueError` naming `name` for ids that are not token ids.

    The dtype must be an integer one (always checked, symbolic tensors
    included). The values must lie in `[0, vocabulary_size)`: checked only
    for host values (numpy arrays), so that compiled steps never wait on
    the device; out-of-range ids would otherwise be clipped or wrap around
    silently (embedding gathers on XLA) or fail deep inside a backend.
    """
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return
    if isinstance(value, np.ndarray):
        integer = value.dtype.kind in "iu"
        dtype = str(value.dtype)
    else:
        try:
            dtype = keras.backend.standardize_dtype(dtype)
        except ValueError:
            dtype = str(dtype)
        integer = "int" in dtype
    if not integer:
        raise ValueError(
            f"`{name}` must hold integer token ids (e.g. int32). "
            f"Received dtype {dtype}."
        )
    if vocabulary_size and isinstance(value, np.ndarray) and value.size:
        low, high = int(value.min()), int(value.max())
        if low < 0 or high >= vocabulary_size:
            raise ValueError(
                f"`{name}` must hold token ids in [0, {vocabulary_size}) "
                f"(the vocabulary size). Received ids from {low} to {high}."
            )


def check_weights_file(path):
    """Raises a `ValueError` naming `path` when its HDF5 structure cannot
    be read in full (a truncated or damaged weights file), before any
    weight is assigned, so that no model is half loaded.

    Every group and dataset header is opened; the arrays themselves are
    read only when the weights are loaded (HDF5 keeps no checksum of
    them, so bytes changed inside an array cannot be detected here).
    """
    import h5py

    def open_item(name, item):
        if isinstance(item, h5py.Dataset):
            item.shape, item.dtype

    try:
        with h5py.File(path, "r") as file:
            file.visititems(open_item)
    except (OSError, RuntimeError, KeyError, ValueError) as error:
        raise ValueError(
            f"{path!r} is truncated or damaged and was not loaded (no "
            "weight was set). Save the preset again, or restore the file. "
            f"HDF5 said: {error}"
        ) from None
