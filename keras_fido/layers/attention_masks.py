"""The attention masks of the FiDO encoder and decoder, by name.

Every mask is bool, True where a query may attend a key, and broadcasts
against `[B, T, S]` attention logits.
"""

from keras import ops


def passage_self_attention_mask(padding_mask):
    """`[B*P, 1, L]` bool: every token of a passage sees its passage's
    real tokens, and no other passage's.

    `padding_mask` is `[B, P, L]`; the passages are folded into the batch
    as the encoder folds them.
    """
    length = ops.shape(padding_mask)[-1]
    mask = ops.cast(ops.reshape(padding_mask, (-1, length)), "bool")
    return mask[:, None, :]


def causal_self_attention_mask(
    length, key_length, query_offset=0, padding_mask=None
):
    """`[1 or B, T, key_length]` bool: a query sees itself and the past.

    Queries sit at `query_offset ...`; `padding_mask` `[B, key_length]`
    also hides padded keys (training only: with a cache, the causal mask
    already hides the unwritten positions).
    """
    queries = ops.arange(length, dtype="int32") + ops.cast(
        query_offset, "int32"
    )
    keys = ops.arange(key_length, dtype="int32")
    mask = (keys[None, :] <= queries[:, None])[None, :, :]
    if padding_mask is not None:
        keys_valid = ops.cast(padding_mask, "bool")[:, None, :]
        mask = ops.logical_and(mask, keys_valid)
    return mask


def cross_attention_mask(encoder_padding_mask):
    """`[B, 1, S]` bool over the passages' tokens, or `None`.

    `encoder_padding_mask` is `[B, S]` or `[B, P, L]`, `S = P*L`; its batch
    is the samples' own (with beams, one row per sample).
    """
    if encoder_padding_mask is None:
        return None
    mask = ops.cast(encoder_padding_mask, "bool")
    return ops.reshape(mask, (ops.shape(mask)[0], 1, -1))
