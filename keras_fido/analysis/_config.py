"""Reads model sizes out of a FiDO config dict and checks call arguments."""

import dataclasses

from keras_fido.layers.cross_attention_schedule import (
    cross_attention_layer_indices,
)
from keras_fido.utils.checks import check_positive_int  # noqa: F401

_REQUIRED_KEYS = (
    "vocabulary_size",
    "encoder_hidden_dim",
    "encoder_num_layers",
    "encoder_num_heads",
    "encoder_intermediate_dim",
    "decoder_hidden_dim",
    "decoder_num_layers",
    "decoder_num_heads",
    "decoder_num_key_value_heads",
    "decoder_intermediate_dim",
    "key_value_dim",
    "cross_attention_interval",
)


@dataclasses.dataclass(frozen=True)
class ModelDims:
    """The sizes the cost model needs, with derived attention widths."""

    vocabulary_size: int
    encoder_hidden_dim: int
    encoder_num_layers: int
    encoder_num_heads: int
    encoder_intermediate_dim: int
    decoder_hidden_dim: int
    decoder_num_layers: int
    decoder_num_heads: int
    decoder_num_key_value_heads: int
    decoder_intermediate_dim: int
    key_value_dim: int
    cross_attention_interval: int

    @property
    def encoder_inner_dim(self):
        # T5.1.1 encoder attention is multi-head: as many K/V heads as Q.
        return self.encoder_num_heads * self.key_value_dim

    @property
    def decoder_query_dim(self):
        return self.decoder_num_heads * self.key_value_dim

    @property
    def decoder_key_value_dim(self):
        return self.decoder_num_key_value_heads * self.key_value_dim

    @property
    def decoder_group_size(self):
        """Query heads sharing one K/V head (1: multi-head, h: multi-query)."""
        return self.decoder_num_heads // self.decoder_num_key_value_heads

    @property
    def cross_attention_layers(self):
        return cross_attention_layer_indices(
            self.decoder_num_layers, self.cross_attention_interval
        )

    @property
    def num_cross_attention_layers(self):
        return len(self.cross_attention_layers)


def model_dims(config):
    """Validate a FiDO config dict and return its `ModelDims`.

    Keys other than the ones the cost model needs (`name`, `dtype`, dropout,
    ...) are ignored, so `FiDOBackbone.get_config()` can be passed as is.
    """
    if not isinstance(config, dict):
        raise TypeError(
            "`config` must be a dict such as `FiDOBackbone.get_config()`. "
            f"Received: config={config!r}"
        )
    missing = [key for key in _REQUIRED_KEYS if key not in config]
    if missing:
        raise ValueError(
            f"`config` is missing the keys {missing}. "
            f"Received keys: {sorted(config)}"
        )
    for key in _REQUIRED_KEYS:
        check_positive_int(key, config[key])
    heads = config["decoder_num_heads"]
    kv_heads = config["decoder_num_key_value_heads"]
    if heads % kv_heads:
        raise ValueError(
            "`decoder_num_heads` must be a multiple of "
            "`decoder_num_key_value_heads` so that query heads split evenly "
            f"over key/value heads. Received: decoder_num_heads={heads}, "
            f"decoder_num_key_value_heads={kv_heads}"
        )
    # Checks the interval against the depth, with the schedule's own message.
    cross_attention_layer_indices(
        config["decoder_num_layers"], config["cross_attention_interval"]
    )
    return ModelDims(**{key: config[key] for key in _REQUIRED_KEYS})
