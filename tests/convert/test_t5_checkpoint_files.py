"""Reading T5 checkpoint directories, and refusing what is not T5.1.1."""

import json
import os
import shutil
import sys

import numpy as np
import pytest
from keras import ops

pytest.importorskip("transformers", reason="the checkpoints need transformers")

from keras_fido.convert import backbone_config_from_t5_config  # noqa: E402
from keras_fido.convert import backbone_from_t5_checkpoint  # noqa: E402
from keras_fido.convert import from_t5_checkpoint  # noqa: E402
from keras_fido.convert import read_t5_checkpoint  # noqa: E402
from keras_fido.testing.t5_checkpoints import VOCAB_SIZE  # noqa: E402
from keras_fido.testing.t5_checkpoints import tiny_t5_checkpoint  # noqa: E402
from keras_fido.testing.t5_checkpoints import write_t5_checkpoint  # noqa: E402
from keras_fido.testing.t5_reference import fid_forward  # noqa: E402
from keras_fido.testing.t5_reference import random_fid_inputs  # noqa: E402
from keras_fido.testing.t5_reference import tiny_t5  # noqa: E402


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return tiny_t5_checkpoint(tmp_path_factory.mktemp("t5"))


@pytest.fixture
def copy(source, tmp_path):
    """A writable copy of the checkpoint directory."""
    return shutil.copytree(source[1], tmp_path / "t5")


def state_of(model):
    return {k: v.numpy() for k, v in model.state_dict().items()}


def assert_same_weights(weights, model):
    for name, array in state_of(model).items():
        if name in weights:
            np.testing.assert_array_equal(weights[name], array, name)
    assert {"shared.weight", "lm_head.weight"} <= set(weights)


def edit_config(directory, **changes):
    path = os.path.join(directory, "config.json")
    with open(path) as file:
        config = json.load(file)
    config.update(changes)
    with open(path, "w") as file:
        json.dump(config, file)


def edit_weights(directory, change):
    from safetensors.numpy import load_file
    from safetensors.numpy import save_file

    path = os.path.join(directory, "model.safetensors")
    weights = load_file(path)
    change(weights)
    save_file(weights, path, metadata={"format": "pt"})


def test_safetensors_are_read_without_torch(source, monkeypatch):
    model, directory = source
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` fails
    checkpoint = read_t5_checkpoint(directory)
    monkeypatch.undo()
    assert_same_weights(checkpoint.weights, model)
    assert checkpoint.config["d_model"] == 32
    assert checkpoint.extra_ids == 20
    assert checkpoint.spiece_model.startswith(b"\n")  # a serialized proto


def test_pytorch_bin_is_read(source, tmp_path):
    model, _ = source
    directory = write_t5_checkpoint(
        model, tmp_path / "bin", safe_serialization=False
    )
    assert os.path.exists(os.path.join(directory, "pytorch_model.bin"))
    assert_same_weights(read_t5_checkpoint(directory).weights, model)


def test_pickled_code_in_a_pytorch_bin_is_refused(tmp_path):
    import torch

    directory = tmp_path / "evil"
    directory.mkdir()
    (directory / "config.json").write_text("{}")
    # A pickle whose loading would call a function: weights_only refuses it.
    torch.save(
        {"w": torch.zeros(1), "f": os.getcwd}, directory / "pytorch_model.bin"
    )
    with pytest.raises(ValueError, match="weights_only=True"):
        read_t5_checkpoint(directory)


def test_sharded_safetensors_are_read(source, tmp_path):
    model, _ = source
    model.save_pretrained(tmp_path / "sharded", max_shard_size="40KB")
    assert os.path.exists(tmp_path / "sharded" / "model.safetensors.index.json")
    assert_same_weights(read_t5_checkpoint(tmp_path / "sharded").weights, model)


def test_bfloat16_weights_convert(copy):
    import ml_dtypes

    def to_bfloat16(weights):
        for name in weights:
            weights[name] = weights[name].astype(ml_dtypes.bfloat16)

    edit_weights(copy, to_bfloat16)
    reader = from_t5_checkpoint(copy, include_tokenizer=False)
    embedding = ops.convert_to_numpy(reader.backbone.token_embedding.embeddings)
    checkpoint = read_t5_checkpoint(copy).weights["shared.weight"]
    np.testing.assert_array_equal(embedding, checkpoint.astype("float32"))


def test_missing_directory_and_files_are_named(copy, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_t5_checkpoint(tmp_path / "nowhere")
    os.remove(copy / "model.safetensors")
    with pytest.raises(ValueError, match="has no weights: expected one of"):
        read_t5_checkpoint(copy)
    os.remove(copy / "config.json")
    with pytest.raises(ValueError, match="no `config.json`"):
        read_t5_checkpoint(copy)


def test_missing_vocabulary_is_named(copy):
    os.remove(copy / "spiece.model")
    with pytest.raises(ValueError, match="no `spiece.model`"):
        from_t5_checkpoint(copy)
    reader = from_t5_checkpoint(copy, include_tokenizer=False)
    assert reader.preprocessor is None


def test_missing_weight_is_named(copy):
    name = "decoder.block.2.layer.1.EncDecAttention.v.weight"
    edit_weights(copy, lambda weights: weights.pop(name))
    with pytest.raises(ValueError, match=f"no weight `{name}`"):
        backbone_from_t5_checkpoint(copy)


def test_misshapen_weight_is_named_with_both_shapes(copy):
    name = "encoder.block.1.layer.1.DenseReluDense.wi_0.weight"

    def shrink(weights):
        weights[name] = weights[name][:-1]

    edit_weights(copy, shrink)
    with pytest.raises(ValueError, match=rf"`{name}` has shape \(63, 32\)"):
        backbone_from_t5_checkpoint(copy)


def test_unexpected_weights_are_refused(copy):
    def add_layer_bias(weights):
        # umT5 style: a position bias in every layer, which T5.1.1 lacks.
        bias = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias"
        weights[bias.replace("block.0", "block.1") + ".weight"] = weights[
            bias + ".weight"
        ]

    edit_weights(copy, add_layer_bias)
    with pytest.raises(ValueError, match="block.1.layer.0.SelfAttention"):
        backbone_from_t5_checkpoint(copy)


def test_relu_t5_is_refused_naming_the_feature(copy):
    edit_config(copy, feed_forward_proj="relu")
    with pytest.raises(ValueError, match="feed_forward_proj='relu'"):
        from_t5_checkpoint(copy)


def test_other_model_types_are_refused(copy):
    edit_config(copy, model_type="umt5")
    with pytest.raises(ValueError, match="model_type='umt5'"):
        from_t5_checkpoint(copy)


def test_config_without_a_field_is_named():
    with pytest.raises(ValueError, match=r"no \['d_kv'\]"):
        backbone_config_from_t5_config(
            dict(
                vocab_size=8,
                d_model=4,
                d_ff=8,
                num_layers=1,
                num_heads=1,
                feed_forward_proj="gated-gelu",
            )
        )


def test_tie_flags_follow_transformers():
    base = dict(
        vocab_size=8,
        d_model=4,
        d_kv=2,
        d_ff=8,
        num_layers=1,
        num_heads=2,
        feed_forward_proj="gated-gelu",
    )
    tied = backbone_config_from_t5_config
    # T5 v1.0 configs omit the flag (tied); T5.1.1 sets it to false;
    # transformers >= 5 writes `scale_decoder_outputs` instead.
    assert tied(base)["tie_embedding_weights"] is True
    assert not tied({**base, "tie_word_embeddings": False})[
        "tie_embedding_weights"
    ]
    assert not tied(
        {**base, "tie_word_embeddings": True, "scale_decoder_outputs": False}
    )["tie_embedding_weights"]


def test_tied_embedding_checkpoint_converts_exactly(tmp_path):
    # Gated-GELU with T5 v1.0's tied, rescaled output projection.
    model = tiny_t5(vocab_size=VOCAB_SIZE)
    model.config.scale_decoder_outputs = True  # as for tie_word_embeddings
    assert model.lm_head.weight is model.shared.weight
    directory = write_t5_checkpoint(model, tmp_path / "tied")
    backbone = backbone_from_t5_checkpoint(directory)
    assert backbone.tie_embedding_weights
    inputs = random_fid_inputs(vocab=VOCAB_SIZE)
    _, _, expected = fid_forward(model, **inputs)
    hidden = backbone(inputs)["decoder_sequence_output"]
    logits = ops.convert_to_numpy(backbone.token_logits(hidden))
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=1e-4)
