"""A vanilla-FiD keras_fido model -> a HuggingFace T5 checkpoint directory."""

import json
import os

from keras import ops

from keras_fido.convert.t5_checkpoint import CONFIG_FILE
from keras_fido.convert.t5_checkpoint import SPIECE_FILE
from keras_fido.convert.t5_checkpoint import TOKENIZER_CONFIG_FILE
from keras_fido.convert.t5_config import check_vanilla_fid
from keras_fido.convert.t5_config import t5_config_from_backbone
from keras_fido.convert.t5_tokenizer import spiece_from_tokenizer
from keras_fido.convert.t5_weight_map import t5_weight_map
from keras_fido.convert.t5_weight_map import to_t5_layout
from keras_fido.models.fido_backbone import FiDOBackbone
from keras_fido.models.fido_tokenizer import FiDOTokenizer

WEIGHTS_FILE = "model.safetensors"


def t5_state_from_backbone(backbone):
    """`{T5 name: np.ndarray}` of a vanilla-FiD backbone's weights.

    The inverse of `load_t5_state`: arrays come back in the checkpoint
    layout and the variables' dtype, bit for bit.
    """
    check_vanilla_fid(backbone)
    return {
        weight.name: to_t5_layout(
            ops.convert_to_numpy(weight.variable), weight.layout
        )
        for weight in t5_weight_map(backbone)
    }


def _load(model):
    """`(backbone, tokenizer or None)` of a model, backbone or preset."""
    if isinstance(model, (str, os.PathLike)):
        preset = os.fspath(model)
        backbone = FiDOBackbone.from_preset(preset)
        tokenizer = None
        if os.path.exists(os.path.join(preset, "tokenizer.json")):
            tokenizer = FiDOTokenizer.from_preset(preset)
        return backbone, tokenizer
    if isinstance(model, FiDOBackbone):
        return model, None
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, FiDOBackbone):
        raise ValueError(
            "`model` must be a FiDOSeq2SeqLM, a FiDOBackbone or a preset "
            f"directory. Received: {type(model).__name__}"
        )
    preprocessor = getattr(model, "preprocessor", None)
    return backbone, getattr(preprocessor, "tokenizer", None)


def to_t5_checkpoint(model, directory, tokenizer=None):
    """Writes a vanilla-FiD model as a HuggingFace T5 checkpoint directory.

    The directory is what `save_pretrained` writes and
    `transformers.T5ForConditionalGeneration.from_pretrained` (and
    `keras_fido.convert.from_t5_checkpoint`) reads: `config.json`,
    `model.safetensors` (written with the `safetensors` numpy API, so
    PyTorch is not needed) and, with a tokenizer, `spiece.model` and
    `tokenizer_config.json`. Converting a T5.1.1 checkpoint and exporting
    it again gives back the same weights bit for bit and the same
    `spiece.model`.

    Args:
        model: a `FiDOSeq2SeqLM`, a `FiDOBackbone` or a keras_fido preset
            directory, with `cross_attention_interval=1`, a multi-head
            decoder and equal encoder and decoder sizes (FiDO's knobs have
            no T5 equivalent).
        directory: str, where to write; created if needed.
        tokenizer: optional `FiDOTokenizer`; defaults to the model's own.

    Returns:
        The directory.

    Examples:
    ```python
    reader = keras_hub.models.Seq2SeqLM.from_preset("fid_base_preset")
    keras_fido.convert.to_t5_checkpoint(reader, "t5_out")
    t5 = transformers.T5ForConditionalGeneration.from_pretrained("t5_out")
    ```
    """
    from safetensors.numpy import save_file

    backbone, own_tokenizer = _load(model)
    tokenizer = tokenizer or own_tokenizer
    state = t5_state_from_backbone(backbone)
    pad_id, eos_id = 0, 1
    if tokenizer is not None:
        pad_id, eos_id = tokenizer.pad_token_id, tokenizer.end_token_id
    config = t5_config_from_backbone(backbone, pad_id, eos_id)
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, CONFIG_FILE), "w") as file:
        json.dump(config, file, indent=2, sort_keys=True)
    save_file(
        state, os.path.join(directory, WEIGHTS_FILE), metadata={"format": "pt"}
    )
    if tokenizer is not None:
        spiece_model, extra_ids = spiece_from_tokenizer(tokenizer)
        with open(os.path.join(directory, SPIECE_FILE), "wb") as file:
            file.write(spiece_model)
        tokenizer_config = {
            "tokenizer_class": "T5Tokenizer",
            "extra_ids": extra_ids,
            "eos_token": "</s>",
            "pad_token": "<pad>",
            "unk_token": "<unk>",
        }
        path = os.path.join(directory, TOKENIZER_CONFIG_FILE)
        with open(path, "w") as file:
            json.dump(tokenizer_config, file, indent=2, sort_keys=True)
    return directory
