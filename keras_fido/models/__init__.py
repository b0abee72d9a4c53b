"""FiD and FiDO models: backbone, tokenizer, preprocessor, seq2seq LM."""

from keras_fido.models.fido_backbone import FiDOBackbone
from keras_fido.models.fido_seq_2_seq_lm import FiDOSeq2SeqLM
from keras_fido.models.fido_seq_2_seq_lm_preprocessor import (
    FiDOSeq2SeqLMPreprocessor,
)
from keras_fido.models.fido_tokenizer import FiDOTokenizer
from keras_fido.models.reader_reranking import precision_at_1
from keras_fido.models.reader_reranking import reader_passage_scores
from keras_fido.models.reader_reranking import rerank_by_reader_scores

__all__ = [
    "FiDOBackbone",
    "FiDOSeq2SeqLM",
    "FiDOSeq2SeqLMPreprocessor",
    "FiDOTokenizer",
    "precision_at_1",
    "reader_passage_scores",
    "rerank_by_reader_scores",
]
