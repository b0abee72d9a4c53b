"""Bytes held by the decoder's key/value caches while generating."""

from keras_fido.analysis._config import check_positive_int
from keras_fido.analysis._config import model_dims

_BYTES_PER_ELEMENT = {
    "float64": 8,
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "int64": 8,
    "int32": 4,
    "int16": 2,
    "int8": 1,
    "uint8": 1,
}


def bytes_per_element(dtype):
    """Size in bytes of one element of `dtype`.

    Args:
        dtype: str. A dtype name such as `"float32"` or `"bfloat16"`.

    Returns:
        An int.
    """
    if dtype not in _BYTES_PER_ELEMENT:
        raise ValueError(
            f"`dtype` must be one of {sorted(_BYTES_PER_ELEMENT)}. "
            f"Received: dtype={dtype!r}"
        )
    return _BYTES_PER_ELEMENT[dtype]


def cross_attention_cache_bytes_per_sample(
    config, num_passages, passage_length, dtype="float32"
):
    """Bytes of cached cross-attention keys and values for one sample.

    The encoder output is projected once into keys and values for every
    cross-attention layer and kept for the whole generation. Its size is
    `layers * 2 * n_s * kv_heads * key_value_dim` elements, so layer-sparse
    cross-attention shrinks it by the interval and multi-query attention by
    the number of query heads per key/value head.

    Args:
        config: dict. Model config with the `FiDOBackbone.get_config()` size
            keys; other keys are ignored.
        num_passages: int. Retrieved passages per sample.
        passage_length: int. Tokens per passage.
        dtype: str. Dtype of the cache. Defaults to `"float32"`.

    Returns:
        An int, the number of bytes.
    """
    dims = model_dims(config)
    n_s = check_positive_int("num_passages", num_passages) * (
        check_positive_int("passage_length", passage_length)
    )
    elements = (
        dims.num_cross_attention_layers * 2 * n_s * dims.decoder_key_value_dim
    )
    return elements * bytes_per_element(dtype)


def self_attention_cache_bytes_per_sample(
    config, target_length, dtype="float32"
):
    """Bytes of cached self-attention keys and values for one sample.

    Every decoder layer keeps keys and values for all `target_length`
    positions: `layers * 2 * n_t * kv_heads * key_value_dim` elements.

    Args:
        config: dict. Model config, as for
            `cross_attention_cache_bytes_per_sample`.
        target_length: int. Decoder tokens the cache is sized for.
        dtype: str. Dtype of the cache. Defaults to `"float32"`.

    Returns:
        An int, the number of bytes.
    """
    dims = model_dims(config)
    n_t = check_positive_int("target_length", target_length)
    elements = dims.decoder_num_layers * 2 * n_t * dims.decoder_key_value_dim
    return elements * bytes_per_element(dtype)
