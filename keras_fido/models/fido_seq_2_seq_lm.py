"""The FiDO reader: questions and passages in, answers out."""

import keras
import tensorflow as tf
from keras import ops
from keras_hub.models import Seq2SeqLM

from keras_fido.models.fido_backbone import FiDOBackbone
from keras_fido.models.fido_backbone import check_preset_directory
from keras_fido.models.fido_backbone import default_safe_mode
from keras_fido.models.fido_decoding import build_decoding_cache
from keras_fido.models.fido_decoding import decode_with_cache
from keras_fido.models.fido_decoding import first_step_passage_scores
from keras_fido.models.fido_decoding import generate_batch
from keras_fido.models.fido_decoding import mask_padding_vocabulary
from keras_fido.models.fido_presets import backbone_presets
from keras_fido.models.fido_seq_2_seq_lm_preprocessor import (
    FiDOSeq2SeqLMPreprocessor,
)
from keras_fido.models.input_checks import check_inputs
from keras_fido.models.input_checks import is_example_list
from keras_fido.models.input_checks import is_token_dict
from keras_fido.models.input_checks import one_example_batch
from keras_fido.models.passage_memory import check_question_block
from keras_fido.models.passage_memory import encode_with_memory
from keras_fido.utils.atomic_write import atomic_directory
from keras_fido.utils.checks import check_keyword_arguments


@keras.saving.register_keras_serializable(package="keras_fido")
class FiDOSeq2SeqLM(Seq2SeqLM):
    """A Fusion-in-Decoder reader for open-domain question answering.

    Wraps a `FiDOBackbone` (vanilla FiD or FiDO) and, optionally, a
    `FiDOSeq2SeqLMPreprocessor`, for `fit()` on question/passages/answer
    data and `generate()` of answers. Calling the model returns vocabulary
    logits `[B, T, V]`; `fit()` uses token cross-entropy weighted by the
    decoder padding mask.

    Generation is greedy by default, as in the paper; any keras-hub sampler
    works (`compile(sampler="beam")`, `"top_k"`, `"top_p"`, ...). The
    decoding loop is compiled once per input shape (`jax.jit`, XLA
    `tf.function`); on torch it runs eagerly under `torch.no_grad`, or,
    after `compile(jit_compile=True)`, each step runs as one graph
    compiled by `torch.compile` (the first call per shape compiles). It
    caches:

    - the cross-attention K/V of the encoder output, computed once per
      `generate()` call and only for the cross-attending layers
      (`backbone.cross_attention_layer_indices`), with
      `decoder_num_key_value_heads` heads: 4 layers x 1 head for
      FiDO-Base-XL, 12 x 12 for FiD-Base;
    - a self-attention K/V cache per decoder layer, written in place at the
      current step.

    Each step runs `backbone.decoder`, the very layer of the backbone's
    functional graph, so cached decoding and training share one forward
    pass. Beam search expands the caches, never re-running the encoder.

    Args:
        backbone: a `keras_fido.models.FiDOBackbone`.
        preprocessor: a `keras_fido.models.FiDOSeq2SeqLMPreprocessor`, or
            `None` to feed token ids directly.

    Examples:
    ```python
    from keras_fido.data import train_sentencepiece
    from keras_fido.models import FiDOBackbone, FiDOSeq2SeqLM
    from keras_fido.models import FiDOSeq2SeqLMPreprocessor, FiDOTokenizer

    text = ["The capital of France is Paris.", "Its capital is Paris."] * 50
    proto = train_sentencepiece(text, vocab_size=60, hard_vocab_limit=False)
    tokenizer = FiDOTokenizer(proto=proto)
    preprocessor = FiDOSeq2SeqLMPreprocessor(
        tokenizer, num_passages=2, passage_length=64, decoder_sequence_length=8
    )
    # The preset's 32,128 rows exceed the tokenizer: ids it cannot
    # detokenize are never generated.
    backbone = FiDOBackbone.from_preset("fido_tiny")
    reader = FiDOSeq2SeqLM(backbone, preprocessor)
    reader.generate({
        "question": "what is the capital of france",
        "passages": [{"title": "France", "text": "Its capital is Paris."}],
    })
    ```
    """

    backbone_cls = FiDOBackbone
    preprocessor_cls = FiDOSeq2SeqLMPreprocessor

    def __init__(self, backbone, preprocessor=None, **kwargs):
        check_keyword_arguments(self, kwargs)
        check_question_block(backbone, preprocessor)
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor

        # === Functional Model ===
        inputs = backbone.input
        outputs = backbone(inputs)
        outputs = backbone.token_logits(
            outputs["decoder_sequence_output"],
            outputs["encoder_sequence_output"],
            inputs["encoder_padding_mask"],
            inputs["encoder_token_ids"],
            inputs["decoder_token_ids"],
        )
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self._tokenizer_vocabulary = (None, None)
        self.tokenizer_vocabulary_size()  # Refuses a larger tokenizer.

    def compile(
        self,
        optimizer="auto",
        loss="auto",
        *,
        weighted_metrics="auto",
        sampler="greedy",
        **kwargs,
    ):
        """As `keras_hub.models.Seq2SeqLM.compile`, greedy by default."""
        super().compile(
            optimizer=optimizer,
            loss=loss,
            weighted_metrics=weighted_metrics,
            sampler=sampler,
            **kwargs,
        )

    # --- Training ---------------------------------------------------------

    def fit(self, x=None, y=None, batch_size=None, **kwargs):
        """`keras.Model.fit`, also on a list of FiD example dicts.

        A Python list (or one dict) of examples is preprocessed once,
        eagerly, so the preprocessor warns about anything it cuts (passages
        beyond `num_passages`, tokens beyond `passage_length`, targets
        beyond `decoder_sequence_length`); labels come from each example's
        `target` (or first answer). Tensors and `tf.data` datasets are
        preprocessed batch by batch as in keras-hub (there, use
        `preprocessor.truncation_report` to audit what is cut).
        """
        if self.preprocessor is not None and is_example_list(x):
            if y is not None or kwargs.get("sample_weight") is not None:
                raise ValueError(
                    "With FiD example dicts, labels come from each example's "
                    "'target' (or 'answers'); `y` and `sample_weight` must "
                    f"be None. Received: y of type {type(y).__name__}"
                )
            x, y, kwargs["sample_weight"] = self.preprocessor(x)
        if is_token_dict(x):
            self.check_token_inputs(x)
        if isinstance(x, tf.data.Dataset):
            # A dataset keeps its own order: Keras' default `shuffle=True`
            # would only warn that it is ignored.
            kwargs.setdefault("shuffle", False)
        return super().fit(x, y, batch_size=batch_size, **kwargs)

    def predict(self, x, *args, **kwargs):
        """`keras.Model.predict`; token-id dicts are checked first."""
        if is_token_dict(x):
            self.check_token_inputs(x)
        return super().predict(x, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        """`keras.Model.evaluate`; token-id dicts are checked first."""
        if is_token_dict(x):
            self.check_token_inputs(x)
        return super().evaluate(x, *args, **kwargs)

    def check_token_inputs(self, x):
        """Checks a dict of token ids against the backbone's inputs."""
        backbone = self.backbone
        check_inputs(
            x, backbone.vocabulary_size, backbone.encoder_question_length
        )

    def preprocess_samples(self, x, y=None, sample_weight=None):
        # Token ids (preprocessed already, e.g. by `fit` above) pass through.
        if is_token_dict(x):
            return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
        return super().preprocess_samples(x, y, sample_weight)

    # --- Decoding ---------------------------------------------------------

    def encode(
        self, encoder_token_ids, encoder_padding_mask, passage_memory=None
    ):
        """Runs the encoder: `[B, P, L]` ids -> `[B, P*L, d_enc]` states.

        With a backbone that has passage memory (`encoder_live_layers`),
        `passage_memory` `[B, P, L - encoder_question_length, d_enc]`
        (e.g. read from a `keras_fido.memory` store) replaces the memory
        encoder's run over the passages: only the question block and the
        live layers are computed.
        """
        backbone = self.backbone
        if passage_memory is not None:
            return encode_with_memory(
                backbone,
                encoder_token_ids,
                encoder_padding_mask,
                passage_memory,
            )
        return backbone.encoder(
            backbone.encoder_token_embedding(encoder_token_ids),
            encoder_padding_mask,
        )

    def call_decoder_with_cache(
        self,
        decoder_token_ids,
        encoder_padding_mask,
        self_attention_cache,
        cache_update_index,
        cross_attention_cache,
        encoder_token_ids=None,
    ):
        """One decoding step (or several tokens) with the caches.

        Args:
            decoder_token_ids: `[B, T]` tokens at positions
                `cache_update_index ... cache_update_index + T - 1`.
            encoder_padding_mask: `[B, P, L]` or `[B, P*L]`.
            self_attention_cache: the per-step cache of `build_cache`.
            cache_update_index: scalar, position of the first token.
            cross_attention_cache: the per-request cache of `build_cache`.
            encoder_token_ids: `[B, P, L]` passage ids; needed only by a
                backbone with `copy_attention`.

        Returns:
            `(logits [B, T, V], hidden_states [B, T, d], self_attention_cache)`.
        """
        logits, hidden_states, self_attention_cache = decode_with_cache(
            self.backbone,
            decoder_token_ids,
            encoder_padding_mask,
            self_attention_cache,
            cache_update_index,
            cross_attention_cache,
            encoder_token_ids,
        )
        logits = mask_padding_vocabulary(
            logits, self.tokenizer_vocabulary_size()
        )
        return logits, hidden_states, self_attention_cache

    def tokenizer_vocabulary_size(self):
        """The tokenizer's piece count, or `None` without a tokenizer
        vocabulary; decoding never emits an id at or beyond it.

        A backbone may have more embedding rows than its tokenizer has
        pieces (T5: 32,128 rows for 32,100 pieces); those ids cannot be
        detokenized, so their logits are masked in every decoding step
        (`call_decoder_with_cache`: `generate`, the exported SavedModel,
        the evaluation callbacks). A tokenizer with more pieces than the
        backbone's vocabulary is refused: its upper ids have no embedding.
        """
        tokenizer = getattr(self.preprocessor, "tokenizer", None)
        proto = getattr(tokenizer, "proto", None)
        key = (id(tokenizer), id(proto))
        cached_key, size = self._tokenizer_vocabulary
        if key == cached_key:
            return size
        size = None if proto is None else int(tokenizer.vocabulary_size())
        if size is not None and size > self.backbone.vocabulary_size:
            raise ValueError(
                "The tokenizer must not have more pieces than the backbone "
                "has vocabulary rows (its upper ids would have no "
                f"embedding). Received: tokenizer.vocabulary_size()={size}, "
                f"backbone.vocabulary_size={self.backbone.vocabulary_size}"
            )
        self._tokenizer_vocabulary = (key, size)
        return size

    def build_cache(
        self,
        encoder_token_ids,
        encoder_padding_mask,
        max_length,
        encoder_sequence_output=None,
        passage_memory=None,
    ):
        """Runs the encoder once and allocates every decoding cache.

        `encoder_sequence_output` `[B, P*L, d_enc]`, when given, is used
        instead of running the encoder (precomputed passage encodings);
        `passage_memory` runs it from stored memory (see `encode`).

        Returns `(self_attention_cache, cross_attention_cache)`: the
        per-layer self-attention caches, which every step updates, and the
        cross-attending layers' K/V, computed once. With a copy head, they
        are `(self_attention_cache, copy_state)`, with the copy
        distribution `[B, P*L]` the next step continues (zeros before the
        first), and `(cross_attention_cache, encoder_keys)`, with the copy
        pointer's keys `[B, P*L, key_dim]`.
        """
        if encoder_sequence_output is None:
            encoder_sequence_output = self.encode(
                encoder_token_ids, encoder_padding_mask, passage_memory
            )
        return build_decoding_cache(
            self.backbone,
            encoder_sequence_output,
            encoder_padding_mask,
            max_length,
        )

    def generate_step(self, inputs, stop_token_ids=None):
        """Generates a batch; compiled by `make_generate_function`.

        Args:
            inputs: dict of `encoder_token_ids` `[B, P, L]`,
                `encoder_padding_mask` `[B, P, L]`, `decoder_token_ids`
                `[B, T]` (the prompt, usually the start token, then
                anything) and `decoder_padding_mask` `[B, T]` (True on the
                prompt tokens, which are kept as given). An optional
                `encoder_sequence_output` `[B, P*L, d_enc]` replaces the
                encoder run (`encoder_token_ids` may then be omitted); an
                optional `passage_memory` replaces the memory encoder's
                (see `encode`).
            stop_token_ids: tuple of ids that end a sequence, or None to run
                all `T` steps.

        Returns:
            dict with the generated `decoder_token_ids` and a
            `decoder_padding_mask` that ends after the stop token.
        """
        return generate_batch(self, inputs, stop_token_ids)

    def make_generate_function(self):
        """keras-hub's, except on torch with `jit_compile=True`: each
        decoding step then runs as one graph compiled by `torch.compile`
        (see `keras_fido.models.torch_generation`)."""
        if self.generate_function is None and self._compiles_torch_steps():
            from keras_fido.models.torch_generation import (
                torch_generate_function,
            )

            self.generate_function = torch_generate_function(self)
        return super().make_generate_function()

    def _compiles_torch_steps(self):
        return (
            keras.config.backend() == "torch"
            and self.jit_compile is True
            and not self.run_eagerly
        )

    # keras-hub's private hook, see `keras_fido._compat`.
    def _normalize_generate_inputs(self, inputs):
        # One FiD example (a dict whose "question" is a string) is a batch
        # of one whose answer comes back as a plain string.
        preprocessor = self.preprocessor
        if preprocessor is not None and isinstance(inputs, dict):
            if is_example_list(inputs):  # A string "question".
                return one_example_batch(preprocessor, inputs), True
        if isinstance(inputs, (list, tuple)) and self.preprocessor is not None:
            return [list(inputs)], False
        if is_token_dict(inputs) and "encoder_sequence_output" not in inputs:
            # Checked here, on the host, once: not in the compiled loop.
            self.check_token_inputs(inputs)
        return super()._normalize_generate_inputs(inputs)

    # --- Passage relevance ------------------------------------------------

    def score_passages(self, inputs):
        """FiD's per-passage relevance from the decoder's cross-attention.

        Izacard & Grave ("Distilling Knowledge from Reader to Retriever",
        https://arxiv.org/abs/2012.04584) score a passage by the attention
        it receives: here the cross-attention probabilities of the first
        decoding step (the query at the start token), averaged over heads,
        over cross-attending layers and over the passage's real tokens.

        Args:
            inputs: raw inputs (with a preprocessor attached) or a dict of
                `encoder_token_ids` and `encoder_padding_mask` `[B, P, L]`.

        A reader with a copy head (`copy_attention`) scores a passage
        instead by the mass its copy pointer puts on the passage's tokens
        at the first step: where it would copy its answer from.

        Returns:
            A numpy float32 array `[B, P]`; passages that are all padding
            score 0. Each row of scores over real tokens sums to
            `1 / (tokens per passage)` on average (to 1 with a copy head),
            so compare within a row.
        """
        if self.preprocessor is not None and not is_token_dict(inputs):
            batches, _ = self._normalize_generate_inputs(inputs)
            inputs = self.preprocessor.generate_preprocess(batches[0])
        token_ids = ops.convert_to_tensor(inputs["encoder_token_ids"])
        padding_mask = ops.cast(
            ops.convert_to_tensor(inputs["encoder_padding_mask"]), "bool"
        )
        encoded = self.encode(token_ids, padding_mask)
        return ops.convert_to_numpy(
            first_step_passage_scores(
                self.backbone, token_ids, padding_mask, encoded
            )
        )

    # --- Presets ----------------------------------------------------------

    def save_to_preset(self, preset_dir, **kwargs):
        """As keras-hub's `save_to_preset`, written atomically: into a
        sibling directory renamed into place, so that a killed save leaves
        the previous preset loadable (`keras_fido.utils.atomic_write`)."""
        with atomic_directory(preset_dir) as staging:
            super().save_to_preset(staging, **kwargs)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Builds a named architecture, or loads a saved preset directory.

        Named presets (`FiDOBackbone.presets`) are architectures with random
        weights and no vocabulary: pass `preprocessor=` to attach one. A
        directory written by `save_to_preset` restores backbone, tokenizer,
        preprocessor and weights, in Keras safe mode (no lambdas, no Python
        code), even after `keras.config.enable_unsafe_deserialization()`.
        """
        if isinstance(preset, str) and preset in backbone_presets:
            preprocessor = kwargs.pop("preprocessor", None)
            backbone = FiDOBackbone.from_preset(preset, **kwargs)
            return cls(backbone=backbone, preprocessor=preprocessor)
        check_preset_directory(preset, load_weights, FiDOBackbone)
        with default_safe_mode():
            return super().from_preset(
                preset, load_weights=load_weights, **kwargs
            )
