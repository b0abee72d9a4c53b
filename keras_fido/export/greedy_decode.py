"""Greedy decoding as one TensorFlow while loop, for exported graphs."""

import keras
import tensorflow as tf


def greedy_decode(
    seq_2_seq_lm,
    encoder_token_ids,
    encoder_padding_mask,
    max_length,
    start_token_id,
    end_token_id,
    pad_token_id,
    passage_memory=None,
):
    """Greedy FiD decoding in a `tf.while_loop`, with each token's score.

    The loop is `FiDOSeq2SeqLM.generate` with the greedy sampler, made to
    live in a SavedModel: the encoder runs once and the cross-attention
    K/V are computed once, only for the cross-attending layers
    (`seq_2_seq_lm.build_cache`); each step feeds one token to
    `seq_2_seq_lm.call_decoder_with_cache`, the decoder of the backbone's
    own graph. The next token is the argmax of the float32 softmax, as in
    `keras_hub.samplers.GreedySampler`, so the tokens equal `generate`'s.
    The loop stops when every row has produced `end_token_id`, or after
    `max_length - 1` steps; positions after a row's end token hold
    `pad_token_id` and score 0.

    Runs under the TensorFlow backend only, inside or outside a
    `tf.function` (it is XLA-compilable: `jit_compile=True`).

    Args:
        seq_2_seq_lm: a `keras_fido.models.FiDOSeq2SeqLM`.
        encoder_token_ids: int `[B, P, L]` passage token ids.
        encoder_padding_mask: `[B, P, L]`, true (or 1) on real tokens.
        max_length: int. Decoder length `T`, start token included, so at
            most `T - 1` tokens are generated (as `generate`'s
            `max_length`).
        start_token_id: int. The first decoder token.
        end_token_id: int. The token that ends an answer.
        pad_token_id: int. Fills positions after the end token.
        passage_memory: optional float `[B, P, L - q, d_enc]`, for a
            backbone with passage memory (`encoder_live_layers`, question
            block `q`): the stored memory of the passages, which replaces
            the memory encoder's run (`FiDOSeq2SeqLM.encode`).

    Returns:
        A dict with `"token_ids"`, int32 `[B, T]` (the start token, the
        generated tokens up to and including the end token, then pads), and
        `"token_scores"`, float32 `[B, T]` (the log-probability of each
        generated token; 0 at the start token and after the end token).

    Examples:
    ```python
    import tensorflow as tf  # with KERAS_BACKEND=tensorflow

    x = reader.preprocessor.generate_preprocess(example)
    tokenizer = reader.preprocessor.tokenizer
    decode = tf.function(
        lambda ids, mask: keras_fido.export.greedy_decode(
            reader, ids, mask, max_length=16,
            start_token_id=tokenizer.start_token_id,
            end_token_id=tokenizer.end_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        jit_compile=True,
    )
    decode(x["encoder_token_ids"], x["encoder_padding_mask"])
    ```
    """
    if keras.config.backend() != "tensorflow":
        raise ValueError(
            "`greedy_decode` builds a TensorFlow graph and needs "
            "KERAS_BACKEND=tensorflow. Received: backend "
            f"{keras.config.backend()!r}"
        )
    encoder_token_ids = tf.cast(encoder_token_ids, "int32")
    encoder_padding_mask = tf.cast(encoder_padding_mask, "bool")
    batch_size = tf.shape(encoder_token_ids)[0]
    self_cache, cross_cache = seq_2_seq_lm.build_cache(
        encoder_token_ids,
        encoder_padding_mask,
        max_length,
        passage_memory=passage_memory,
    )
    positions = tf.range(max_length)[tf.newaxis, :]
    token_ids = tf.where(
        tf.equal(positions, 0),
        tf.constant(start_token_id, "int32"),
        tf.constant(pad_token_id, "int32"),
    )
    token_ids = tf.tile(token_ids, [batch_size, 1])
    token_scores = tf.zeros([batch_size, max_length], "float32")
    done = tf.zeros([batch_size], "bool")

    def cond(index, token_ids, token_scores, done, self_cache):
        return tf.logical_not(tf.reduce_all(done))

    def body(index, token_ids, token_scores, done, self_cache):
        # Feed the token at `index - 1`; its logits predict `index`.
        token = tf.gather(token_ids, [index - 1], axis=1)
        logits, _, self_cache = seq_2_seq_lm.call_decoder_with_cache(
            token,
            encoder_padding_mask,
            self_cache,
            index - 1,
            cross_cache,
            encoder_token_ids,
        )
        next_token, score = _greedy_choice(logits[:, 0, :])
        next_token = tf.where(done, pad_token_id, next_token)
        score = tf.where(done, 0.0, score)
        here = tf.equal(positions, index)
        token_ids = tf.where(here, next_token[:, tf.newaxis], token_ids)
        token_scores = tf.where(here, score[:, tf.newaxis], token_scores)
        done = tf.logical_or(done, tf.equal(next_token, end_token_id))
        return index + 1, token_ids, token_scores, done, self_cache

    _, token_ids, token_scores, _, _ = tf.while_loop(
        cond,
        body,
        (tf.constant(1, "int32"), token_ids, token_scores, done, self_cache),
        maximum_iterations=max_length - 1,
    )
    return {"token_ids": token_ids, "token_scores": token_scores}


def _greedy_choice(logits):
    """`[B, V]` logits -> the sampler's choice (argmax of the float32
    softmax) and its log-probability, `[B]` each."""
    logits = tf.cast(logits, "float32")
    probabilities = keras.activations.softmax(logits)
    next_token = tf.argmax(probabilities, axis=-1, output_type="int32")
    score = tf.gather(
        tf.nn.log_softmax(logits), next_token, axis=1, batch_dims=1
    )
    return next_token, score
