"""Closed-form parameter count of a FiDO backbone."""

from keras_fido.analysis._config import check_positive_int
from keras_fido.analysis._config import model_dims


def parameter_count(config):
    """Count the weights of a `FiDOBackbone` from its config alone.

    The count follows the backbone's layout, so it equals
    `FiDOBackbone(**config).count_params()` without building anything:

    - one input embedding `V x d_dec` shared by encoder and decoder when
      their widths are equal (as in T5), else a second `V x d_enc` table
      for the encoder; plus an output projection `d_dec x V` unless
      `tie_embedding_weights` (T5.1.1 does not tie);
    - every encoder layer: multi-head self-attention (`4 * d_enc * h_enc *
      d_kv`), a gated-GELU MLP (`3 * d_enc * ff_enc`) and two RMS norms;
    - every decoder layer: self-attention whose keys and values have
      `kv_heads` heads (`2 * d_dec * (h_dec + kv_heads) * d_kv`), the MLP
      and two norms; the layers picked by `cross_attention_interval` add a
      norm and a cross-attention whose keys and values are projected from
      the encoder width (`2 * d_dec * h_dec * d_kv + 2 * d_enc * kv_heads *
      d_kv`);
    - one relative position bias table (`buckets x heads`) and one final
      norm per stack.

    Args:
        config: dict. Model config with the `FiDOBackbone.get_config()`
            size keys; `relative_attention_num_buckets` defaults to 32 and
            `tie_embedding_weights` to `False`, other keys are ignored.

    Returns:
        An int, the number of weights.
    """
    dims = model_dims(config)
    buckets = check_positive_int(
        "relative_attention_num_buckets",
        config.get("relative_attention_num_buckets", 32),
    )
    tied = bool(config.get("tie_embedding_weights", False))
    vocab = dims.vocabulary_size
    d_enc, d_dec = dims.encoder_hidden_dim, dims.decoder_hidden_dim

    embeddings = vocab * d_dec
    if d_enc != d_dec:
        embeddings += vocab * d_enc
    if not tied:
        embeddings += d_dec * vocab

    encoder_layer = (
        4 * d_enc * dims.encoder_inner_dim
        + 3 * d_enc * dims.encoder_intermediate_dim
        + 2 * d_enc
    )
    encoder = (
        dims.encoder_num_layers * encoder_layer
        + buckets * dims.encoder_num_heads
        + d_enc
    )

    decoder_layer = (
        2 * d_dec * dims.decoder_query_dim
        + 2 * d_dec * dims.decoder_key_value_dim
        + 3 * d_dec * dims.decoder_intermediate_dim
        + 2 * d_dec
    )
    cross_attention = (
        2 * d_dec * dims.decoder_query_dim
        + 2 * d_enc * dims.decoder_key_value_dim
        + d_dec
    )
    decoder = (
        dims.decoder_num_layers * decoder_layer
        + dims.num_cross_attention_layers * cross_attention
        + buckets * dims.decoder_num_heads
        + d_dec
    )
    return embeddings + encoder + decoder
