"""Serves a reader exported by `keras_fido.export.export_onnx` with ONNX
Runtime: questions and passages in, answers out.

Self-contained: this file imports only numpy, onnxruntime, sentencepiece
and the standard library, so a server can copy it on its own.
"""

import json
import os
import warnings

import numpy as np
import onnxruntime as ort

MANIFEST_FILE = "manifest.json"
_GLOBAL_POOL = {"threads": None}


def _thread_pool(threads):
    """One process-wide ONNX Runtime thread pool, shared by every session
    created with `use_per_session_threads = False`."""
    if _GLOBAL_POOL["threads"] is None:
        ort.set_global_thread_pool_sizes(threads or os.cpu_count() or 1, 1)
        _GLOBAL_POOL["threads"] = threads or os.cpu_count() or 1
    options = ort.SessionOptions()
    options.use_per_session_threads = False
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


class OnnxReader:
    """A FiD / FiDO reader exported to ONNX, run by ONNX Runtime.

    `generate` formats, tokenizes and masks passages as
    `FiDOSeq2SeqLMPreprocessor` does (`"question: q title: t context: c"`,
    passages cut to `passage_length` tokens with the end token kept, the
    `num_passages` slots filled in order, missing passages masked, an
    example without passages answered from its question alone), then
    decodes greedily as `FiDOSeq2SeqLM.generate`: the encoder and the
    cross-attention K/V run once, then one cached decoder step per token
    until every answer has its end token or `max_length - 1` tokens.
    Between graphs and steps the tensors stay in ONNX Runtime (IO binding
    of `OrtValue`s); all graphs share one thread pool.

    An export of a backbone with passage memory (`encoder_live_layers`,
    question block `q`) packs every sequence as the preprocessor does for
    it: `q` positions of `"question: q"`, then the passage block
    `"title: t context: c"`. `generate_from_memory` answers from the
    passages' stored memory instead of their text, running the question's
    memory layers, the live layers and the decoder only.

    Args:
        directory: str. A directory written by `export_onnx`.
        threads: int. Threads of the shared pool; defaults to the
            machine's cores. Only the first reader of a process sets it.

    Examples:
    ```python
    reader = OnnxReader("onnx_reader")
    reader.generate({
        "question": "what is the capital of france",
        "passages": [{"title": "France", "text": "Its capital is Paris."}],
    })  # a string; a list of examples gives a list of strings
    ```
    """

    def __init__(self, directory, threads=None):
        self.directory = os.fspath(directory)
        self.manifest = _read_manifest(self.directory)
        options = _thread_pool(threads)
        self.sessions = {}
        for name, file in self.manifest["graphs"].items():
            path = os.path.join(self.directory, file)
            if not os.path.isfile(path):
                raise ValueError(
                    f"The export in {self.directory!r} is missing its {name} "
                    f"graph {os.path.basename(path)!r} (named by "
                    f"{MANIFEST_FILE}). Found: "
                    f"{sorted(os.listdir(self.directory))}"
                )
            self.sessions[name] = ort.InferenceSession(
                path, options, providers=["CPUExecutionProvider"]
            )
        self.tokenizer = None
        if self.manifest.get("tokenizer"):
            self.tokenizer = _load_tokenizer(
                os.path.join(self.directory, self.manifest["tokenizer"])
            )
        step = self.sessions["decoder_step"]
        self._past_names = [
            i.name for i in step.get_inputs() if i.name.startswith("past_")
        ]
        self._cross_names = [
            o.name for o in self.sessions["cross_key_value"].get_outputs()
        ]
        self._step_outputs = [o.name for o in step.get_outputs()]
        self._warned = set()

    # --- Text in, text out ----------------------------------------------

    def generate(self, inputs):
        """Answers one example (a dict: returns a string) or a list of
        examples (returns a list), like `FiDOSeq2SeqLM.generate`.

        An example is `{"question": str, "passages": [{"title", "text"}]}`
        (`"ctxs"` is an alias of `"passages"`, `"title"` optional), or the
        tensor form `{"question": [B], "titles": [B, P], "texts": [B, P]}`.
        """
        single = isinstance(inputs, dict) and isinstance(
            inputs.get("question"), str
        )
        ids, mask = self.pack(inputs)
        answers = self.detokenize(self.generate_token_ids(ids, mask))
        return answers[0] if single else answers

    def pack(self, inputs):
        """Encoder token ids and mask, int64 `[B, num_passages,
        passage_length]`, as `FiDOSeq2SeqLMPreprocessor` packs them."""
        self._require_tokenizer()
        questions, titles, texts = self._canonicalize(inputs)
        limits = self.manifest["limits"]
        slots, length = limits["num_passages"], limits["passage_length"]
        special = self.manifest["special_token_ids"]
        ids = np.full((len(questions), slots, length), special["pad"], np.int64)
        mask = np.zeros_like(ids)
        split = self.question_length
        if split is not None:
            self._pack_question_block(questions, ids, mask)
        cut = 0
        for b, strings in enumerate(
            self._slot_strings(q, t, x)
            for q, t, x in zip(questions, titles, texts)
        ):
            for p, string in enumerate(strings):
                if string is not None:
                    cut += self._put(
                        string, ids[b, p, split:], mask[b, p, split:]
                    )
        if split is not None:
            empty = ~_real_slots(mask[:, :, split:])
            ids[empty, :split] = special["pad"]
            mask[empty, :split] = 0
        what = f"`passage_length={length}`"
        if split is not None:
            what = f"the passage block ({length - split} positions)"
        self._warn_once(
            "passage",
            cut,
            f"{cut} token(s) of passages longer than {what} (end token "
            "included) were cut.",
        )
        return ids, mask

    def _put(self, string, ids, mask):
        """Writes the tokens of `string`, cut to leave room for the end
        token, and the end token into the rows `ids`, `mask`; returns the
        number of tokens cut."""
        end = self.manifest["special_token_ids"]["end"]
        length = ids.shape[-1]
        tokens = self.tokenizer.encode(string)
        cut = max(len(tokens) - (length - 1), 0)
        tokens = tokens[: length - 1] + [end]
        ids[: len(tokens)] = tokens
        mask[: len(tokens)] = 1
        return cut

    def _pack_question_block(self, questions, ids, mask):
        """Fills the question block of `[B, P, L]` `ids` and `mask` (cut, no
        end token) in every slot; `pack` masks the empty ones after."""
        split = self.question_length
        prefix = self.manifest["prefixes"]["question"]
        cut = 0
        for b, question in enumerate(questions):
            tokens = self.tokenizer.encode(_join([prefix, question]))
            cut += max(len(tokens) - split, 0)
            tokens = tokens[:split]
            ids[b, :, : len(tokens)] = tokens
            mask[b, :, : len(tokens)] = 1
        self._warn_once(
            "question",
            cut,
            f"{cut} question token(s) were cut to fit the question block "
            f"(`question_length={split}`).",
            stacklevel=5,
        )

    def _warn_once(self, kind, count, message, stacklevel=4):
        """Warns once per reader and kind; `stacklevel` 4 points at the
        caller of the public method that called the caller."""
        if count and kind not in self._warned:
            self._warned.add(kind)
            warnings.warn(
                f"OnnxReader: {message}", UserWarning, stacklevel=stacklevel
            )

    @property
    def question_length(self):
        """The question block `q` of a passage-memory export, else None."""
        return self.manifest["config"].get("encoder_question_length")

    def detokenize(self, token_ids):
        """Answers from `[B, T]` ids: after the start token, up to the
        first end token, pad ids dropped."""
        self._require_tokenizer()
        special = self.manifest["special_token_ids"]
        answers = []
        for row in np.asarray(token_ids)[:, 1:].tolist():
            if special["end"] in row:
                row = row[: row.index(special["end"])]
            answers.append(
                self.tokenizer.decode([t for t in row if t != special["pad"]])
            )
        return answers

    # --- Token ids in, token ids out ------------------------------------

    def generate_token_ids(self, encoder_token_ids, encoder_padding_mask):
        """Greedy decoding: int64 `[B, T]`, the start token, the answer
        through its end token, then pad ids (`T` is `max_length`)."""
        ids, mask = self._check_tokens(encoder_token_ids, encoder_padding_mask)
        return self._greedy(mask, self._encode(ids, mask))

    def _greedy(self, mask, encoder_output):
        """The greedy loop of `generate_token_ids` from the encoder's
        output (an `OrtValue`)."""
        special = self.manifest["special_token_ids"]
        max_length = self.manifest["limits"]["max_length"]
        batch = mask.shape[0]
        out = np.full((batch, max_length), special["pad"], np.int64)
        out[:, 0] = special["start"]
        done = np.zeros(batch, bool)
        state = self._start(None, mask, encoder_output)
        for index in range(1, max_length):
            next_token, _ = self._step(state, out[:, index - 1 : index])
            out[:, index] = np.where(done, special["pad"], next_token)
            done |= next_token == special["end"]
            if done.all():
                break
        return out

    def teacher_forced_next_tokens(
        self, encoder_token_ids, encoder_padding_mask, token_ids
    ):
        """The greedy choice `[B, T - 1]` after each prefix of `token_ids`
        `[B, T]` (the decoder is fed `token_ids`, not its own choices)."""
        ids, mask = self._check_tokens(encoder_token_ids, encoder_padding_mask)
        token_ids = np.asarray(token_ids, np.int64)
        state = self._start(ids, mask)
        choices = [
            self._step(state, token_ids[:, i - 1 : i])[0]
            for i in range(1, token_ids.shape[1])
        ]
        return np.stack(choices, axis=1)

    def step_logits(self, encoder_token_ids, encoder_padding_mask, token_ids):
        """Float32 logits `[B, T, V]` of each position of `token_ids`
        `[B, T]`, computed step by step with the caches."""
        ids, mask = self._check_tokens(encoder_token_ids, encoder_padding_mask)
        token_ids = np.asarray(token_ids, np.int64)
        state = self._start(ids, mask)
        logits = [
            self._step(state, token_ids[:, i : i + 1], logits=True)[1]
            for i in range(token_ids.shape[1])
        ]
        return np.stack(logits, axis=1)

    def encode(self, encoder_token_ids, encoder_padding_mask):
        """The encoder output, float32 `[B, P*L, d_enc]`, as numpy."""
        ids, mask = self._check_tokens(encoder_token_ids, encoder_padding_mask)
        return self._encode(ids, mask).numpy()

    # --- Stored passage memory in ---------------------------------------

    def generate_from_memory(
        self, question, passage_padding_mask, passage_memory
    ):
        """Answers from the passages' stored memory instead of their text
        (an export with passage memory only).

        Args:
            question: a string (returns a string; the passage arguments
                may then leave out the batch axis) or a list of `B`
                strings (returns a list).
            passage_padding_mask: `[B, P, N]`, 1 on the real tokens of
                each passage block as the preprocessor packs it
                (`"title: t context: c"`, end token; `N` is
                `passage_length - q`); an all-0 row is a missing passage.
            passage_memory: float `[B, P, N, d_enc]`, the memory of those
                blocks (`keras_fido.models.passage_memory.
                encode_passage_memory`, e.g. read from a memory store).

        The answers are `generate`'s on the same passages.
        """
        single = isinstance(question, (str, bytes))
        questions = [question] if single else list(question)
        passage_padding_mask = np.asarray(passage_padding_mask, np.int64)
        passage_memory = np.asarray(passage_memory, np.float32)
        if single and passage_padding_mask.ndim == 2:
            passage_padding_mask = passage_padding_mask[None]
            passage_memory = passage_memory[None]
        question_ids, mask = self.pack_question_block(
            questions, passage_padding_mask
        )
        token_ids = self.generate_token_ids_from_memory(
            question_ids, mask, passage_memory
        )
        answers = self.detokenize(token_ids)
        return answers[0] if single else answers

    def pack_question_block(self, questions, passage_padding_mask):
        """The question block's ids, int64 `[B, q]`, and the packed mask
        `[B, P, q + N]` of `B` question strings before passage blocks of
        mask `[B, P, N]`, as the preprocessor packs them (the question
        block is masked in slots without a passage, kept in slot 0 of an
        example with none)."""
        self._require_tokenizer()
        self._require_memory_graph()
        passage_mask = np.asarray(passage_padding_mask, np.int64)
        questions = [
            _string(f"question[{b}]", q) for b, q in enumerate(questions)
        ]
        if passage_mask.ndim != 3 or passage_mask.shape[0] != len(questions):
            raise ValueError(
                "`passage_padding_mask` must be [batch, passages, passage "
                f"positions] with one row per question ({len(questions)}). "
                f"Received shape {passage_mask.shape}."
            )
        batch, passages, _ = passage_mask.shape
        split = self.question_length
        pad = self.manifest["special_token_ids"]["pad"]
        ids = np.full((batch, passages, split), pad, np.int64)
        mask = np.zeros_like(ids)
        self._pack_question_block(questions, ids, mask)
        # Slot 0's question block, which the live encoder reads, is
        # padding where slot 0 holds no sequence, as the preprocessor's.
        empty = ~_real_slots(passage_mask)
        ids[empty], mask[empty] = pad, 0
        return ids[:, 0], np.concatenate([mask, passage_mask], axis=2)

    def generate_token_ids_from_memory(
        self, question_token_ids, encoder_padding_mask, passage_memory
    ):
        """`generate_token_ids` from stored passage memory: the question
        block's ids `[B, q]`, the packed mask `[B, P, L]` and the memory
        `[B, P, L - q, d_enc]` (see `pack_question_block`)."""
        inputs = self._check_memory(
            question_token_ids, encoder_padding_mask, passage_memory
        )
        return self._greedy(inputs[1], self._encode_from_memory(*inputs))

    def encode_from_memory(
        self, question_token_ids, encoder_padding_mask, passage_memory
    ):
        """The encoder output from stored passage memory, float32
        `[B, P*L, d_enc]`, as numpy (arguments of
        `generate_token_ids_from_memory`)."""
        inputs = self._check_memory(
            question_token_ids, encoder_padding_mask, passage_memory
        )
        return self._encode_from_memory(*inputs).numpy()

    # --- Graph plumbing -------------------------------------------------

    def _encode(self, ids, mask):
        session = self.sessions["encoder"]
        binding = session.io_binding()
        binding.bind_cpu_input("encoder_token_ids", ids)
        binding.bind_cpu_input("encoder_padding_mask", mask)
        binding.bind_output("encoder_output", "cpu")
        session.run_with_iobinding(binding)
        return binding.get_outputs()[0]

    def _encode_from_memory(self, question_ids, mask, memory):
        session = self.sessions["live_encoder"]
        binding = session.io_binding()
        binding.bind_cpu_input("question_token_ids", question_ids)
        binding.bind_cpu_input("encoder_padding_mask", mask)
        binding.bind_cpu_input("passage_memory", memory)
        binding.bind_output("encoder_output", "cpu")
        session.run_with_iobinding(binding)
        return binding.get_outputs()[0]

    def _start(self, ids, mask, encoder_output=None):
        """Encoder and cross K/V once; a step binding that holds them."""
        if encoder_output is None:
            encoder_output = self._encode(ids, mask)
        cross = self.sessions["cross_key_value"]
        binding = cross.io_binding()
        binding.bind_ortvalue_input("encoder_output", encoder_output)
        for name in self._cross_names:
            binding.bind_output(name, "cpu")
        cross.run_with_iobinding(binding)
        step = self.sessions["decoder_step"].io_binding()
        for name, value in zip(self._cross_names, binding.get_outputs()):
            step.bind_ortvalue_input(name, value)
        step.bind_cpu_input("encoder_padding_mask", mask)
        config = self.manifest["config"]
        empty = np.zeros(
            (
                mask.shape[0],
                config["decoder_num_key_value_heads"],
                0,
                config["key_value_dim"],
            ),
            np.float32,
        )
        past = {
            name: ort.OrtValue.ortvalue_from_numpy(empty)
            for name in self._past_names
        }
        return {"binding": step, "past": past, "inputs": [mask]}

    def _step(self, state, token, logits=False):
        """One decoder step; the caches stay in ONNX Runtime. Returns the
        next tokens (numpy) and, with `logits`, the logits."""
        binding = state["binding"]
        token = np.ascontiguousarray(token, np.int64)
        state["inputs"].append(token)  # alive while bound
        binding.bind_cpu_input("decoder_token_ids", token)
        for name, value in state["past"].items():
            binding.bind_ortvalue_input(name, value)
        binding.clear_binding_outputs()
        for name in self._step_outputs:
            binding.bind_output(name, "cpu")
        self.sessions["decoder_step"].run_with_iobinding(binding)
        outputs = dict(zip(self._step_outputs, binding.get_outputs()))
        state["past"] = {
            name: outputs["present" + name[len("past") :]]
            for name in self._past_names
        }
        state["inputs"] = state["inputs"][:1]
        values = outputs["logits"].numpy() if logits else None
        return outputs["next_token"].numpy(), values

    def _check_tokens(self, ids, mask):
        ids = np.ascontiguousarray(ids, np.int64)
        mask = np.ascontiguousarray(mask, np.int64)
        if ids.ndim != 3:
            raise ValueError(
                "`encoder_token_ids` must be rank 3 [batch, passages, "
                f"length]. Received shape {ids.shape}."
            )
        if mask.shape != ids.shape:
            raise ValueError(
                "`encoder_padding_mask` must have the shape of "
                f"`encoder_token_ids` {ids.shape}. Received shape {mask.shape}."
            )
        vocabulary = self.manifest["config"]["vocabulary_size"]
        if ids.size and (ids.min() < 0 or ids.max() >= vocabulary):
            raise ValueError(
                f"`encoder_token_ids` must be in [0, {vocabulary}). Received "
                f"ids from {ids.min()} to {ids.max()}."
            )
        limits = self.manifest["limits"]
        for axis, field in ((1, "num_passages"), (2, "passage_length")):
            if limits.get(field) and ids.shape[axis] > limits[field]:
                raise ValueError(
                    f"`encoder_token_ids` has {ids.shape[axis]} along axis "
                    f"{axis}, more than the exported `{field}="
                    f"{limits[field]}`. Received shape {ids.shape}."
                )
        return ids, mask

    def _require_memory_graph(self):
        if "live_encoder" not in self.sessions:
            raise ValueError(
                f"The export in {self.directory!r} has no live encoder "
                "graph: its reader has no passage memory (expected "
                "`encoder_live_layers` set, e.g. a `lumen_*` preset). "
                "Answer from passage text with `generate`."
            )

    def _check_memory(self, question_ids, mask, memory):
        """The live encoder's inputs, contiguous, after checking shapes."""
        self._require_memory_graph()
        question_ids = np.ascontiguousarray(question_ids, np.int64)
        mask = np.ascontiguousarray(mask, np.int64)
        memory = np.ascontiguousarray(memory, np.float32)
        split = self.question_length
        width = self.manifest["config"]["encoder_hidden_dim"]
        if question_ids.ndim != 2 or question_ids.shape[1] != split:
            raise ValueError(
                f"`question_token_ids` must be [batch, {split}] (the "
                f"question block). Received shape {question_ids.shape}."
            )
        batch = question_ids.shape[0]
        if mask.ndim != 3 or mask.shape[0] != batch or mask.shape[2] <= split:
            raise ValueError(
                "`encoder_padding_mask` must be [batch, passages, length] "
                f"with batch {batch} and length over {split} (question "
                f"block, then passage block). Received shape {mask.shape}."
            )
        expected = mask.shape[:2] + (mask.shape[2] - split, width)
        if memory.shape != expected:
            raise ValueError(
                f"`passage_memory` must be [batch, passages, passage "
                f"positions, d_enc] = {expected}, beside "
                f"`encoder_padding_mask` {mask.shape}. Received shape "
                f"{memory.shape}."
            )
        return question_ids, mask, memory

    # --- FiD formatting -------------------------------------------------

    def _require_tokenizer(self):
        if self.tokenizer is None:
            raise ValueError(
                f"The export in {self.directory!r} has no tokenizer (it was "
                "exported from a reader without a preprocessor): text in, "
                "text out is not available. Use `generate_token_ids` with "
                "token ids."
            )

    def _slot_strings(self, question, titles, texts):
        """The encoder string of each passage slot, None for an empty one.

        With a question block (passage memory) the strings are the passage
        blocks alone, and an example without passages has none: its
        question block in slot 0 is all it has."""
        prefixes = self.manifest["prefixes"]
        head = [prefixes["question"], question]
        if self.question_length is not None:
            head = []
        slots = self.manifest["limits"]["num_passages"]
        strings = [None] * slots
        for p, (title, text) in enumerate(zip(titles, texts)):
            if title or text:
                strings[p] = _join(
                    head + [prefixes["title"], title, prefixes["context"], text]
                )
        if all(s is None for s in strings) and head:
            strings[0] = _join(head)
        return strings

    def _canonicalize(self, inputs):
        """`(questions, titles, texts)` lists from any accepted form."""
        if isinstance(inputs, dict) and (
            "titles" in inputs or "texts" in inputs
        ):
            return self._canonicalize_tensors(inputs)
        if isinstance(inputs, dict):
            examples, fields = [inputs], ["x"]
        elif isinstance(inputs, (list, tuple)) and inputs:
            examples = list(inputs)
            fields = [f"x[{i}]" for i in range(len(examples))]
        else:
            raise ValueError(
                "`x` must be an example dict with keys 'question' and "
                "'passages', a non-empty list of such dicts, or a dict with "
                "'question', 'titles' and 'texts'. Received: "
                f"{type(inputs).__name__} {inputs!r:.80}"
            )
        questions, titles, texts = [], [], []
        for example, field in zip(examples, fields):
            if not isinstance(example, dict) or "question" not in example:
                raise ValueError(
                    f"`{field}` must be a dict with a 'question' key. "
                    f"Received: {example!r:.80}"
                )
            questions.append(
                _string(f"{field}['question']", example["question"])
            )
            key = "passages" if "passages" in example else "ctxs"
            passages = example.get(key) or []
            if not isinstance(passages, (list, tuple)):
                raise ValueError(
                    f"`{field}['{key}']` must be a list of dicts with keys "
                    f"'title' and 'text'. Received: {type(passages).__name__}"
                )
            row_titles, row_texts = [], []
            for i, passage in enumerate(passages):
                name = f"{field}['{key}'][{i}]"
                if not isinstance(passage, dict) or "text" not in passage:
                    raise ValueError(
                        f"`{name}` must be a dict with a 'text' key (and "
                        f"optionally 'title'). Received: {passage!r:.80}"
                    )
                row_titles.append(
                    _string(f"{name}['title']", passage.get("title", ""))
                )
                row_texts.append(_string(f"{name}['text']", passage["text"]))
            self._check_passage_count(
                f"{field}['{key}']", row_titles, row_texts
            )
            titles.append(row_titles)
            texts.append(row_texts)
        return questions, titles, texts

    def _canonicalize_tensors(self, inputs):
        for key in ("question", "titles", "texts"):
            if key not in inputs:
                raise ValueError(
                    "The tensor form of `x` must have the keys 'question', "
                    f"'titles' and 'texts'. Missing: '{key}'."
                )
        question = np.asarray(inputs["question"], dtype=object)
        titles = np.asarray(inputs["titles"], dtype=object)
        texts = np.asarray(inputs["texts"], dtype=object)
        if question.ndim == 0:
            question, titles, texts = question[None], titles[None], texts[None]
        if titles.shape != texts.shape or titles.ndim != 2:
            raise ValueError(
                "`x['titles']` and `x['texts']` must have the same shape "
                f"[batch, passages]. Received: titles shape {titles.shape}, "
                f"texts shape {texts.shape}"
            )
        if question.ndim != 1 or titles.shape[0] != question.shape[0]:
            raise ValueError(
                "`x['titles']` and `x['texts']` must have one row per "
                f"`x['question']`. Received: question shape {question.shape}, "
                f"titles shape {titles.shape}"
            )
        rows = []
        for b in range(question.shape[0]):
            row_titles = [
                _string(f"x['titles'][{b}][{p}]", t)
                for p, t in enumerate(titles[b])
            ]
            row_texts = [
                _string(f"x['texts'][{b}][{p}]", t)
                for p, t in enumerate(texts[b])
            ]
            self._check_passage_count(
                f"x['titles'][{b}]", row_titles, row_texts
            )
            rows.append((row_titles, row_texts))
        questions = [
            _string(f"x['question'][{b}]", q) for b, q in enumerate(question)
        ]
        return questions, [r[0] for r in rows], [r[1] for r in rows]

    def _check_passage_count(self, field, titles, texts):
        """Refuses passages past the exported limit (empty ones pass)."""
        limit = self.manifest["limits"]["num_passages"]
        extra = [p for p in range(limit, len(titles)) if titles[p] or texts[p]]
        if extra:
            raise ValueError(
                f"`{field}` holds {len(titles)} passages, passage(s) {extra} "
                f"past the exported `num_passages={limit}`. Send at most "
                f"{limit} passages, or export with a larger `num_passages`."
            )


def _join(parts):
    """`parts` (prefix, value, prefix, value...) joined with spaces; empty
    prefixes are left out rather than joined as blanks."""
    return " ".join(p for i, p in enumerate(parts) if p or i % 2)


def _real_slots(passage_mask):
    """Bool `[B, P]`: the slots that carry the question block, the
    preprocessor's way: a passage with a real token, and slot 0 always
    (the encoder reads the question from it)."""
    present = passage_mask.reshape(passage_mask.shape[:2] + (-1,)).any(-1)
    real = present.copy()
    real[:, 0] = True
    return real


def _string(field, value):
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if not isinstance(value, str):
        raise ValueError(
            f"`{field}` must be a string. Received: {value!r} of type "
            f"{type(value).__name__}"
        )
    return value


def _read_manifest(directory):
    path = os.path.join(directory, MANIFEST_FILE)
    if not os.path.isfile(path):
        found = (
            sorted(os.listdir(directory)) if os.path.isdir(directory) else None
        )
        raise ValueError(
            f"{directory!r} is not an ONNX export: its {MANIFEST_FILE!r} is "
            f"missing. Found: {found}"
        )
    with open(path, encoding="utf-8") as f:
        manifest = json.load(f)
    for key in ("graphs", "config", "limits", "special_token_ids"):
        if key not in manifest:
            raise ValueError(
                f"{path!r} has no {key!r} entry; write the directory with "
                f"`export_onnx`. Received keys: {sorted(manifest)}"
            )
    return manifest


def _load_tokenizer(path):
    import sentencepiece

    if not os.path.isfile(path):
        raise ValueError(
            f"The export is missing its tokenizer {os.path.basename(path)!r} "
            f"(named by {MANIFEST_FILE}) in {os.path.dirname(path)!r}."
        )
    return sentencepiece.SentencePieceProcessor(model_file=path)
