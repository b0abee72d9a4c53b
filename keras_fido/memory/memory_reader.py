"""Answers from a passage memory store: the reader's live encoder and
decoder over stored passage memory."""

import warnings
from collections.abc import Mapping

import numpy as np
from keras import ops

from keras_fido.memory.memory_store import ON_MISSING
from keras_fido.memory.passage_blocks import PassageBlocks
from keras_fido.models.fid_packing import start_prompt


class MemoryReader:
    """Generates answers for questions whose passages are in a store.

    LUMEN's query-time path (de Jong et al.,
    https://arxiv.org/abs/2301.10448): each passage's memory, token ids
    and mask come from `store`; only the question block, the live encoder
    layers and the decoder run. The encoder inputs are assembled exactly
    as `reader.preprocessor` packs the same examples with the passages'
    text, so the answers are `reader.generate`'s, up to the store's
    rounding (float16, bfloat16 or int8 memory).

    Args:
        reader: a `FiDOSeq2SeqLM` whose backbone has `encoder_live_layers`
            and whose preprocessor has `question_length`.
        store: a `MemoryStore` built by `reader`'s memory encoder (checked
            against the reader's fingerprint here).
        on_missing: `"raise"` (a `KeyError` naming the ids not in the
            store) or `"skip"` (their slot is left empty, as a passage
            without text, and a warning counts them). Defaults to
            `"raise"`.

    Examples:
    ```python
    store = build_memory_store(reader, passages, "memory/")
    memory_reader = MemoryReader(reader, store)
    memory_reader.generate({
        "question": "what is the capital of france",
        "passage_ids": ["France/government", "France/currency"],
    })  # The same answer as reader.generate with the passages' text.
    ```
    """

    def __init__(self, reader, store, on_missing="raise"):
        if on_missing not in ON_MISSING:
            raise ValueError(
                f"`on_missing` must be one of {ON_MISSING}. Received: "
                f"on_missing={on_missing!r}"
            )
        self.blocks = PassageBlocks(reader)
        store.check_reader(reader)
        self.reader = reader
        self.store = store
        self.on_missing = on_missing
        self._warned = set()

    def inputs(self, examples):
        """The inputs of `reader.generate_function` for a list of
        examples: `encoder_token_ids`, `encoder_padding_mask`
        `[B, P, L]`, `passage_memory` `[B, P, L - q, d_enc]` and the
        start-token prompt `decoder_token_ids`, `decoder_padding_mask`
        `[B, T]`, as backend tensors. One example dict is a batch of
        one."""
        examples = [examples] if isinstance(examples, Mapping) else examples
        examples = list(examples)
        questions, slots = _check_examples(examples, self.blocks.num_passages)
        rows, skipped = self.store.rows(slots, self.on_missing)
        stored = self.store.gather(rows)
        ids, mask, cut = self.blocks.sequences(
            questions,
            stored["passage_token_ids"],
            stored["passage_padding_mask"],
        )
        self._warn(skipped, examples, cut)
        length = self.reader.preprocessor.decoder_sequence_length
        prompt_ids, prompt_mask = start_prompt(
            [len(questions)], length, self.blocks.tokenizer.start_token_id
        )
        inputs = {
            "encoder_token_ids": ids,
            "encoder_padding_mask": mask,
            "passage_memory": stored["passage_memory"],
            "decoder_token_ids": prompt_ids.numpy(),
            "decoder_padding_mask": prompt_mask.numpy(),
        }
        return {k: ops.convert_to_tensor(v) for k, v in inputs.items()}

    def _warn(self, skipped, examples, cut):
        """Warns of skipped ids on every call; of ids dropped and
        question tokens cut once per instance, as the preprocessor."""
        num_passages = self.blocks.num_passages
        dropped = sum(
            max(len(e["passage_ids"]) - num_passages, 0) for e in examples
        )
        if skipped:
            warnings.warn(
                f"MemoryReader: {skipped} passage id(s) not in the store "
                "were skipped (their slots are empty).",
                UserWarning,
                stacklevel=3,
            )
        q = self.blocks.question_length
        once = {
            "dropped": f"passage id(s) past `num_passages={num_passages}`",
            "cut": f"question token(s) past `question_length={q}`",
        }
        for kind, count in (("dropped", dropped), ("cut", cut)):
            message = f"{once[kind]} were {kind}"
            if count and kind not in self._warned:
                self._warned.add(kind)
                warnings.warn(
                    f"MemoryReader: {count} {message}. This warning is "
                    "shown once per kind.",
                    UserWarning,
                    stacklevel=3,
                )

    def generate(self, examples):
        """Answers for one example or a list of them.

        Args:
            examples: a dict `{"question": str, "passage_ids": [id, ...]}`
                or a list of them (one batch). Ids are strings or ints;
                the first `num_passages` are read.

        Returns:
            The answer string, or a list of them for a list.
        """
        single = isinstance(examples, Mapping)
        batch = [examples] if single else list(examples)
        reader = self.reader
        generate_function = reader.make_generate_function()
        stop = (self.blocks.tokenizer.end_token_id,)
        outputs = generate_function(self.inputs(batch), stop_token_ids=stop)
        answers = reader.preprocessor.generate_postprocess(outputs)
        return answers[0] if single else answers


def _check_examples(examples, num_passages):
    """Questions `[B]` and passage id slots `[B, num_passages]` (`""` for
    an empty slot), or a `ValueError` naming the field."""
    if not examples:
        raise ValueError(
            "`examples` must hold at least one example. Received: none"
        )
    questions, slots = [], np.full((len(examples), num_passages), "", object)
    for index, example in enumerate(examples):
        where = f"examples[{index}]"
        if not isinstance(example, Mapping):
            raise ValueError(
                f"`{where}` must be a dict with 'question' and "
                f"'passage_ids'. Received: {type(example).__name__}"
            )
        question = example.get("question")
        if not isinstance(question, str):
            raise ValueError(
                f"`{where}['question']` must be a string. Received: "
                f"{question!r}"
            )
        ids = example.get("passage_ids")
        if not isinstance(ids, (list, tuple)):
            raise ValueError(
                f"`{where}['passage_ids']` must be a list of passage ids. "
                f"Received: {ids!r}"
            )
        questions.append(question)
        for slot, passage_id in enumerate(ids[:num_passages]):
            slots[index, slot] = passage_id
    return questions, slots
