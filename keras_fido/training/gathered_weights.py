"""Weights sharded over several processes, made whole for a save."""

import contextlib

import keras


@contextlib.contextmanager
def gathered_weights(model):
    """Within the block, every variable of `model` converts to numpy on
    every process, so that Keras can save it.

    Keras saves a variable by converting it to numpy, which JAX refuses
    for an array whose shards lie on several processes, none holding
    them all ("Fetching value for `jax.Array` that spans non-addressable
    devices"): what `--distribution model` makes of a weight when the
    model axis spans processes. Every variable (weights and optimizer
    state) sharded over the devices of several processes is gathered
    into host memory, one at a time, and holds that numpy value during
    the block; its sharded value comes back on exit, unless the block
    assigned the variable. Nothing happens on one process or on other
    backends.

    Gathering is a collective: every process enters the block, as every
    process runs every save (`processes.written_by_chief`). Loading needs
    nothing: assigning a whole numpy value to a sharded variable lays it
    out again (`keras.Variable.assign`).

    Example:
    ```python
    with gathered_weights(reader), written_by_chief(path, chief) as own:
        reader.save_to_preset(own)
    ```
    """
    swapped = []
    try:
        for variable in _split_over_processes(model):
            sharded = variable._value
            swapped.append((variable, sharded, _whole(sharded)))
            # `assign` would shard the value again (the variable's layout):
            # the whole value is set in place of the sharded one.
            variable._value = swapped[-1][2]
        yield model
    finally:
        for variable, sharded, whole in swapped:
            if variable._value is whole:  # not assigned meanwhile
                variable._value = sharded


def _split_over_processes(model):
    """The variables of `model` and its optimizer sharded over the devices
    of several processes, in the same order on every process (the choice
    depends on the global layout alone, so all gather the same ones)."""
    if keras.backend.backend() != "jax":
        return []
    import jax

    if jax.process_count() == 1:
        return []
    optimizer = getattr(model, "optimizer", None)
    variables = list(model.variables)
    if optimizer is not None and optimizer.built:
        variables += optimizer.variables
    unique = {id(v): v for v in variables}.values()
    return [v for v in unique if _is_sharded(v.value)]


def _is_sharded(value):
    """Whether `value` is a JAX array that is neither on this process's
    devices alone nor the same on every device."""
    addressable = getattr(value, "is_fully_addressable", True)
    return not addressable and not value.is_fully_replicated


def _whole(value):
    import numpy as np
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(value, tiled=True))
