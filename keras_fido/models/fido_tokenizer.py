"""SentencePiece tokenizer for FiDO models."""

import os

import keras
from keras_hub.models import T5Tokenizer

from keras_fido._compat import CONFIG_FILE
from keras_fido._compat import TOKENIZER_CONFIG_FILE
from keras_fido._compat import KerasPresetLoader
from keras_fido.models.fido_backbone import FiDOBackbone
from keras_fido.models.preset_checks import check_component_preset
from keras_fido.models.preset_checks import default_safe_mode
from keras_fido.utils.atomic_write import atomic_directory
from keras_fido.utils.atomic_write import restore_interrupted
from keras_fido.utils.checks import check_keyword_arguments


@keras.saving.register_keras_serializable(package="keras_fido")
class FiDOTokenizer(T5Tokenizer):
    """FiDO tokenizer, a T5 SentencePiece tokenizer with a T5 decoder start.

    FiDO reuses the T5 vocabulary. This layer is a
    `keras_hub.models.T5Tokenizer` that checks the vocabulary holds the T5
    special tokens: `"</s>"` (end of sequence, `end_token_id`) and `"<pad>"`
    (padding, `pad_token_id`). Unlike the keras-hub T5 tokenizer, which sets
    the start token to `"</s>"`, the start token here is `"<pad>"`: T5 and
    FiD feed the pad id as the first decoder token, so `start_token_id ==
    pad_token_id` (0 in T5 vocabularies).

    Tokenization runs in the TensorFlow graph (via tensorflow-text) inside
    `tf.data` pipelines and `tf.function`s, and through the `sentencepiece`
    package when called eagerly. A scalar string gives a dense 1D tensor, a
    batch of strings gives a `tf.RaggedTensor` (or python lists eagerly).

    T5's sentinel tokens `"<extra_id_0>"`, `"<extra_id_1>"`, ... mark the
    spans masked out by span corruption. In T5 vocabularies they are the
    last ids, counting down: `"<extra_id_0>"` is the highest id.
    `sentinel_token_ids` lists the ones this vocabulary holds
    (`keras_fido.data.train_sentencepiece(..., extra_ids=100)` appends them
    to a new vocabulary).

    The SentencePiece proto is not part of `get_config()`; it is stored as an
    asset. `save_to_preset(dir)` writes `tokenizer.json` and
    `assets/tokenizer/vocabulary.spm`, and `from_preset(dir)` reads them
    back. `from_preset()` also accepts a directory written by a lone
    tokenizer (no `config.json` from a backbone).

    Args:
        proto: Either a `string` path to a SentencePiece proto file, or a
            `bytes` object with a serialized SentencePiece proto, or `None`
            when the vocabulary is loaded later from assets.
        **kwargs: Passed on to `keras_hub.models.T5Tokenizer`, e.g.
            `sequence_length`, `dtype`, `add_eos`.

    Call arguments:
        inputs: A string, a list of strings, or a string tensor of any shape.

    Examples:

    ```python
    proto = keras_fido.data.train_sentencepiece(
        ["the capital of France is Paris"] * 8,
        vocab_size=20,
        model_type="word",
    )
    tokenizer = keras_fido.models.FiDOTokenizer(proto=proto)
    tokenizer("the capital of France")
    tokenizer(["the capital", "of France"])
    tokenizer.detokenize(tokenizer("the capital of France"))
    assert tokenizer.start_token_id == tokenizer.pad_token_id == 0

    # Save and reload through a preset directory.
    tokenizer.save_to_preset("./fido_tokenizer")
    tokenizer = keras_fido.models.FiDOTokenizer.from_preset(
        "./fido_tokenizer"
    )
    ```
    """

    backbone_cls = FiDOBackbone

    def __init__(self, proto, **kwargs):
        check_keyword_arguments(self, kwargs)
        super().__init__(proto=proto, **kwargs)
        # T5 decoders start from the pad token, not from "</s>". The special
        # token ids are re-read from these names whenever a proto is set (e.g.
        # when assets are loaded), so renaming the token is enough.
        self.start_token = self.pad_token
        self.start_token_id = self.pad_token_id

    @property
    def sentinel_token_ids(self):
        """Ids of `"<extra_id_0>"`, `"<extra_id_1>"`, ..., in that order.

        The list stops at the first missing sentinel; it is empty for a
        vocabulary without sentinels. In T5's layout the ids count down
        from the top of the vocabulary: `[V - 1, V - 2, ...]`.
        """
        self._check_vocabulary()
        vocabulary = self.get_vocabulary()
        ids = []
        while True:
            token = f"<extra_id_{len(ids)}>"
            index = self.token_to_id(token)
            if index >= len(vocabulary) or vocabulary[index] != token:
                return ids
            ids.append(index)

    def save_to_preset(self, preset_dir, **kwargs):
        """As keras-hub's `save_to_preset`, written atomically: into a
        sibling directory renamed into place, so that a killed save leaves
        the previous preset loadable (`keras_fido.utils.atomic_write`)."""
        with atomic_directory(preset_dir) as staging:
            super().save_to_preset(staging, **kwargs)

    @classmethod
    def from_preset(cls, preset, config_file=TOKENIZER_CONFIG_FILE, **kwargs):
        """Instantiate a `FiDOTokenizer` from a preset.

        Args:
            preset: string. A preset handle or a path to a local preset
                directory. A local directory written by
                `tokenizer.save_to_preset()` alone (with no backbone
                `config.json`) is accepted too.
            config_file: string. The tokenizer config file in the preset.
            **kwargs: Overrides for the tokenizer config.

        Examples:
        ```python
        tokenizer.save_to_preset("./fido_tokenizer")
        tokenizer = keras_fido.models.FiDOTokenizer.from_preset(
            "./fido_tokenizer"
        )
        ```
        """
        restore_interrupted(preset)
        check_component_preset(preset, config_file, cls)
        if (
            isinstance(preset, str)
            and os.path.isdir(preset)
            and not os.path.exists(os.path.join(preset, CONFIG_FILE))
        ):
            if not os.path.exists(os.path.join(preset, config_file)):
                raise ValueError(
                    "`preset` must be a directory holding either a "
                    f"`{CONFIG_FILE}` or a tokenizer config `{config_file}`. "
                    f"Received: preset={preset!r}, which holds neither."
                )
            # A tokenizer-only preset: no backbone config to dispatch on.
            loader = KerasPresetLoader(preset, config=None)
            with default_safe_mode():
                return loader.load_tokenizer(cls, config_file, **kwargs)
        with default_safe_mode():
            return super().from_preset(preset, config_file, **kwargs)
