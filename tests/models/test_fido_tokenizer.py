import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_fido.models.fido_tokenizer import FiDOTokenizer


def test_special_token_ids_follow_t5(fido_tokenizer):
    assert fido_tokenizer.pad_token == "<pad>"
    assert fido_tokenizer.end_token == "</s>"
    assert fido_tokenizer.pad_token_id == 0
    assert fido_tokenizer.end_token_id == 1
    # T5 decoders start from the pad id, not from "</s>".
    assert fido_tokenizer.start_token == "<pad>"
    assert fido_tokenizer.start_token_id == 0
    assert fido_tokenizer.token_to_id("<unk>") == 2


def test_is_a_t5_tokenizer(fido_tokenizer):
    from keras_hub.models import T5Tokenizer

    assert isinstance(fido_tokenizer, T5Tokenizer)


def test_tokenize_detokenize_round_trip(fido_tokenizer):
    text = "question: What is the capital of France? 1987"
    ids = keras.ops.convert_to_numpy(fido_tokenizer(text))
    assert ids.dtype == np.int32
    assert 2 not in ids.tolist()  # No unknown tokens in ordinary text.
    assert fido_tokenizer.detokenize(ids) == text


def test_in_graph_tokenization_matches_eager(fido_tokenizer):
    texts = ["title: Paris", "context: Paris is in France."]
    ds = tf.data.Dataset.from_tensor_slices(texts).batch(2)
    graph_ids = next(iter(ds.map(fido_tokenizer))).to_list()
    eager_ids = [list(fido_tokenizer(t)) for t in texts]
    assert graph_ids == eager_ids


def test_preset_round_trip(fido_tokenizer, sentencepiece_proto, tmp_path):
    preset_dir = str(tmp_path / "fido_tokenizer")
    fido_tokenizer.save_to_preset(preset_dir)
    assert os.path.exists(
        os.path.join(preset_dir, "assets", "tokenizer", "vocabulary.spm")
    )

    restored = FiDOTokenizer.from_preset(preset_dir)
    assert isinstance(restored, FiDOTokenizer)
    assert restored.proto == sentencepiece_proto
    assert restored.start_token_id == restored.pad_token_id == 0
    assert restored.end_token_id == 1
    text = "the capital of Germany is Berlin"
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(restored(text)),
        keras.ops.convert_to_numpy(fido_tokenizer(text)),
    )


def test_from_preset_on_directory_without_configs(tmp_path):
    with pytest.raises(ValueError, match="preset"):
        FiDOTokenizer.from_preset(str(tmp_path))


def test_registered_for_serialization(fido_tokenizer):
    config = keras.saving.serialize_keras_object(fido_tokenizer)
    assert config["registered_name"] == "keras_fido>FiDOTokenizer"
    # The proto lives in assets, not in the config.
    assert config["config"]["proto"] is None
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored, FiDOTokenizer)
    assert restored.get_config() == fido_tokenizer.get_config()


def test_sentinels_count_down_from_the_top_of_the_vocabulary():
    from keras_fido.data import corpus_lines
    from keras_fido.data import train_sentencepiece

    proto = train_sentencepiece(corpus_lines(), vocab_size=400, extra_ids=5)
    tokenizer = FiDOTokenizer(proto=proto)
    assert tokenizer.vocabulary_size() == 405
    assert tokenizer.sentinel_token_ids == [404, 403, 402, 401, 400]
    assert tokenizer.id_to_token(404) == "<extra_id_0>"
    # A sentinel in text is one token, and detokenizes back to itself.
    ids = np.asarray(tokenizer("Paris <extra_id_1> France")).tolist()
    assert 403 in ids
    assert "<extra_id_1>" in tokenizer.detokenize(ids)


def test_a_vocabulary_without_sentinels_has_none(fido_tokenizer):
    assert fido_tokenizer.sentinel_token_ids == []
