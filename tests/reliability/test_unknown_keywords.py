"""A misspelled keyword argument is a `ValueError` naming it and the
nearest known argument, never silently dropped; Keras' own keywords and
`from_config` round trips keep working."""

import pytest

from keras_fido.layers import FiDOEncoder
from keras_fido.layers import MultiQueryCrossAttention
from keras_fido.layers import T5LayerNorm
from keras_fido.models import FiDOBackbone
from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.models import FiDOSeq2SeqLMPreprocessor
from keras_fido.models import FiDOTokenizer
from keras_fido.testing.fido_models import TINY_FID_CONFIG
from keras_fido.testing.fido_models import tiny_backbone

CONFIG = {"vocabulary_size": 64, **TINY_FID_CONFIG}


def test_misspelled_backbone_keyword_names_the_nearest_argument():
    with pytest.raises(ValueError) as error:
        FiDOBackbone(**CONFIG, cross_attention_intreval=1)
    message = str(error.value)
    assert "`cross_attention_intreval`" in message
    assert "Did you mean `cross_attention_interval`?" in message


def test_backbone_keeps_keras_keywords_and_round_trips():
    backbone = FiDOBackbone(**CONFIG, name="reader_backbone", trainable=False)
    assert backbone.name == "reader_backbone" and not backbone.trainable
    copy = FiDOBackbone.from_config(backbone.get_config())
    assert copy.get_config() == backbone.get_config()


def test_unlike_keyword_lists_the_known_arguments():
    with pytest.raises(ValueError, match="Known arguments: .*vocabulary_size"):
        FiDOBackbone(**CONFIG, zzz=1)


def test_task_keyword(sentencepiece_proto):
    backbone = tiny_backbone("fid", vocabulary_size=800)
    with pytest.raises(ValueError, match="Did you mean `preprocessor`"):
        FiDOSeq2SeqLM(backbone, preprocesor=None)
    reader = FiDOSeq2SeqLM(backbone, name="reader", compile=False)
    assert reader.name == "reader"


def test_preprocessor_and_tokenizer_keywords(sentencepiece_proto):
    tokenizer = FiDOTokenizer(proto=sentencepiece_proto)
    with pytest.raises(ValueError, match="Did you mean `sequence_length`"):
        FiDOTokenizer(proto=sentencepiece_proto, sequence_lenght=8)
    with pytest.raises(ValueError, match="Did you mean `num_passages`"):
        FiDOSeq2SeqLMPreprocessor(tokenizer, num_pasages=2)
    preprocessor = FiDOSeq2SeqLMPreprocessor(tokenizer, num_passages=2)
    copy = FiDOSeq2SeqLMPreprocessor.from_config(preprocessor.get_config())
    assert copy.num_passages == 2
    copy = FiDOTokenizer.from_config(tokenizer.get_config())
    assert copy.config_file == tokenizer.config_file


@pytest.mark.parametrize(
    "make, typo, nearest",
    [
        (lambda **kw: T5LayerNorm(**kw), "epsilom", "epsilon"),
        (
            lambda **kw: MultiQueryCrossAttention(
                num_query_heads=2, num_key_value_heads=1, key_value_dim=4, **kw
            ),
            "kernel_intializer",
            "kernel_initializer",
        ),
        (
            lambda **kw: FiDOEncoder(
                num_layers=1,
                hidden_dim=8,
                intermediate_dim=8,
                num_heads=2,
                key_value_dim=4,
                **kw,
            ),
            "layer_norm_epsilom",
            "layer_norm_epsilon",
        ),
    ],
)
def test_layer_keywords(make, typo, nearest):
    with pytest.raises(ValueError, match=f"Did you mean `{nearest}`"):
        make(**{typo: 1})
    layer = make(name="kept", dtype="float32")
    assert type(layer).from_config(layer.get_config()).name == "kept"
