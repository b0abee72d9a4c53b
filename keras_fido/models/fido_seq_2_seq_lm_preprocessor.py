"""Fusion-in-Decoder preprocessing for FiDO seq2seq language models."""

import functools
import warnings

import keras
import numpy as np
import tensorflow as tf
from keras_hub.models import Seq2SeqLMPreprocessor

from keras_fido._compat import convert_preprocessing_outputs
from keras_fido._compat import convert_to_numpy
from keras_fido.models.fido_backbone import FiDOBackbone
from keras_fido.models.fido_tokenizer import FiDOTokenizer
from keras_fido.utils.atomic_write import atomic_directory
from keras_fido.utils.checks import check_keyword_arguments
from keras_fido.utils.checks import check_positive_int


def _graph_function(fn):
    """Compile method `fn` with `tf.function` so tokenizers take their TF
    path; one traced function per preprocessor instance.

    TensorFlow deletes eagerly created resources, the SentencePiece model
    among them, when the global seed is reset (`tf.random.set_seed`, which
    `keras.utils.set_random_seed` calls). A traced function that captured
    the old resource then fails with `NotFoundError`; the tokenizer's model
    is reloaded from its proto and the function traced again, once.
    """
    key = f"_traced_{fn.__name__}"

    def trace(self):
        traced = tf.function(
            functools.partial(fn, self), reduce_retracing=True, autograph=False
        )
        self.__dict__[key] = traced
        return traced

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        traced = self.__dict__.get(key) or trace(self)
        try:
            return traced(*args, **kwargs)
        except tf.errors.NotFoundError as error:
            if "Sentencepiece" not in str(error):
                raise
            self.tokenizer.set_proto(self.tokenizer.proto)
            return trace(self)(*args, **kwargs)

    return wrapper


def _check_str(field, value):
    if not isinstance(value, str):
        raise ValueError(
            f"`{field}` must be a python string. "
            f"Received: {field}={value!r} of type {type(value).__name__}"
        )
    return value


@keras.saving.register_keras_serializable(package="keras_fido")
class FiDOSeq2SeqLMPreprocessor(Seq2SeqLMPreprocessor):
    """Fusion-in-Decoder preprocessor for FiDO question answering.

    Turns a question and its retrieved passages into the FiD encoder inputs:
    every passage becomes its own encoder sequence
    `"question: {question} title: {title} context: {text}"` (prefixes are
    configurable; parts are joined with single spaces, as in the FiD
    reference code). Each sequence is tokenized, cut to `passage_length`
    tokens *including* a final end token (`tokens[:L - 1] + [eos]`, as T5 and
    FiD tokenize) and padded with the pad id. The result is a
    `[batch, num_passages, passage_length]` block of token ids and a matching
    boolean padding mask (`True` on real tokens).

    Passages are kept in order and only the first `num_passages` are used.
    Missing passages (fewer than `num_passages`, or a passage whose title and
    text are both empty strings) are fully padded: ids all pad, mask all
    `False`. An example with no passages at all encodes the question alone,
    `"question: {question}"`, as passage 0, so the model can still answer.

    With a target answer, the decoder sequence is
    `[start] + target_tokens + [eos]` with `start` the pad id, as T5 decoders
    start. The target tokens are cut to `decoder_sequence_length - 1` so the
    sequence (which keeps its end token) is at most
    `decoder_sequence_length + 1` long; it is then padded to that length and
    split keras-hub style: `decoder_token_ids = ids[:-1]`, labels
    `y = ids[1:]` and `sample_weight = mask[1:]`. If an example has no
    `"target"` but has `"answers"`, the first answer is the target. (The FiD
    reference samples an answer at random during training; this layer is
    deterministic.) Without targets, calling the layer returns `x` only.

    All string building and tokenization run in the TensorFlow graph, so the
    layer can be mapped over a `tf.data.Dataset` on every Keras backend.
    Eager calls return backend tensors; inside `tf.data` the outputs stay
    `tf.Tensor`s.

    Truncation is reported, never silent:

    - `truncation_report(x)` returns the counts for `x`:
      `"passages_dropped"` (non-empty passages past `num_passages`),
      `"passage_tokens_cut"` and `"passages_truncated"` (tokens cut from, and
      number of, passages longer than `passage_length - 1` tokens before the
      end token) and `"target_tokens_cut"` (target tokens cut to fit
      `decoder_sequence_length`). They are python ints when run eagerly and
      int32 scalar tensors inside a graph, so a dataset can be audited with
      `ds.map(preprocessor.truncation_report)`.
    - Calling the layer, or `generate_preprocess()`, eagerly (e.g. on python
      input) emits a `UserWarning` when something was cut: once per layer
      instance for each of dropped passages, cut passage tokens and cut
      target tokens. Inside `tf.data` no warning is possible; use
      `truncation_report()`.

    Args:
        tokenizer: A `keras_fido.models.FiDOTokenizer` (or any keras-hub
            tokenizer with `pad_token_id`, `end_token_id` and
            `start_token_id`).
        num_passages: int. Passages per example, `P`. Defaults to `40`.
        passage_length: int. Tokens per passage including the end token,
            `L`. Defaults to `256`.
        decoder_sequence_length: int. Length of the decoder inputs, `T`.
            Defaults to `32`.
        question_prefix: string. Put before the question. Defaults to
            `"question:"`.
        title_prefix: string. Put before the passage title. Defaults to
            `"title:"`.
        context_prefix: string. Put before the passage text. Defaults to
            `"context:"`.
        **kwargs: Standard `keras_hub.models.Preprocessor` arguments.

    Call arguments:
        x: One of:
            - one example, a dict `{"question": str, "passages": [{"title":
              str, "text": str}, ...], "target": str, "answers": [str]}`.
              `"ctxs"` (the FiD json key) is an alias of `"passages"`;
              `"title"`, `"target"` and `"answers"` are optional. Outputs
              then have no batch axis.
            - a list of such dicts, a batch.
            - a dict of string tensors or arrays `{"question": [B],
              "titles": [B, P'], "texts": [B, P'], "target": [B]}`
              (`"target"` optional). A single example in this form (ranks
              0, 1 and 1) is accepted too, e.g. in an unbatched `tf.data`
              pipeline.
        y: Must be `None`; labels are built from the targets.
        sample_weight: Must be `None`; weights are built from the targets.
        sequence_length: int. Overrides `decoder_sequence_length` for this
            call.

    Returns:
        `(x, y, sample_weight)` when targets are given, else `x`. `x` is a
        dict with `"encoder_token_ids"` (int32 `[B, P, L]`),
        `"encoder_padding_mask"` (bool `[B, P, L]`), `"decoder_token_ids"`
        (int32 `[B, T]`) and `"decoder_padding_mask"` (bool `[B, T]`); `y`
        is int32 `[B, T]` and `sample_weight` bool `[B, T]`.

    Examples:

    ```python
    tokenizer = keras_fido.models.FiDOTokenizer(proto="t5_vocab.spm")
    preprocessor = keras_fido.models.FiDOSeq2SeqLMPreprocessor(
        tokenizer, num_passages=2, passage_length=64,
        decoder_sequence_length=8,
    )

    # One example, FiD json style.
    example = {
        "question": "where is the eiffel tower",
        "ctxs": [
            {"title": "Eiffel Tower", "text": "The tower is in Paris."},
            {"title": "Paris", "text": "Paris is the capital of France."},
        ],
        "answers": ["Paris"],
    }
    x, y, sample_weight = preprocessor(example)
    x["encoder_token_ids"].shape  # (2, 64)

    # A batch of tensors, mapped over a `tf.data.Dataset`.
    features = {
        "question": ["where is the eiffel tower"],
        "titles": [["Eiffel Tower", "Paris"]],
        "texts": [["The tower is in Paris.", "Paris is in France."]],
        "target": ["Paris"],
    }
    ds = tf.data.Dataset.from_tensor_slices(features).batch(1)
    ds = ds.map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)

    # How much was cut?
    preprocessor.truncation_report(example)

    # Generation: packed inputs in, strings out.
    inputs = preprocessor.generate_preprocess(example)
    preprocessor.generate_postprocess(
        {
            "decoder_token_ids": [0, *tokenizer("Paris"), 1, 0],
            "decoder_padding_mask": [True, True, True, True, False],
        }
    )  # "Paris"
    ```
    """

    backbone_cls = FiDOBackbone
    tokenizer_cls = FiDOTokenizer

    def __init__(
        self,
        tokenizer,
        num_passages=40,
        passage_length=256,
        decoder_sequence_length=32,
        question_prefix="question:",
        title_prefix="title:",
        context_prefix="context:",
        **kwargs,
    ):
        check_keyword_arguments(self, kwargs)
        num_passages = check_positive_int("num_passages", num_passages)
        passage_length = check_positive_int("passage_length", passage_length)
        decoder_sequence_length = check_positive_int(
            "decoder_sequence_length", decoder_sequence_length
        )
        _check_str("question_prefix", question_prefix)
        _check_str("title_prefix", title_prefix)
        _check_str("context_prefix", context_prefix)
        self.passage_length = passage_length
        super().__init__(
            tokenizer=tokenizer,
            encoder_sequence_length=passage_length,
            decoder_sequence_length=decoder_sequence_length,
            **kwargs,
        )
        self.num_passages = num_passages
        self.question_prefix = question_prefix
        self.title_prefix = title_prefix
        self.context_prefix = context_prefix
        self._warned_kinds = set()

    @property
    def encoder_sequence_length(self):
        """Alias of `passage_length`, the tokens per encoded passage."""
        return self.passage_length

    @encoder_sequence_length.setter
    def encoder_sequence_length(self, value):
        self.passage_length = value

    def build(self, input_shape):
        # Packing is done by hand in `_pack()`; no packer layers are needed.
        self.built = True

    # ------------------------------------------------------------------
    # Input canonicalization.
    # ------------------------------------------------------------------

    def _canonicalize(self, x, with_target):
        """Returns `(features, unbatched)`; features are string tensors."""
        if isinstance(x, dict) and ("titles" in x or "texts" in x):
            return self._canonicalize_tensors(x, with_target)
        if isinstance(x, dict):
            return self._canonicalize_examples([x], ["x"], with_target), True
        if isinstance(x, list):
            if not x:
                raise ValueError(
                    "`x` must hold at least one example. Received: x=[]"
                )
            fields = [f"x[{i}]" for i in range(len(x))]
            return self._canonicalize_examples(x, fields, with_target), False
        raise ValueError(
            "`x` must be an example dict with keys 'question' and "
            "'passages', a list of such dicts, or a dict of string tensors "
            "with keys 'question', 'titles' and 'texts'. "
            f"Received: x of type {type(x).__name__}"
        )

    def _canonicalize_examples(self, examples, fields, with_target):
        questions, titles, texts, targets = [], [], [], []
        for example, field in zip(examples, fields):
            if not isinstance(example, dict):
                raise ValueError(
                    f"`{field}` must be an example dict. "
                    f"Received: {field} of type {type(example).__name__}"
                )
            if "question" not in example:
                raise ValueError(
                    f"`{field}` must have a 'question' key. "
                    f"Received keys: {sorted(example.keys())}"
                )
            questions.append(
                _check_str(f"{field}['question']", example["question"])
            )
            key = "passages" if "passages" in example else "ctxs"
            passages = example.get(key, None)
            if passages is None:
                passages = []
            if not isinstance(passages, (list, tuple)):
                raise ValueError(
                    f"`{field}['{key}']` must be a list of dicts with keys "
                    "'title' and 'text'. "
                    f"Received: type {type(passages).__name__}"
                )
            row_titles, row_texts = [], []
            for i, passage in enumerate(passages):
                passage_field = f"{field}['{key}'][{i}]"
                if not isinstance(passage, dict) or "text" not in passage:
                    received = (
                        f"keys {sorted(passage.keys())}"
                        if isinstance(passage, dict)
                        else f"type {type(passage).__name__}"
                    )
                    raise ValueError(
                        f"`{passage_field}` must be a dict with a 'text' key "
                        f"(and optionally 'title'). Received: {received}"
                    )
                row_titles.append(
                    _check_str(
                        f"{passage_field}['title']", passage.get("title", "")
                    )
                )
                row_texts.append(
                    _check_str(f"{passage_field}['text']", passage["text"])
                )
            titles.append(row_titles)
            texts.append(row_texts)
            if with_target:
                targets.append(self._example_target(example, field))
            else:
                targets.append(None)

        has_target = [t is not None for t in targets]
        if with_target and any(has_target) and not all(has_target):
            missing = [f for f, h in zip(fields, has_target) if not h]
            raise ValueError(
                "Either every example or none must have a 'target' (or "
                f"'answers'). Received examples without one: {missing}"
            )
        width = max(len(row) for row in titles)
        # Missing passages are empty strings, which `_pack()` masks out.
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

    def _example_target(self, example, field):
        if "target" in example and example["target"] is not None:
            return _check_str(f"{field}['target']", example["target"])
        answers = example.get("answers", None)
        if answers is None:
            return None
        if not isinstance(answers, (list, tuple)):
            raise ValueError(
                f"`{field}['answers']` must be a list of strings. "
                f"Received: type {type(answers).__name__}"
            )
        if not answers:
            return None
        # FiD samples an answer at random while training; use the first one.
        return _check_str(f"{field}['answers'][0]", answers[0])

    def _canonicalize_tensors(self, x, with_target):
        for key in ("question", "titles", "texts"):
            if key not in x:
                raise ValueError(
                    "The tensor form of `x` must have the keys 'question', "
                    f"'titles' and 'texts'. Missing: '{key}'. "
                    f"Received keys: {sorted(x.keys())}"
                )
        keys = ["question", "titles", "texts"]
        if with_target and x.get("target", None) is not None:
            keys.append("target")
        features = {"target": None}
        for key in keys:
            features[key] = self._to_string_tensor(x[key], f"x['{key}']")
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
        if not texts_shape.is_fully_defined():
            # Shapes unknown while tracing (e.g. in `tf.data`): check them
            # when the graph runs instead.
            check = tf.debugging.assert_equal(
                tf.shape(features["titles"]),
                tf.shape(features["texts"]),
                message="`x['titles']` and `x['texts']` must have the same "
                "shape.",
            )
            with tf.control_dependencies([check]):
                features["texts"] = tf.identity(features["texts"])
        unbatched = question_rank == 0
        if unbatched:
            features = {
                k: None if v is None else v[tf.newaxis]
                for k, v in features.items()
            }
        return features, unbatched

    def _to_string_tensor(self, value, field):
        if isinstance(value, (tf.Tensor, tf.RaggedTensor)):
            tensor = value
        else:
            if isinstance(value, np.ndarray) or isinstance(
                value, (str, bytes, list, tuple)
            ):
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
                f"`{field}` must hold strings. Received: dtype "
                f"{tensor.dtype.name}"
            )
        return tensor

    # ------------------------------------------------------------------
    # In-graph packing.
    # ------------------------------------------------------------------

    def _check_tokenizer(self):
        for name in ("pad_token_id", "end_token_id", "start_token_id"):
            if getattr(self.tokenizer, name, None) is None:
                raise ValueError(
                    f"The tokenizer must have a vocabulary with `{name}` "
                    f"set. Received: tokenizer.{name}=None; set a proto on "
                    "the tokenizer first."
                )

    def _tokenize_ragged(self, strings):
        tokens = self.tokenizer(strings)
        if not isinstance(tokens, tf.RaggedTensor):
            tokens = tf.RaggedTensor.from_tensor(
                tokens, padding=self.tokenizer.pad_token_id
            )
        return tf.cast(tokens, "int32")

    def _slot_strings(self, question, titles, texts, num_passages):
        """Builds the `[B, P]` encoder strings; marks which slots are real."""
        given = tf.shape(titles)[1]
        present = tf.logical_or(
            tf.not_equal(titles, ""), tf.not_equal(texts, "")
        )
        passages_dropped = tf.reduce_sum(
            tf.cast(present[:, num_passages:], "int32")
        )
        extra = tf.maximum(num_passages - given, 0)
        titles = tf.pad(titles[:, :num_passages], [[0, 0], [0, extra]])
        texts = tf.pad(texts[:, :num_passages], [[0, 0], [0, extra]])
        present = tf.pad(present[:, :num_passages], [[0, 0], [0, extra]])

        def join(parts):
            # Empty prefixes are left out rather than joined as blanks.
            parts = [p for p in parts if not (isinstance(p, str) and not p)]
            return tf.strings.join(parts, " ")

        question_only = join([self.question_prefix, question])
        full = join(
            [
                self.question_prefix,
                tf.broadcast_to(question[:, tf.newaxis], tf.shape(titles)),
                self.title_prefix,
                titles,
                self.context_prefix,
                texts,
            ]
        )
        # An example without passages encodes its question alone, in slot 0.
        no_passage = tf.logical_not(tf.reduce_any(present, axis=1))
        first_slot = tf.equal(tf.range(num_passages), 0)
        question_slot = tf.logical_and(
            no_passage[:, tf.newaxis], first_slot[tf.newaxis, :]
        )
        strings = tf.where(question_slot, question_only[:, tf.newaxis], full)
        real = tf.logical_or(present, question_slot)
        strings = tf.where(real, strings, "")
        return strings, real, passages_dropped

    @_graph_function
    def _format(self, question, titles, texts, num_passages):
        strings, _, _ = self._slot_strings(
            question, titles, texts, num_passages
        )
        return strings

    @_graph_function
    def _pack(
        self,
        question,
        titles,
        texts,
        target,
        num_passages,
        passage_length,
        decoder_sequence_length,
    ):
        """Tokenizes and packs canonical string tensors, all in-graph."""
        pad_id = self.tokenizer.pad_token_id
        eos_id = self.tokenizer.end_token_id
        start_id = self.tokenizer.start_token_id
        batch_size = tf.shape(question)[0]
        strings, real, passages_dropped = self._slot_strings(
            question, titles, texts, num_passages
        )
        real = tf.reshape(real, [-1])

        tokens = self._tokenize_ragged(tf.reshape(strings, [-1]))
        keep = passage_length - 1
        cut = tf.maximum(tokens.row_lengths() - keep, 0)
        cut = tf.where(real, cut, tf.zeros_like(cut))
        passage_tokens_cut = tf.cast(tf.reduce_sum(cut), "int32")
        passages_truncated = tf.reduce_sum(tf.cast(cut > 0, "int32"))

        ids, mask = self._close_and_pad(
            tokens[:, :keep], None, eos_id, pad_id, passage_length
        )
        ids = tf.where(real[:, tf.newaxis], ids, tf.cast(pad_id, "int32"))
        mask = tf.logical_and(mask, real[:, tf.newaxis])
        shape = [batch_size, num_passages, passage_length]
        outputs = {
            "encoder_token_ids": tf.reshape(ids, shape),
            "encoder_padding_mask": tf.reshape(mask, shape),
        }

        target_tokens_cut = tf.constant(0, "int32")
        if target is not None:
            tokens = self._tokenize_ragged(target)
            keep = decoder_sequence_length - 1
            target_tokens_cut = tf.cast(
                tf.reduce_sum(tf.maximum(tokens.row_lengths() - keep, 0)),
                "int32",
            )
            ids, mask = self._close_and_pad(
                tokens[:, :keep],
                start_id,
                eos_id,
                pad_id,
                decoder_sequence_length + 1,
            )
            outputs["decoder_token_ids"] = ids
            outputs["decoder_padding_mask"] = mask

        report = {
            "passages_dropped": passages_dropped,
            "passage_tokens_cut": passage_tokens_cut,
            "passages_truncated": passages_truncated,
            "target_tokens_cut": target_tokens_cut,
        }
        return outputs, report

    def _close_and_pad(self, tokens, start_id, eos_id, pad_id, length):
        """Adds start/end ids to ragged rows and pads them to `length`."""
        rows = tokens.nrows()
        parts = [tokens, tf.fill([rows, 1], tf.cast(eos_id, "int32"))]
        if start_id is not None:
            parts.insert(0, tf.fill([rows, 1], tf.cast(start_id, "int32")))
        tokens = tf.concat(parts, axis=1)
        ids = tokens.to_tensor(default_value=pad_id, shape=[None, length])
        mask = tf.ones_like(tokens, dtype="bool").to_tensor(
            default_value=False, shape=[None, length]
        )
        return ids, mask

    def _run(self, x, with_target, decoder_sequence_length=None):
        """Canonicalizes `x` and packs it; returns outputs and report."""
        self._check_tokenizer()
        if not self.built:
            self.build(None)
        features, unbatched = self._canonicalize(x, with_target)
        if decoder_sequence_length is None:
            decoder_sequence_length = self.decoder_sequence_length
        decoder_sequence_length = check_positive_int(
            "sequence_length", decoder_sequence_length
        )
        with tf.device("cpu"):
            outputs, report = self._pack(
                features["question"],
                features["titles"],
                features["texts"],
                features["target"],
                num_passages=self.num_passages,
                passage_length=self.passage_length,
                decoder_sequence_length=decoder_sequence_length,
            )
        if unbatched:
            outputs = {k: v[0] for k, v in outputs.items()}
        return outputs, report

    def _warn_truncation(self, report):
        """Warns once per instance and kind, when running eagerly."""
        if not tf.executing_eagerly():
            return
        counts = {k: int(v) for k, v in report.items()}
        messages = {
            "passages_dropped": (
                f"{counts['passages_dropped']} non-empty passage(s) beyond "
                f"`num_passages={self.num_passages}` were dropped; only the "
                "first passages of each example are kept."
            ),
            "passage_tokens_cut": (
                f"{counts['passages_truncated']} passage(s) were longer than "
                f"`passage_length={self.passage_length}` tokens (end token "
                f"included); {counts['passage_tokens_cut']} token(s) were "
                "cut."
            ),
            "target_tokens_cut": (
                f"{counts['target_tokens_cut']} target token(s) were cut to "
                "fit `decoder_sequence_length="
                f"{self.decoder_sequence_length}` (end token kept)."
            ),
        }
        for kind, message in messages.items():
            if counts[kind] > 0 and kind not in self._warned_kinds:
                self._warned_kinds.add(kind)
                warnings.warn(
                    f"{self.__class__.__name__}: {message} This warning is "
                    "shown once per kind; use `truncation_report(x)` for "
                    "counts.",
                    UserWarning,
                    stacklevel=3,
                )

    # ------------------------------------------------------------------
    # Public API.
    # ------------------------------------------------------------------

    def call(self, x, y=None, sample_weight=None, *, sequence_length=None):
        if y is not None or sample_weight is not None:
            raise ValueError(
                f"{self.__class__.__name__} builds labels from the 'target' "
                "(or 'answers') of `x`; `y` and `sample_weight` must be "
                f"None. Received: y of type {type(y).__name__}, "
                f"sample_weight of type {type(sample_weight).__name__}"
            )
        outputs, report = self._run(x, True, sequence_length)
        self._warn_truncation(report)
        x = {
            "encoder_token_ids": outputs["encoder_token_ids"],
            "encoder_padding_mask": outputs["encoder_padding_mask"],
        }
        if "decoder_token_ids" not in outputs:
            return convert_preprocessing_outputs(x)
        ids = outputs["decoder_token_ids"]
        mask = outputs["decoder_padding_mask"]
        x["decoder_token_ids"] = ids[..., :-1]
        x["decoder_padding_mask"] = mask[..., :-1]
        # Labels are the decoder inputs shifted one step to the left.
        y = ids[..., 1:]
        sample_weight = mask[..., 1:]
        return convert_preprocessing_outputs(
            keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
        )

    def truncation_report(self, x):
        """Counts what preprocessing `x` cuts, summed over the batch.

        Args:
            x: Inputs in any form accepted by calling the layer.

        Returns:
            A dict with keys `"passages_dropped"`, `"passage_tokens_cut"`,
            `"passages_truncated"` and `"target_tokens_cut"`: python ints
            when run eagerly, int32 scalar tensors inside a graph (e.g.
            `ds.map(preprocessor.truncation_report)`).

        Examples:
        ```python
        report = preprocessor.truncation_report(example)
        if report["passages_dropped"]:
            print("raise num_passages")
        ```
        """
        _, report = self._run(x, True)
        if tf.executing_eagerly():
            return {k: int(v) for k, v in report.items()}
        return report

    def encoder_strings(self, x):
        """Returns the encoder input strings, one per passage slot.

        Useful to check the FiD formatting before tokenization. Slots with no
        passage hold `""`; an example without passages holds
        `"question: {question}"` in slot 0.

        Args:
            x: Inputs in any form accepted by calling the layer.

        Returns:
            Strings of shape `[B, num_passages]` (or `[num_passages]` for one
            example): nested python lists of `str` when run eagerly, a string
            tensor inside a graph.

        Examples:
        ```python
        preprocessor.encoder_strings(
            {
                "question": "who wrote hamlet",
                "passages": [{"title": "Hamlet", "text": "A play."}],
            }
        )
        # [["question: who wrote hamlet title: Hamlet context: A play.", ...]]
        ```
        """
        if not self.built:
            self.build(None)
        features, unbatched = self._canonicalize(x, False)
        with tf.device("cpu"):
            strings = self._format(
                features["question"],
                features["titles"],
                features["texts"],
                num_passages=self.num_passages,
            )
        if unbatched:
            strings = strings[0]
        return convert_preprocessing_outputs(strings)

    def generate_preprocess(self, x, sequence_length=None):
        """Packs inputs for generation.

        The encoder inputs are packed as when calling the layer; targets are
        ignored. The decoder prompt is the start token alone:
        `decoder_token_ids` is all pad ids (the start id is the pad id) and
        `decoder_padding_mask` is `True` only at index 0.

        Args:
            x: Inputs in any form accepted by calling the layer.
            sequence_length: int. The decoder length, the most tokens
                generation can produce (start token included). Defaults to
                `decoder_sequence_length`.

        Returns:
            A dict with `"encoder_token_ids"`, `"encoder_padding_mask"`,
            `"decoder_token_ids"` and `"decoder_padding_mask"`.

        Examples:
        ```python
        inputs = preprocessor.generate_preprocess(
            {"question": "who wrote hamlet", "passages": []}
        )
        ```
        """
        outputs, report = self._run(x, False)
        self._warn_truncation(report)
        length = sequence_length or self.decoder_sequence_length
        length = check_positive_int("sequence_length", length)
        batch_shape = tf.shape(outputs["encoder_token_ids"])[:-2]
        shape = tf.concat([batch_shape, [length]], axis=0)
        start_id = tf.cast(self.tokenizer.start_token_id, "int32")
        outputs["decoder_token_ids"] = tf.fill(shape, start_id)
        first = tf.equal(tf.range(length), 0)
        outputs["decoder_padding_mask"] = tf.broadcast_to(first, shape)
        return convert_preprocessing_outputs(outputs)

    def generate_postprocess(self, x):
        """Turns generated decoder ids back into strings.

        Drops the start token (index 0), keeps tokens up to (not including)
        the first end token, drops masked and pad positions and detokenizes.

        Args:
            x: A dict with `"decoder_token_ids"` (`[B, T]` or `[T]`) and
                optionally `"decoder_padding_mask"` of the same shape.

        Returns:
            A python string (unbatched input) or a list of strings when run
            eagerly; a string tensor inside a graph.

        Examples:
        ```python
        preprocessor.generate_postprocess(
            {
                "decoder_token_ids": [[0, 37, 1, 0]],
                "decoder_padding_mask": [[True, True, True, False]],
            }
        )
        ```
        """
        self._check_tokenizer()
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
        ids = self._to_tf(x["decoder_token_ids"], "int32")
        mask = x.get("decoder_padding_mask", None)
        mask = tf.ones_like(ids, "bool") if mask is None else mask
        mask = self._to_tf(mask, "bool")
        if ids.shape.rank not in (1, 2) or mask.shape.rank != ids.shape.rank:
            raise ValueError(
                "`x['decoder_token_ids']` must be rank 2 `[batch, length]` "
                "or rank 1, and `x['decoder_padding_mask']` must match it. "
                f"Received: shapes {ids.shape} and {mask.shape}"
            )
        unbatched = ids.shape.rank == 1
        if unbatched:
            ids, mask = ids[tf.newaxis], mask[tf.newaxis]
        with tf.device("cpu"):
            strings = self._detokenize(ids, mask)
        if unbatched:
            strings = strings[0]
        return convert_preprocessing_outputs(strings)

    def _to_tf(self, value, dtype):
        if not isinstance(value, tf.Tensor):
            value = tf.convert_to_tensor(convert_to_numpy(value))
        return tf.cast(value, dtype)

    @_graph_function
    def _detokenize(self, ids, mask):
        ids, mask = ids[:, 1:], mask[:, 1:]
        is_end = tf.equal(ids, self.tokenizer.end_token_id)
        before_end = tf.equal(tf.cumsum(tf.cast(is_end, "int32"), axis=1), 0)
        not_pad = tf.not_equal(ids, self.tokenizer.pad_token_id)
        keep = tf.logical_and(tf.logical_and(mask, before_end), not_pad)
        tokens = tf.ragged.boolean_mask(ids, keep)
        return self.tokenizer.detokenize(tokens)

    def save_to_preset(self, preset_dir, **kwargs):
        """As keras-hub's `save_to_preset`, written atomically: into a
        sibling directory renamed into place, so that a killed save leaves
        the previous preset loadable (`keras_fido.utils.atomic_write`)."""
        with atomic_directory(preset_dir) as staging:
            super().save_to_preset(staging, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_passages": self.num_passages,
                "passage_length": self.passage_length,
                "decoder_sequence_length": self.decoder_sequence_length,
                "question_prefix": self.question_prefix,
                "title_prefix": self.title_prefix,
                "context_prefix": self.context_prefix,
            }
        )
        return config
