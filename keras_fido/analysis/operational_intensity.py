"""Memory traffic against compute in incremental decoding (paper 2.4, 3.2)."""

from keras_fido.analysis._config import check_positive_int
from keras_fido.analysis._config import model_dims
from keras_fido.analysis.cache_memory import bytes_per_element


def inverse_operational_intensity(
    config, num_passages, passage_length, target_length, batch_size
):
    """Asymptotic memory-to-compute ratios `R` of one decoding step.

    These are the paper's Eq. (3)-(5) with `d = decoder_hidden_dim`, `n_t =
    target_length`, `n_s = num_passages * passage_length` and `b =
    batch_size`; lower is better, and `R` well below 1 is needed to keep an
    accelerator busy. For attention the key/value cache term is divided by
    the group size `g = decoder_num_heads / decoder_num_key_value_heads`:

    - MLP, Eq. (3): `1/b + 1/d`.
    - Multi-head attention (`g = 1`), Eq. (4): `1/b + n/d`, with `n = n_t`
      for self-attention and `n = n_s` for cross-attention.
    - Grouped or multi-query attention (`g > 1`), Eq. (5) for `g = h`:
      `1/b + 1/d + n/(d * g)`. The `1/d` term (loading activations) is
      dropped for multi-head attention, where `n/d` dominates it.

    Like the paper, the ratio is taken against projection compute only; the
    attention products themselves are left out. `decoding_step_costs` counts
    them.

    Args:
        config: dict. Model config with the `FiDOBackbone.get_config()` size
            keys; other keys are ignored.
        num_passages: int. Retrieved passages per sample.
        passage_length: int. Tokens per passage.
        target_length: int. Decoder tokens, the length of the self-attention
            cache.
        batch_size: int. Samples decoded together.

    Returns:
        A dict of floats with keys `mlp`, `self_attention` and
        `cross_attention`.
    """
    dims = model_dims(config)
    n_s = check_positive_int("num_passages", num_passages) * (
        check_positive_int("passage_length", passage_length)
    )
    n_t = check_positive_int("target_length", target_length)
    b = check_positive_int("batch_size", batch_size)
    d = dims.decoder_hidden_dim
    g = dims.decoder_group_size
    activations = 1 / d if g > 1 else 0.0

    def attention(length):
        return 1 / b + activations + length / (d * g)

    return {
        "mlp": 1 / b + 1 / d,
        "self_attention": attention(n_t),
        "cross_attention": attention(n_s),
    }


def _matmul(batch, fan_in, fan_out):
    """(multiplications, elements moved) of a `batch x fan_in` matmul.

    Elements moved are the weight matrix plus the input and output rows.
    """
    flops = batch * fan_in * fan_out
    elements = fan_in * fan_out + batch * (fan_in + fan_out)
    return flops, elements


def _add(*costs):
    return tuple(sum(parts) for parts in zip(*costs))


def _scale(cost, times):
    return tuple(times * part for part in cost)


def decoding_step_costs(
    config,
    num_passages,
    passage_length,
    target_length,
    batch_size,
    dtype="float32",
    include_logits=False,
):
    """Multiplications and bytes moved by one batched decoding step.

    The step decodes one new token for each of the `batch_size` samples
    (counts are for the whole batch). It is the step that produces the last
    target token, so the self-attention cache holds `target_length`
    positions. Each matmul moves its weights plus its input and output
    activations; attention reads the whole key/value cache (the
    cross-attention cache was filled once from the encoder, so its
    projections are not repeated here). Unlike
    `inverse_operational_intensity`, the attention products are counted as
    compute: for multi-head cross-attention over many passages they
    outweigh the projections. Each cached element then takes part in only
    `g` multiplications (one per query head sharing it), so cross-attention
    tends to `bytes_per_element / g` bytes per multiplication, whatever the
    batch size.

    Args:
        config: dict. Model config with the `FiDOBackbone.get_config()` size
            keys; other keys are ignored.
        num_passages: int. Retrieved passages per sample.
        passage_length: int. Tokens per passage.
        target_length: int. Decoder tokens, the length of the self-attention
            cache.
        batch_size: int. Samples decoded together.
        dtype: str. Dtype of weights, activations and caches. Defaults to
            `"float32"`.
        include_logits: bool. Whether to add the output projection to the
            vocabulary as a `logits` component. Defaults to `False`.

    Returns:
        A dict mapping `mlp`, `self_attention`, `cross_attention`
        (`logits` if requested) and `total` to dicts with `flops` (int,
        summed over the layers holding the component), `bytes` (int) and
        `bytes_per_flop` (float).
    """
    dims = model_dims(config)
    n_s = check_positive_int("num_passages", num_passages) * (
        check_positive_int("passage_length", passage_length)
    )
    n_t = check_positive_int("target_length", target_length)
    b = check_positive_int("batch_size", batch_size)
    element_bytes = bytes_per_element(dtype)

    d = dims.decoder_hidden_dim
    ff = dims.decoder_intermediate_dim
    q_dim = dims.decoder_query_dim
    kv_dim = dims.decoder_key_value_dim

    def attend(length):
        # Every query head scores and mixes `length` cached positions; the
        # cache holds keys and values for the key/value heads only.
        return 2 * b * length * q_dim, 2 * b * length * kv_dim

    query_and_output = _add(_matmul(b, d, q_dim), _matmul(b, q_dim, d))
    mlp = _add(_matmul(b, d, ff), _matmul(b, d, ff), _matmul(b, ff, d))
    self_attention = _add(
        query_and_output, _scale(_matmul(b, d, kv_dim), 2), attend(n_t)
    )
    cross_attention = _add(query_and_output, attend(n_s))

    components = {
        "mlp": _scale(mlp, dims.decoder_num_layers),
        "self_attention": _scale(self_attention, dims.decoder_num_layers),
        "cross_attention": _scale(
            cross_attention, dims.num_cross_attention_layers
        ),
    }
    if include_logits:
        components["logits"] = _matmul(b, d, dims.vocabulary_size)
    components["total"] = _add(*components.values())

    result = {}
    for name, (flops, elements) in components.items():
        result[name] = {
            "flops": flops,
            "bytes": elements * element_bytes,
            "bytes_per_flop": elements * element_bytes / flops,
        }
    return result
