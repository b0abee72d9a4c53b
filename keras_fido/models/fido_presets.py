"""Named FiD and FiDO architectures.

No public FiDO weights exist, so a named preset is an architecture: building
one gives randomly initialized weights of that shape (load trained weights
with `from_preset(directory)`, or convert a T5.1.1 checkpoint with
`keras_fido.convert`). Sizes are T5.1.1's; the FiDO pairings are the
paper's (encoder two T5 sizes below the decoder, LSA period 6, one K/V
head). The `lumen_*` presets are the FiDO pairings with passage memory
(LUMEN-1/3: a third of the encoder's layers live).
"""

from fractions import Fraction

T5_VOCABULARY_SIZE = 32128

# T5.1.1 sizes: hidden width, MLP width, depth, heads (head width is 64).
T5_1_1_SIZES = {
    "small": dict(
        hidden_dim=512, intermediate_dim=1024, num_layers=8, num_heads=6
    ),
    "base": dict(
        hidden_dim=768, intermediate_dim=2048, num_layers=12, num_heads=12
    ),
    "large": dict(
        hidden_dim=1024, intermediate_dim=2816, num_layers=24, num_heads=16
    ),
    "xl": dict(
        hidden_dim=2048, intermediate_dim=5120, num_layers=24, num_heads=32
    ),
    "xxl": dict(
        hidden_dim=4096, intermediate_dim=10240, num_layers=24, num_heads=64
    ),
}
SIZE_NAMES = {
    "small": "Small",
    "base": "Base",
    "large": "Large",
    "xl": "XL",
    "xxl": "XXL",
}
TINY = dict(hidden_dim=64, intermediate_dim=128, num_layers=2, num_heads=4)
TINY_DECODER = dict(
    hidden_dim=96, intermediate_dim=192, num_layers=6, num_heads=4
)


def backbone_config(encoder, decoder, key_value_dim, interval, kv_heads):
    """`FiDOBackbone` kwargs from encoder and decoder size dicts.

    `kv_heads=None` keeps a multi-head decoder.
    """
    config = {"vocabulary_size": T5_VOCABULARY_SIZE}
    for prefix, size in (("encoder", encoder), ("decoder", decoder)):
        for key, value in size.items():
            config[f"{prefix}_{key}"] = value
    config.update(
        decoder_num_key_value_heads=kv_heads or decoder["num_heads"],
        key_value_dim=key_value_dim,
        cross_attention_interval=interval,
    )
    return config


def _fid(size):
    return backbone_config(size, size, 64, interval=1, kv_heads=None)


def _fido(encoder, decoder):
    return backbone_config(encoder, decoder, 64, interval=6, kv_heads=1)


backbone_presets = {
    "fid_tiny": {
        "description": "Tiny vanilla FiD for tests and examples "
        "(2+2 layers, width 64).",
        "config": backbone_config(TINY, TINY, 16, interval=1, kv_heads=None),
    },
    "fido_tiny": {
        "description": "Tiny FiDO for tests and examples: 2-layer width-64 "
        "encoder, 6-layer width-96 decoder, cross-attention in layers 3 "
        "and 6, one K/V head.",
        "config": backbone_config(
            TINY, TINY_DECODER, 16, interval=3, kv_heads=1
        ),
    },
}
for _size in ("small", "base", "large", "xl", "xxl"):
    backbone_presets[f"fid_{_size}"] = {
        "description": f"Vanilla FiD on T5.1.1-{_size}.",
        "config": _fid(T5_1_1_SIZES[_size]),
    }
for _enc, _dec in (
    ("small", "large"),
    ("base", "xl"),
    ("large", "xxl"),
    ("xl", "xxl"),
):
    backbone_presets[f"fido_{_enc}_{_dec}"] = {
        "description": f"FiDO {SIZE_NAMES[_enc]}-{SIZE_NAMES[_dec]}: "
        f"T5.1.1-{_enc} encoder, T5.1.1-{_dec} decoder with cross-attention "
        "in every 6th layer and multi-query attention.",
        "config": _fido(T5_1_1_SIZES[_enc], T5_1_1_SIZES[_dec]),
    }

# LUMEN (passage memory): a third of the encoder's layers live, rounded
# up, over a 32-token question block.
LUMEN_QUESTION_LENGTH = 32


def lumen_live_layers(num_layers, fraction):
    """Live layers of a LUMEN encoder: `fraction` of `num_layers`, rounded
    up, at least one (LUMEN-1/3 of T5-Base's 12 layers: 4)."""
    return max(1, -(-num_layers * fraction.numerator // fraction.denominator))


backbone_presets["lumen_tiny"] = {
    "description": "Tiny FiDO with passage memory (LUMEN) for tests and "
    "examples: fido_tiny's decoder, a 3-layer width-64 encoder whose "
    "last layer is live, over an 8-token question block.",
    "config": dict(
        backbone_presets["fido_tiny"]["config"],
        encoder_num_layers=3,
        encoder_live_layers=1,
        encoder_question_length=8,
    ),
}
for _enc, _dec in (
    ("small", "large"),
    ("base", "xl"),
    ("large", "xxl"),
    ("xl", "xxl"),
):
    _config = _fido(T5_1_1_SIZES[_enc], T5_1_1_SIZES[_dec])
    _live = lumen_live_layers(_config["encoder_num_layers"], Fraction(1, 3))
    backbone_presets[f"lumen_{_enc}_{_dec}"] = {
        "description": f"FiDO {SIZE_NAMES[_enc]}-{SIZE_NAMES[_dec]} with "
        f"passage memory (LUMEN-1/3): the first "
        f"{_config['encoder_num_layers'] - _live} encoder layers encode "
        f"each passage alone (storable), the last {_live} run per query "
        f"over a {LUMEN_QUESTION_LENGTH}-token question block and the "
        "passage's memory.",
        "config": dict(
            _config,
            encoder_live_layers=_live,
            encoder_question_length=LUMEN_QUESTION_LENGTH,
        ),
    }
