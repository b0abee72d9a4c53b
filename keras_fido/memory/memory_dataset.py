"""Passage memory in a `tf.data` pipeline: questions and passage ids in,
the reader's inputs with `passage_memory` out."""

import tensorflow as tf

from keras_fido.memory.memory_store import ON_MISSING
from keras_fido.memory.passage_blocks import PassageBlocks


def lookup_passage_memory(dataset, reader, store, on_missing="raise"):
    """Maps a batched dataset of questions and passage ids to the reader's
    inputs, reading each passage from `store`.

    Every element is packed as `reader.preprocessor` packs the same
    examples with the passages' text: the question block, then each
    passage's stored block (ids and mask), in `num_passages` slots (more
    ids are cut, fewer padded with empty slots; `""` is an empty slot).
    The passages' memory is read in a `tf.numpy_function` over
    `MemoryStore.gather`, so only the rows a batch needs are read.

    Args:
        dataset: a `tf.data.Dataset` of dicts `{"question": [B] string,
            "passage_ids": [B, P'] string (dense, or ragged), "target":
            [B] string}` (`"target"` optional).
        reader: the `FiDOSeq2SeqLM` that reads them (its preprocessor
            packs the question and the target).
        store: a `MemoryStore` built by `reader`'s memory encoder
            (checked).
        on_missing: `"raise"` (an id not in the store fails the pipeline
            with a `KeyError` naming it) or `"skip"` (its slot is empty,
            as a passage without text).

    Returns:
        A dataset of `x` (with targets, `(x, y, sample_weight)` as the
        preprocessor's): `encoder_token_ids` int32 and
        `encoder_padding_mask` bool `[B, P, L]`, `passage_memory` float32
        `[B, P, L - question_length, d_enc]`, and with targets
        `decoder_token_ids` and `decoder_padding_mask` `[B, T]`.

    Examples:
    ```python
    ds = tf.data.Dataset.from_tensor_slices({
        "question": ["what is the capital of france"],
        "passage_ids": [["France/government", "France/currency"]],
    }).batch(1)
    ds = lookup_passage_memory(ds, reader, store)
    inputs = next(iter(ds))
    reader.generate_function(inputs, stop_token_ids=(1,))
    ```
    """
    if on_missing not in ON_MISSING:
        raise ValueError(
            f"`on_missing` must be one of {ON_MISSING}. Received: "
            f"on_missing={on_missing!r}"
        )
    store.check_reader(reader)
    blocks = PassageBlocks(reader)
    length = reader.preprocessor.decoder_sequence_length

    def lookup(passage_ids):
        rows, _ = store.rows(passage_ids, on_missing)
        out = store.gather(rows)
        return (
            out["passage_memory"],
            out["passage_token_ids"],
            out["passage_padding_mask"],
        )

    def pack(features):
        question = features["question"]
        if question.shape.rank != 1:
            raise ValueError(
                "`lookup_passage_memory` reads batched datasets: expected "
                "'question' of rank 1 ([batch]). Received: rank "
                f"{question.shape.rank}; call `dataset.batch(...)` first."
            )
        ids = _slots(features["passage_ids"], blocks.num_passages)
        memory, token_ids, mask = tf.numpy_function(
            lookup, [ids], [tf.float32, tf.int32, tf.bool], stateful=False
        )
        slots = [None, blocks.num_passages, blocks.positions]
        memory.set_shape([*slots, store.hidden_dim])
        token_ids.set_shape(slots)
        mask.set_shape(slots)
        encoder_ids, encoder_mask, _ = blocks.assemble(
            question, token_ids, mask
        )
        x = {
            "encoder_token_ids": encoder_ids,
            "encoder_padding_mask": encoder_mask,
            "passage_memory": memory,
        }
        if "target" not in features:
            return x
        ids, mask, y, weight = blocks.target(features["target"], length)
        x["decoder_token_ids"], x["decoder_padding_mask"] = ids, mask
        return x, y, weight

    return dataset.map(pack, num_parallel_calls=tf.data.AUTOTUNE)


def _slots(passage_ids, num_passages):
    """`[B, P']` ids (dense or ragged) -> `[B, num_passages]`, cut or
    padded with `""` (an empty slot)."""
    if isinstance(passage_ids, tf.RaggedTensor):
        passage_ids = passage_ids.to_tensor("")
    passage_ids = passage_ids[:, :num_passages]
    extra = tf.maximum(num_passages - tf.shape(passage_ids)[1], 0)
    return tf.pad(passage_ids, [[0, 0], [0, extra]], constant_values="")
