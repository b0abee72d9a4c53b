"""Training a T5-style SentencePiece model in memory."""

import io

import numpy as np

from keras_fido.utils.checks import check_positive_int

# Punctuation kept out of every other piece by `split_punctuation=True`.
PUNCTUATION = tuple(".,;:!?'\"()")


def _lines(lines):
    """Yields the non-empty lines of `lines`, splitting embedded newlines."""
    for i, line in enumerate(lines):
        if not isinstance(line, str):
            raise ValueError(
                f"`lines[{i}]` must be a python string. "
                f"Received: {line!r} of type {type(line).__name__}"
            )
        for part in line.splitlines():
            part = part.strip()
            if part:
                yield part


def train_sentencepiece(
    lines,
    vocab_size=8000,
    model_type="unigram",
    character_coverage=1.0,
    num_threads=1,
    hard_vocab_limit=True,
    user_defined_symbols=None,
    max_sentence_length=16384,
    extra_ids=0,
    split_punctuation=False,
):
    """Trains a SentencePiece model with T5's special tokens, in memory.

    The ids follow T5: `0` is `"<pad>"` (also the decoder start token), `1`
    is `"</s>"` (end of sequence), `2` is `"<unk>"`, and there is no
    beginning-of-sequence token. With `character_coverage=1.0` every
    character of the training text gets a piece, so words made of seen
    characters never become `<unk>`. Nothing is written to disk: the model
    comes back as serialized proto bytes, ready for
    `keras_fido.models.FiDOTokenizer(proto=...)`.

    Args:
        lines: iterable of str. The training text, e.g.
            `keras_fido.data.corpus_lines()`. Strings holding newlines are
            split into lines; blank lines are skipped.
        vocab_size: int. Size of the vocabulary, special tokens included.
            Defaults to `8000`.
        model_type: str. `"unigram"` (T5's choice), `"bpe"`, `"char"` or
            `"word"`. Defaults to `"unigram"`.
        character_coverage: float. Fraction of characters covered by the
            vocabulary. Defaults to `1.0`.
        num_threads: int. Trainer threads. Defaults to `1`.
        hard_vocab_limit: bool. If `True`, training fails when the text is
            too small for `vocab_size`; if `False`, the vocabulary may come
            out smaller. Defaults to `True`.
        user_defined_symbols: list of str or `None`. Extra pieces that are
            never split, e.g. `["<extra_id_0>"]`. Defaults to `None`.
        max_sentence_length: int. Longest line (in bytes) used for
            training. Defaults to `16384`.
        extra_ids: int. T5 sentinel tokens for span corruption, appended
            after the `vocab_size` trained pieces in T5's order:
            `"<extra_id_0>"` gets the highest id, `vocab_size + extra_ids -
            1`, and `"<extra_id_{extra_ids - 1}>"` gets `vocab_size`. T5
            uses 100. Defaults to `0`.
        split_punctuation: bool. Make each of `. , ; : ! ? ' " ( )` a
            piece of its own that no other piece contains, so a word is
            cut into the same pieces wherever it stands. Without it, BPE
            and unigram models learn pieces such as `"+1268."`: an answer
            `"+1268"` at the end of a passage sentence is then a piece that
            its own tokenization (`"+126"`, `"8"`) never produces, and a
            reader can copy it out of the passage only with the period.
            `keras_fido.data.copyable_answers` measures this on your
            data. Defaults to `False` (T5's vocabulary has such pieces).

    Returns:
        bytes. The serialized SentencePiece model proto.

    Examples:
    ```python
    proto = train_sentencepiece(corpus_lines(), vocab_size=1000)
    tokenizer = keras_fido.models.FiDOTokenizer(proto=proto)
    ```
    """
    import sentencepiece

    lines = _checked_inputs(
        lines,
        vocab_size,
        num_threads,
        max_sentence_length,
        extra_ids,
        character_coverage,
    )
    model = io.BytesIO()
    options = dict(
        sentence_iterator=iter(lines),
        model_writer=model,
        vocab_size=int(vocab_size),
        model_type=model_type,
        character_coverage=float(character_coverage),
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        pad_piece="<pad>",
        eos_piece="</s>",
        unk_piece="<unk>",
        num_threads=int(num_threads),
        hard_vocab_limit=bool(hard_vocab_limit),
        max_sentence_length=int(max_sentence_length),
        minloglevel=2,
    )
    symbols = list(user_defined_symbols or [])
    if split_punctuation:
        symbols += [p for p in PUNCTUATION if p not in symbols]
    if symbols:
        options["user_defined_symbols"] = symbols
    try:
        sentencepiece.SentencePieceTrainer.train(**options)
    except RuntimeError as e:
        raise ValueError(
            f"SentencePiece training failed: {e}. If the vocabulary is too "
            "large for the text, lower `vocab_size` or pass "
            "`hard_vocab_limit=False`."
        ) from None
    return _append_extra_ids(model.getvalue(), int(extra_ids))


def _checked_inputs(
    lines,
    vocab_size,
    num_threads,
    max_sentence_length,
    extra_ids,
    character_coverage,
):
    """Checks the arguments of `train_sentencepiece`; returns the
    non-empty lines as a list."""
    for name, value in (
        ("vocab_size", vocab_size),
        ("num_threads", num_threads),
        ("max_sentence_length", max_sentence_length),
    ):
        check_positive_int(name, value)
    if (
        isinstance(extra_ids, bool)
        or not isinstance(extra_ids, (int, np.integer))
        or extra_ids < 0
    ):
        raise ValueError(
            "`extra_ids` must be a non-negative int. "
            f"Received: extra_ids={extra_ids!r}"
        )
    if isinstance(lines, str):
        raise ValueError(
            "`lines` must be an iterable of strings, not a single string. "
            "Received: a str"
        )
    lines = list(_lines(lines))
    if not lines:
        raise ValueError(
            "`lines` must hold at least one non-empty string. Received: none"
        )
    if not 0.0 < character_coverage <= 1.0:
        raise ValueError(
            "`character_coverage` must be in (0, 1]. "
            f"Received: character_coverage={character_coverage!r}"
        )
    return lines


def _append_extra_ids(proto_bytes, extra_ids):
    """Appends `<extra_id_{n-1}>` ... `<extra_id_0>` as user pieces."""
    if not extra_ids:
        return proto_bytes
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(proto_bytes)
    user_defined = sentencepiece_model_pb2.ModelProto.SentencePiece.USER_DEFINED
    for i in reversed(range(extra_ids)):
        piece = proto.pieces.add()
        piece.piece = f"<extra_id_{i}>"
        piece.score = 0.0
        piece.type = user_defined
    return proto.SerializeToString()
