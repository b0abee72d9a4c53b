"""Reading a HuggingFace T5 checkpoint directory into numpy arrays."""

import dataclasses
import json
import os
import re

import numpy as np

CONFIG_FILE = "config.json"
SPIECE_FILE = "spiece.model"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_FILE = "special_tokens_map.json"
# In the order they are looked for: safetensors first, as they need no
# PyTorch and hold no code.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
T5_EXTRA_IDS = 100
EXTRA_ID = re.compile(r"<extra_id_\d+>")


@dataclasses.dataclass
class T5Checkpoint:
    """A T5 checkpoint as plain data.

    Attributes:
        config: dict, the checkpoint's `config.json`.
        weights: dict `{name: np.ndarray}` in the checkpoint's own layout
            and dtype (PyTorch names, `Linear` weights `[d_out, d_in]`).
        spiece_model: bytes of `spiece.model` (the SentencePiece
            vocabulary), or `None` when the directory has none.
        extra_ids: int. Sentinel tokens `<extra_id_0>` ... that the
            tokenizer adds after the SentencePiece pieces (100 for T5).
        directory: str or `None`, where it was read from.
    """

    config: dict
    weights: dict
    spiece_model: bytes = None
    extra_ids: int = 0
    directory: str = None


def read_t5_checkpoint(directory):
    """Reads a HuggingFace T5 checkpoint directory.

    The directory holds `config.json`, the weights as `model.safetensors`
    (or shards listed in `model.safetensors.index.json`) or as
    `pytorch_model.bin` (or its shards), and optionally the tokenizer's
    `spiece.model`. Safetensors are read with the `safetensors` numpy API:
    PyTorch is not needed. PyTorch files need `torch` and are loaded with
    `weights_only=True`, which refuses pickled code.

    Args:
        directory: str or path-like, a directory written by
            `save_pretrained` (e.g. a downloaded `google/t5-v1_1-base`).

    Returns:
        A `T5Checkpoint`.

    Raises:
        ValueError: naming the missing file, or the weight file that could
            not be read.

    Examples:
    ```python
    checkpoint = keras_fido.convert.read_t5_checkpoint("t5-v1_1-base")
    checkpoint.config["d_model"]  # 768
    checkpoint.weights["shared.weight"].shape  # (32128, 768)
    ```
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ValueError(
            f"T5 checkpoint directory {directory!r} does not exist or is "
            "not a directory."
        )
    found = sorted(os.listdir(directory))
    config_path = os.path.join(directory, CONFIG_FILE)
    if not os.path.exists(config_path):
        raise ValueError(
            f"T5 checkpoint directory {directory!r} has no `{CONFIG_FILE}`. "
            f"Found: {found}"
        )
    with open(config_path, encoding="utf-8") as file:
        config = json.load(file)
    for name in WEIGHT_FILES:
        path = os.path.join(directory, name)
        if os.path.exists(path):
            weights = _read_weights(path)
            break
    else:
        raise ValueError(
            f"T5 checkpoint directory {directory!r} has no weights: expected "
            f"one of {list(WEIGHT_FILES)}. Found: {found}"
        )
    spiece_model = None
    spiece_path = os.path.join(directory, SPIECE_FILE)
    if os.path.exists(spiece_path):
        with open(spiece_path, "rb") as file:
            spiece_model = file.read()
    return T5Checkpoint(
        config=config,
        weights=weights,
        spiece_model=spiece_model,
        extra_ids=_extra_ids(directory, config, spiece_model),
        directory=directory,
    )


def _read_weights(path):
    if path.endswith(".index.json"):
        with open(path, encoding="utf-8") as file:
            weight_map = json.load(file).get("weight_map")
        if not isinstance(weight_map, dict):
            raise ValueError(
                f"Shard index {path!r} has no `weight_map` dict naming the "
                "file of each weight."
            )
        weights = {}
        folder = os.path.dirname(path)
        for shard in sorted(set(weight_map.values())):
            shard_path = os.path.join(folder, shard)
            if not os.path.exists(shard_path):
                names = sorted(k for k, v in weight_map.items() if v == shard)
                raise ValueError(
                    f"Shard `{shard}` listed in {path!r} is missing; it "
                    f"holds {names[:3]}{' ...' if len(names) > 3 else ''}."
                )
            weights.update(_read_weights(shard_path))
        return weights
    if path.endswith(".safetensors"):
        from safetensors.numpy import load_file

        return load_file(path)
    return _read_torch_weights(path)


def _read_torch_weights(path):
    try:
        import torch
    except ImportError as error:
        raise ValueError(
            f"{path!r} is a PyTorch pickle, which needs `torch` to read. "
            "Install torch, or save the checkpoint as safetensors "
            "(`save_pretrained(..., safe_serialization=True)`), which "
            "keras_fido reads without it."
        ) from error
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(
            f"Could not read {path!r} as PyTorch weights with "
            f"`weights_only=True` (pickled code is refused): {error}"
        ) from error
    return {
        name: tensor.detach().to(torch.float32).numpy()
        if tensor.dtype == torch.bfloat16
        else tensor.detach().numpy()
        for name, tensor in state.items()
    }


def _extra_ids(directory, config, spiece_model):
    """How many `<extra_id_N>` sentinels the checkpoint's tokenizer adds."""
    for name in (TOKENIZER_CONFIG_FILE, SPECIAL_TOKENS_FILE):
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as file:
            tokenizer_config = json.load(file)
        if isinstance(tokenizer_config.get("extra_ids"), int) and (
            tokenizer_config["extra_ids"] > 0
        ):
            return tokenizer_config["extra_ids"]
        tokens = list(tokenizer_config.get("additional_special_tokens") or ())
        tokens += [
            entry.get("content", "")
            for entry in (
                tokenizer_config.get("added_tokens_decoder") or {}
            ).values()
            if isinstance(entry, dict)
        ]
        tokens = {
            token if isinstance(token, str) else token.get("content", "")
            for token in tokens
        }
        count = sum(1 for token in tokens if EXTRA_ID.fullmatch(token))
        if count:
            return count
    if spiece_model is None:
        return 0
    # transformers' T5Tokenizer default, when the vocabulary has room.
    room = config.get("vocab_size", 0) - _piece_count(spiece_model)
    return int(np.clip(room, 0, T5_EXTRA_IDS))


def _piece_count(spiece_model):
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(spiece_model)
    return len(proto.pieces)
