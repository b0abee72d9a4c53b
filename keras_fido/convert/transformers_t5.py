"""Loading T5 weights into a `FiDOBackbone`, and HuggingFace T5 models.

A T5.1.1 checkpoint is vanilla FiD: `cross_attention_interval=1`, a
multi-head decoder and equal encoder/decoder sizes. The mapping works on a
plain `{name: numpy array}` state dict, so it serves an in-memory
`transformers` model and a checkpoint read from disk alike.
"""

import numpy as np

from keras_fido.convert.t5_config import backbone_config_from_t5_config
from keras_fido.convert.t5_weight_map import t5_weight_map
from keras_fido.convert.t5_weight_map import to_keras_layout
from keras_fido.models.fido_backbone import FiDOBackbone

# Copies of `shared.weight` that checkpoints may hold under other names.
EMBEDDING_ALIASES = {
    "shared.weight": (
        "encoder.embed_tokens.weight",
        "decoder.embed_tokens.weight",
    ),
    "encoder.embed_tokens.weight": ("shared.weight",),
    # transformers >= 5 ties the output projection to the embedding in
    # memory and saves it only when the two differ: a checkpoint without
    # `lm_head.weight` uses `shared.weight` there (unscaled for T5.1.1).
    "lm_head.weight": ("shared.weight",),
}


def find_t5_weight(state, name):
    """`state[name]`, or a copy of it stored under an alias; else `None`."""
    for candidate in (name,) + EMBEDDING_ALIASES.get(name, ()):
        if candidate in state:
            return candidate
    return None


def assign_t5_weight(variable, state, name, layout, array=None):
    """Assigns T5 weight `name` of `state` (or `array`) to `variable`.

    Raises a `ValueError` naming both weights when the checkpoint lacks it
    or its shape does not fit. Returns the state-dict name that was used.
    """
    key = name
    if array is None:
        key = find_t5_weight(state, name)
        if key is None:
            raise ValueError(
                f"The T5 checkpoint has no weight `{name}`, needed for "
                f"`{variable.path}`."
            )
        array = state[key]
    source = np.asarray(array, dtype="float32")
    value = to_keras_layout(source, layout, tuple(variable.shape))
    if value is None:
        raise ValueError(
            f"Weight `{name}` has shape {tuple(source.shape)}; "
            f"`{variable.path}` expects {tuple(variable.shape)} (a T5 "
            f"weight of shape {_t5_shape(layout, variable.shape)})."
        )
    variable.assign(value)
    return key


def _t5_shape(layout, shape):
    if layout == "transpose":
        return tuple(reversed(shape))
    if layout == "heads_in":
        d_in, heads, dim = shape
        return (heads * dim, d_in)
    if layout == "heads_out":
        heads, dim, d_out = shape
        return (d_out, heads * dim)
    return tuple(shape)


def load_t5_state(backbone, state):
    """Assigns a T5 state dict (`{name: np.ndarray}`) to `backbone`.

    `backbone` must have the checkpoint's architecture (see
    `backbone_config_from_t5_config`). Raises a `ValueError` naming the
    weight when one is missing or has the wrong shape. Returns the sorted
    T5 names that were not used (e.g. the decoder's duplicate
    `embed_tokens`).
    """
    used = set()
    for weight in t5_weight_map(backbone):
        used.add(
            assign_t5_weight(weight.variable, state, weight.name, weight.layout)
        )
    return sorted(set(state) - used)


def _state_to_numpy(state):
    return {
        name: tensor.detach().to("cpu").float().numpy()
        if hasattr(tensor, "detach")
        else np.asarray(tensor)
        for name, tensor in state.items()
    }


def from_transformers(model, dtype=None):
    """A `FiDOBackbone` holding a transformers T5.1.1 model's weights.

    Args:
        model: a `transformers.T5ForConditionalGeneration` (T5.1.1, i.e.
            `feed_forward_proj="gated-gelu"`), in memory.
        dtype: optional dtype policy for the new backbone.

    Returns:
        A vanilla-FiD `FiDOBackbone` (`cross_attention_interval=1`,
        multi-head decoder) whose outputs equal the T5 model's when it is
        run FiD-style (each passage encoded separately).

    Examples:
    ```python
    t5 = transformers.T5ForConditionalGeneration(transformers.T5Config(
        vocab_size=128, d_model=32, d_kv=8, d_ff=64, num_layers=2,
        num_heads=4, feed_forward_proj="gated-gelu",
        tie_word_embeddings=False))
    backbone = keras_fido.convert.from_transformers(t5)
    ```
    """
    config = backbone_config_from_t5_config(model.config)
    backbone = FiDOBackbone(**config, dtype=dtype)
    load_t5_state(backbone, _state_to_numpy(model.state_dict()))
    return backbone
