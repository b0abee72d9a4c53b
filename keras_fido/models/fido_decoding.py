"""What `FiDOSeq2SeqLM`'s cached decoding and passage scores compute: the
caches, one decoding step, the sampler loop of `generate_step` and where a
generated sequence ends, and each passage's relevance at the first step.
The reader's methods delegate here; the decoder is always the backbone's
own layer."""

from keras import ops

from keras_fido._compat import any_equal


def build_decoding_cache(
    backbone, encoder_sequence_output, encoder_padding_mask, max_length
):
    """`(self_attention_cache, cross_attention_cache)` of one request.

    See `FiDOSeq2SeqLM.build_cache`, which runs the encoder first when
    its output is not given.
    """
    decoder = backbone.decoder
    cross_attention_cache = decoder.compute_cross_attention_cache(
        encoder_sequence_output
    )
    batch_size = ops.shape(encoder_padding_mask)[0]
    self_attention_cache = decoder.init_self_attention_cache(
        batch_size, max_length
    )
    copy_head = backbone.copy_head
    if copy_head is not None:
        copy_state = ops.zeros(
            ops.shape(encoder_sequence_output)[:2], "float32"
        )
        self_attention_cache = (self_attention_cache, copy_state)
        cross_attention_cache = (
            cross_attention_cache,
            copy_head.encoder_keys(encoder_sequence_output),
        )
    return self_attention_cache, cross_attention_cache


def decode_with_cache(
    backbone,
    decoder_token_ids,
    encoder_padding_mask,
    self_attention_cache,
    cache_update_index,
    cross_attention_cache,
    encoder_token_ids,
):
    """`(logits, hidden_states, self_attention_cache)` of some tokens,
    before the padding vocabulary is masked (see
    `FiDOSeq2SeqLM.call_decoder_with_cache`)."""
    copy_head = backbone.copy_head
    if copy_head is not None:
        self_attention_cache, copy_state = self_attention_cache
        cross_attention_cache, encoder_keys = cross_attention_cache
    out = backbone.decoder.decode(
        backbone.token_embedding(decoder_token_ids),
        encoder_padding_mask=encoder_padding_mask,
        self_attention_cache=self_attention_cache,
        cross_attention_cache=cross_attention_cache,
        cache_update_index=cache_update_index,
    )
    self_attention_cache = out.self_attention_cache
    logits = backbone.vocabulary_logits(out.hidden_states)
    if copy_head is not None:
        logits, copy_state = copy_head.decode(
            logits,
            out.hidden_states,
            encoder_keys,
            encoder_padding_mask,
            encoder_token_ids,
            decoder_token_ids,
            copy_state,
        )
        self_attention_cache = (self_attention_cache, copy_state)
    return logits, out.hidden_states, self_attention_cache


def mask_padding_vocabulary(logits, size):
    """`logits [..., V]` with the ids at or beyond `size` set to -1e9
    (-inf in float16), so that no sampler picks them; unchanged when
    `size` is `None` or `V`."""
    vocabulary = ops.shape(logits)[-1]
    if size is None or size >= vocabulary:
        return logits
    valid = ops.arange(vocabulary) < size
    return ops.where(valid, logits, ops.cast(-1e9, logits.dtype))


def sampler_step(
    reader,
    encoder_padding_mask,
    cross_attention_cache,
    encoder_token_ids,
    decode=None,
):
    """The `next(prompt, cache, index)` function a keras-hub sampler calls.

    It feeds the token at `index - 1`; the logits predict `index`. Prompt
    tokens are fed the same way (and kept by the sampler through its
    `mask`), so no separate prefill pass is needed. `decode` runs the step
    (`reader.call_decoder_with_cache`, or a compiled copy of it).
    """
    decode = decode or reader.call_decoder_with_cache

    def next(prompt, self_cache, index):
        position = index - 1
        token = ops.slice(prompt, [0, position], [ops.shape(prompt)[0], 1])
        logits, hidden_states, self_cache = decode(
            token,
            encoder_padding_mask,
            self_cache,
            position,
            cross_attention_cache,
            encoder_token_ids,
        )
        return (
            ops.squeeze(logits, axis=1),
            ops.squeeze(hidden_states, axis=1),
            self_cache,
        )

    return next


def generated_padding_mask(
    decoder_token_ids, decoder_padding_mask, stop_token_ids
):
    """True up to and including each sequence's first generated stop
    token (everywhere when `stop_token_ids` is `None`)."""
    if stop_token_ids is None:
        return ops.ones_like(decoder_token_ids, "bool")
    end_locations = ops.cast(
        any_equal(
            decoder_token_ids,
            stop_token_ids,
            ops.logical_not(decoder_padding_mask),
        ),
        "int32",
    )
    overflow = ops.cumsum(end_locations, axis=-1) - end_locations
    return ops.logical_not(ops.cast(overflow, "bool"))


def generate_batch(reader, inputs, stop_token_ids, decode=None):
    """`FiDOSeq2SeqLM.generate_step`: runs the encoder once (or takes its
    output), then the reader's sampler over the cached decoder, each step
    by `decode` (see `sampler_step`)."""
    encoder_token_ids = inputs.get("encoder_token_ids")
    encoder_padding_mask = ops.cast(inputs["encoder_padding_mask"], "bool")
    decoder_token_ids = inputs["decoder_token_ids"]
    decoder_padding_mask = ops.cast(inputs["decoder_padding_mask"], "bool")
    max_length = ops.shape(decoder_token_ids)[1]
    self_attention_cache, cross_attention_cache = reader.build_cache(
        encoder_token_ids,
        encoder_padding_mask,
        max_length,
        inputs.get("encoder_sequence_output"),
        inputs.get("passage_memory"),
    )

    next = sampler_step(
        reader,
        encoder_padding_mask,
        cross_attention_cache,
        encoder_token_ids,
        decode,
    )

    # Only the self-attention cache goes through the sampler. The
    # cross-attention K/V and the passage mask are the same for every
    # hypothesis of a sample, so a beam sampler must neither copy them
    # per beam nor reorder them at every step: the decoder attends with
    # all of a sample's beams against its one copy.
    decoder_token_ids = reader.sampler(
        next=next,
        prompt=decoder_token_ids,
        cache=self_attention_cache,
        index=1,
        mask=decoder_padding_mask,
        stop_token_ids=stop_token_ids,
        model=reader,
    )

    # Keep everything up to and including the first generated stop.
    decoder_padding_mask = generated_padding_mask(
        decoder_token_ids, decoder_padding_mask, stop_token_ids
    )
    return {
        "decoder_token_ids": decoder_token_ids,
        "decoder_padding_mask": decoder_padding_mask,
    }


def first_step_passage_scores(backbone, token_ids, padding_mask, encoded):
    """`[B, P]` relevance of each passage at the first decoding step (see
    `FiDOSeq2SeqLM.score_passages`), as a backend tensor.

    Args:
        backbone: the reader's `FiDOBackbone`.
        token_ids: `[B, P, L]` passage ids.
        padding_mask: bool `[B, P, L]`.
        encoded: the encoder's output `[B, P*L, d_enc]`.
    """
    batch, passages, length = ops.shape(token_ids)
    start = ops.zeros((batch, 1), "int32")
    out = backbone.decoder.decode(
        backbone.token_embedding(start),
        encoded,
        encoder_padding_mask=padding_mask,
    )
    if backbone.copy_head is not None:
        # Where the reader would copy its first piece from.
        head = backbone.copy_head
        copy = head.pointer_attention(
            out.hidden_states, head.encoder_keys(encoded), padding_mask
        )
        copy = ops.reshape(copy, (batch, passages, length))
        mask = ops.cast(padding_mask, copy.dtype)
        return ops.sum(copy * mask, axis=-1)
    # [B, kv, group, 1, S] per layer -> mean over layers and heads.
    scores = out.attention_scores
    mean = ops.mean(
        ops.stack([ops.mean(s, axis=(1, 2, 3)) for s in scores]), axis=0
    )
    mean = ops.reshape(mean, (batch, passages, length))
    mask = ops.cast(padding_mask, mean.dtype)
    tokens = ops.sum(mask, axis=-1)
    return ops.sum(mean * mask, axis=-1) / ops.maximum(tokens, 1.0)
