"""Argument checks whose errors name the argument and the value received."""

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
