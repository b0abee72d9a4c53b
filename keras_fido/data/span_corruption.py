"""T5's span corruption pretraining objective, in the TensorFlow graph."""

import tensorflow as tf

from keras_fido.utils.checks import check_positive_int


def _check_objective(noise_density, mean_noise_span_length):
    if (
        isinstance(noise_density, bool)
        or not isinstance(noise_density, (int, float))
        or not 0.0 < noise_density < 1.0
    ):
        raise ValueError(
            "`noise_density` must be a float in (0, 1). "
            f"Received: noise_density={noise_density!r}"
        )
    if (
        isinstance(mean_noise_span_length, bool)
        or not isinstance(mean_noise_span_length, (int, float))
        or mean_noise_span_length < 1.0
    ):
        raise ValueError(
            "`mean_noise_span_length` must be a number >= 1. "
            f"Received: mean_noise_span_length={mean_noise_span_length!r}"
        )


def _noise_counts(length, noise_density, mean_noise_span_length):
    """Noise tokens and noise spans for a sequence of `length >= 2` tokens.

    The arithmetic is float32 with round-half-to-even in the graph; Python
    callers (`span_corruption_lengths`) reproduce it with the same values.
    """
    num_noise = tf.cast(
        tf.round(tf.cast(length, tf.float32) * noise_density), tf.int32
    )
    num_noise = tf.clip_by_value(num_noise, 1, length - 1)
    num_spans = tf.cast(
        tf.round(tf.cast(num_noise, tf.float32) / mean_noise_span_length),
        tf.int32,
    )
    return num_noise, tf.maximum(num_spans, 1)


def _random_segment_lengths(num_items, num_segments, seed):
    """Lengths of `num_segments` non-empty runs summing to `num_items`.

    Every split is equally likely: `num_segments - 1` of the
    `num_items - 1` gaps between items are drawn as boundaries.
    """
    boundaries = tf.cast(tf.range(num_items - 1) < num_segments - 1, tf.int32)
    boundaries = tf.random.experimental.stateless_shuffle(boundaries, seed)
    segment_ids = tf.cumsum(tf.concat([[0], boundaries], axis=0))
    return tf.math.unsorted_segment_sum(
        tf.ones_like(segment_ids), segment_ids, num_segments
    )


def span_corruption_noise_mask(
    length, seed, noise_density=0.15, mean_noise_span_length=3.0
):
    """Which of `length` tokens T5's span corruption masks out.

    As T5 does: `round(length * noise_density)` tokens are noise (at least
    1, at most `length - 1`), grouped into
    `round(noise_tokens / mean_noise_span_length)` spans (at least 1).
    Both the noise and the non-noise tokens are cut into that many
    non-empty spans at random, and the spans alternate, non-noise first: a
    sequence never starts with noise. A sequence of one token is never
    masked, an empty one gives an empty mask.

    Args:
        length: int scalar (tensor or Python int). Number of tokens.
        seed: int tensor of shape `[2]`, the stateless random seed. The
            same seed gives the same mask.
        noise_density: float. Fraction of tokens to mask. Defaults to
            `0.15`.
        mean_noise_span_length: float. Average tokens per masked span.
            Defaults to `3.0`.

    Returns:
        A bool tensor `[length]`, True on noise tokens.

    Examples:
    ```python
    mask = keras_fido.data.span_corruption_noise_mask(20, seed=[0, 1])
    int(tf.reduce_sum(tf.cast(mask, "int32")))  # 3
    ```
    """
    _check_objective(noise_density, mean_noise_span_length)
    length = tf.convert_to_tensor(length, tf.int32)
    padded_length = tf.maximum(length, 2)
    num_noise, num_spans = _noise_counts(
        padded_length, noise_density, mean_noise_span_length
    )
    noise_seed, kept_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 2)
    )
    noise_lengths = _random_segment_lengths(num_noise, num_spans, noise_seed)
    kept_lengths = _random_segment_lengths(
        padded_length - num_noise, num_spans, kept_seed
    )
    # [kept_0, noise_0, kept_1, noise_1, ...]: odd spans are noise.
    span_lengths = tf.reshape(tf.stack([kept_lengths, noise_lengths], 1), [-1])
    span_index = tf.repeat(tf.range(2 * num_spans), span_lengths)
    return tf.equal(span_index % 2, 1)[:length]


def _collapse_spans(token_ids, mask, first_sentinel_id):
    """Each run of `mask` tokens becomes one sentinel, counting down."""
    previous = tf.concat([[False], mask], axis=0)[:-1]
    starts = tf.logical_and(mask, tf.logical_not(previous))
    sentinels = first_sentinel_id + 1 - tf.cumsum(tf.cast(starts, tf.int32))
    token_ids = tf.where(starts, sentinels, token_ids)
    return tf.boolean_mask(
        token_ids, tf.logical_not(tf.logical_and(mask, previous))
    )


def span_corruption(
    token_ids,
    seed,
    first_sentinel_id,
    noise_density=0.15,
    mean_noise_span_length=3.0,
    num_sentinels=None,
):
    """T5's span corruption of one sequence: `(inputs, targets)`.

    Spans of tokens are masked out (`span_corruption_noise_mask`). In the
    inputs each masked span is replaced by one sentinel; the targets hold
    the masked spans, each after its sentinel. Sentinels count down from
    `first_sentinel_id`, as T5's `<extra_id_0>`, `<extra_id_1>`, ... do:

    ```
    token_ids: a b c d e f g h      (c d and g masked)
    inputs:    a b S0 e f S1 h
    targets:   S0 c d S1 g          (S0 = first_sentinel_id, S1 = S0 - 1)
    ```

    No end token is added; plain TensorFlow ops, so the function runs
    eagerly, in `tf.function` and inside `tf.data.Dataset.map`.

    Args:
        token_ids: int tensor `[length]`, one token sequence.
        seed: int tensor `[2]`, the stateless random seed; the same seed
            gives the same corruption.
        first_sentinel_id: int. Id of the first sentinel
            (`tokenizer.sentinel_token_ids[0]`, the top of a T5
            vocabulary).
        noise_density: float. Fraction of tokens masked. Defaults to
            `0.15`.
        mean_noise_span_length: float. Average masked span length.
            Defaults to `3.0`.
        num_sentinels: int or `None`. If given, a sequence needing more
            sentinels raises `tf.errors.InvalidArgumentError`.

    Returns:
        `(inputs, targets)`, two int32 tensors.

    Examples:
    ```python
    inputs, targets = keras_fido.data.span_corruption(
        tf.range(3, 23), seed=[0, 1], first_sentinel_id=99
    )
    ```
    """
    token_ids = tf.cast(tf.convert_to_tensor(token_ids), tf.int32)
    if token_ids.shape.rank != 1:
        raise ValueError(
            "`token_ids` must be a 1D sequence of token ids. "
            f"Received: token_ids with shape {token_ids.shape}"
        )
    mask = span_corruption_noise_mask(
        tf.size(token_ids), seed, noise_density, mean_noise_span_length
    )
    first_sentinel_id = tf.cast(first_sentinel_id, tf.int32)
    inputs = _collapse_spans(token_ids, mask, first_sentinel_id)
    targets = _collapse_spans(
        token_ids, tf.logical_not(mask), first_sentinel_id
    )
    if num_sentinels is not None:
        previous = tf.concat([[False], mask], axis=0)[:-1]
        num_spans = tf.reduce_sum(
            tf.cast(tf.logical_and(mask, tf.logical_not(previous)), tf.int32)
        )
        check = tf.debugging.assert_less_equal(
            num_spans,
            tf.constant(num_sentinels, tf.int32),
            message="Span corruption needs more sentinel tokens than "
            f"`num_sentinels={num_sentinels}`",
        )
        with tf.control_dependencies([check]):
            inputs = tf.identity(inputs)
    return inputs, targets


def _python_noise_counts(length, noise_density, mean_noise_span_length):
    """`_noise_counts` in Python, with the graph's float32 rounding."""
    import numpy as np

    num_noise = int(np.round(np.float32(length) * np.float32(noise_density)))
    num_noise = min(max(num_noise, 1), length - 1)
    num_spans = int(
        np.round(np.float32(num_noise) / np.float32(mean_noise_span_length))
    )
    return num_noise, max(num_spans, 1)


def span_corruption_lengths(
    input_length, noise_density=0.15, mean_noise_span_length=3.0
):
    """Raw tokens per example so the corrupted inputs fill `input_length`.

    Span corruption shortens a sequence: the inputs keep the non-noise
    tokens plus one sentinel per span and an end token. As T5 does, this
    finds the longest raw sequence whose inputs fit `input_length`, and the
    length of its targets (noise tokens, one sentinel per span, an end
    token). T5's 512-token inputs come from 568 raw tokens, with 114-token
    targets.

    Args:
        input_length: int >= 3. Encoder length, end token included.
        noise_density: float. Defaults to `0.15`.
        mean_noise_span_length: float. Defaults to `3.0`.

    Returns:
        `(tokens_length, target_length)`, two Python ints.

    Examples:
    ```python
    keras_fido.data.span_corruption_lengths(512)  # (568, 114)
    ```
    """
    _check_objective(noise_density, mean_noise_span_length)
    input_length = check_positive_int("input_length", input_length)
    if input_length < 3:
        raise ValueError(
            "`input_length` must be at least 3 (a token, a sentinel and "
            f"the end token). Received: input_length={input_length}"
        )

    def lengths(tokens):
        noise, spans = _python_noise_counts(
            tokens, noise_density, mean_noise_span_length
        )
        return tokens - noise + spans + 1, noise + spans + 1

    tokens = 2
    while lengths(tokens + 1)[0] <= input_length:
        tokens += 1
    return tokens, lengths(tokens)[1]


def _text_strings(text_dataset, text_key):
    spec = text_dataset.element_spec
    if isinstance(spec, dict):
        if text_key not in spec:
            raise ValueError(
                f"`text_dataset` yields dicts without the `text_key` "
                f"{text_key!r}. Received keys: {sorted(spec)}"
            )
        text_dataset = text_dataset.map(
            tf.autograph.experimental.do_not_convert(
                lambda example: example[text_key]
            )
        )
        spec = text_dataset.element_spec
    if (
        not isinstance(spec, tf.TensorSpec)
        or spec.dtype != tf.string
        or spec.shape.rank != 0
    ):
        raise ValueError(
            "`text_dataset` must yield scalar strings (one document each) "
            f"or dicts holding one under `text_key`. Received: {spec}"
        )
    return text_dataset


def _sentinel_start(tokenizer, num_spans):
    """The first sentinel id, after checking the tokenizer has enough."""
    sentinels = list(getattr(tokenizer, "sentinel_token_ids", None) or [])
    if len(sentinels) < num_spans:
        raise ValueError(
            f"Span corruption at this `input_length` masks up to {num_spans} "
            f"spans, one sentinel token each, but the tokenizer has "
            f"{len(sentinels)} sentinel tokens ('<extra_id_0>', ...). Train "
            "the vocabulary with `keras_fido.data.train_sentencepiece(..., "
            "extra_ids=100)` or use a T5 vocabulary with extra ids. "
            f"Received: tokenizer={type(tokenizer).__name__}"
        )
    first = sentinels[0]
    if sentinels[:num_spans] != [first - i for i in range(num_spans)]:
        raise ValueError(
            "The tokenizer's sentinels must have consecutive decreasing ids "
            "('<extra_id_0>' highest), as in T5 vocabularies. Received: "
            f"sentinel_token_ids={sentinels[:num_spans]}"
        )
    return first


def _close_and_pad(ids, length, eos_id, pad_id):
    """Cuts `ids` to `length - 1`, appends the end token, pads to `length`."""
    ids = tf.concat([ids[: length - 1], [eos_id]], axis=0)
    size = tf.size(ids)
    mask = tf.pad(tf.ones([size], tf.bool), [[0, length - size]])
    ids = tf.pad(ids, [[0, length - size]], constant_values=pad_id)
    return tf.ensure_shape(ids, [length]), tf.ensure_shape(mask, [length])


def span_corruption_dataset(
    text_dataset,
    tokenizer,
    input_length,
    target_length=None,
    *,
    batch_size=None,
    noise_density=0.15,
    mean_noise_span_length=3.0,
    seed=0,
    text_key="text",
    documents_per_pack=128,
    drop_remainder=False,
):
    """Span-corruption pretraining examples for a `FiDOSeq2SeqLM`.

    T5's pretraining objective over a stream of documents, all in
    `tf.data`: documents are tokenized and concatenated (by groups of
    `documents_per_pack`, with no separator, as T5 does), cut into
    sequences of the raw length given by `span_corruption_lengths`, and
    each sequence is span-corrupted (`span_corruption`) with a seed derived
    from `seed` and its position in the stream, so the dataset is
    deterministic. Inputs and targets each end with the end token.

    Examples come in the standard tensor names, with one passage (`P=1`)
    on the encoder side, ready for `FiDOSeq2SeqLM.fit` (the preprocessor,
    if any, lets token dicts through):

    - `x["encoder_token_ids"]`, int32 `[1, input_length]`, and
      `x["encoder_padding_mask"]`, bool: the corrupted inputs.
    - `x["decoder_token_ids"]`, int32 `[target_length]`, and
      `x["decoder_padding_mask"]`: the start token then the targets.
    - `y`, int32 `[target_length]`: the targets; `sample_weight`, bool: 1
      on real target tokens.

    With `batch_size`, every tensor gets a leading batch axis.

    Args:
        text_dataset: A `tf.data.Dataset` of scalar strings, one document
            each, or of dicts with the text under `text_key` (as tfds'
            `c4` yields).
        tokenizer: A `keras_fido.models.FiDOTokenizer` with sentinel tokens
            (`tokenizer.sentinel_token_ids`), enough for the spans of one
            sequence (`input_length // 20` or so at T5's settings).
        input_length: int. Encoder length, end token included (T5: 512).
        target_length: int or `None`. Decoder length; `None` takes the
            longest targets can be (`span_corruption_lengths`, T5: 114).
            Shorter targets are cut, keeping the end token.
        batch_size: int or `None`. Batch the examples.
        noise_density: float. Fraction of tokens masked. Defaults to
            `0.15`.
        mean_noise_span_length: float. Average masked span length.
            Defaults to `3.0`.
        seed: int. Seed of the corruption. Defaults to `0`.
        text_key: str. The text field of dict elements. Defaults to
            `"text"`.
        documents_per_pack: int. Documents tokenized and concatenated at a
            time; each group ends with one shorter sequence. Defaults to
            `128`.
        drop_remainder: bool. Drop a last, smaller batch. Defaults to
            `False`.

    Returns:
        A `tf.data.Dataset` of `(x, y, sample_weight)`.

    Examples:
    ```python
    proto = keras_fido.data.train_sentencepiece(
        keras_fido.data.corpus_lines(), vocab_size=1000, extra_ids=100
    )
    tokenizer = keras_fido.models.FiDOTokenizer(proto=proto)
    text = tf.data.Dataset.from_tensor_slices(keras_fido.data.corpus_lines())
    train = keras_fido.data.span_corruption_dataset(
        text, tokenizer, input_length=128, batch_size=8
    )
    backbone = keras_fido.models.FiDOBackbone.from_preset(
        "fido_tiny", vocabulary_size=tokenizer.vocabulary_size()
    )
    model = keras_fido.models.FiDOSeq2SeqLM(backbone)
    model.compile(optimizer=keras_fido.training.pretraining_optimizer())
    model.fit(train.repeat(), steps_per_epoch=10)
    ```
    """
    _check_objective(noise_density, mean_noise_span_length)
    tokens_length, full_target_length = span_corruption_lengths(
        input_length, noise_density, mean_noise_span_length
    )
    if target_length is None:
        target_length = full_target_length
    target_length = check_positive_int("target_length", target_length)
    if target_length < 2:
        raise ValueError(
            "`target_length` must be at least 2 (a sentinel and the end "
            f"token). Received: target_length={target_length}"
        )
    documents_per_pack = check_positive_int(
        "documents_per_pack", documents_per_pack
    )
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"`seed` must be an int. Received: seed={seed!r}")
    _, max_spans = _python_noise_counts(
        tokens_length, noise_density, mean_noise_span_length
    )
    first_sentinel_id = _sentinel_start(tokenizer, max_spans)
    eos_id = tokenizer.end_token_id
    pad_id = tokenizer.pad_token_id
    start_id = tokenizer.start_token_id

    # No Python control flow on tensors below: skipping AutoGraph's
    # conversion (of the tokenizer too) saves seconds of tracing.
    @tf.autograph.experimental.do_not_convert
    def pack(texts):
        ids = tokenizer(texts)
        if isinstance(ids, tf.RaggedTensor):
            ids = ids.flat_values
        ids = tf.cast(tf.reshape(ids, [-1]), tf.int32)
        starts = tf.range(0, tf.size(ids), tokens_length)
        return tf.RaggedTensor.from_row_starts(ids, starts)

    @tf.autograph.experimental.do_not_convert
    def corrupt(index, ids):
        example_seed = tf.stack([tf.constant(seed, tf.int64), index])
        inputs, targets = span_corruption(
            ids,
            example_seed,
            first_sentinel_id,
            noise_density,
            mean_noise_span_length,
            num_sentinels=max_spans,
        )
        encoder_ids, encoder_mask = _close_and_pad(
            inputs, input_length, eos_id, pad_id
        )
        target_ids, target_mask = _close_and_pad(
            targets, target_length, eos_id, pad_id
        )
        decoder_ids = tf.concat([[start_id], target_ids[:-1]], axis=0)
        decoder_mask = tf.concat([[True], target_mask[:-1]], axis=0)
        x = {
            "encoder_token_ids": encoder_ids[tf.newaxis],
            "encoder_padding_mask": encoder_mask[tf.newaxis],
            "decoder_token_ids": decoder_ids,
            "decoder_padding_mask": decoder_mask,
        }
        return x, target_ids, target_mask

    dataset = _text_strings(text_dataset, text_key)
    dataset = (
        dataset.batch(documents_per_pack)
        .map(pack, num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        .enumerate()
        .map(corrupt, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    )
    if batch_size is not None:
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset
