"""The fingerprint of a reader's memory encoder: what a stored passage
memory depends on, so that a store built by one encoder is never read by
another.

It has four parts, each a sha256: `config` (the backbone's settings that
shape the memory, its dtype policy and the passage block's positions),
`tokenizer` (the SentencePiece proto's bytes), `prefixes` (the title and
context prefixes of the passage block) and `weights` (the values of
`memory_variables(backbone)`, in their fixed order). The fingerprint is
the sha256 of the four.
"""

import hashlib
import json

import numpy as np
from keras import ops

from keras_fido.models.passage_memory import memory_variables

# The backbone settings the memory of a passage depends on.
CONFIG_KEYS = (
    "vocabulary_size",
    "encoder_num_layers",
    "encoder_hidden_dim",
    "encoder_intermediate_dim",
    "encoder_num_heads",
    "key_value_dim",
    "relative_attention_num_buckets",
    "relative_attention_max_distance",
    "layer_norm_epsilon",
    "encoder_live_layers",
    "encoder_question_length",
)
PARTS = ("config", "tokenizer", "prefixes", "weights")


def _sha256_json(value):
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def memory_config(reader):
    """The plain-data settings a passage's memory depends on."""
    backbone, preprocessor = reader.backbone, reader.preprocessor
    config = backbone.get_config()
    values = {key: config[key] for key in CONFIG_KEYS}
    values["dtype"] = backbone.dtype_policy.name
    values["passage_length"] = preprocessor.passage_length
    values["passage_positions"] = (
        preprocessor.passage_length - backbone.encoder_question_length
    )
    return values


def memory_prefixes(preprocessor):
    """The prefixes of the passage block: `{"title_prefix", ...}`."""
    return {
        "title_prefix": preprocessor.title_prefix,
        "context_prefix": preprocessor.context_prefix,
    }


def proto_bytes(tokenizer):
    """The tokenizer's SentencePiece proto as bytes."""
    proto = getattr(tokenizer, "proto", None)
    if isinstance(proto, str):
        with open(proto, "rb") as file:
            return file.read()
    if proto is None:
        raise ValueError(
            "A passage memory store needs a tokenizer with a vocabulary: "
            "expected `tokenizer.proto` set. Received: proto=None"
        )
    return bytes(proto)


def weights_digest(backbone):
    """sha256 over the shapes and float32 values of `memory_variables`."""
    digest = hashlib.sha256()
    for variable in memory_variables(backbone):
        value = np.ascontiguousarray(ops.convert_to_numpy(variable), "float32")
        digest.update(repr(value.shape).encode("ascii"))
        digest.update(value.tobytes())
    return digest.hexdigest()


def memory_fingerprint(reader):
    """The fingerprint of `reader`'s memory encoder.

    Args:
        reader: a `FiDOSeq2SeqLM` whose backbone has `encoder_live_layers`
            and whose preprocessor packs the question block.

    Returns:
        A dict: `"fingerprint"` (sha256 hex), `"parts"` (the sha256 of
        each of `config`, `tokenizer`, `prefixes`, `weights`), `"config"`
        (the memory config itself) and `"prefixes"`.
    """
    config = memory_config(reader)
    prefixes = memory_prefixes(reader.preprocessor)
    parts = {
        "config": _sha256_json(config),
        "tokenizer": hashlib.sha256(
            proto_bytes(reader.preprocessor.tokenizer)
        ).hexdigest(),
        "prefixes": _sha256_json(prefixes),
        "weights": weights_digest(reader.backbone),
    }
    return {
        "fingerprint": _sha256_json(parts),
        "parts": parts,
        "config": config,
        "prefixes": prefixes,
    }


def fingerprint_differences(stored, current):
    """What differs between two `memory_fingerprint` dicts, in words: the
    config keys (with both values), then the other parts by name."""
    differences = []
    for key in sorted(set(stored["config"]) | set(current["config"])):
        old, new = stored["config"].get(key), current["config"].get(key)
        if old != new:
            differences.append(f"config {key}: store {old!r}, reader {new!r}")
    for key in sorted(set(stored["prefixes"]) | set(current["prefixes"])):
        old, new = stored["prefixes"].get(key), current["prefixes"].get(key)
        if old != new:
            differences.append(f"{key}: store {old!r}, reader {new!r}")
    for part in ("tokenizer", "weights"):
        if stored["parts"].get(part) != current["parts"].get(part):
            differences.append(
                {
                    "tokenizer": "tokenizer (SentencePiece proto bytes)",
                    "weights": "weights of the memory encoder",
                }[part]
            )
    return differences
