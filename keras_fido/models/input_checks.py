"""Checks of `FiDOBackbone`'s input dict, before any computation."""

from keras import ops

from keras_fido.utils.checks import check_token_ids

INPUT_RANKS = {
    "encoder_token_ids": 3,
    "encoder_padding_mask": 3,
    "decoder_token_ids": 2,
    "decoder_padding_mask": 2,
}


def check_inputs(inputs, vocabulary_size=None):
    """Validates the backbone's input dict: names, ranks, matching masks
    and batch sizes, integer ids; and, for numpy inputs (host values, so
    never inside a compiled step), ids within `[0, vocabulary_size)`."""
    if not isinstance(inputs, dict):
        raise ValueError(
            "FiDOBackbone expects a dict with keys "
            f"{sorted(INPUT_RANKS)}. Received: {type(inputs).__name__}"
        )
    missing = sorted(set(INPUT_RANKS) - set(inputs))
    if missing:
        raise ValueError(
            f"FiDOBackbone inputs are missing {missing}. "
            f"Received keys: {sorted(inputs)}"
        )
    for name, rank in INPUT_RANKS.items():
        shape = tuple(ops.shape(inputs[name]))
        if len(shape) != rank:
            layout = (
                "[batch, passages, length]" if rank == 3 else "[batch, length]"
            )
            raise ValueError(
                f"`{name}` must have rank {rank} {layout}. "
                f"Received shape {shape} (rank {len(shape)})."
            )
    for ids, padding in (
        ("encoder_token_ids", "encoder_padding_mask"),
        ("decoder_token_ids", "decoder_padding_mask"),
    ):
        ids_shape = tuple(ops.shape(inputs[ids]))
        mask_shape = tuple(ops.shape(inputs[padding]))
        if (
            _static(ids_shape)
            and _static(mask_shape)
            and ids_shape != mask_shape
        ):
            raise ValueError(
                f"`{padding}` must have the shape of `{ids}` {ids_shape}. "
                f"Received shape {mask_shape}."
            )
        check_token_ids(ids, inputs[ids], vocabulary_size)
    batches = [ops.shape(inputs[name])[0] for name in INPUT_RANKS]
    if len(set(b for b in batches if isinstance(b, int))) > 1:
        raise ValueError(
            "All FiDOBackbone inputs must have the same batch size. "
            f"Received batch sizes {dict(zip(INPUT_RANKS, batches))}."
        )


def _static(shape):
    return all(isinstance(dim, int) for dim in shape)
