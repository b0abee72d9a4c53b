"""Checks of `FiDOBackbone`'s input dict, before any computation, and
which kind of input a `FiDOSeq2SeqLM` was given."""

from keras import ops

from keras_fido.utils.checks import check_token_ids

INPUT_RANKS = {
    "encoder_token_ids": 3,
    "encoder_padding_mask": 3,
    "decoder_token_ids": 2,
    "decoder_padding_mask": 2,
}


def check_inputs(inputs, vocabulary_size=None, question_length=None):
    """Validates the backbone's input dict: names, ranks, matching masks
    and batch sizes, integer ids; and, for numpy inputs (host values, so
    never inside a compiled step), ids within `[0, vocabulary_size)`.
    With a `question_length` (a backbone with passage memory), the
    passage length must exceed it."""
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
    length = ops.shape(inputs["encoder_token_ids"])[2]
    if (
        question_length is not None
        and isinstance(length, int)
        and length <= question_length
    ):
        raise ValueError(
            "`encoder_token_ids` must hold a question block of "
            f"`encoder_question_length={question_length}` positions and at "
            "least one passage position: expected a length above "
            f"{question_length}. Received shape "
            f"{tuple(ops.shape(inputs['encoder_token_ids']))}."
        )
    batches = [ops.shape(inputs[name])[0] for name in INPUT_RANKS]
    if len(set(b for b in batches if isinstance(b, int))) > 1:
        raise ValueError(
            "All FiDOBackbone inputs must have the same batch size. "
            f"Received batch sizes {dict(zip(INPUT_RANKS, batches))}."
        )


def _static(shape):
    return all(isinstance(dim, int) for dim in shape)


def is_token_dict(inputs):
    """A dict of token ids (preprocessed already)."""
    return isinstance(inputs, dict) and "encoder_token_ids" in inputs


def is_example_list(inputs):
    """One FiD example dict or a Python list of them."""
    if isinstance(inputs, dict):
        return isinstance(inputs.get("question"), str)
    return (
        isinstance(inputs, (list, tuple))
        and len(inputs) > 0
        and all(isinstance(example, dict) for example in inputs)
    )


def one_example_batch(preprocessor, example):
    """One FiD example dict as the generate batches of a batch of one."""
    # Batch it here: the preprocessor would return it unbatched.
    if "titles" in example or "texts" in example:
        return [{k: [v] for k, v in example.items()}]
    # Checked as given, so errors name `x[...]`, not `x[0][...]`.
    preprocessor._canonicalize(example, with_target=False)
    return [[example]]
