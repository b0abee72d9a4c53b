"""T5's noise-span arithmetic: how many tokens and spans are masked,
which ones, and the raw length that fills an input after corruption."""

import tensorflow as tf

from keras_fido.utils.checks import check_positive_int


def check_objective(noise_density, mean_noise_span_length):
    """Checks the two settings of the objective."""
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
    check_objective(noise_density, mean_noise_span_length)
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


def python_noise_counts(length, noise_density, mean_noise_span_length):
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
    check_objective(noise_density, mean_noise_span_length)
    input_length = check_positive_int("input_length", input_length)
    if input_length < 3:
        raise ValueError(
            "`input_length` must be at least 3 (a token, a sentinel and "
            f"the end token). Received: input_length={input_length}"
        )

    def lengths(tokens):
        noise, spans = python_noise_counts(
            tokens, noise_density, mean_noise_span_length
        )
        return tokens - noise + spans + 1, noise + spans + 1

    tokens = 2
    while lengths(tokens + 1)[0] <= input_length:
        tokens += 1
    return tokens, lengths(tokens)[1]
