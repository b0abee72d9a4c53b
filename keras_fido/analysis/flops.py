"""Multiplications per sample in a FiDO forward pass (paper section 2.2)."""

from keras_fido.analysis._config import check_positive_int
from keras_fido.analysis._config import model_dims


def flops_per_sample(
    config,
    num_passages,
    passage_length,
    target_length,
    include_logits=False,
):
    """Count the multiplications of one forward pass, split by component.

    This is the per-layer count of the FiDO paper (section 2.2), written for
    the real sizes of a T5.1.1-style model instead of the paper's simplified
    one (hidden width `d` everywhere and a `4d` ReLU feed-forward):

    - the gated-GELU feed-forward does three `d x ff` matmuls per token;
    - attention projections map `d` to `heads * key_value_dim` for queries
      and outputs and to `kv_heads * key_value_dim` for keys and values;
    - cross-attention is only counted in the layers picked by
      `cross_attention_interval`, and its keys and values are projected
      from the encoder width.

    Like the paper, only multiplications are counted, causal masking is
    ignored (each target token is scored against all `n_t`), and norms,
    softmax, position bias and embedding lookups are left out. Each passage
    is encoded on its own, so encoder attention covers `n_p` tokens while the
    decoder attends over all `n_s = num_passages * passage_length` tokens.

    Args:
        config: dict. Model config with the `FiDOBackbone.get_config()` size
            keys; other keys are ignored.
        num_passages: int. Retrieved passages per sample.
        passage_length: int. Tokens per passage, `n_p`.
        target_length: int. Decoder tokens, `n_t`.
        include_logits: bool. Whether to add the `n_t * d * vocabulary_size`
            multiplications of the output projection (`decoder_logits`).
            The paper leaves them out. Defaults to `False`.

    Returns:
        A dict of ints: `encoder_mlp`, `encoder_qkvo_projections`,
        `encoder_attention` (scores and weighted values),
        `decoder_mlp`, `decoder_self_attention` (projections, scores and
        values), `decoder_cross_attention_qo_projections`,
        `decoder_cross_attention_kv_projections`, `decoder_cross_attention`
        (scores and values), `decoder_logits` if requested, then
        `encoder_total`, `decoder_total` and `total`.
    """
    dims = model_dims(config)
    n_p = check_positive_int("passage_length", passage_length)
    n_s = check_positive_int("num_passages", num_passages) * n_p
    n_t = check_positive_int("target_length", target_length)

    d_e = dims.encoder_hidden_dim
    inner_e = dims.encoder_inner_dim
    layers_e = dims.encoder_num_layers
    encoder = {
        "encoder_mlp": layers_e * 3 * n_s * d_e * dims.encoder_intermediate_dim,
        "encoder_qkvo_projections": layers_e * 4 * n_s * d_e * inner_e,
        # Per passage: n_p x n_p scores and as many weighted values, per
        # inner channel; summed over the passages this is n_s * n_p.
        "encoder_attention": layers_e * 2 * n_s * n_p * inner_e,
    }

    d = dims.decoder_hidden_dim
    q_dim = dims.decoder_query_dim
    kv_dim = dims.decoder_key_value_dim
    layers_d = dims.decoder_num_layers
    cross = dims.num_cross_attention_layers
    self_attention = (
        2 * n_t * d * q_dim  # Q and O
        + 2 * n_t * d * kv_dim  # K and V
        + 2 * n_t * n_t * q_dim  # scores and values
    )
    decoder = {
        "decoder_mlp": layers_d * 3 * n_t * d * dims.decoder_intermediate_dim,
        "decoder_self_attention": layers_d * self_attention,
        "decoder_cross_attention_qo_projections": cross * 2 * n_t * d * q_dim,
        # The term the paper finds dominant: it scales with n_s, not n_t.
        "decoder_cross_attention_kv_projections": (
            cross * 2 * n_s * d_e * kv_dim
        ),
        "decoder_cross_attention": cross * 2 * n_t * n_s * q_dim,
    }
    if include_logits:
        decoder["decoder_logits"] = n_t * d * dims.vocabulary_size

    result = {**encoder, **decoder}
    result["encoder_total"] = sum(encoder.values())
    result["decoder_total"] = sum(decoder.values())
    result["total"] = result["encoder_total"] + result["decoder_total"]
    return result


def paper_flops_approximation(config, num_passages, passage_length):
    """The paper's leading-order FLOPs estimates, Eq. (1) and (2).

    The encoder is approximated by `12 * n_s * d^2 * L` (MLP and attention
    projections only) and the decoder by `2 * n_s * d^2 * L` (only the
    cross-attention key/value projections). Both assume the paper's
    simplified vanilla-FiD model: one width `d` per stack, a `4d`
    feed-forward, multi-head attention and cross-attention in every decoder
    layer. For layer-sparse or multi-query decoders the decoder estimate is
    an upper bound; compare with `flops_per_sample` for the exact count.

    Args:
        config: dict. Model config, as for `flops_per_sample`.
        num_passages: int. Retrieved passages per sample.
        passage_length: int. Tokens per passage.

    Returns:
        A dict of ints with keys `encoder`, `decoder` and `total`.
    """
    dims = model_dims(config)
    n_s = check_positive_int("num_passages", num_passages) * (
        check_positive_int("passage_length", passage_length)
    )
    d_e = dims.encoder_hidden_dim
    d = dims.decoder_hidden_dim
    encoder = 12 * n_s * d_e * d_e * dims.encoder_num_layers
    decoder = 2 * n_s * d * d * dims.decoder_num_layers
    return {"encoder": encoder, "decoder": decoder, "total": encoder + decoder}


def encoder_flops_per_query(config, num_passages, passage_length):
    """Encoder multiplications per sample, with passage memory or not.

    With `encoder_live_layers` (LUMEN), a query runs the memory layers
    over its question block once and the live layers over every passage
    sequence (question block and passage memory); the memory layers'
    work on the passages is done once per passage, offline. Without it,
    every layer runs over every passage sequence (`flops_per_sample`'s
    `encoder_total`). Counted as there: multiplications of the MLPs,
    projections and attention.

    Returns:
        A dict of ints: `live` (the layers run over the `P` sequences),
        `question_memory` (the memory layers over the question block),
        `per_query` (their sum) and `stored_per_passage` (the memory
        layers over one passage block, done when a store is built).
    """
    dims = model_dims(config)
    n = check_positive_int("passage_length", passage_length)
    passages = check_positive_int("num_passages", num_passages)
    d, inner = dims.encoder_hidden_dim, dims.encoder_inner_dim
    ff = dims.encoder_intermediate_dim

    def layers_over(layers, sequences, length):
        tokens = sequences * length
        per_layer = tokens * (3 * d * ff + 4 * d * inner + 2 * length * inner)
        return layers * per_layer

    depth = dims.encoder_num_layers
    live = config.get("encoder_live_layers") or depth
    question = config.get("encoder_question_length") or 0
    result = {
        "live": layers_over(live, passages, n),
        "question_memory": layers_over(depth - live, 1, question),
        "stored_per_passage": layers_over(depth - live, 1, n - question),
    }
    result["per_query"] = result["live"] + result["question_memory"]
    return result
