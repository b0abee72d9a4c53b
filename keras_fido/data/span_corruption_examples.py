"""T5's span corruption pretraining objective, in the TensorFlow graph."""

import tensorflow as tf

from keras_fido.data.noise_spans import check_objective
from keras_fido.data.noise_spans import python_noise_counts
from keras_fido.data.noise_spans import span_corruption_lengths
from keras_fido.data.noise_spans import span_corruption_noise_mask
from keras_fido.utils.checks import check_positive_int


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


def _checked_lengths(
    input_length, target_length, noise_density, mean_noise_span_length
):
    """(raw tokens per example, target length, most spans per example)."""
    check_objective(noise_density, mean_noise_span_length)
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
    _, max_spans = python_noise_counts(
        tokens_length, noise_density, mean_noise_span_length
    )
    return tokens_length, target_length, max_spans


def _corrupter(
    tokenizer, seed, first_sentinel_id, max_spans, objective, lengths
):
    """The `(index, ids) -> (x, y, sample_weight)` map of the pipeline."""
    noise_density, mean_noise_span_length = objective
    input_length, target_length = lengths
    eos_id = tokenizer.end_token_id
    pad_id = tokenizer.pad_token_id
    start_id = tokenizer.start_token_id

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

    return corrupt


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
    tokens_length, target_length, max_spans = _checked_lengths(
        input_length,
        target_length,
        noise_density,
        mean_noise_span_length,
    )
    documents_per_pack = check_positive_int(
        "documents_per_pack", documents_per_pack
    )
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"`seed` must be an int. Received: seed={seed!r}")
    first_sentinel_id = _sentinel_start(tokenizer, max_spans)

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

    corrupt = _corrupter(
        tokenizer,
        seed,
        first_sentinel_id,
        max_spans,
        (noise_density, mean_noise_span_length),
        (input_length, target_length),
    )

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
