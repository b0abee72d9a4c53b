"""FiDO from T5.1.1 checkpoints: the starting point of uptraining.

The FiDO paper pretrains its models from scratch. Multi-query uptraining
(Ainslie et al., 2023, https://arxiv.org/abs/2305.13245) instead starts
from a multi-head checkpoint: each group of key/value heads is mean-pooled
into one head, and a short continued pretraining (a few percent of the
original steps) recovers the quality. The same applies to FiDO's two other
changes: layer-sparse cross-attention keeps the cross-attention of layers
K, 2K, ... and drops the rest, and an asymmetric model takes its encoder
from one checkpoint and its decoder from a larger one.
"""

import dataclasses
import warnings
import zlib

import numpy as np
from keras import ops

from keras_fido.convert.from_t5_checkpoint import as_t5_checkpoint
from keras_fido.convert.t5_config import backbone_config_from_t5_config
from keras_fido.convert.t5_weight_map import t5_weight_map
from keras_fido.convert.transformers_t5 import assign_t5_weight
from keras_fido.convert.transformers_t5 import find_t5_weight
from keras_fido.models.fido_backbone import FiDOBackbone
from keras_fido.utils.checks import check_positive_int

# Fields the encoder and decoder checkpoints must agree on: the backbone
# has one value of each.
SHARED_FIELDS = (
    "vocabulary_size",
    "key_value_dim",
    "relative_attention_num_buckets",
    "relative_attention_max_distance",
    "layer_norm_epsilon",
)


@dataclasses.dataclass
class UptrainingReport:
    """What `uptrain_to_fido` did to each weight.

    Attributes:
        reinitialized: dict `{variable path: reason}` of the weights that
            hold no checkpoint value (T5's random initialization instead).
        mean_pooled: dict `{variable path: T5 weight name}` of the decoder
            key/value projections whose heads were mean-pooled.
        dropped: list of the checkpoint weights that were left out (the
            cross-attention of the layers that no longer cross-attend).
        notes: list of str, anything else worth knowing.
    """

    reinitialized: dict = dataclasses.field(default_factory=dict)
    mean_pooled: dict = dataclasses.field(default_factory=dict)
    dropped: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)

    def summary(self):
        """A human-readable account, one line per fact."""
        lines = [
            f"mean-pooled K/V projections: {len(self.mean_pooled)}",
            f"dropped checkpoint weights: {len(self.dropped)}",
            f"re-initialised weights: {len(self.reinitialized)}",
        ]
        lines += [
            f"  re-initialised {path}: {reason}"
            for path, reason in self.reinitialized.items()
        ]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def mean_pool_heads(weight, num_heads, num_groups):
    """Mean-pools a T5 K or V weight `[num_heads*dim, d_in]` into groups.

    Head `i` joins group `i // (num_heads // num_groups)`, the K/V head
    its query head reads in `MultiQueryAttention`. Returns
    `[num_groups*dim, d_in]`.
    """
    rows, d_in = weight.shape
    dim = rows // num_heads
    grouped = np.asarray(weight, "float64").reshape(
        num_groups, num_heads // num_groups, dim, d_in
    )
    return grouped.mean(axis=1).reshape(num_groups * dim, d_in)


def uptrain_to_fido(
    encoder_source,
    decoder_source=None,
    cross_attention_interval=1,
    num_key_value_heads=None,
    seed=0,
    dtype=None,
):
    """Builds a FiDO backbone from T5.1.1 checkpoints, ready to uptrain.

    - The encoder (its layers, position bias and input embedding) comes
      from `encoder_source`, unchanged.
    - The decoder comes from `decoder_source` (a larger checkpoint, e.g.
      T5.1.1-XL under a Base encoder; defaults to `encoder_source`). The
      key and value projections of its self- and cross-attention are
      mean-pooled into `num_key_value_heads` groups of adjacent heads (1
      is multi-query attention).
    - Only decoder layers K, 2K, ... (1-based, `cross_attention_interval`)
      keep their cross-attention; the others' is dropped.
    - Cross-attention key/value projections read the encoder output, so
      when the encoder is narrower than the decoder checkpoint's they are
      re-initialised (T5's normal initialization, stddev
      `encoder_hidden_dim ** -0.5`, seeded) and listed in the report.

    With `cross_attention_interval=1`, `num_key_value_heads` equal to the
    heads and one checkpoint, the result equals
    `backbone_from_t5_checkpoint` exactly. Otherwise continue pretraining
    it briefly (`recipes/uptrain_fido.py`) before fine-tuning.

    Args:
        encoder_source: a T5.1.1 checkpoint directory or `T5Checkpoint`.
        decoder_source: the same for the decoder; defaults to
            `encoder_source`.
        cross_attention_interval: int. The LSA period K. Defaults to 1.
        num_key_value_heads: int dividing the decoder's heads. Defaults to
            the decoder's heads (no pooling).
        seed: int. Seed of the re-initialised weights.
        dtype: optional dtype policy of the backbone.

    Returns:
        `(backbone, report)`: a `FiDOBackbone` and an `UptrainingReport`.
        A `UserWarning` also names any re-initialised weight.

    Examples:
    ```python
    backbone, report = keras_fido.convert.uptrain_to_fido(
        "t5-v1_1-base", "t5-v1_1-xl", cross_attention_interval=6,
        num_key_value_heads=1)
    print(report.summary())
    ```
    """
    encoder = as_t5_checkpoint(encoder_source)
    decoder = (
        encoder if decoder_source is None else as_t5_checkpoint(decoder_source)
    )
    config = _uptraining_config(
        encoder, decoder, cross_attention_interval, num_key_value_heads
    )
    backbone = FiDOBackbone(**config, dtype=dtype)
    report = _copy_weights(backbone, encoder, decoder, seed)
    if report.reinitialized:
        warnings.warn(
            f"uptrain_to_fido re-initialised {len(report.reinitialized)} "
            "weights that no checkpoint provides: "
            f"{sorted(report.reinitialized)}. Uptrain before use.",
            stacklevel=2,
        )
    return backbone, report


def _uptraining_config(
    encoder, decoder, cross_attention_interval, num_key_value_heads
):
    """`FiDOBackbone` arguments: the encoder checkpoint's encoder, the
    decoder checkpoint's decoder, the FiDO knobs."""
    encoder_config = backbone_config_from_t5_config(encoder.config)
    decoder_config = backbone_config_from_t5_config(decoder.config)
    for field in SHARED_FIELDS:
        if encoder_config[field] != decoder_config[field]:
            raise ValueError(
                f"The encoder and decoder checkpoints must agree on "
                f"`{field}`, which FiDOBackbone has once. Received: "
                f"{encoder_config[field]!r} (encoder) and "
                f"{decoder_config[field]!r} (decoder)."
            )
    num_heads = decoder_config["decoder_num_heads"]
    if num_key_value_heads is None:
        num_key_value_heads = num_heads
    check_positive_int("num_key_value_heads", num_key_value_heads)
    if num_heads % num_key_value_heads:
        raise ValueError(
            "`num_key_value_heads` must be a positive int dividing the "
            f"decoder checkpoint's {num_heads} heads. Received: "
            f"num_key_value_heads={num_key_value_heads!r}"
        )
    config = {
        **decoder_config,
        **{k: v for k, v in encoder_config.items() if k.startswith("enc")},
        "decoder_num_key_value_heads": num_key_value_heads,
        "cross_attention_interval": cross_attention_interval,
    }
    return config


def _copy_weights(backbone, encoder, decoder, seed):
    """Fills `backbone` from the checkpoints, weight by weight
    (`t5_weight_map`); returns what was pooled, dropped or redrawn."""
    num_heads = backbone.decoder_num_heads
    num_key_value_heads = backbone.decoder_num_key_value_heads
    report = UptrainingReport()
    used = set()
    for weight in t5_weight_map(backbone):
        source = encoder if weight.stack == "encoder" else decoder
        name = weight.name
        variable = weight.variable
        key = find_t5_weight(source.weights, name)
        if key is None:
            raise ValueError(
                f"The {'encoder' if source is encoder else 'decoder'} "
                f"checkpoint has no weight `{name}`, needed for "
                f"`{variable.path}`."
            )
        array = source.weights[key]
        if weight.stack == "decoder" and name.endswith(
            (".k.weight", ".v.weight")
        ):
            if "EncDecAttention" in name and (
                array.shape[1] != backbone.encoder_hidden_dim
            ):
                report.reinitialized[variable.path] = (
                    f"`{name}` reads a {array.shape[1]}-wide encoder output; "
                    f"this encoder is {backbone.encoder_hidden_dim} wide"
                )
                _reinitialize(variable, seed)
                used.add(key)
                continue
            if num_key_value_heads != num_heads:
                array = mean_pool_heads(array, num_heads, num_key_value_heads)
                report.mean_pooled[variable.path] = name
        assign_t5_weight(variable, None, name, weight.layout, array=array)
        if source is decoder:
            used.add(key)
    report.dropped = sorted(
        name
        for name in decoder.weights
        if name.startswith("decoder.block.")
        and ".layer.1." in name
        and name not in used
    )
    if encoder is not decoder and (
        backbone.encoder_token_embedding is backbone.token_embedding
    ):
        report.notes.append(
            "the encoder and decoder are equally wide, so they share one "
            "input embedding: the decoder checkpoint's"
        )
    return report


def _reinitialize(variable, seed):
    """T5's kernel initialization, normal with stddev `fan_in ** -0.5`,
    from a generator seeded by `seed` and the variable's path (the same
    weights on every backend)."""
    shape = tuple(variable.shape)
    rng = np.random.default_rng([seed, zlib.crc32(variable.path.encode())])
    value = rng.standard_normal(shape) * shape[0] ** -0.5
    variable.assign(ops.cast(value, variable.dtype))
