"""keras_fido: Fusion-in-Decoder and FiDO readers for Keras 3."""

from keras_fido import layers
from keras_fido import models
from keras_fido.version import __version__

__all__ = ["layers", "models", "__version__"]
