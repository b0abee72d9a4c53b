"""Mixed precision: finite losses and gradients of the tiny presets on
padded, question-only and longest inputs, and T5's float16 overflow."""

import keras
import numpy as np
import pytest
from keras import ops

import keras_fido.layers.gated_gelu_feed_forward as feed_forward_module
from keras_fido.layers import FiDOTransformerLayer
from keras_fido.layers.float16_range import FLOAT16_LIMIT
from keras_fido.models import FiDOBackbone
from keras_fido.models import FiDOSeq2SeqLM

POLICIES = ["mixed_bfloat16", "mixed_float16"]
PRESETS = ["fid_tiny", "fido_tiny"]
FLOAT16_MAX = float(np.finfo("float16").max)

# The longest lengths the library is set up for: the preprocessor's (and
# the paper's) default passage length of 256 tokens and answer length of
# 32. Passages are encoded one by one, so 4 stand for the default 40.
LONGEST = dict(passages=4, length=256, target=32)


def make_reader(preset, policy, seed=0):
    keras.utils.set_random_seed(seed)
    return FiDOSeq2SeqLM(FiDOBackbone.from_preset(preset, dtype=policy))


def fid_batch(passages, length, target, passage_mask, vocab=32128, seed=0):
    """Token ids for `passage_mask` `[B, P, L]`, a start token, a target."""
    rng = np.random.default_rng(seed)
    batch = passage_mask.shape[0]
    ids = rng.integers(2, vocab, size=passage_mask.shape) * passage_mask
    decoder_ids = rng.integers(2, vocab, size=(batch, target + 1))
    decoder_ids[:, 0] = 0
    x = {
        "encoder_token_ids": ids.astype("int32"),
        "encoder_padding_mask": passage_mask.astype("int32"),
        "decoder_token_ids": decoder_ids[:, :-1].astype("int32"),
        "decoder_padding_mask": np.ones((batch, target), "int32"),
    }
    return x, decoder_ids[:, 1:].astype("int32")


def longest_batch():
    """Two examples at the longest lengths: one with a full passage, one
    cut to 5 tokens, one that is padding but the question (its first 6
    tokens) and a fully padded one; one whose passages are all padding
    but the question."""
    mask = np.zeros((2, LONGEST["passages"], LONGEST["length"]), "int32")
    mask[0, 0] = 1
    mask[0, 1, :5] = 1
    mask[0, 2, :6] = 1
    mask[1, :, :6] = 1
    x, y = fid_batch(passage_mask=mask, **LONGEST)
    ids = x["encoder_token_ids"]
    ids[0, 2, :6] = ids[0, 0, :6]
    ids[1, :, :6] = ids[1, :1, :6]
    return x, y


def question_only_batch():
    """A batch in which every passage is padding but the question (its
    first 6 tokens), as for questions that retrieved nothing. Of the
    longest batch's shape, so JAX reuses the operations it compiled."""
    mask = np.zeros((2, LONGEST["passages"], LONGEST["length"]), "int32")
    mask[:, :, :6] = 1
    x, y = fid_batch(passage_mask=mask, seed=1, **LONGEST)
    x["encoder_token_ids"][:, :, :6] = x["encoder_token_ids"][:, :1, :6]
    return x, y


def loss_and_gradients(model, x, y):
    """Logits and token cross-entropy of `model` (dropout on) and the
    gradients of the loss with respect to every trainable variable, all as
    numpy float32. One forward pass: eager JAX is slow on 2 cores."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    backend = keras.config.backend()
    if backend == "jax":
        import jax

        def compute(trainable, non_trainable):
            logits, _ = model.stateless_call(
                trainable, non_trainable, x, training=True
            )
            return loss_fn(y, logits), logits

        (loss, logits), gradients = jax.value_and_grad(compute, has_aux=True)(
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
        )
    elif backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = loss_fn(y, logits)
        gradients = tape.gradient(loss, model.trainable_variables)
    else:
        logits = model(x, training=True)
        loss = loss_fn(y, logits)
        loss.backward()
        gradients = [v.value.grad for v in model.trainable_variables]
    missing = [
        v.path
        for v, g in zip(model.trainable_variables, gradients)
        if g is None
    ]
    assert not missing, f"No gradient reached {missing}"
    return (
        ops.convert_to_numpy(ops.cast(ops.stop_gradient(logits), "float32")),
        float(ops.convert_to_numpy(loss)),
        [ops.convert_to_numpy(ops.cast(g, "float32")) for g in gradients],
    )


def assert_finite_training_step(model, x, y):
    logits, loss, gradients = loss_and_gradients(model, x, y)
    assert np.isfinite(logits).all(), "logits are not finite"
    assert np.isfinite(loss) and loss > 0, f"loss {loss}"
    bad = [
        v.path
        for v, g in zip(model.trainable_variables, gradients)
        if not np.isfinite(g).all()
    ]
    assert not bad, f"Non-finite gradients of {bad}"
    assert any(np.abs(g).max() > 0 for g in gradients), "all gradients zero"


@pytest.mark.large
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("preset", PRESETS)
def test_longest_padded_and_question_only_passages_train_finitely(
    preset, policy
):
    x, y = longest_batch()
    assert_finite_training_step(make_reader(preset, policy), x, y)


# --- T5's float16 overflow ---------------------------------------------------

OVERFLOW_SCALE = 1e5


def overflowing_reader(policy):
    """`fido_tiny` with every feed-forward output kernel scaled up until
    the feed-forward outputs pass float16's largest value, as the outputs
    of trained T5.1.1 checkpoints do."""
    reader = make_reader("fido_tiny", policy)
    backbone = reader.backbone
    for layer in (
        backbone.encoder.transformer_layers
        + backbone.decoder.transformer_layers
    ):
        kernel = layer.feed_forward.output_dense.kernel
        kernel.assign(kernel * OVERFLOW_SCALE)
    return reader


def feed_forward_peak(reader, x):
    """Largest |feed-forward output| of the first encoder block, float32."""
    backbone = reader.backbone
    block = backbone.encoder.transformer_layers[0]
    embedded = backbone.encoder_token_embedding(x["encoder_token_ids"])
    hidden = block.feed_forward_norm(ops.cast(embedded, "float32"))
    peak = ops.max(ops.abs(block.feed_forward(hidden)))
    return float(ops.convert_to_numpy(peak))


def test_scaled_weights_overflow_float16_without_the_clamp(monkeypatch):
    x, _ = question_only_batch()
    # The provocation is real: in float32 the outputs exceed float16's max.
    assert feed_forward_peak(overflowing_reader("float32"), x) > FLOAT16_MAX
    # Turn both clamps off: plain float16 then overflows to inf / nan.
    monkeypatch.setattr(
        feed_forward_module,
        "clip_to_float16",
        lambda value: ops.cast(value, "float16"),
    )
    monkeypatch.setattr(
        FiDOTransformerLayer, "add_residual", lambda self, a, b: a + b
    )
    outputs = overflowing_reader("mixed_float16").backbone(x)
    encoded = ops.convert_to_numpy(
        ops.cast(outputs["encoder_sequence_output"], "float32")
    )
    assert not np.isfinite(encoded).all()


def test_float16_overflow_is_clamped_forward_and_backward():
    # Also the batch in which every passage is padding but the question.
    x, y = question_only_batch()
    reader = overflowing_reader("mixed_float16")
    peak = feed_forward_peak(reader, x)
    assert peak == pytest.approx(FLOAT16_LIMIT, rel=1e-3)
    assert_finite_training_step(reader, x, y)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_residual_is_a_plain_sum_outside_float16(policy):
    layer = FiDOTransformerLayer(
        hidden_dim=8,
        intermediate_dim=16,
        num_heads=2,
        num_key_value_heads=2,
        key_value_dim=4,
        dtype=policy,
    )
    dtype = layer.compute_dtype
    a = ops.convert_to_tensor(np.full((1, 2, 8), 3e38, "float32"), dtype)
    b = ops.convert_to_tensor(np.full((1, 2, 8), 3e38, "float32"), dtype)
    total = ops.convert_to_numpy(ops.cast(layer.add_residual(a, b), "float32"))
    assert np.isinf(total).all()  # no clamp: the sum is left as computed
    assert layer.feed_forward.output_dense.compute_dtype == dtype


def test_float16_residual_is_summed_in_float32_then_clipped():
    layer = FiDOTransformerLayer(
        hidden_dim=8,
        intermediate_dim=16,
        num_heads=2,
        num_key_value_heads=2,
        key_value_dim=4,
        dtype="mixed_float16",
    )
    big = ops.convert_to_tensor(np.full((1, 2, 8), 60000.0), "float16")
    total = layer.add_residual(big, big)
    assert keras.backend.standardize_dtype(total.dtype) == "float16"
    np.testing.assert_array_equal(
        ops.convert_to_numpy(ops.cast(total, "float32")),
        np.float16(FLOAT16_LIMIT),  # 64504 rounds to 64512 in float16
    )
    small = ops.convert_to_tensor(np.full((1, 2, 8), 1000.0), "float16")
    np.testing.assert_array_equal(
        ops.convert_to_numpy(
            ops.cast(layer.add_residual(small, small + small), "float32")
        ),
        3000.0,
    )
    assert layer.feed_forward.output_dense.compute_dtype == "float32"
