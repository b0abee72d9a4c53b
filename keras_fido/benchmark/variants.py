"""The paper's ablation ladder as backbone configs."""

from keras_fido.models.fido_presets import T5_1_1_SIZES
from keras_fido.models.fido_presets import TINY
from keras_fido.models.fido_presets import TINY_DECODER
from keras_fido.models.fido_presets import backbone_config

VARIANTS = ("fid", "lsa", "lsa_mq", "lsa_mq_asym")
SIZE_ORDER = ("small", "base", "large", "xl", "xxl")
LSA_INTERVAL = 6


def _sizes(size):
    """(encoder, decoder, asymmetric decoder, head width, LSA period)."""
    if size == "tiny":
        # A 6-layer decoder so that LSA (period 3) has something to skip.
        return TINY, dict(TINY, num_layers=6), TINY_DECODER, 16, 3
    if size not in SIZE_ORDER:
        raise ValueError(
            f"`size` must be 'tiny' or one of {list(SIZE_ORDER)}. "
            f"Received: size={size!r}"
        )
    bigger = SIZE_ORDER[min(SIZE_ORDER.index(size) + 2, len(SIZE_ORDER) - 1)]
    dims = T5_1_1_SIZES[size]
    return dims, dims, T5_1_1_SIZES[bigger], 64, LSA_INTERVAL


def variant_config(size, variant):
    """FiDOBackbone kwargs for one rung of the ablation ladder.

    `fid` is vanilla FiD at `size`; `lsa` keeps cross-attention in every
    6th decoder layer only (every 3rd for `tiny`); `lsa_mq`
    adds one K/V head; `lsa_mq_asym` swaps in the decoder two T5 sizes
    larger (base -> XL).
    """
    if variant not in VARIANTS:
        raise ValueError(
            f"`variant` must be one of {list(VARIANTS)}. "
            f"Received: variant={variant!r}"
        )
    encoder, decoder, big_decoder, kv_dim, period = _sizes(size)
    if variant == "lsa_mq_asym":
        decoder = big_decoder
    interval = 1 if variant == "fid" else period
    kv_heads = 1 if variant in ("lsa_mq", "lsa_mq_asym") else None
    config = backbone_config(encoder, decoder, kv_dim, interval, kv_heads)
    return dict(config, dropout=0.0)
