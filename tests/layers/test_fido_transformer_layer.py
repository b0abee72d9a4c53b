"""FiDOTransformerLayer: one pre-norm T5.1.1 block."""

import numpy as np
import pytest
from keras import ops

from keras_fido.layers import FiDOTransformerLayer
from keras_fido.testing.layer_checks import run_layer_serialization_check
from keras_fido.testing.layer_checks import run_mixed_precision_check

BATCH, TARGET, SOURCE, WIDTH, SOURCE_WIDTH = 2, 5, 10, 16, 12


def make_layer(cross_attention, kv_heads=1):
    layer = FiDOTransformerLayer(
        hidden_dim=WIDTH,
        intermediate_dim=32,
        num_heads=4,
        num_key_value_heads=kv_heads,
        key_value_dim=8,
        cross_attention=cross_attention,
        encoder_hidden_dim=SOURCE_WIDTH,
        name="block",
    )
    layer.build((None, None, WIDTH))
    return layer


def call_kwargs():
    rng = np.random.default_rng(0)
    mask = np.ones((BATCH, 1, SOURCE), bool)
    mask[1, :, -4:] = False
    return {
        "hidden_states": rng.normal(size=(BATCH, TARGET, WIDTH)).astype(
            "float32"
        ),
        "self_attention_mask": np.tril(np.ones((1, TARGET, TARGET), bool)),
        "encoder_output": rng.normal(size=(BATCH, SOURCE, SOURCE_WIDTH)).astype(
            "float32"
        ),
        "cross_attention_mask": mask,
    }


def test_block_without_cross_attention_holds_no_cross_attention_weights():
    plain = make_layer(cross_attention=False)
    crossing = make_layer(cross_attention=True)
    assert not [w for w in plain.weights if "cross_attention" in w.path]
    extra = {w.path for w in crossing.weights} - {w.path for w in plain.weights}
    assert extra and all("cross_attention" in path for path in extra)


def test_block_without_cross_attention_ignores_encoder_output():
    layer = make_layer(cross_attention=False)
    kwargs = call_kwargs()
    with_source = layer(**kwargs)
    kwargs.pop("encoder_output")
    np.testing.assert_array_equal(
        ops.convert_to_numpy(with_source), ops.convert_to_numpy(layer(**kwargs))
    )


def test_cross_attention_reads_the_encoder_output():
    layer = make_layer(cross_attention=True)
    kwargs = call_kwargs()
    before = ops.convert_to_numpy(layer(**kwargs))
    kwargs["encoder_output"] = kwargs["encoder_output"] + 1.0
    assert not np.allclose(before, ops.convert_to_numpy(layer(**kwargs)))


def test_cross_attention_without_encoder_width_is_refused():
    with pytest.raises(ValueError, match="encoder_hidden_dim"):
        FiDOTransformerLayer(
            hidden_dim=16,
            intermediate_dim=32,
            num_heads=4,
            num_key_value_heads=1,
            key_value_dim=8,
            cross_attention=True,
        )


@pytest.mark.parametrize("cross_attention", [False, True])
def test_config_round_trip_gives_same_outputs(cross_attention):
    run_layer_serialization_check(
        make_layer(cross_attention), kwargs=call_kwargs()
    )


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_runs_under_mixed_precision_with_float32_scores(policy):
    run_mixed_precision_check(
        make_layer(cross_attention=True),
        policy,
        kwargs={**call_kwargs(), "return_attention_scores": True},
        float32_outputs=(1,),
    )


@pytest.mark.parametrize("cross_attention", [False, True])
def test_transform_returns_all_three_fields_with_none_where_absent(
    cross_attention,
):
    layer = make_layer(cross_attention)
    # Tensors, as the decoder passes them (no `__call__` converts them).
    kwargs = {k: ops.convert_to_tensor(v) for k, v in call_kwargs().items()}
    out = layer.transform(**kwargs)
    assert out.self_attention_cache is None
    assert (out.attention_scores is not None) == cross_attention
    np.testing.assert_array_equal(
        ops.convert_to_numpy(out.hidden_states),
        ops.convert_to_numpy(layer(**kwargs)),
    )
