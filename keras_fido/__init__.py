"""keras_fido: Fusion-in-Decoder and FiDO readers for Keras 3.

The subpackages load on first use (`keras_fido.models`, or `from
keras_fido.models import ...`), so that `import keras_fido` alone loads
neither Keras nor TensorFlow, and a command-line entry point (`python -m
keras_fido.quickstart`) can set TensorFlow's logging before it loads.
Keras finds keras_fido's layers and models when it loads a saved reader
once `keras_fido.models` has been imported.
"""

import importlib

from keras_fido.version import __version__

_SUBPACKAGES = (
    "analysis",
    "convert",
    "data",
    "export",
    "layers",
    "memory",
    "metrics",
    "models",
    "training",
)

__all__ = [*_SUBPACKAGES, "__version__"]


def __getattr__(name):
    if name not in _SUBPACKAGES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return importlib.import_module(f"{__name__}.{name}")


def __dir__():
    return sorted(set(globals()) | set(_SUBPACKAGES))
