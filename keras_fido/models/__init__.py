"""FiD and FiDO models: backbone, tokenizer, preprocessor, seq2seq LM."""

from keras_fido.models.fido_backbone import FiDOBackbone

__all__ = ["FiDOBackbone"]
