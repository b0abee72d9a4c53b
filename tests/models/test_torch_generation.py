"""Compiled decoding steps on torch give the eager path's tokens."""

import warnings

import keras
import numpy as np
import pytest

from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.testing.fido_models import tiny_backbone

pytestmark = pytest.mark.skipif(
    keras.config.backend() != "torch", reason="torch.compile is torch's"
)

VOCAB = 128


def token_inputs(batch=3, passages=3, length=6, steps=9):
    rng = np.random.default_rng(0)
    mask = np.ones((batch, passages, length), bool)
    mask[1, 2, 3:] = False
    ids = rng.integers(2, VOCAB, mask.shape).astype("int32")
    return {
        "encoder_token_ids": ids,
        "encoder_padding_mask": mask,
        "decoder_token_ids": np.zeros((batch, steps), "int32"),
        "decoder_padding_mask": np.arange(steps)[None].repeat(batch, 0) < 1,
    }


def reader(kind="fido", copy_attention=False, sampler="greedy", **kwargs):
    backbone = tiny_backbone(
        kind, vocabulary_size=VOCAB, copy_attention=copy_attention
    )
    reader = FiDOSeq2SeqLM(backbone)
    reader.compile(sampler=sampler, **kwargs)
    return reader


def compiled(reader, backend="aot_eager"):
    """`reader` decoding through compiled steps. Tests use the cheap
    `aot_eager` backend: the export and graph plumbing are the same,
    without a C++ compile."""
    from keras_fido.models.torch_generation import torch_generate_function

    reader.generate_function = torch_generate_function(reader, backend)
    return reader.generate_function.decoding_step


def generate(reader, inputs):
    return reader.generate(inputs, stop_token_ids=None)["decoder_token_ids"]


def test_jit_compile_true_generates_the_eager_tokens_with_inductor():
    inputs = token_inputs()
    expected = generate(reader(), inputs)
    lm = reader(jit_compile=True)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        np.testing.assert_array_equal(generate(lm, inputs), expected)
    assert not [w for w in record if "eagerly" in str(w.message)]
    step = lm.generate_function.decoding_step
    assert not step.failed and len(step.compile_seconds) == 1


def test_default_decodes_eagerly():
    lm = reader()
    lm.make_generate_function()
    assert not hasattr(lm.generate_function, "decoding_step")


@pytest.mark.parametrize(
    "kind, copy_attention, sampler",
    [("fid", True, "greedy"), ("fido", False, "beam"), ("fid", True, "beam")],
)
def test_copy_head_and_beam_search_give_the_eager_tokens(
    kind, copy_attention, sampler
):
    inputs = token_inputs()
    expected = generate(reader(kind, copy_attention, sampler), inputs)
    lm = reader(kind, copy_attention, sampler)
    step = compiled(lm)
    np.testing.assert_array_equal(generate(lm, inputs), expected)
    assert not step.failed


def test_one_graph_per_input_shape():
    lm = reader()
    step = compiled(lm)
    generate(lm, token_inputs())
    generate(lm, token_inputs())
    assert len(step.compile_seconds) == 1
    generate(lm, token_inputs(batch=2))
    assert len(step.graphs) == 2


def test_weights_assigned_after_compiling_are_used():
    inputs = token_inputs()
    lm = reader()
    compiled(lm)
    before = generate(lm, inputs)
    kernel = lm.backbone.token_embedding.embeddings
    kernel.assign(np.flip(keras.ops.convert_to_numpy(kernel), axis=0))
    after = generate(lm, inputs)
    eager = reader()
    eager.backbone.token_embedding.embeddings.assign(kernel.numpy())
    np.testing.assert_array_equal(after, generate(eager, inputs))
    assert not np.array_equal(before, after)


def test_a_failed_compile_decodes_eagerly_after_one_warning():
    def broken_backend(graph, example_inputs):
        raise RuntimeError("no C++ compiler")

    inputs = token_inputs()
    expected = generate(reader(), inputs)
    lm = reader()
    step = compiled(lm, broken_backend)
    with pytest.warns(UserWarning, match="decoding eagerly") as record:
        np.testing.assert_array_equal(generate(lm, inputs), expected)
        np.testing.assert_array_equal(generate(lm, inputs), expected)
    assert step.failed
    assert sum("decoding eagerly" in str(w.message) for w in record) == 1


def test_weight_matmuls_run_over_packed_weights():
    from keras_fido.models.torch_packed_linears import onednn_available

    if not onednn_available():
        pytest.skip("oneDNN is not available to this torch build")
    lm = reader("fido")
    step = compiled(lm)
    generate(lm, token_inputs())
    decoder = lm.backbone.decoder
    cross = len(decoder.cross_attention_layer_indices)
    # Per layer: self-attention q, k, v, o and the gated feed-forward's
    # three kernels; per cross-attending layer its q and o (its K/V are
    # in the cache); and the vocabulary projection.
    assert step.packed_matmuls == [7 * decoder.num_layers + 2 * cross + 1]


def test_kernels_written_in_place_after_compiling_are_used():
    # Training writes weights in place; the packed copies must follow.
    inputs = token_inputs()
    lm = reader()
    compiled(lm)
    before = generate(lm, inputs)
    kernel = lm.backbone.decoder.transformer_layers[0].feed_forward.weights[0]
    rng = np.random.default_rng(3)
    kernel.assign(rng.normal(size=kernel.shape).astype("float32"))
    after = generate(lm, inputs)
    eager = reader()
    eager.set_weights(lm.get_weights())
    np.testing.assert_array_equal(after, generate(eager, inputs))
    assert not np.array_equal(before, after)
