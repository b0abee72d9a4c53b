"""The FiD encoder string format, and token packing with its truncation
counts.

Every passage becomes its own encoder sequence
`"question: {question} title: {title} context: {text}"` (parts joined with
single spaces, as in the FiD reference code; an empty prefix is left out).
Each sequence is tokenized and packed by keras-hub's `StartEndPacker`:
cut to `passage_length - 1` tokens, closed by the end token and padded.
The target is packed as `[start] + tokens + [end]`, padded. The packer
cuts silently, so the tokens it will cut are counted here from the
tokenized lengths, for the preprocessor's warnings and
`truncation_report`.

Everything runs in the TensorFlow graph (inside the preprocessor's traced
functions and `tf.data`).
"""

import tensorflow as tf
from keras_hub.layers import StartEndPacker


def check_tokenizer(tokenizer):
    """Raises unless the tokenizer has its pad, end and start ids."""
    for name in ("pad_token_id", "end_token_id", "start_token_id"):
        if getattr(tokenizer, name, None) is None:
            raise ValueError(
                f"The tokenizer must have a vocabulary with `{name}` "
                f"set. Received: tokenizer.{name}=None; set a proto on "
                "the tokenizer first."
            )


def fid_strings(question, titles, texts, num_passages, prefixes):
    """Builds the `[B, P]` encoder strings; marks which slots are real.

    Args:
        question: string `[B]`.
        titles, texts: string `[B, P']`; a passage whose title and text
            are both `""` is missing.
        num_passages: int. `P`: the first `P` passages are kept, and
            missing ones padded.
        prefixes: the question, title and context prefixes, strings.

    Returns:
        `(strings, real, passages_dropped)`: the strings (`""` in slots
        with no passage), a bool `[B, P]` marking slots with a passage (or
        the question alone, in slot 0 of an example without passages), and
        the number of non-empty passages beyond `P`.
    """
    question_prefix, title_prefix, context_prefix = prefixes
    titles, texts, present, passages_dropped = first_passages(
        titles, texts, num_passages
    )

    question_only = _join([question_prefix, question])
    full = _join(
        [
            question_prefix,
            tf.broadcast_to(question[:, tf.newaxis], tf.shape(titles)),
            title_prefix,
            titles,
            context_prefix,
            texts,
        ]
    )
    # An example without passages encodes its question alone, in slot 0.
    no_passage = tf.logical_not(tf.reduce_any(present, axis=1))
    first_slot = tf.equal(tf.range(num_passages), 0)
    question_slot = tf.logical_and(
        no_passage[:, tf.newaxis], first_slot[tf.newaxis, :]
    )
    strings = tf.where(question_slot, question_only[:, tf.newaxis], full)
    real = tf.logical_or(present, question_slot)
    strings = tf.where(real, strings, "")
    return strings, real, passages_dropped


def first_passages(titles, texts, num_passages):
    """The first `num_passages` slots of `[B, P']` titles and texts,
    padded with missing passages (`""`): `(titles, texts, present,
    passages_dropped)`, `present` bool `[B, P]` marking slots with a
    passage, `passages_dropped` the non-empty passages beyond them."""
    present = tf.logical_or(tf.not_equal(titles, ""), tf.not_equal(texts, ""))
    dropped = tf.reduce_sum(tf.cast(present[:, num_passages:], "int32"))
    extra = [[0, 0], [0, tf.maximum(num_passages - tf.shape(titles)[1], 0)]]
    return (
        tf.pad(titles[:, :num_passages], extra),
        tf.pad(texts[:, :num_passages], extra),
        tf.pad(present[:, :num_passages], extra),
        dropped,
    )


def _join(parts):
    # Empty prefixes are left out rather than joined as blanks.
    parts = [p for p in parts if not (isinstance(p, str) and not p)]
    return tf.strings.join(parts, " ")


def tokenize_ragged(tokenizer, strings):
    """Token ids of `strings` as an int32 ragged tensor."""
    tokens = tokenizer(strings)
    if not isinstance(tokens, tf.RaggedTensor):
        tokens = tf.RaggedTensor.from_tensor(
            tokens, padding=tokenizer.pad_token_id
        )
    return tf.cast(tokens, "int32")


def tokens_cut(tokens, keep):
    """Per row, how many tokens beyond the first `keep` a packer cuts.

    `StartEndPacker` cuts without saying how much; this counts it.
    """
    return tf.maximum(tokens.row_lengths() - keep, 0)


def pack_passages(tokenizer, strings, real, passage_length):
    """Tokenizes and packs the `[N]` encoder strings of `real` slots.

    Returns:
        `(ids, mask, passage_tokens_cut, passages_truncated)`: int32 and
        bool `[N, passage_length]` (all pad / `False` where not `real`),
        and the tokens cut from, and the number of, passages longer than
        `passage_length - 1` tokens.
    """
    pad_id = tokenizer.pad_token_id
    tokens = tokenize_ragged(tokenizer, strings)
    cut = tokens_cut(tokens, passage_length - 1)
    cut = tf.where(real, cut, tf.zeros_like(cut))
    passage_tokens_cut = tf.cast(tf.reduce_sum(cut), "int32")
    passages_truncated = tf.reduce_sum(tf.cast(cut > 0, "int32"))
    packer = StartEndPacker(
        sequence_length=passage_length,
        end_value=tokenizer.end_token_id,
        pad_value=pad_id,
        return_padding_mask=True,
    )
    ids, mask = packer(tokens)
    ids = tf.where(real[:, tf.newaxis], ids, tf.cast(pad_id, "int32"))
    mask = tf.logical_and(mask, real[:, tf.newaxis])
    return ids, mask, passage_tokens_cut, passages_truncated


def pack_target(tokenizer, target, decoder_sequence_length):
    """Packs targets `[B]` as `[start] + tokens + [end]`, padded.

    The tokens are cut to `decoder_sequence_length - 1`, so the sequence
    is at most `decoder_sequence_length + 1` long: the decoder inputs and
    the labels, one step apart.

    Returns:
        `(ids, mask, target_tokens_cut)`: int32 and bool
        `[B, decoder_sequence_length + 1]`, and the tokens cut.
    """
    tokens = tokenize_ragged(tokenizer, target)
    cut = tokens_cut(tokens, decoder_sequence_length - 1)
    target_tokens_cut = tf.cast(tf.reduce_sum(cut), "int32")
    packer = StartEndPacker(
        sequence_length=decoder_sequence_length + 1,
        start_value=tokenizer.start_token_id,
        end_value=tokenizer.end_token_id,
        pad_value=tokenizer.pad_token_id,
        return_padding_mask=True,
    )
    ids, mask = packer(tokens)
    return ids, mask, target_tokens_cut


def passage_strings(titles, texts, num_passages, prefixes):
    """The `[B, P]` passage blocks `"title: {title} context: {text}"` of
    a memory encoder (no question), `""` where a slot has no passage;
    the bool `[B, P]` of slots with one; and the non-empty passages
    beyond `P` (`first_passages`)."""
    _, title_prefix, context_prefix = prefixes
    titles, texts, present, dropped = first_passages(
        titles, texts, num_passages
    )
    strings = _join([title_prefix, titles, context_prefix, texts])
    return tf.where(present, strings, ""), present, dropped


def pack_question_block(tokenizer, question, prefixes, question_length):
    """The question block `"question: {question}"` of every sequence of a
    memory encoder: int32 ids and bool mask `[B, question_length]` (cut,
    no end token: the passage block ends the sequence), and the tokens
    cut."""
    tokens = tokenize_ragged(tokenizer, _join([prefixes[0], question]))
    cut = tf.cast(tf.reduce_sum(tokens_cut(tokens, question_length)), "int32")
    packer = StartEndPacker(
        sequence_length=question_length,
        pad_value=tokenizer.pad_token_id,
        return_padding_mask=True,
    )
    ids, mask = packer(tokens)
    return ids, mask, cut


def join_question_block(
    tokenizer, question, prefixes, question_length, passage_ids, passage_mask
):
    """`[B, P, q + N]` sequences of a memory encoder from questions `[B]`
    and packed passage blocks `[B, P, N]` (a missing passage: all pad,
    mask `False`).

    The question block precedes every passage and always fills slot 0
    (alone when slot 0 has no passage), so the question the encoder reads
    from slot 0 is there whatever passages are missing. Returns `(ids,
    mask, question_tokens_cut)`.
    """
    question_ids, question_mask, cut = pack_question_block(
        tokenizer, question, prefixes, question_length
    )
    passage_mask = tf.cast(passage_mask, "bool")
    present = tf.reduce_any(passage_mask, axis=2)
    first_slot = tf.equal(tf.range(tf.shape(present)[1]), 0)
    real = tf.logical_or(present, first_slot[None, :])[..., None]
    block = tf.concat([tf.shape(present), [question_length]], axis=0)
    question_ids = tf.where(
        real,
        tf.broadcast_to(question_ids[:, None, :], block),
        tf.cast(tokenizer.pad_token_id, "int32"),
    )
    question_mask = tf.logical_and(question_mask[:, None, :], real)
    return (
        tf.concat([question_ids, tf.cast(passage_ids, "int32")], axis=2),
        tf.concat([question_mask, passage_mask], axis=2),
        cut,
    )


def pack_question_and_passages(
    tokenizer, features, prefixes, num_passages, passage_length, split
):
    """Packs `[B, P, L]` sequences as a memory encoder reads them: a block
    of `split` question positions, then the passage block of
    `L - split` positions (`title: t context: c`, end token); see
    `join_question_block`. Returns `(ids, mask, counts)`, counts as
    `pack`'s report.
    """
    question, titles, texts, _ = features
    strings, present, passages_dropped = passage_strings(
        titles, texts, num_passages, prefixes
    )
    passage_ids, passage_mask, tokens_cut_, truncated = pack_passages(
        tokenizer,
        tf.reshape(strings, [-1]),
        tf.reshape(present, [-1]),
        passage_length - split,
    )
    shape = [tf.shape(question)[0], num_passages, passage_length - split]
    ids, mask, question_cut = join_question_block(
        tokenizer,
        question,
        prefixes,
        split,
        tf.reshape(passage_ids, shape),
        tf.reshape(passage_mask, shape),
    )
    counts = {
        "passages_dropped": passages_dropped,
        "passage_tokens_cut": tokens_cut_,
        "passages_truncated": truncated,
        "question_tokens_cut": question_cut,
    }
    return ids, mask, counts


def pack(
    tokenizer,
    features,
    prefixes,
    num_passages,
    passage_length,
    length,
    question_length=None,
):
    """Formats, tokenizes and packs a batch of canonical string tensors.

    Args:
        tokenizer: The tokenizer, with pad, end and start ids.
        features: `(question, titles, texts, target)`, string tensors
            `[B]`, `[B, P']`, `[B, P']` and `[B]` (`target` may be `None`).
        prefixes: the question, title and context prefixes.
        num_passages, passage_length: `P` and `L`.
        length: The decoder sequence length, `T`.

    Returns:
        `(outputs, report)`: `outputs` holds `"encoder_token_ids"` and
        `"encoder_padding_mask"` `[B, P, L]` and, with a target,
        `"decoder_token_ids"` and `"decoder_padding_mask"` `[B, T + 1]`;
        `report` the int32 truncation counts.
    """
    question, titles, texts, target = features
    if question_length is None:
        strings, real, passages_dropped = fid_strings(
            question, titles, texts, num_passages, prefixes
        )
        ids, mask, tokens_cut, truncated = pack_passages(
            tokenizer,
            tf.reshape(strings, [-1]),
            tf.reshape(real, [-1]),
            passage_length,
        )
        shape = [tf.shape(question)[0], num_passages, passage_length]
        ids, mask = tf.reshape(ids, shape), tf.reshape(mask, shape)
        report = {
            "passages_dropped": passages_dropped,
            "passage_tokens_cut": tokens_cut,
            "passages_truncated": truncated,
        }
    else:
        ids, mask, report = pack_question_and_passages(
            tokenizer,
            features,
            prefixes,
            num_passages,
            passage_length,
            question_length,
        )
    outputs = {"encoder_token_ids": ids, "encoder_padding_mask": mask}
    target_tokens_cut = tf.constant(0, "int32")
    if target is not None:
        ids, mask, target_tokens_cut = pack_target(tokenizer, target, length)
        outputs["decoder_token_ids"] = ids
        outputs["decoder_padding_mask"] = mask
    report["target_tokens_cut"] = target_tokens_cut
    return outputs, report


def start_prompt(batch_shape, length, start_id):
    """The decoder prompt of generation: the start token alone.

    Returns int32 ids (all `start_id`) and a bool mask `True` only at
    index 0, both of shape `batch_shape + [length]`.
    """
    shape = tf.concat([batch_shape, [length]], axis=0)
    ids = tf.fill(shape, tf.cast(start_id, "int32"))
    first = tf.equal(tf.range(length), 0)
    return ids, tf.broadcast_to(first, shape)


def answer_tokens(ids, mask, end_id, pad_id):
    """The answer tokens of generated `[B, T]` decoder ids, ragged.

    Drops the start token (index 0), keeps tokens up to (not including)
    the first end token and drops masked and pad positions.
    """
    ids, mask = ids[:, 1:], mask[:, 1:]
    is_end = tf.equal(ids, end_id)
    before_end = tf.equal(tf.cumsum(tf.cast(is_end, "int32"), axis=1), 0)
    not_pad = tf.not_equal(ids, pad_id)
    keep = tf.logical_and(tf.logical_and(mask, before_end), not_pad)
    return tf.ragged.boolean_mask(ids, keep)


def truncation_messages(
    counts, num_passages, passage_length, length, question_length=None
):
    """The warning for each kind of truncation, from python-int counts.

    `length` is the decoder sequence length; `question_length` the
    question block's (memory encoders only).
    """
    limit = f"`passage_length={passage_length}`"
    if question_length is not None:
        limit = (
            f"the passage block (`passage_length - question_length` = "
            f"{passage_length - question_length})"
        )
    return {
        "passages_dropped": (
            f"{counts['passages_dropped']} non-empty passage(s) beyond "
            f"`num_passages={num_passages}` were dropped; only the "
            "first passages of each example are kept."
        ),
        "passage_tokens_cut": (
            f"{counts['passages_truncated']} passage(s) were longer than "
            f"{limit} tokens (end token included); "
            f"{counts['passage_tokens_cut']} token(s) were cut."
        ),
        "target_tokens_cut": (
            f"{counts['target_tokens_cut']} target token(s) were cut to "
            f"fit `decoder_sequence_length={length}` (end token kept)."
        ),
        "question_tokens_cut": (
            f"{counts.get('question_tokens_cut', 0)} question token(s) "
            "were cut to fit the question block "
            f"(`question_length={question_length}`)."
        ),
    }
