"""Argument checks whose errors name the argument and the value received."""

import difflib
import inspect

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


# Keyword arguments that Keras and keras-hub base classes take from
# `**kwargs` without naming them in a signature (`keras.layers.Layer` pops
# `input_dim` and `input_shape`; keras-hub preprocessors and tokenizers pop
# `config_file`; functional models accept the legacy `Input` arguments).
BASE_KEYWORD_ARGUMENTS = frozenset(
    {
        "input_dim",
        "input_shape",
        "batch_input_shape",
        "batch_size",
        "weights",
        "config_file",
        "_allow_python_workflow",
    }
)


def known_keyword_arguments(cls):
    """The keyword arguments of `cls.__init__` and of every base class's
    `__init__` (a class's `**kwargs` go up the chain), plus the base Keras
    and keras-hub ones in `BASE_KEYWORD_ARGUMENTS`."""
    names = set(BASE_KEYWORD_ARGUMENTS)
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            parameters = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            continue
        names.update(
            p.name
            for p in parameters
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.name != "self"
        )
    return names


def check_keyword_arguments(owner, kwargs):
    """Raises a `ValueError` for a keyword in `kwargs` (what `owner`'s
    `__init__` passes on to its base class) that no class of `owner`
    accepts, naming it and the nearest known argument.

    Functional Keras models drop unknown keywords silently, so a
    misspelled argument (`cross_attention_intreval=1`) would otherwise
    build a model with the default value.
    """
    cls = owner if isinstance(owner, type) else type(owner)
    known = known_keyword_arguments(cls)
    unknown = sorted(set(kwargs) - known)
    if not unknown:
        return
    public = sorted(name for name in known if not name.startswith("_"))
    name = unknown[0]
    nearest = difflib.get_close_matches(name, public, n=1, cutoff=0.6)
    hint = (
        f"Did you mean `{nearest[0]}`?"
        if nearest
        else f"Known arguments: {public}."
    )
    raise ValueError(
        f"{cls.__name__} got an unknown keyword argument `{name}`. {hint} "
        f"Received unknown: {unknown}"
    )
