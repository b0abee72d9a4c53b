"""Generation pre- and post-processing of the FiDO preprocessor."""

import tensorflow as tf

from keras_fido._compat import convert_preprocessing_outputs
from keras_fido.models.fid_features import decoder_features
from keras_fido.models.fid_packing import answer_tokens
from keras_fido.models.fid_packing import check_tokenizer
from keras_fido.models.fid_packing import start_prompt
from keras_fido.models.graph_function import graph_function
from keras_fido.utils.checks import check_positive_int


class FiDOGenerationMixin:
    """`generate_preprocess` and `generate_postprocess` of
    `FiDOSeq2SeqLMPreprocessor`: packed inputs in, answer strings out.

    Kept beside the layer's training path; it uses the layer's `_run`,
    `_warn_truncation`, `tokenizer` and `decoder_sequence_length`.
    """

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
        ids, mask = start_prompt(
            tf.shape(outputs["encoder_token_ids"])[:-2],
            length,
            self.tokenizer.start_token_id,
        )
        outputs["decoder_token_ids"] = ids
        outputs["decoder_padding_mask"] = mask
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
        check_tokenizer(self.tokenizer)
        ids, mask = decoder_features(x)
        unbatched = ids.shape.rank == 1
        if unbatched:
            ids, mask = ids[tf.newaxis], mask[tf.newaxis]
        with tf.device("cpu"):
            strings = self._detokenize(ids, mask)
        if unbatched:
            strings = strings[0]
        return convert_preprocessing_outputs(strings)

    @graph_function
    def _detokenize(self, ids, mask):
        tokens = answer_tokens(
            ids,
            mask,
            self.tokenizer.end_token_id,
            self.tokenizer.pad_token_id,
        )
        return self.tokenizer.detokenize(tokens)
