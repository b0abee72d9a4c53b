"""Data for FiD readers: FiD json files and the embedded country QA task."""

from keras_fido.data.bm25_retriever import BM25Retriever
from keras_fido.data.cloze_examples import cloze_examples
from keras_fido.data.country_qa import build_country_qa
from keras_fido.data.country_qa import corpus_lines
from keras_fido.data.country_qa import country_qa_passages
from keras_fido.data.country_qa import country_qa_stats
from keras_fido.data.country_qa import write_country_qa
from keras_fido.data.fid_json import load_fid_json
from keras_fido.data.fid_json import read_fid_examples
from keras_fido.data.fid_json import write_fid_json
from keras_fido.data.fid_json_builder import FiDJson
from keras_fido.data.fid_json_builder import FiDJsonConfig
from keras_fido.data.sentencepiece_trainer import train_sentencepiece
from keras_fido.data.span_corruption import span_corruption
from keras_fido.data.span_corruption import span_corruption_dataset
from keras_fido.data.span_corruption import span_corruption_lengths
from keras_fido.data.span_corruption import span_corruption_noise_mask
from keras_fido.data.tfds_qa import load_tfds_qa

__all__ = [
    "BM25Retriever",
    "FiDJson",
    "FiDJsonConfig",
    "build_country_qa",
    "cloze_examples",
    "corpus_lines",
    "country_qa_passages",
    "country_qa_stats",
    "load_fid_json",
    "load_tfds_qa",
    "read_fid_examples",
    "span_corruption",
    "span_corruption_dataset",
    "span_corruption_lengths",
    "span_corruption_noise_mask",
    "train_sentencepiece",
    "write_country_qa",
    "write_fid_json",
]
