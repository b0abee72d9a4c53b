"""The paper's ablation ladder as backbone configs."""

from fractions import Fraction

from keras_fido.models.fido_presets import LUMEN_QUESTION_LENGTH
from keras_fido.models.fido_presets import T5_1_1_SIZES
from keras_fido.models.fido_presets import TINY
from keras_fido.models.fido_presets import TINY_DECODER
from keras_fido.models.fido_presets import backbone_config
from keras_fido.models.fido_presets import lumen_live_layers

LADDER = ("fid", "lsa", "lsa_mq", "lsa_mq_asym")
# FiDO (`lsa_mq`) with passage memory: the live fraction of the encoder.
MEMORY_VARIANTS = {
    "lsa_mq_live_1_2": Fraction(1, 2),
    "lsa_mq_live_1_3": Fraction(1, 3),
    "lsa_mq_live_1_6": Fraction(1, 6),
}
VARIANTS = LADDER + tuple(MEMORY_VARIANTS)
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
    larger (base -> XL). `lsa_mq_live_1_2`, `_1_3` and `_1_6` are
    `lsa_mq` with passage memory (LUMEN): that fraction of the encoder's
    layers live (rounded up), over a 32-token question block (4 for
    `tiny`).
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
    kv_heads = None if variant in ("fid", "lsa") else 1
    config = backbone_config(encoder, decoder, kv_dim, interval, kv_heads)
    if variant in MEMORY_VARIANTS:
        config.update(
            encoder_live_layers=lumen_live_layers(
                encoder["num_layers"], MEMORY_VARIANTS[variant]
            ),
            encoder_question_length=(
                4 if size == "tiny" else LUMEN_QUESTION_LENGTH
            ),
        )
    return dict(config, dropout=0.0)
