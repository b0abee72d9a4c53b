"""keras_fido: Fusion-in-Decoder and FiDO readers for Keras 3."""

from keras_fido import analysis
from keras_fido import convert
from keras_fido import data
from keras_fido import export
from keras_fido import layers
from keras_fido import metrics
from keras_fido import models
from keras_fido import training
from keras_fido.version import __version__

__all__ = [
    "analysis",
    "convert",
    "data",
    "export",
    "layers",
    "metrics",
    "models",
    "training",
    "__version__",
]
