"""The named FiD / FiDO architectures in `backbone_presets`."""

import pytest

from keras_fido.analysis import parameter_count
from keras_fido.models import FiDOBackbone
from keras_fido.models.fido_presets import backbone_presets

# T5.1.1 (google/t5-v1_1-*): hidden width, MLP width, depth, heads.
T5_1_1 = {
    "small": (512, 1024, 8, 6),
    "base": (768, 2048, 12, 12),
    "large": (1024, 2816, 24, 16),
    "xl": (2048, 5120, 24, 32),
    "xxl": (4096, 10240, 24, 64),
}
# The paper's FiDO pairings: encoder, decoder.
FIDO_PAIRS = [
    ("small", "large"),
    ("base", "xl"),
    ("large", "xxl"),
    ("xl", "xxl"),
]


def sizes(config, stack):
    return tuple(
        config[f"{stack}_{key}"]
        for key in ("hidden_dim", "intermediate_dim", "num_layers", "num_heads")
    )


def test_every_preset_has_a_description_and_a_valid_config():
    for name, preset in backbone_presets.items():
        assert preset["description"], name
        assert parameter_count(preset["config"]) > 0, name


@pytest.mark.parametrize("size", list(T5_1_1))
def test_fid_presets_are_vanilla_t5_1_1(size):
    config = backbone_presets[f"fid_{size}"]["config"]
    assert sizes(config, "encoder") == T5_1_1[size]
    assert sizes(config, "decoder") == T5_1_1[size]
    assert config["vocabulary_size"] == 32128
    assert config["key_value_dim"] == 64
    assert config["cross_attention_interval"] == 1
    assert config["decoder_num_key_value_heads"] == config["decoder_num_heads"]


@pytest.mark.parametrize("encoder, decoder", FIDO_PAIRS)
def test_fido_presets_pair_sizes_with_lsa_6_and_one_kv_head(encoder, decoder):
    config = backbone_presets[f"fido_{encoder}_{decoder}"]["config"]
    assert sizes(config, "encoder") == T5_1_1[encoder]
    assert sizes(config, "decoder") == T5_1_1[decoder]
    assert config["cross_attention_interval"] == 6
    assert config["decoder_num_key_value_heads"] == 1


def test_from_preset_applies_config_overrides():
    backbone = FiDOBackbone.from_preset(
        "fid_tiny", dropout=0.0, decoder_num_key_value_heads=2
    )
    assert backbone.dropout == 0.0
    assert backbone.decoder_num_key_value_heads == 2
    key = backbone.decoder.transformer_layers[0].self_attention.key_dense
    assert tuple(key.kernel.shape) == (64, 2, 16)


@pytest.mark.large
def test_fido_base_xl_builds_sparse_multi_query_decoder_of_closed_form_size():
    backbone = FiDOBackbone.from_preset("fido_base_xl")
    assert backbone.cross_attention_layer_indices == [6, 12, 18, 24]
    holders = sorted(
        {
            int(w.path.split("/")[1].removeprefix("layer_"))
            for w in backbone.decoder.weights
            if "/cross_attention" in w.path
        }
    )
    assert holders == [6, 12, 18, 24]
    for layer in backbone.decoder.transformer_layers:
        key = layer.self_attention.key_dense.kernel
        assert tuple(key.shape) == (2048, 1, 64)
    for layer in backbone.decoder.cross_attention_layers:
        key = layer.cross_attention_layer.key_dense.kernel
        assert tuple(key.shape) == (768, 1, 64)  # from the Base encoder
    assert backbone.count_params() == parameter_count(backbone.get_config())
