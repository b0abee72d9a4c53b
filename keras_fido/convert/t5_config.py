"""T5 `config.json` fields <-> `FiDOBackbone` arguments."""

# T5 variants whose weights FiDO's layers hold exactly. mT5 is T5.1.1 with
# a larger vocabulary.
SUPPORTED_MODEL_TYPES = ("t5", "mt5")
GATED_GELU = ("gated-gelu", "gated-gelu_new")
REQUIRED_FIELDS = (
    "vocab_size",
    "d_model",
    "d_kv",
    "d_ff",
    "num_layers",
    "num_heads",
)


def backbone_config_from_t5_config(t5_config):
    """`FiDOBackbone` kwargs for a T5 config (a dict or a `T5Config`).

    The result is vanilla FiD: `cross_attention_interval=1`, a multi-head
    decoder and equal encoder and decoder sizes.

    Args:
        t5_config: a `transformers.T5Config`, or the dict of a checkpoint's
            `config.json`.

    Raises:
        ValueError: naming the field, for a config that is not a T5.1.1
            (gated-GELU) encoder-decoder, or that lacks a required field.
    """
    c = t5_config if isinstance(t5_config, dict) else t5_config.to_dict()
    model_type = c.get("model_type", "t5")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            "Only T5.1.1 (and mT5) checkpoints can be converted. Received: "
            f"model_type={model_type!r}; expected one of "
            f"{list(SUPPORTED_MODEL_TYPES)}."
        )
    projection = c.get("feed_forward_proj", "relu")
    if projection not in GATED_GELU:
        raise ValueError(
            "Only T5.1.1 checkpoints (gated-GELU feed-forward) can be "
            "converted. Received: feed_forward_proj="
            f"{projection!r} (original T5 uses 'relu', which FiDO's "
            "GatedGeluFeedForward does not implement); expected "
            "'gated-gelu'."
        )
    missing = [field for field in REQUIRED_FIELDS if field not in c]
    if missing:
        raise ValueError(
            f"The T5 config has no {missing}, required to build the model. "
            f"Received fields: {sorted(c)}"
        )
    return dict(
        vocabulary_size=c["vocab_size"],
        encoder_num_layers=c["num_layers"],
        encoder_hidden_dim=c["d_model"],
        encoder_intermediate_dim=c["d_ff"],
        encoder_num_heads=c["num_heads"],
        decoder_num_layers=c.get("num_decoder_layers") or c["num_layers"],
        decoder_hidden_dim=c["d_model"],
        decoder_intermediate_dim=c["d_ff"],
        decoder_num_heads=c["num_heads"],
        decoder_num_key_value_heads=c["num_heads"],
        key_value_dim=c["d_kv"],
        cross_attention_interval=1,
        relative_attention_num_buckets=c.get(
            "relative_attention_num_buckets", 32
        ),
        relative_attention_max_distance=c.get(
            "relative_attention_max_distance", 128
        ),
        dropout=c.get("dropout_rate", 0.1),
        layer_norm_epsilon=c.get("layer_norm_epsilon", 1e-6),
        tie_embedding_weights=ties_output_projection(c),
    )


def ties_output_projection(config):
    """Whether a T5 config dict reuses the input embedding for the logits.

    Checkpoints from transformers >= 5 record it as `scale_decoder_outputs`
    (their `tie_word_embeddings` is always true); older ones as
    `tie_word_embeddings`, which T5.1.1 sets to false and original T5
    leaves out (true by default).
    """
    if "scale_decoder_outputs" in config:
        return bool(config["scale_decoder_outputs"])
    return bool(config.get("tie_word_embeddings", True))


def t5_config_from_backbone(backbone, pad_token_id=0, eos_token_id=1):
    """The transformers `config.json` dict of a vanilla-FiD backbone.

    Args:
        backbone: a `FiDOBackbone` (or the dict of its `get_config()`)
            with `cross_attention_interval=1`,
            `decoder_num_key_value_heads == decoder_num_heads` and equal
            encoder and decoder widths and heads (what a T5 config can
            describe).
        pad_token_id: int. Padding id, also the decoder start id.
        eos_token_id: int. End-of-sequence id.

    Raises:
        ValueError: naming the FiDO knob that T5 cannot express.
    """
    check_vanilla_fid(backbone)
    c = _backbone_config(backbone)
    tie = bool(c.get("tie_embedding_weights", False))
    return {
        "architectures": ["T5ForConditionalGeneration"],
        "model_type": "t5",
        "is_encoder_decoder": True,
        "vocab_size": c["vocabulary_size"],
        "d_model": c["decoder_hidden_dim"],
        "d_kv": c["key_value_dim"],
        "d_ff": c["decoder_intermediate_dim"],
        "num_layers": c["encoder_num_layers"],
        "num_decoder_layers": c["decoder_num_layers"],
        "num_heads": c["decoder_num_heads"],
        "relative_attention_num_buckets": c.get(
            "relative_attention_num_buckets", 32
        ),
        "relative_attention_max_distance": c.get(
            "relative_attention_max_distance", 128
        ),
        "dropout_rate": c.get("dropout", 0.1),
        "layer_norm_epsilon": c.get("layer_norm_epsilon", 1e-6),
        "initializer_factor": 1.0,
        "feed_forward_proj": "gated-gelu",
        "dense_act_fn": "gelu_new",
        "is_gated_act": True,
        # Read as "scale and tie the output projection" by every
        # transformers version (>= 5 also reads `scale_decoder_outputs`).
        "tie_word_embeddings": tie,
        "scale_decoder_outputs": tie,
        "decoder_start_token_id": pad_token_id,
        "pad_token_id": pad_token_id,
        "eos_token_id": eos_token_id,
        "use_cache": True,
    }


def _backbone_config(backbone):
    """The `FiDOBackbone` arguments of a backbone or of its config dict."""
    return backbone if isinstance(backbone, dict) else backbone.get_config()


def check_vanilla_fid(backbone, purpose="exported to a T5 checkpoint"):
    """Raises unless `backbone` (a `FiDOBackbone` or its config dict) is
    vanilla FiD (a T5.1.1 architecture); `purpose` ends the sentence
    "Only vanilla FiD backbones can be ..." of the error."""
    c = _backbone_config(backbone)
    problems = []
    if c["cross_attention_interval"] != 1:
        problems.append(
            "cross_attention_interval="
            f"{c['cross_attention_interval']} (T5 cross-attends in "
            "every decoder layer: expected 1)"
        )
    if c["decoder_num_key_value_heads"] != c["decoder_num_heads"]:
        problems.append(
            "decoder_num_key_value_heads="
            f"{c['decoder_num_key_value_heads']} (expected "
            f"decoder_num_heads={c['decoder_num_heads']})"
        )
    for field in ("hidden_dim", "intermediate_dim", "num_heads"):
        encoder = c[f"encoder_{field}"]
        decoder = c[f"decoder_{field}"]
        if encoder != decoder:
            problems.append(
                f"encoder_{field}={encoder} != decoder_{field}={decoder} "
                "(T5 has one size for both stacks)"
            )
    if problems:
        raise ValueError(
            f"Only vanilla FiD backbones can be {purpose}; this one has "
            + "; ".join(problems)
            + "."
        )
