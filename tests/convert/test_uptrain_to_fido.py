"""FiDO built from T5.1.1 checkpoints: pooled K/V, sparse cross-attention,
an encoder and a decoder from different sizes."""

import json
import os

import keras_hub
import numpy as np
import pytest
from keras import ops

pytest.importorskip("transformers", reason="the checkpoints need transformers")

from keras_fido.convert import backbone_from_t5_checkpoint  # noqa: E402
from keras_fido.convert import mean_pool_heads  # noqa: E402
from keras_fido.convert import read_t5_checkpoint  # noqa: E402
from keras_fido.convert import uptrain_to_fido  # noqa: E402
from keras_fido.convert.__main__ import main  # noqa: E402
from keras_fido.convert.t5_checkpoint import T5Checkpoint  # noqa: E402
from keras_fido.testing.t5_checkpoints import VOCAB_SIZE  # noqa: E402
from keras_fido.testing.t5_checkpoints import tiny_t5_checkpoint  # noqa: E402
from keras_fido.testing.t5_reference import random_fid_inputs  # noqa: E402

SELF_K = "decoder.block.{}.layer.0.SelfAttention.k.weight"
CROSS = "decoder.block.{}.layer.1.EncDecAttention.{}.weight"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Width 32, 4 heads of 8, 2 encoder and 3 decoder layers."""
    return read_t5_checkpoint(
        tiny_t5_checkpoint(tmp_path_factory.mktemp("base"))[1]
    )


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    """Width 48, 6 heads of 8, 4 decoder layers: the larger decoder."""
    _, directory = tiny_t5_checkpoint(
        tmp_path_factory.mktemp("large"),
        seed=1,
        d_model=48,
        d_ff=96,
        num_heads=6,
        num_decoder_layers=4,
    )
    return read_t5_checkpoint(directory)


def outputs(backbone, seed=0):
    out = backbone(random_fid_inputs(vocab=VOCAB_SIZE, seed=seed))
    return {k: ops.convert_to_numpy(v) for k, v in out.items()}


def kernel(variable):
    return ops.convert_to_numpy(variable)


def test_identity_settings_give_the_plain_conversion(base):
    fid = backbone_from_t5_checkpoint(base)
    backbone, report = uptrain_to_fido(base)
    assert not (report.reinitialized or report.mean_pooled or report.dropped)
    for a, b in zip(fid.weights, backbone.weights):
        assert a.path == b.path
        np.testing.assert_array_equal(kernel(a), kernel(b), a.path)
    for name, value in outputs(fid).items():
        np.testing.assert_array_equal(outputs(backbone)[name], value, name)


def test_mean_pool_heads_averages_adjacent_heads():
    weight = np.arange(4 * 2 * 3, dtype="float32").reshape(8, 3)  # 4 heads
    pooled = mean_pool_heads(weight, num_heads=4, num_groups=2)
    heads = weight.reshape(4, 2, 3)
    np.testing.assert_allclose(
        pooled.reshape(2, 2, 3), [heads[:2].mean(0), heads[2:].mean(0)]
    )
    np.testing.assert_array_equal(mean_pool_heads(weight, 4, 4), weight)


def test_multi_query_kv_is_the_mean_of_all_heads(base):
    backbone, report = uptrain_to_fido(base, num_key_value_heads=1)
    assert backbone.decoder_num_key_value_heads == 1
    key = backbone.decoder.transformer_layers[1].self_attention.key_dense
    source = base.weights[SELF_K.format(1)]  # [4 heads * 8, 32]
    expected = source.reshape(4, 8, 32).mean(0).T  # [32, 8]
    np.testing.assert_allclose(kernel(key.kernel)[:, 0], expected, atol=1e-6)
    # Self- and cross-attention K and V of 3 layers.
    assert len(report.mean_pooled) == 12
    assert report.mean_pooled[key.kernel.path] == SELF_K.format(1)


def test_pooling_heads_that_are_equal_within_groups_is_lossless(base):
    """Query head i reads K/V head i // group_size: pooling groups of
    adjacent heads that are already equal changes no output."""
    weights = dict(base.weights)
    for name, array in weights.items():
        if name.startswith("decoder.") and name.endswith(
            (".k.weight", ".v.weight")
        ):
            heads = array.reshape(2, 2, 8, 32)  # 2 groups of 2 heads
            weights[name] = np.repeat(heads[:, :1], 2, axis=1).reshape(32, 32)
    grouped = T5Checkpoint(config=base.config, weights=weights)
    expected = outputs(backbone_from_t5_checkpoint(grouped))
    backbone, _ = uptrain_to_fido(grouped, num_key_value_heads=2)
    for name, value in outputs(backbone).items():
        np.testing.assert_allclose(value, expected[name], atol=1e-5)


def test_cross_attention_is_kept_in_every_kth_layer_only(large):
    backbone, report = uptrain_to_fido(large, cross_attention_interval=2)
    assert backbone.cross_attention_layer_indices == [2, 4]
    layer_2 = backbone.decoder.transformer_layers[1].cross_attention_layer
    np.testing.assert_array_equal(
        kernel(layer_2.query_dense.kernel),
        large.weights[CROSS.format(1, "q")].T.reshape(48, 6, 8),
    )
    dropped = [
        f"decoder.block.{i}.layer.1.{part}.weight"
        for i in (0, 2)
        for part in (
            "EncDecAttention.k",
            "EncDecAttention.o",
            "EncDecAttention.q",
            "EncDecAttention.v",
            "layer_norm",
        )
    ]
    assert report.dropped == dropped
    assert not report.reinitialized


def test_smaller_encoder_reinitialises_and_reports_cross_kv(base, large):
    with pytest.warns(UserWarning, match="re-initialised 4 weights"):
        backbone, report = uptrain_to_fido(
            base, large, cross_attention_interval=2, num_key_value_heads=1
        )
    assert (backbone.encoder_hidden_dim, backbone.decoder_hidden_dim) == (
        32,
        48,
    )
    assert backbone.encoder_num_layers == 2
    assert backbone.decoder_num_layers == 4
    expected = {
        f"decoder/layer_{i}/cross_attention/{part}/kernel"
        for i in (2, 4)
        for part in ("key", "value")
    }
    assert set(report.reinitialized) == expected
    assert "48-wide encoder output" in report.reinitialized[min(expected)]
    assert "re-initialised 4" in report.summary().replace("weights: ", "")
    # Encoder weights from the base checkpoint, decoder weights from the
    # large one; re-initialised kernels are T5-scaled noise.
    np.testing.assert_array_equal(
        kernel(backbone.encoder_token_embedding.embeddings),
        base.weights["shared.weight"],
    )
    np.testing.assert_array_equal(
        kernel(backbone.token_embedding.embeddings),
        large.weights["shared.weight"],
    )
    cross = backbone.decoder.transformer_layers[3].cross_attention_layer
    assert kernel(cross.key_dense.kernel).shape == (32, 1, 8)
    assert 0.1 < kernel(cross.key_dense.kernel).std() < 0.25  # 32 ** -0.5
    np.testing.assert_array_equal(
        kernel(cross.output_dense.kernel),
        large.weights[CROSS.format(3, "o")].T.reshape(6, 8, 48),
    )
    assert np.isfinite(outputs(backbone)["decoder_sequence_output"]).all()


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("d_kv", 4, "`key_value_dim`"),
        ("vocab_size", 256, "`vocabulary_size`"),
    ],
)
def test_incompatible_checkpoints_are_refused_naming_the_field(
    base, field, value, match
):
    other = T5Checkpoint(
        config={**base.config, field: value}, weights=base.weights
    )
    with pytest.raises(ValueError, match=match):
        uptrain_to_fido(base, other)


@pytest.mark.parametrize("heads", [3, 0, True])
def test_num_key_value_heads_must_divide_the_heads(base, heads):
    with pytest.raises(ValueError, match="num_key_value_heads"):
        uptrain_to_fido(base, num_key_value_heads=heads)


def test_tool_writes_a_fido_preset_and_its_report(base, large, tmp_path):
    out = str(tmp_path / "fido")
    with pytest.warns(UserWarning, match="re-initialised 4 weights"):
        main(
            [
                base.directory,
                out,
                "--to-fido",
                "--decoder-checkpoint",
                large.directory,
                "--cross-attention-interval",
                "2",
                "--num-key-value-heads",
                "1",
                "--num-passages",
                "2",
                "--passage-length",
                "16",
            ]
        )
    with open(os.path.join(out, "uptraining_report.json")) as file:
        report = json.load(file)
    assert len(report["reinitialized"]) == 4
    reader = keras_hub.models.Seq2SeqLM.from_preset(out)
    backbone = reader.backbone
    assert backbone.cross_attention_layer_indices == [2, 4]
    assert backbone.decoder_num_key_value_heads == 1
    assert reader.preprocessor.tokenizer.token_to_id("<extra_id_0>") == 219


def test_tool_converts_to_fid_and_back(base, tmp_path, capsys):
    preset = str(tmp_path / "fid")
    main([base.directory, preset, "--passage-length", "16"])
    assert "FiD preset" in capsys.readouterr().out
    back = str(tmp_path / "t5")
    main([preset, back, "--to-transformers"])
    again = read_t5_checkpoint(back)
    for name, array in base.weights.items():
        np.testing.assert_array_equal(again.weights[name], array, name)
    with pytest.raises(SystemExit):
        main([base.directory, preset, "--num-key-value-heads", "1"])
