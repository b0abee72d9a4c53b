"""Conversion between keras_fido and other T5 implementations."""

from keras_fido.convert.transformers_t5 import backbone_config_from_t5_config
from keras_fido.convert.transformers_t5 import from_transformers
from keras_fido.convert.transformers_t5 import load_t5_state

__all__ = [
    "backbone_config_from_t5_config",
    "from_transformers",
    "load_t5_state",
]
