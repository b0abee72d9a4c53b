"""T5 span corruption: noise counts, reconstruction, determinism, dataset."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_fido.data import corpus_lines
from keras_fido.data import span_corruption
from keras_fido.data import span_corruption_dataset
from keras_fido.data import span_corruption_lengths
from keras_fido.data import span_corruption_noise_mask
from keras_fido.data import train_sentencepiece
from keras_fido.models import FiDOTokenizer

FIRST_SENTINEL = 10_000


def expected_counts(length, density=0.15, mean_span=3.0):
    """T5's counts, with the graph's float32 round-half-to-even."""
    length = max(length, 2)
    noise = int(np.round(np.float32(length) * np.float32(density)))
    noise = min(max(noise, 1), length - 1)
    spans = max(int(np.round(np.float32(noise) / np.float32(mean_span))), 1)
    return noise, spans


def span_starts(mask):
    mask = np.asarray(mask)
    previous = np.concatenate([[False], mask[:-1]])
    return int(np.sum(mask & ~previous))


def reconstruct(inputs, targets, first_sentinel=FIRST_SENTINEL, count=1000):
    """Puts each target span back in place of its sentinel in the inputs."""
    spans, current = {}, None
    for token in targets:
        if token > first_sentinel - count:
            current = token
            spans[current] = []
        else:
            spans[current].append(token)
    output = []
    for token in inputs:
        if token > first_sentinel - count:
            output.extend(spans[token])
        else:
            output.append(token)
    return output


@settings(max_examples=40, deadline=None)
@given(
    length=st.integers(min_value=2, max_value=700),
    seed=st.integers(min_value=0, max_value=2**31 - 1),
)
def test_noise_fraction_and_span_count_follow_t5(length, seed):
    mask = span_corruption_noise_mask(length, seed=[seed, 7]).numpy()
    noise, spans = expected_counts(length)
    assert mask.shape == (length,)
    assert int(mask.sum()) == noise
    assert span_starts(mask) == spans
    # Non-noise comes first, noise last: spans alternate from kept tokens.
    assert not mask[0] and mask[-1]


@settings(max_examples=40, deadline=None)
@given(
    tokens=st.lists(
        st.integers(min_value=3, max_value=5000), min_size=0, max_size=300
    ),
    seed=st.integers(min_value=0, max_value=2**31 - 1),
)
def test_inputs_and_targets_reconstruct_the_sequence(tokens, seed):
    inputs, targets = span_corruption(
        tf.constant(tokens, tf.int32), [seed, 1], FIRST_SENTINEL
    )
    inputs, targets = inputs.numpy().tolist(), targets.numpy().tolist()
    assert reconstruct(inputs, targets) == tokens
    if len(tokens) >= 2:
        _, spans = expected_counts(len(tokens))
        sentinels = [FIRST_SENTINEL - i for i in range(spans)]
        # Sentinels count down from the first one, in both sequences.
        assert [t for t in inputs if t > 5000] == sentinels
        assert [t for t in targets if t > 5000] == sentinels
        assert targets[0] == FIRST_SENTINEL


def test_one_token_is_never_masked_and_empty_stays_empty():
    inputs, targets = span_corruption(tf.constant([5]), [0, 0], 99)
    assert inputs.numpy().tolist() == [5]
    assert targets.numpy().tolist() == [99]
    inputs, targets = span_corruption(tf.zeros([0], tf.int32), [0, 0], 99)
    assert inputs.shape == targets.shape == (0,)


def test_corruption_is_deterministic_given_a_seed():
    tokens = tf.range(3, 203)
    first = span_corruption(tokens, [1, 2], FIRST_SENTINEL)
    again = span_corruption(tokens, [1, 2], FIRST_SENTINEL)
    other = span_corruption(tokens, [1, 3], FIRST_SENTINEL)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert first[0].numpy().tolist() != other[0].numpy().tolist()


def test_runs_inside_a_tf_function():
    @tf.function
    def corrupt(tokens, seed):
        return span_corruption(tokens, seed, FIRST_SENTINEL, num_sentinels=9)

    tokens = tf.range(3, 103)
    inputs, targets = corrupt(tokens, tf.constant([4, 2]))
    assert reconstruct(inputs.numpy(), targets.numpy()) == list(range(3, 103))
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_sentinels"):
        corrupt(tf.range(3, 803), tf.constant([4, 2]))


def test_t5_lengths():
    assert span_corruption_lengths(512) == (568, 114)
    assert span_corruption_lengths(3) == (2, 3)


@settings(max_examples=30, deadline=None)
@given(input_length=st.integers(min_value=3, max_value=1200))
def test_lengths_are_the_longest_that_fit(input_length):
    tokens, target_length = span_corruption_lengths(input_length)
    inputs, targets = span_corruption(
        tf.range(3, 3 + tokens), [0, 0], FIRST_SENTINEL
    )
    assert int(tf.size(inputs)) + 1 <= input_length
    assert int(tf.size(targets)) + 1 == target_length
    longer, _ = span_corruption(tf.range(3, 4 + tokens), [0, 0], FIRST_SENTINEL)
    assert int(tf.size(longer)) + 1 > input_length


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"noise_density": 1.0}, "noise_density"),
        ({"mean_noise_span_length": 0.5}, "mean_noise_span_length"),
    ],
)
def test_invalid_objective_is_named(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        span_corruption_noise_mask(10, [0, 0], **kwargs)


@pytest.fixture(scope="module")
def sentinel_tokenizer():
    proto = train_sentencepiece(corpus_lines(), vocab_size=400, extra_ids=20)
    return FiDOTokenizer(proto=proto)


def text_dataset(count=40):
    return tf.data.Dataset.from_tensor_slices(corpus_lines()[:count])


def test_dataset_has_the_standard_names_and_shapes(sentinel_tokenizer):
    dataset = span_corruption_dataset(
        text_dataset(), sentinel_tokenizer, input_length=48, batch_size=3
    )
    _, target_length = span_corruption_lengths(48)
    x, y, sample_weight = next(iter(dataset))
    assert x["encoder_token_ids"].shape == (3, 1, 48)
    assert x["encoder_padding_mask"].dtype == tf.bool
    assert x["decoder_token_ids"].shape == (3, target_length)
    assert y.shape == sample_weight.shape == (3, target_length)
    # The decoder reads the start token, then the labels shifted by one.
    start = sentinel_tokenizer.start_token_id
    np.testing.assert_array_equal(x["decoder_token_ids"][:, 0], start)
    np.testing.assert_array_equal(
        x["decoder_token_ids"][:, 1:], y[:, :-1].numpy()
    )
    first_sentinel = sentinel_tokenizer.sentinel_token_ids[0]
    np.testing.assert_array_equal(y[:, 0], first_sentinel)


def test_dataset_reconstructs_the_tokenized_text(sentinel_tokenizer):
    tokenizer = sentinel_tokenizer
    texts = corpus_lines()[:12]
    dataset = span_corruption_dataset(
        text_dataset(12), tokenizer, input_length=40, documents_per_pack=5
    )
    eos = tokenizer.end_token_id
    first = tokenizer.sentinel_token_ids[0]
    stream = []
    for x, y, weight in dataset:
        inputs = x["encoder_token_ids"][0].numpy()
        inputs = inputs[x["encoder_padding_mask"][0].numpy()].tolist()
        targets = y.numpy()[weight.numpy()].tolist()
        assert inputs[-1] == targets[-1] == eos
        stream.extend(reconstruct(inputs[:-1], targets[:-1], first, 20))
    expected = [
        token
        for text in texts
        for token in np.asarray(tokenizer(text)).tolist()
    ]
    assert stream == expected


def test_dataset_is_deterministic_given_a_seed(sentinel_tokenizer):
    def first_batch(seed):
        dataset = span_corruption_dataset(
            text_dataset(),
            sentinel_tokenizer,
            input_length=48,
            batch_size=4,
            seed=seed,
        )
        return next(iter(dataset))[0]["encoder_token_ids"].numpy()

    np.testing.assert_array_equal(first_batch(3), first_batch(3))
    assert not np.array_equal(first_batch(3), first_batch(4))


def test_dataset_reads_dicts_from_tfds(sentinel_tokenizer):
    records = tf.data.Dataset.from_tensor_slices(
        {"text": corpus_lines()[:8], "url": ["u"] * 8}
    )
    dataset = span_corruption_dataset(
        records, sentinel_tokenizer, input_length=32
    )
    assert next(iter(dataset))[0]["encoder_token_ids"].shape == (1, 32)


def test_dataset_needs_enough_sentinels(sentinel_tokenizer, fido_tokenizer):
    with pytest.raises(ValueError, match="extra_ids"):
        span_corruption_dataset(text_dataset(), fido_tokenizer, 48)
    with pytest.raises(ValueError, match="20 sentinel tokens"):
        span_corruption_dataset(text_dataset(), sentinel_tokenizer, 1024)
