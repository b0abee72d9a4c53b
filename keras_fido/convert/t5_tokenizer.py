"""T5's `spiece.model` <-> `FiDOTokenizer`, sentinel tokens included.

transformers' `T5Tokenizer` appends `extra_ids` sentinel tokens after the
SentencePiece pieces, in reverse: with 32000 pieces and 100 extra ids,
`<extra_id_0>` is 32099 and `<extra_id_99>` is 32000 (the model's
vocabulary, 32128, is then padded beyond the tokenizer's 32100). Here the
sentinels become user-defined pieces appended to the SentencePiece proto in
that order, so `FiDOTokenizer` gives every token the id transformers gives
it, and `"<extra_id_0>"` in text is one token.
"""

import re

from keras_fido.models.fido_tokenizer import FiDOTokenizer

EXTRA_ID = re.compile(r"<extra_id_(\d+)>")


def _model_proto(spiece_model):
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(spiece_model)
    return proto


def add_extra_ids(spiece_model, extra_ids):
    """`spiece_model` bytes with T5's `extra_ids` sentinels appended.

    Vocabularies that already hold `<extra_id_0>` are returned unchanged.
    """
    if extra_ids < 0:
        raise ValueError(
            f"`extra_ids` must be >= 0. Received: extra_ids={extra_ids}"
        )
    proto = _model_proto(spiece_model)
    if not extra_ids or any(p.piece == "<extra_id_0>" for p in proto.pieces):
        return spiece_model
    user_defined = type(proto.pieces[0]).USER_DEFINED
    for i in reversed(range(extra_ids)):
        piece = proto.pieces.add()
        piece.piece = f"<extra_id_{i}>"
        piece.score = 0.0
        piece.type = user_defined
    return proto.SerializeToString()


def strip_extra_ids(spiece_model):
    """Splits appended sentinels off: `(spiece_model bytes, extra_ids)`.

    Only a trailing run `<extra_id_{n-1}>, ..., <extra_id_0>` of
    user-defined pieces (what `add_extra_ids` writes and transformers
    re-adds) is removed; any other vocabulary comes back unchanged with
    `extra_ids=0`.
    """
    proto = _model_proto(spiece_model)
    user_defined = type(proto.pieces[0]).USER_DEFINED
    count = 0
    for piece in reversed(proto.pieces):
        match = EXTRA_ID.fullmatch(piece.piece)
        if (
            match is None
            or piece.type != user_defined
            or int(match.group(1)) != count
        ):
            break
        count += 1
    if not count:
        return spiece_model, 0
    del proto.pieces[len(proto.pieces) - count :]
    return proto.SerializeToString(), count


def tokenizer_from_spiece(spiece_model, extra_ids=100, vocabulary_size=None):
    """A `FiDOTokenizer` from T5's `spiece.model`, with its sentinels.

    Args:
        spiece_model: bytes of a SentencePiece model (or a path to one).
        extra_ids: int. Sentinel tokens to append, as transformers'
            `T5Tokenizer` does (100 for T5). Defaults to 100.
        vocabulary_size: optional int, the model's vocabulary size; the
            tokenizer may not hold more tokens.

    Returns:
        A `keras_fido.models.FiDOTokenizer` whose ids equal transformers'.

    Examples:
    ```python
    tokenizer = keras_fido.convert.tokenizer_from_spiece(
        "t5-v1_1-base/spiece.model")
    tokenizer.token_to_id("<extra_id_0>")  # 32099
    ```
    """
    if not isinstance(spiece_model, bytes):
        with open(spiece_model, "rb") as file:
            spiece_model = file.read()
    tokenizer = FiDOTokenizer(proto=add_extra_ids(spiece_model, extra_ids))
    size = tokenizer.vocabulary_size()
    if vocabulary_size is not None and size > vocabulary_size:
        raise ValueError(
            f"The tokenizer has {size} tokens (SentencePiece pieces and "
            f"{extra_ids} extra ids), more than the model's vocab_size="
            f"{vocabulary_size}: ids past it would have no embedding."
        )
    return tokenizer


def spiece_from_tokenizer(tokenizer):
    """The `spiece.model` bytes and `extra_ids` of a `FiDOTokenizer`.

    The inverse of `tokenizer_from_spiece`: appended sentinels are removed
    again, since transformers' `T5Tokenizer` adds them itself.
    """
    proto = getattr(tokenizer, "proto", None)
    if proto is None:
        raise ValueError(
            "The tokenizer has no SentencePiece proto to export; load its "
            "vocabulary first."
        )
    return strip_extra_ids(proto)
