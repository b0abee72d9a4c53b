"""A backbone with more vocabulary rows than its tokenizer has pieces (T5:
32,128 rows, 32,100 pieces) never emits an id the tokenizer cannot
detokenize; a tokenizer with more pieces than rows is refused."""

import keras
import keras_hub
import numpy as np
import pytest
from keras import ops

from keras_fido.metrics import GenerationEvaluationCallback
from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.models import FiDOSeq2SeqLMPreprocessor
from keras_fido.models import FiDOTokenizer
from keras_fido.testing.fido_models import tiny_backbone

PADDING_ROWS = 28
EXAMPLES = [
    {
        "question": "what is the capital of france",
        "passages": [{"title": "France", "text": "Its capital is Paris."}],
        "answers": ["Paris"],
    },
    {
        "question": "who wrote the play",
        "passages": [{"title": "Play", "text": "A play written long ago."}],
        "answers": ["nobody"],
    },
]


def padded_reader(tokenizer):
    """A reader whose backbone has `PADDING_ROWS` rows beyond the
    tokenizer, with output columns there that outscore the real ones:
    `+-10x` the columns of the first pieces, so whichever sign a real
    logit has, a padding id beats it tenfold."""
    pieces = tokenizer.vocabulary_size()
    backbone = tiny_backbone("fido", vocabulary_size=pieces + PADDING_ROWS)
    kernel = ops.convert_to_numpy(backbone.token_embedding.reverse_embeddings)
    half = PADDING_ROWS // 2
    kernel[:, pieces : pieces + half] = 10.0 * kernel[:, :half]
    kernel[:, pieces + half :] = -10.0 * kernel[:, :half]
    backbone.token_embedding.reverse_embeddings.assign(kernel)
    preprocessor = FiDOSeq2SeqLMPreprocessor(
        tokenizer, num_passages=2, passage_length=32, decoder_sequence_length=6
    )
    return FiDOSeq2SeqLM(backbone, preprocessor)


@pytest.fixture(scope="module")
def tokenizer(sentencepiece_proto):
    return FiDOTokenizer(proto=sentencepiece_proto)


@pytest.fixture(scope="module")
def reader(tokenizer):
    return padded_reader(tokenizer)


def test_padding_ids_would_win_unmasked(reader, tokenizer):
    # The precondition that makes the tests below meaningful.
    x = reader.preprocessor.generate_preprocess(EXAMPLES)
    x = {k: ops.convert_to_numpy(v) for k, v in x.items()}
    logits = ops.convert_to_numpy(reader(x))
    assert np.all(logits.argmax(-1) >= tokenizer.vocabulary_size())


def test_generate_emits_only_tokenizer_ids(reader, tokenizer):
    x = reader.preprocessor.generate_preprocess(EXAMPLES)
    outputs = reader.generate_step(x, stop_token_ids=None)
    ids = ops.convert_to_numpy(outputs["decoder_token_ids"])
    assert ids.max() < tokenizer.vocabulary_size()
    answers = reader.generate(EXAMPLES)
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)


def test_beam_search_emits_only_tokenizer_ids(tokenizer):
    reader = padded_reader(tokenizer)
    reader.compile(sampler=keras_hub.samplers.BeamSampler(num_beams=2))
    x = reader.preprocessor.generate_preprocess(EXAMPLES)
    outputs = reader.generate_step(x, stop_token_ids=None)
    ids = ops.convert_to_numpy(outputs["decoder_token_ids"])
    assert ids.max() < tokenizer.vocabulary_size()


def test_evaluation_callback_decodes_padded_reader(reader):
    callback = GenerationEvaluationCallback(EXAMPLES, batch_size=2)
    scores = callback.evaluate(reader)
    assert scores["count"] == 2
    assert len(callback.predictions) == 2


@pytest.mark.skipif(
    keras.config.backend() != "tensorflow",
    reason="the exported graph's decoding loop is TensorFlow's",
)
def test_exported_greedy_decode_emits_only_tokenizer_ids(reader, tokenizer):
    from keras_fido.export import greedy_decode

    x = reader.preprocessor.generate_preprocess(EXAMPLES)
    outputs = greedy_decode(
        reader,
        x["encoder_token_ids"],
        x["encoder_padding_mask"],
        max_length=6,
        start_token_id=tokenizer.start_token_id,
        end_token_id=tokenizer.end_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    ids = ops.convert_to_numpy(outputs["token_ids"])
    assert ids.max() < tokenizer.vocabulary_size()
    reader.preprocessor.generate_postprocess({"decoder_token_ids": ids})


def test_tokenizer_larger_than_backbone_is_refused(tokenizer):
    pieces = tokenizer.vocabulary_size()
    backbone = tiny_backbone("fido", vocabulary_size=pieces - 1)
    preprocessor = FiDOSeq2SeqLMPreprocessor(tokenizer, num_passages=1)
    with pytest.raises(ValueError, match=f"{pieces}.*{pieces - 1}"):
        FiDOSeq2SeqLM(backbone, preprocessor)
