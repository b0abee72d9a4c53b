"""Keras layers of FiD and FiDO."""

from keras_fido.layers.copy_attention_head import CopyAttentionHead
from keras_fido.layers.cross_attention_schedule import (
    cross_attention_layer_indices,
)
from keras_fido.layers.fido_decoder import FiDODecoder
from keras_fido.layers.fido_encoder import FiDOEncoder
from keras_fido.layers.fido_transformer_layer import FiDOTransformerLayer
from keras_fido.layers.gated_gelu_feed_forward import GatedGeluFeedForward
from keras_fido.layers.multi_query_attention import MultiQueryAttention
from keras_fido.layers.multi_query_cross_attention import (
    MultiQueryCrossAttention,
)
from keras_fido.layers.relative_position_bias import RelativePositionBias
from keras_fido.layers.t5_layer_norm import T5LayerNorm

__all__ = [
    "CopyAttentionHead",
    "FiDODecoder",
    "FiDOEncoder",
    "FiDOTransformerLayer",
    "GatedGeluFeedForward",
    "MultiQueryAttention",
    "MultiQueryCrossAttention",
    "RelativePositionBias",
    "T5LayerNorm",
    "cross_attention_layer_indices",
]
