"""FiD and FiDO models: backbone, tokenizer, preprocessor, seq2seq LM."""

from keras_fido.models.fido_backbone import FiDOBackbone
from keras_fido.models.fido_seq_2_seq_lm import FiDOSeq2SeqLM
from keras_fido.models.fido_seq_2_seq_lm_preprocessor import (
    FiDOSeq2SeqLMPreprocessor,
)
from keras_fido.models.fido_tokenizer import FiDOTokenizer

__all__ = [
    "FiDOBackbone",
    "FiDOSeq2SeqLM",
    "FiDOSeq2SeqLMPreprocessor",
    "FiDOTokenizer",
]
