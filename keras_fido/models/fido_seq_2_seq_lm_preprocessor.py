"""Fusion-in-Decoder preprocessing for FiDO seq2seq language models.

The class below is the public layer. Its jobs live beside it: the example
validator in `keras_fido.data.fid_example` (shared with the FiD json and
tfds readers), the input forms in `fid_features.py`, the FiD string format
and packing in `fid_packing.py`, and generation in
`fido_generation_mixin.py`.
"""

import warnings

import keras
import tensorflow as tf
from keras_hub.models import Seq2SeqLMPreprocessor

from keras_fido._compat import convert_preprocessing_outputs
from keras_fido.data.fid_example import check_string
from keras_fido.models.fid_features import canonicalize
from keras_fido.models.fid_packing import check_tokenizer
from keras_fido.models.fid_packing import fid_strings
from keras_fido.models.fid_packing import pack
from keras_fido.models.fid_packing import truncation_messages
from keras_fido.models.fido_backbone import FiDOBackbone
from keras_fido.models.fido_generation_mixin import FiDOGenerationMixin
from keras_fido.models.fido_tokenizer import FiDOTokenizer
from keras_fido.models.graph_function import graph_function
from keras_fido.models.preset_checks import check_component_preset
from keras_fido.models.preset_checks import default_safe_mode
from keras_fido.utils.atomic_write import atomic_directory
from keras_fido.utils.checks import check_keyword_arguments
from keras_fido.utils.checks import check_positive_int

_FEATURE_KEYS = ("question", "titles", "texts", "target")


@keras.saving.register_keras_serializable(package="keras_fido")
class FiDOSeq2SeqLMPreprocessor(FiDOGenerationMixin, Seq2SeqLMPreprocessor):
    """Fusion-in-Decoder preprocessor for FiDO question answering.

    Turns a question and its retrieved passages into the FiD encoder inputs:
    every passage becomes its own encoder sequence `"question: {question}
    title: {title} context: {text}"` (configurable prefixes joined by
    single spaces, as in the FiD reference code), tokenized, cut to
    `passage_length` tokens *including* a final end token (`tokens[:L - 1]
    + [eos]`, as T5 and FiD tokenize) and padded: a `[batch, num_passages,
    passage_length]` block of token ids and a boolean padding mask.

    The first `num_passages` passages are used, in order; missing ones
    (fewer, or with empty title and text) are all pad, mask `False`. With
    no passages at all, the question alone (`"question: {question}"`) is
    passage 0, so the model can still answer.

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

    Truncation is reported, never silent: `truncation_report(x)` counts
    the passages dropped past `num_passages` and the passage and target
    tokens cut (also inside a graph, e.g.
    `ds.map(preprocessor.truncation_report)`), and calling the layer or
    `generate_preprocess()` eagerly emits a `UserWarning` when something
    was cut, once per layer instance and kind. Inside `tf.data` no warning
    is possible; use `truncation_report()`.

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
        question_length: int or None. For a backbone with passage memory
            (`encoder_live_layers`): every sequence is packed as a block
            of `question_length` positions holding `"question: q"`
            (padded, cut with a warning), then the passage block
            `"title: t context: c"` in the other `L - question_length`
            positions, which a memory encoder reads alone. Must equal the
            backbone's `encoder_question_length`. Defaults to None (FiD's
            one string per passage).
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
        question_length=None,
        **kwargs,
    ):
        check_keyword_arguments(self, kwargs)
        num_passages = check_positive_int("num_passages", num_passages)
        passage_length = check_positive_int("passage_length", passage_length)
        if question_length is not None:
            question_length = check_positive_int(
                "question_length", question_length
            )
            if question_length >= passage_length:
                raise ValueError(
                    "`question_length` (the question block) must leave "
                    "room for the passage in `passage_length`: expected "
                    f"less than {passage_length}. Received: "
                    f"question_length={question_length}"
                )
        decoder_sequence_length = check_positive_int(
            "decoder_sequence_length", decoder_sequence_length
        )
        for name, prefix in (
            ("question_prefix", question_prefix),
            ("title_prefix", title_prefix),
            ("context_prefix", context_prefix),
        ):
            check_string(prefix, name, argument=True)
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
        self.question_length = question_length
        self._warned_kinds = set()

    @property
    def encoder_sequence_length(self):
        """Alias of `passage_length`, the tokens per encoded passage."""
        return self.passage_length

    @encoder_sequence_length.setter
    def encoder_sequence_length(self, value):
        self.passage_length = value

    def build(self, input_shape):
        # The packers are built in the traced `_pack()`, from the
        # tokenizer's ids at that time (`fid_packing`).
        self.built = True

    def _canonicalize(self, x, with_target):
        """Returns `(features, unbatched)`; features are string tensors."""
        return canonicalize(x, with_target)

    @property
    def _prefixes(self):
        return (self.question_prefix, self.title_prefix, self.context_prefix)

    @graph_function
    def _format(self, question, titles, texts, num_passages):
        strings, _, _ = fid_strings(
            question, titles, texts, num_passages, self._prefixes
        )
        return strings

    @graph_function
    def _pack(self, features, lengths):
        """Tokenizes and packs canonical string tensors, all in-graph.

        `lengths` are `(num_passages, passage_length, decoder length)`.
        """
        return pack(
            self.tokenizer,
            features,
            self._prefixes,
            *lengths,
            question_length=self.question_length,
        )

    def _run(self, x, with_target, decoder_sequence_length=None):
        """Canonicalizes `x` and packs it; returns outputs and report."""
        check_tokenizer(self.tokenizer)
        if not self.built:
            self.build(None)
        features, unbatched = self._canonicalize(x, with_target)
        if decoder_sequence_length is None:
            decoder_sequence_length = self.decoder_sequence_length
        length = check_positive_int("sequence_length", decoder_sequence_length)
        with tf.device("cpu"):
            outputs, report = self._pack(
                tuple(features[k] for k in _FEATURE_KEYS),
                (self.num_passages, self.passage_length, length),
            )
        if unbatched:
            outputs = {k: v[0] for k, v in outputs.items()}
        return outputs, report

    def _warn_truncation(self, report):
        """Warns once per instance and kind, when running eagerly."""
        if not tf.executing_eagerly():
            return
        counts = {k: int(v) for k, v in report.items()}
        messages = truncation_messages(
            counts,
            self.num_passages,
            self.passage_length,
            self.decoder_sequence_length,
            self.question_length,
        )
        for kind, message in messages.items():
            if counts.get(kind, 0) > 0 and kind not in self._warned_kinds:
                self._warned_kinds.add(kind)
                warnings.warn(
                    f"{self.__class__.__name__}: {message} This warning is "
                    "shown once per kind; use `truncation_report(x)` for "
                    "counts.",
                    UserWarning,
                    stacklevel=3,
                )

    # === Public API ===

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

    @classmethod
    def from_preset(cls, preset, config_file="preprocessor.json", **kwargs):
        """As keras-hub's `from_preset`, in Keras safe mode, once the
        preset's config names registered keras_fido classes."""
        check_component_preset(preset, config_file, cls, FiDOTokenizer)
        with default_safe_mode():
            return super().from_preset(preset, config_file, **kwargs)

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
                "question_length": self.question_length,
            }
        )
        return config
