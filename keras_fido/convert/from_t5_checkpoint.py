"""A HuggingFace T5.1.1 checkpoint directory -> a vanilla-FiD reader."""

from keras_fido.convert.t5_checkpoint import T5Checkpoint
from keras_fido.convert.t5_checkpoint import read_t5_checkpoint
from keras_fido.convert.t5_config import backbone_config_from_t5_config
from keras_fido.convert.t5_tokenizer import tokenizer_from_spiece
from keras_fido.convert.transformers_t5 import load_t5_state
from keras_fido.models.fido_backbone import FiDOBackbone
from keras_fido.models.fido_seq_2_seq_lm import FiDOSeq2SeqLM
from keras_fido.models.fido_seq_2_seq_lm_preprocessor import (
    FiDOSeq2SeqLMPreprocessor,
)

# Weights a T5 checkpoint may hold that the backbone does not need: copies
# of the shared embedding, and a tied output projection.
DUPLICATE_WEIGHTS = (
    "encoder.embed_tokens.weight",
    "decoder.embed_tokens.weight",
    "shared.weight",
)


def as_t5_checkpoint(source):
    """`source` (a directory or a `T5Checkpoint`) as a `T5Checkpoint`."""
    if isinstance(source, T5Checkpoint):
        return source
    return read_t5_checkpoint(source)


def backbone_from_t5_checkpoint(source, dtype=None):
    """A vanilla-FiD `FiDOBackbone` holding a T5.1.1 checkpoint's weights.

    Args:
        source: a checkpoint directory or a `T5Checkpoint`.
        dtype: optional dtype policy of the backbone.

    Raises:
        ValueError: for a config that is not T5.1.1 (naming the feature),
            a missing or misshapen weight (naming it), or weights the
            backbone has no place for (naming them).
    """
    checkpoint = as_t5_checkpoint(source)
    config = backbone_config_from_t5_config(checkpoint.config)
    backbone = FiDOBackbone(**config, dtype=dtype)
    unused = load_t5_state(backbone, checkpoint.weights)
    unexpected = [
        name
        for name in unused
        if name not in DUPLICATE_WEIGHTS
        and not (name == "lm_head.weight" and backbone.tie_embedding_weights)
    ]
    if unexpected:
        raise ValueError(
            f"The T5 checkpoint holds {len(unexpected)} weights that a "
            f"T5.1.1 model has no place for, e.g. {unexpected[:3]}; it is "
            "not a T5.1.1 checkpoint of the architecture in its "
            "config.json."
        )
    return backbone


def from_t5_checkpoint(
    source,
    num_passages=40,
    passage_length=256,
    decoder_sequence_length=32,
    dtype=None,
    include_tokenizer=True,
):
    """A vanilla-FiD `FiDOSeq2SeqLM` from a HuggingFace T5.1.1 checkpoint.

    The backbone holds the checkpoint's weights exactly, so its logits and
    greedy generations equal transformers' when the model is run FiD-style
    (each passage encoded separately). The tokenizer is the checkpoint's
    `spiece.model` with T5's sentinel tokens appended
    (`tokenizer_from_spiece`). Save the result as a keras_fido preset with
    `reader.save_to_preset(path)`.

    Args:
        source: a checkpoint directory (`config.json`, `model.safetensors`
            or `pytorch_model.bin`, `spiece.model`) or a `T5Checkpoint`.
        num_passages: int. Passages per question of the preprocessor.
        passage_length: int. Tokens per passage of the preprocessor.
        decoder_sequence_length: int. Answer length of the preprocessor.
        dtype: optional dtype policy of the backbone.
        include_tokenizer: bool. If `False`, the reader has no
            preprocessor (token ids in, token ids out) and `spiece.model`
            is not needed. Defaults to `True`.

    Returns:
        A `keras_fido.models.FiDOSeq2SeqLM` with
        `cross_attention_interval=1` and a multi-head decoder.

    Examples:
    ```python
    reader = keras_fido.convert.from_t5_checkpoint("t5-v1_1-base")
    reader.save_to_preset("fid_base_preset")
    reader = keras_hub.models.Seq2SeqLM.from_preset("fid_base_preset")
    ```
    """
    checkpoint = as_t5_checkpoint(source)
    preprocessor = None
    if include_tokenizer:
        if checkpoint.spiece_model is None:
            raise ValueError(
                f"The T5 checkpoint {checkpoint.directory!r} has no "
                "`spiece.model` (its SentencePiece vocabulary); pass "
                "`include_tokenizer=False` to convert the weights alone."
            )
        tokenizer = tokenizer_from_spiece(
            checkpoint.spiece_model,
            extra_ids=checkpoint.extra_ids,
            vocabulary_size=checkpoint.config.get("vocab_size"),
        )
        preprocessor = FiDOSeq2SeqLMPreprocessor(
            tokenizer,
            num_passages=num_passages,
            passage_length=passage_length,
            decoder_sequence_length=decoder_sequence_length,
        )
    backbone = backbone_from_t5_checkpoint(checkpoint, dtype=dtype)
    return FiDOSeq2SeqLM(backbone, preprocessor)
