"""The preprocessor's packing, cut where a passage memory store cuts it:
passage blocks alone (to build a store) and `[B, P, L]` sequences
assembled from a question and stored passage blocks (to read one)."""

import tensorflow as tf

from keras_fido.models.fid_packing import check_tokenizer
from keras_fido.models.fid_packing import join_question_block
from keras_fido.models.fid_packing import pack_passages
from keras_fido.models.fid_packing import pack_target
from keras_fido.models.fid_packing import passage_strings
from keras_fido.models.graph_function import graph_function
from keras_fido.models.passage_memory import check_memory_backbone
from keras_fido.models.passage_memory import check_question_block


class PassageBlocks:
    """Packs passage blocks and question blocks as `reader.preprocessor`
    does, in the TensorFlow graph (`keras_fido.models.fid_packing`).

    A passage block is `"title: t context: c"`, cut to
    `passage_length - question_length - 1` tokens, closed by the end
    token and padded: exactly the positions after the question block of
    the preprocessor's sequences. A passage with an empty title and text
    is a missing passage: all pad, mask `False`.

    Args:
        reader: a `FiDOSeq2SeqLM` with passage memory and a preprocessor
            with `question_length`.
    """

    def __init__(self, reader):
        preprocessor = getattr(reader, "preprocessor", None)
        if preprocessor is None:
            raise ValueError(
                "A passage memory store packs passages as the reader's "
                "preprocessor does: expected `reader.preprocessor` set. "
                "Received: preprocessor=None"
            )
        check_memory_backbone(reader.backbone, "A passage memory store")
        check_question_block(reader.backbone, preprocessor)
        check_tokenizer(preprocessor.tokenizer)
        self.tokenizer = preprocessor.tokenizer
        self.preprocessor = preprocessor
        self.num_passages = preprocessor.num_passages
        self.question_length = preprocessor.question_length
        self.positions = preprocessor.passage_length - self.question_length
        self.prefixes = (
            preprocessor.question_prefix,
            preprocessor.title_prefix,
            preprocessor.context_prefix,
        )

    def pack(self, titles, texts):
        """`[N]` titles and texts -> int32 ids and bool mask
        `[N, positions]`, and the number of passages cut."""
        with tf.device("cpu"):
            ids, mask, truncated = self._pack(
                tf.constant(titles, tf.string), tf.constant(texts, tf.string)
            )
        return ids.numpy(), mask.numpy(), int(truncated)

    @graph_function
    def _pack(self, titles, texts):
        strings, present, _ = passage_strings(
            titles[:, None], texts[:, None], 1, self.prefixes
        )
        ids, mask, _, truncated = pack_passages(
            self.tokenizer, strings[:, 0], present[:, 0], self.positions
        )
        return ids, mask, truncated

    def assemble(self, question, passage_ids, passage_mask):
        """The preprocessor's `[B, P, L]` ids and mask, from questions
        `[B]` and passage blocks `[B, P, positions]` (a missing passage:
        all pad, mask `False`), by `fid_packing.join_question_block`.
        Runs in the caller's graph (a `tf.data` map) or eagerly. Returns
        `(ids, mask, question_tokens_cut)`."""
        return join_question_block(
            self.tokenizer,
            question,
            self.prefixes,
            self.question_length,
            passage_ids,
            passage_mask,
        )

    def target(self, target, length):
        """The preprocessor's decoder inputs, labels and weights of
        targets `[B]`: `(decoder_ids, decoder_mask, y, sample_weight)`."""
        ids, mask, _ = pack_target(self.tokenizer, target, length)
        return ids[:, :-1], mask[:, :-1], ids[:, 1:], mask[:, 1:]

    def sequences(self, question, passage_ids, passage_mask):
        """`assemble`, eagerly, from numpy/python values: returns numpy
        ids and mask `[B, P, L]` and the question tokens cut."""
        with tf.device("cpu"):
            ids, mask, cut = self._sequences(
                tf.constant(question, tf.string),
                tf.constant(passage_ids, tf.int32),
                tf.constant(passage_mask, tf.bool),
            )
        return ids.numpy(), mask.numpy(), int(cut)

    @graph_function
    def _sequences(self, question, passage_ids, passage_mask):
        return self.assemble(question, passage_ids, passage_mask)
