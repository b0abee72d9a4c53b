"""Conversion between keras_fido and T5 checkpoints.

- `from_t5_checkpoint(directory)`: a HuggingFace T5.1.1 checkpoint
  directory -> a vanilla-FiD `FiDOSeq2SeqLM`, tokenizer included.
- `to_t5_checkpoint(model, directory)`: the reverse, for vanilla FiD.
- `uptrain_to_fido(encoder_source, decoder_source, ...)`: a FiDO backbone
  built from T5.1.1 checkpoints (K/V heads mean-pooled, cross-attention
  kept in every K-th layer, encoder and decoder from different sizes),
  ready for uptraining (`recipes/uptrain_fido.py`).
- `from_transformers(model)`: an in-memory transformers T5.1.1 model.
"""

from keras_fido.convert.from_t5_checkpoint import backbone_from_t5_checkpoint
from keras_fido.convert.from_t5_checkpoint import from_t5_checkpoint
from keras_fido.convert.t5_checkpoint import T5Checkpoint
from keras_fido.convert.t5_checkpoint import read_t5_checkpoint
from keras_fido.convert.t5_config import backbone_config_from_t5_config
from keras_fido.convert.t5_config import t5_config_from_backbone
from keras_fido.convert.t5_tokenizer import spiece_from_tokenizer
from keras_fido.convert.t5_tokenizer import tokenizer_from_spiece
from keras_fido.convert.t5_weight_map import t5_weight_map
from keras_fido.convert.to_t5_checkpoint import t5_state_from_backbone
from keras_fido.convert.to_t5_checkpoint import to_t5_checkpoint
from keras_fido.convert.transformers_t5 import from_transformers
from keras_fido.convert.transformers_t5 import load_t5_state
from keras_fido.convert.uptrain_to_fido import UptrainingReport
from keras_fido.convert.uptrain_to_fido import mean_pool_heads
from keras_fido.convert.uptrain_to_fido import uptrain_to_fido

__all__ = [
    "T5Checkpoint",
    "UptrainingReport",
    "backbone_config_from_t5_config",
    "backbone_from_t5_checkpoint",
    "from_t5_checkpoint",
    "from_transformers",
    "load_t5_state",
    "mean_pool_heads",
    "read_t5_checkpoint",
    "spiece_from_tokenizer",
    "t5_config_from_backbone",
    "t5_state_from_backbone",
    "t5_weight_map",
    "to_t5_checkpoint",
    "tokenizer_from_spiece",
    "uptrain_to_fido",
]
