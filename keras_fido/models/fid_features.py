"""The preprocessor's inputs as batched string tensors.

`FiDOSeq2SeqLMPreprocessor` takes one example dict, a list of them, or a
dict of string tensors `{"question", "titles", "texts", "target"?}`.
`canonicalize` checks any of these (example dicts with the shared
validator, `keras_fido.data.fid_example`) and returns the tensor form with
a batch axis: `"question"` `[B]`, `"titles"` and `"texts"` `[B, P]`,
`"target"` `[B]` or `None`. `decoder_features` checks the generated ids
that `generate_postprocess` turns back into strings.
"""

import numpy as np
import tensorflow as tf

from keras_fido._compat import convert_to_numpy
from keras_fido.data.fid_example import example_fields

_TENSOR_KEYS = ("question", "titles", "texts")


def canonicalize(x, with_target):
    """Returns `(features, unbatched)`; features are string tensors."""
    if isinstance(x, dict) and ("titles" in x or "texts" in x):
        return tensor_features(x, with_target)
    if isinstance(x, dict):
        return example_features([x], ["x"], with_target), True
    if isinstance(x, list):
        if not x:
            raise ValueError(
                "`x` must hold at least one example. Received: x=[]"
            )
        fields = [f"x[{i}]" for i in range(len(x))]
        return example_features(x, fields, with_target), False
    raise ValueError(
        "`x` must be an example dict with keys 'question' and "
        "'passages', a list of such dicts, or a dict of string tensors "
        "with keys 'question', 'titles' and 'texts'. "
        f"Received: x of type {type(x).__name__}"
    )


def example_features(examples, fields, with_target):
    """The string tensors of a batch of example dicts.

    Examples with fewer passages are padded with empty titles and texts,
    which the packing masks out.
    """
    rows = [
        example_fields(example, field, with_target)
        for example, field in zip(examples, fields)
    ]
    questions, titles, texts, targets = (list(part) for part in zip(*rows))
    has_target = [t is not None for t in targets]
    if with_target and any(has_target) and not all(has_target):
        missing = [f for f, h in zip(fields, has_target) if not h]
        raise ValueError(
            "Either every example or none must have a 'target' (or "
            f"'answers'). Received examples without one: {missing}"
        )
    width = max(len(row) for row in titles)
    titles = [row + [""] * (width - len(row)) for row in titles]
    texts = [row + [""] * (width - len(row)) for row in texts]
    features = {
        "question": tf.constant(questions, dtype=tf.string),
        "titles": tf.reshape(
            tf.constant(titles, dtype=tf.string), [len(titles), width]
        ),
        "texts": tf.reshape(
            tf.constant(texts, dtype=tf.string), [len(texts), width]
        ),
        "target": None,
    }
    if with_target and all(has_target):
        features["target"] = tf.constant(targets, dtype=tf.string)
    return features


def tensor_features(x, with_target):
    """Checks the tensor form of `x`; returns `(features, unbatched)`."""
    for key in _TENSOR_KEYS:
        if key not in x:
            raise ValueError(
                "The tensor form of `x` must have the keys 'question', "
                f"'titles' and 'texts'. Missing: '{key}'. "
                f"Received keys: {sorted(x.keys())}"
            )
    keys = list(_TENSOR_KEYS)
    if with_target and x.get("target", None) is not None:
        keys.append("target")
    features = {"target": None}
    for key in keys:
        features[key] = _to_string_tensor(x[key], f"x['{key}']")
    _check_ranks(features)
    _check_shapes(features)
    if not features["texts"].shape.is_fully_defined():
        # Shapes unknown while tracing (e.g. in `tf.data`): check them
        # when the graph runs instead.
        check = tf.debugging.assert_equal(
            tf.shape(features["titles"]),
            tf.shape(features["texts"]),
            message="`x['titles']` and `x['texts']` must have the same shape.",
        )
        with tf.control_dependencies([check]):
            features["texts"] = tf.identity(features["texts"])
    unbatched = features["question"].shape.rank == 0
    if unbatched:
        features = {
            k: None if v is None else v[tf.newaxis] for k, v in features.items()
        }
    return features, unbatched


def _check_ranks(features):
    question_rank = features["question"].shape.rank
    if question_rank not in (0, 1):
        raise ValueError(
            "`x['question']` must be a rank 1 string tensor `[batch]` "
            "(or rank 0 for a single example). Received: shape "
            f"{features['question'].shape}"
        )
    passage_rank = question_rank + 1
    for key in ("titles", "texts"):
        rank = features[key].shape.rank
        if rank != passage_rank:
            raise ValueError(
                f"`x['{key}']` must be a rank {passage_rank} string "
                f"tensor (`[batch, passages]` with a rank 1 question, "
                f"`[passages]` with a rank 0 question). Received: shape "
                f"{features[key].shape} with question shape "
                f"{features['question'].shape}"
            )


def _check_shapes(features):
    titles_shape = features["titles"].shape
    texts_shape = features["texts"].shape
    if not titles_shape.is_compatible_with(texts_shape):
        raise ValueError(
            "`x['titles']` and `x['texts']` must have the same shape. "
            f"Received: titles shape {titles_shape}, texts shape "
            f"{texts_shape}"
        )
    batch_shape = features["question"].shape
    if not titles_shape[:-1].is_compatible_with(batch_shape):
        raise ValueError(
            "`x['titles']` and `x['texts']` must have the batch size of "
            f"`x['question']`. Received: question shape {batch_shape}, "
            f"titles shape {titles_shape}"
        )
    if features["target"] is not None:
        target_shape = features["target"].shape
        if not target_shape.is_compatible_with(batch_shape):
            raise ValueError(
                "`x['target']` must have the shape of `x['question']`. "
                f"Received: target shape {target_shape}, question shape "
                f"{batch_shape}"
            )


def _to_string_tensor(value, field):
    if isinstance(value, (tf.Tensor, tf.RaggedTensor)):
        tensor = value
    else:
        if isinstance(value, (np.ndarray, str, bytes, list, tuple)):
            array = value
        else:
            array = convert_to_numpy(value)
        try:
            tensor = tf.convert_to_tensor(array)
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"`{field}` must be convertible to a dense string "
                f"tensor. Received: {value!r}"
            ) from error
    if isinstance(tensor, tf.RaggedTensor):
        raise ValueError(
            f"`{field}` must be a dense string tensor; pad missing "
            "passages with empty strings. Received: a tf.RaggedTensor"
        )
    if tensor.dtype != tf.string:
        raise ValueError(
            f"`{field}` must hold strings. Received: dtype {tensor.dtype.name}"
        )
    return tensor


def decoder_features(x):
    """Checks generated decoder outputs for detokenization.

    Args:
        x: A dict with `"decoder_token_ids"` (`[B, T]` or `[T]`) and
            optionally `"decoder_padding_mask"` of the same shape.

    Returns:
        int32 ids and a bool mask, `tf.Tensor`s of the same rank.
    """
    if not isinstance(x, dict) or "decoder_token_ids" not in x:
        raise ValueError(
            "`x` must be a dict with a 'decoder_token_ids' key (and "
            "optionally 'decoder_padding_mask'). Received: "
            + (
                f"keys {sorted(x.keys())}"
                if isinstance(x, dict)
                else f"type {type(x).__name__}"
            )
        )
    ids = _to_tf(x["decoder_token_ids"], "int32")
    mask = x.get("decoder_padding_mask", None)
    mask = tf.ones_like(ids, "bool") if mask is None else mask
    mask = _to_tf(mask, "bool")
    if ids.shape.rank not in (1, 2) or mask.shape.rank != ids.shape.rank:
        raise ValueError(
            "`x['decoder_token_ids']` must be rank 2 `[batch, length]` "
            "or rank 1, and `x['decoder_padding_mask']` must match it. "
            f"Received: shapes {ids.shape} and {mask.shape}"
        )
    return ids, mask


def _to_tf(value, dtype):
    if not isinstance(value, tf.Tensor):
        value = tf.convert_to_tensor(convert_to_numpy(value))
    return tf.cast(value, dtype)
