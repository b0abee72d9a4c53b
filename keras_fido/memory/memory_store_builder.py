"""Builds a passage memory store: every passage's memory, computed once
by a reader's memory encoder and written to memory-mapped shards."""

import itertools
import json
import os
import warnings
from collections.abc import Mapping

import keras
import numpy as np

from keras_fido.memory.memory_codec import check_store_dtype
from keras_fido.memory.memory_fingerprint import memory_fingerprint
from keras_fido.memory.memory_shards import ShardWriter
from keras_fido.memory.memory_shards import file_sha256
from keras_fido.memory.memory_store import FORMAT
from keras_fido.memory.memory_store import FORMAT_VERSION
from keras_fido.memory.memory_store import IDS_FILE
from keras_fido.memory.memory_store import MANIFEST_FILE
from keras_fido.memory.memory_store import MemoryStore
from keras_fido.memory.passage_blocks import PassageBlocks
from keras_fido.models.passage_memory import encode_passage_memory
from keras_fido.utils.atomic_write import atomic_directory
from keras_fido.utils.checks import check_positive_int

# The passage of an empty slot: all pad, mask False.
_EMPTY = {"title": "", "text": ""}


def build_memory_store(
    reader,
    passages,
    directory,
    batch_size=64,
    dtype="float16",
    shard_size=65536,
    progress=True,
):
    """Computes the memory of every passage and writes a store.

    Each passage is packed as `reader.preprocessor` packs a passage block
    (`"title: t context: c"` in `passage_length - question_length`
    positions, end token included; longer passages are cut, with one
    warning counting them), run through the memory encoder
    (`encode_passage_memory`) in batches, and written to shards of
    `shard_size` rows (`memory`, `token_ids`, `lengths`, and `scale` for
    int8) with a `manifest.json`: the memory encoder's fingerprint and
    config, the dtype, shapes, each file's name, rows and sha256. The
    passage ids, in row order, are in `passage_ids.txt` (one per line; its
    sha256 is in the manifest). The store also keeps the memory of an
    empty passage slot (`blank.*`), which lookups pad with.

    The directory is written atomically: a killed build leaves the
    previous store (or none), never a partial one.

    Args:
        reader: a `FiDOSeq2SeqLM` whose backbone has `encoder_live_layers`
            and whose preprocessor has `question_length`.
        passages: an iterable of dicts `{"id", "title", "text"}` (FiD
            json `ctxs`, or `keras_fido.data.country_qa_passages()`;
            other keys are ignored, `"title"` is optional). Ids are
            strings or ints (stored as strings), unique, without line
            breaks.
        directory: where the store goes (replaced if it exists).
        batch_size: int. Passages per memory encoder run. Defaults to 64.
        dtype: `"float16"`, `"bfloat16"` or `"int8"` (one float32 scale
            per token vector). Defaults to `"float16"`.
        shard_size: int. Passages per shard. Defaults to 65536.
        progress: bool. Show a `keras.utils.Progbar`. Defaults to True.

    Returns:
        The `MemoryStore`, opened.

    Examples:
    ```python
    from keras_fido.data import country_qa_passages
    store = build_memory_store(reader, country_qa_passages(), "memory/")
    store.lookup(["France/government"])["passage_memory"].shape
    ```
    """
    dtype = check_store_dtype(dtype)
    batch_size = check_positive_int("batch_size", batch_size)
    shard_size = check_positive_int("shard_size", shard_size)
    blocks = PassageBlocks(reader)
    fingerprint = memory_fingerprint(reader)
    encoder = memory_encoder_model(reader.backbone)
    hidden_dim = reader.backbone.encoder_hidden_dim
    total = len(passages) if hasattr(passages, "__len__") else None
    bar = keras.utils.Progbar(total, unit_name="passage") if progress else None
    with atomic_directory(directory, keep_unwritten=False) as staging:
        layout = (staging, dtype, blocks.positions, hidden_dim)
        writer = ShardWriter(*layout, shard_size, "shard")
        ids, truncated = [], 0
        for batch in _batches(passages, batch_size, ids):
            truncated += _write_batch(
                encoder, blocks, writer, batch, batch_size
            )
            if bar is not None:
                bar.update(len(ids), finalize=len(ids) == total)
        if bar is not None and total is None:
            bar.update(len(ids), finalize=True)
        blank = ShardWriter(*layout, 1, "blank")
        _write_batch(encoder, blocks, blank, [_EMPTY], batch_size)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            **fingerprint,
            "dtype": dtype,
            "num_passages": len(ids),
            "passage_positions": blocks.positions,
            "hidden_dim": hidden_dim,
            "passages_truncated": truncated,
            "shards": writer.close(),
            "blank": blank.close()[0],
        }
        _write_manifest(staging, manifest, ids)
    if truncated:
        warnings.warn(
            f"build_memory_store: {truncated} passage(s) were longer than "
            f"the passage block's {blocks.positions} positions "
            "(`passage_length - question_length`, end token included) and "
            "were cut, as the reader's preprocessor cuts them.",
            UserWarning,
            stacklevel=2,
        )
    return MemoryStore(directory)


def _write_manifest(directory, manifest, ids):
    """Writes the id list, then the manifest that names its sha256."""
    path = os.path.join(directory, IDS_FILE)
    with open(path, "w", encoding="utf-8") as file:
        file.writelines(f"{i}\n" for i in ids)
    manifest["passage_ids"] = {"name": IDS_FILE, "sha256": file_sha256(path)}
    with open(os.path.join(directory, MANIFEST_FILE), "w") as file:
        json.dump(manifest, file, indent=1)


def memory_encoder_model(backbone):
    """The memory encoder as a functional model, so that a store build
    runs it compiled (`predict_on_batch`; no autograd on torch)."""
    ids = keras.Input((None,), dtype="int32", name="passage_token_ids")
    mask = keras.Input((None,), dtype="int32", name="passage_padding_mask")
    memory = _MemoryEncoder(backbone)(ids, mask)
    return keras.Model(
        {"passage_token_ids": ids, "passage_padding_mask": mask}, memory
    )


class _MemoryEncoder(keras.layers.Layer):
    def __init__(self, backbone, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone

    def call(self, token_ids, padding_mask):
        return encode_passage_memory(self.backbone, token_ids, padding_mask)

    def compute_output_shape(self, token_ids_shape, padding_mask_shape):
        return tuple(token_ids_shape) + (self.backbone.encoder_hidden_dim,)


def _write_batch(memory_encoder, blocks, writer, batch, batch_size):
    """Encodes and writes one batch; returns the passages cut.

    A short batch is padded with empty passages to `batch_size`, so that
    every run of the memory encoder has one shape (compiled once)."""
    rows = len(batch)
    batch = batch + [_EMPTY] * (batch_size - rows)
    titles = [p.get("title", "") for p in batch]
    token_ids, mask, truncated = blocks.pack(titles, [p["text"] for p in batch])
    memory = memory_encoder.predict_on_batch(
        {"passage_token_ids": token_ids, "passage_padding_mask": mask}
    )
    memory = np.asarray(memory, "float32")[:rows]
    lengths = mask[:rows].sum(axis=-1).astype("int32")
    writer.write(memory, token_ids[:rows], lengths)
    return truncated


def _batches(passages, batch_size, ids):
    """Checked batches of `passages`; appends each id to `ids`."""
    seen = set()
    iterator = enumerate(iter(passages))
    while batch := list(itertools.islice(iterator, batch_size)):
        for index, passage in batch:
            passage_id = _check_passage(index, passage)
            if passage_id in seen:
                raise ValueError(
                    f"`passages[{index}]['id']` must be unique. Received "
                    f"id {passage_id!r} a second time."
                )
            seen.add(passage_id)
            ids.append(passage_id)
        yield [passage for _, passage in batch]


def _check_passage(index, passage):
    """Returns the passage's id as a string, or raises naming the field."""
    where = f"passages[{index}]"
    if not isinstance(passage, Mapping):
        raise ValueError(
            f"`{where}` must be a dict with 'id', 'title' and 'text'. "
            f"Received: {type(passage).__name__}"
        )
    for key in ("title", "text"):
        if key == "text" or key in passage:
            value = passage.get(key)
            if not isinstance(value, str):
                raise ValueError(
                    f"`{where}['{key}']` must be a string. Received: {value!r}"
                )
    passage_id = passage.get("id")
    if isinstance(passage_id, (int, np.integer)) and not isinstance(
        passage_id, bool
    ):
        passage_id = str(passage_id)
    if not isinstance(passage_id, str) or not passage_id.strip():
        raise ValueError(
            f"`{where}['id']` must be a non-empty string or an int. "
            f"Received: {passage_id!r}"
        )
    if "\n" in passage_id or "\r" in passage_id:
        raise ValueError(
            f"`{where}['id']` must not contain line breaks. Received: "
            f"{passage_id!r}"
        )
    return passage_id
