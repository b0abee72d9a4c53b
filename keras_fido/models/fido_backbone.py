"""The FiD / FiDO encoder-decoder backbone."""

import keras
from keras import ops
from keras_hub.layers import ReversibleEmbedding
from keras_hub.models import Backbone

from keras_fido._compat import classproperty
from keras_fido.layers.copy_attention_head import CopyAttentionHead
from keras_fido.layers.copy_attention_head import check_key_offsets
from keras_fido.layers.fido_decoder import FiDODecoder
from keras_fido.layers.fido_encoder import FiDOEncoder
from keras_fido.layers.fido_encoder import check_live_layers
from keras_fido.models.fido_layout_map import fido_layout_map
from keras_fido.models.fido_presets import backbone_presets

# INPUT_RANKS and check_preset_config are imported from here too.
from keras_fido.models.input_checks import INPUT_RANKS  # noqa: F401
from keras_fido.models.input_checks import check_inputs
from keras_fido.models.preset_checks import check_preset_config  # noqa: F401
from keras_fido.models.preset_checks import check_preset_directory
from keras_fido.models.preset_checks import default_safe_mode
from keras_fido.utils.atomic_write import atomic_directory
from keras_fido.utils.checks import check_keyword_arguments


@keras.saving.register_keras_serializable(package="keras_fido")
class FiDOBackbone(Backbone):
    """Fusion-in-Decoder backbone with FiDO's three knobs.

    A T5.1.1 encoder reads each of `P` retrieved passages separately and a
    T5.1.1 decoder attends to all `P*L` encoded tokens at once (Izacard &
    Grave, https://arxiv.org/abs/2007.01282). FiDO (de Jong et al.,
    https://arxiv.org/abs/2212.08153) makes the decoder cheap to run:

    - `cross_attention_interval=K`: cross-attention only in decoder layers
      K, 2K, ... (layer-sparse cross-attention);
    - `decoder_num_key_value_heads`: 1 gives multi-query attention;
    - separate `encoder_*` and `decoder_*` sizes: a larger decoder.

    Vanilla FiD is this class with `cross_attention_interval=1`,
    `decoder_num_key_value_heads=decoder_num_heads` and equal sizes; it then
    holds exactly T5.1.1's weights (`keras_fido.convert`). When the encoder
    and decoder widths are equal they share one input embedding, as T5
    does; otherwise each has its own.

    Args:
        vocabulary_size: int. Size of the token vocabulary.
        encoder_num_layers, encoder_hidden_dim, encoder_intermediate_dim,
        encoder_num_heads: ints. Encoder depth, width, MLP width, heads.
        decoder_num_layers, decoder_hidden_dim, decoder_intermediate_dim,
        decoder_num_heads: ints. Decoder depth, width, MLP width, heads.
        decoder_num_key_value_heads: int. K/V heads of the decoder's self-
            and cross-attention; must divide `decoder_num_heads`. Defaults
            to `decoder_num_heads` (multi-head).
        key_value_dim: int. Width of every attention head. Defaults to 64.
        cross_attention_interval: int. Decoder layers `K, 2K, ...` (1-based)
            cross-attend. Defaults to 1 (every layer).
        relative_attention_num_buckets: int. Defaults to 32.
        relative_attention_max_distance: int. Defaults to 128.
        dropout: float. Dropout rate. Defaults to 0.1.
        layer_norm_epsilon: float. Defaults to 1e-6.
        tie_embedding_weights: bool. Use the input embedding as the output
            projection (T5 v1.0 style, with its `d**-0.5` logit scaling).
            Defaults to False (T5.1.1).
        copy_attention: bool. Add a copy head
            (`keras_fido.layers.CopyAttentionHead`): the output distribution
            mixes the vocabulary softmax with a pointer over the passage
            tokens that continues copied spans, so a reader can answer
            with pieces it has never produced as targets. `token_logits`
            then needs the encoder's outputs and both token ids.
            Defaults to False (T5.1.1's output).
        copy_key_offsets: tuple of ints. With `copy_attention`, the
            neighbouring tokens (by offset) whose states each pointer key
            also reads (`CopyAttentionHead`'s `key_offsets`). Defaults to
            `(-1, 1)`.
        encoder_live_layers: int or None. Passage memory (LUMEN, de Jong et
            al., https://arxiv.org/abs/2301.10448): only the last
            `encoder_live_layers` encoder layers run per query over the
            question joined to each passage; the first ones encode each
            passage alone, so their output can be precomputed and stored
            (`keras_fido.memory`). Defaults to None: every layer is live,
            which is FiD's encoder exactly.
        encoder_question_length: int. With `encoder_live_layers`, the
            question block's positions at the start of every passage
            sequence (the preprocessor's `question_length`). Defaults to
            None.
        dtype: a dtype policy (e.g. `"float32"`, `"mixed_bfloat16"`).

    Inputs:
        encoder_token_ids: int `[B, P, L]`, tokenized passages.
        encoder_padding_mask: `[B, P, L]`, 1 on real tokens.
        decoder_token_ids: int `[B, T]`.
        decoder_padding_mask: `[B, T]`.

    Outputs:
        encoder_sequence_output: `[B, P*L, encoder_hidden_dim]`.
        decoder_sequence_output: `[B, T, decoder_hidden_dim]`.

    Examples:
    ```python
    backbone = keras_fido.models.FiDOBackbone.from_preset("fido_tiny")
    backbone.cross_attention_layer_indices  # [3, 6]
    outputs = backbone({
        "encoder_token_ids": np.ones((1, 3, 8), "int32"),
        "encoder_padding_mask": np.ones((1, 3, 8), "int32"),
        "decoder_token_ids": np.zeros((1, 4), "int32"),
        "decoder_padding_mask": np.ones((1, 4), "int32"),
    })
    outputs["encoder_sequence_output"].shape  # (1, 24, 64)
    outputs["decoder_sequence_output"].shape  # (1, 4, 96)
    ```
    """

    def __init__(
        self,
        vocabulary_size,
        encoder_num_layers,
        encoder_hidden_dim,
        encoder_intermediate_dim,
        encoder_num_heads,
        decoder_num_layers,
        decoder_hidden_dim,
        decoder_intermediate_dim,
        decoder_num_heads,
        decoder_num_key_value_heads=None,
        key_value_dim=64,
        cross_attention_interval=1,
        relative_attention_num_buckets=32,
        relative_attention_max_distance=128,
        dropout=0.1,
        layer_norm_epsilon=1e-6,
        tie_embedding_weights=False,
        copy_attention=False,
        copy_key_offsets=(-1, 1),
        encoder_live_layers=None,
        encoder_question_length=None,
        dtype=None,
        **kwargs,
    ):
        check_keyword_arguments(self, kwargs)
        encoder_live_layers, encoder_question_length = check_live_layers(
            encoder_live_layers,
            encoder_question_length,
            encoder_num_layers,
            prefix="encoder_",
        )
        if decoder_num_key_value_heads is None:
            decoder_num_key_value_heads = decoder_num_heads

        # === Layers ===
        self.token_embedding = ReversibleEmbedding(
            input_dim=vocabulary_size,
            output_dim=decoder_hidden_dim,
            tie_weights=tie_embedding_weights,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0),
            dtype=dtype,
            name="token_embedding",
        )
        if encoder_hidden_dim == decoder_hidden_dim:
            self.encoder_token_embedding = self.token_embedding
        else:
            self.encoder_token_embedding = keras.layers.Embedding(
                input_dim=vocabulary_size,
                output_dim=encoder_hidden_dim,
                embeddings_initializer=keras.initializers.RandomNormal(
                    stddev=1.0
                ),
                dtype=dtype,
                name="encoder_token_embedding",
            )
        self.encoder = FiDOEncoder(
            num_layers=encoder_num_layers,
            hidden_dim=encoder_hidden_dim,
            intermediate_dim=encoder_intermediate_dim,
            num_heads=encoder_num_heads,
            key_value_dim=key_value_dim,
            relative_attention_num_buckets=relative_attention_num_buckets,
            relative_attention_max_distance=relative_attention_max_distance,
            dropout=dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            live_layers=encoder_live_layers,
            question_length=encoder_question_length,
            dtype=dtype,
            name="encoder",
        )
        self.decoder = FiDODecoder(
            num_layers=decoder_num_layers,
            hidden_dim=decoder_hidden_dim,
            intermediate_dim=decoder_intermediate_dim,
            num_heads=decoder_num_heads,
            num_key_value_heads=decoder_num_key_value_heads,
            key_value_dim=key_value_dim,
            encoder_hidden_dim=encoder_hidden_dim,
            cross_attention_interval=cross_attention_interval,
            relative_attention_num_buckets=relative_attention_num_buckets,
            relative_attention_max_distance=relative_attention_max_distance,
            dropout=dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            dtype=dtype,
            name="decoder",
        )
        copy_head = None
        if copy_attention:
            copy_head = CopyAttentionHead(
                vocabulary_size=vocabulary_size,
                encoder_hidden_dim=encoder_hidden_dim,
                key_dim=key_value_dim,
                key_offsets=copy_key_offsets,
                dtype=dtype,
                name="copy_head",
            )
            # Built here, so a backbone saved alone carries its weights.
            copy_head.build(
                (None, None, vocabulary_size), (None, None, decoder_hidden_dim)
            )

        # === Functional Model ===
        encoder_token_ids = keras.Input(
            shape=(None, None), dtype="int32", name="encoder_token_ids"
        )
        encoder_padding_mask = keras.Input(
            shape=(None, None), dtype="int32", name="encoder_padding_mask"
        )
        decoder_token_ids = keras.Input(
            shape=(None,), dtype="int32", name="decoder_token_ids"
        )
        decoder_padding_mask = keras.Input(
            shape=(None,), dtype="int32", name="decoder_padding_mask"
        )
        encoder_output = self.encoder(
            self.encoder_token_embedding(encoder_token_ids),
            encoder_padding_mask,
        )
        decoder_output = self.decoder(
            self.token_embedding(decoder_token_ids),
            encoder_output,
            encoder_padding_mask=encoder_padding_mask,
            decoder_padding_mask=decoder_padding_mask,
        )
        super().__init__(
            inputs={
                "encoder_token_ids": encoder_token_ids,
                "encoder_padding_mask": encoder_padding_mask,
                "decoder_token_ids": decoder_token_ids,
                "decoder_padding_mask": decoder_padding_mask,
            },
            outputs={
                "encoder_sequence_output": encoder_output,
                "decoder_sequence_output": decoder_output,
            },
            dtype=dtype,
            **kwargs,
        )

        # Outside the functional graph (it needs the task's inputs), so
        # tracked once the model exists: torch registers modules only then.
        self.copy_head = copy_head

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.encoder_num_layers = encoder_num_layers
        self.encoder_hidden_dim = encoder_hidden_dim
        self.encoder_intermediate_dim = encoder_intermediate_dim
        self.encoder_num_heads = encoder_num_heads
        self.decoder_num_layers = decoder_num_layers
        self.decoder_hidden_dim = decoder_hidden_dim
        self.decoder_intermediate_dim = decoder_intermediate_dim
        self.decoder_num_heads = decoder_num_heads
        self.decoder_num_key_value_heads = decoder_num_key_value_heads
        self.key_value_dim = key_value_dim
        self.cross_attention_interval = cross_attention_interval
        self.relative_attention_num_buckets = relative_attention_num_buckets
        self.relative_attention_max_distance = relative_attention_max_distance
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.tie_embedding_weights = tie_embedding_weights
        self.copy_attention = copy_attention
        self.copy_key_offsets = check_key_offsets(copy_key_offsets)
        self.encoder_live_layers = encoder_live_layers
        self.encoder_question_length = encoder_question_length

    def save_to_preset(self, preset_dir, **kwargs):
        """As keras-hub's `save_to_preset`, written atomically: into a
        sibling directory renamed into place, so that a killed save leaves
        the previous preset loadable (`keras_fido.utils.atomic_write`)."""
        with atomic_directory(preset_dir) as staging:
            super().save_to_preset(staging, **kwargs)

    @classproperty
    def presets(cls):
        """The named architectures, `{name: {"description", "config"}}`."""
        return dict(backbone_presets)

    @property
    def cross_attention_layer_indices(self):
        """1-based indices of the decoder layers that cross-attend."""
        return list(self.decoder.cross_attention_layer_indices)

    @classmethod
    def get_layout_map(
        cls,
        device_mesh,
        model_parallel_dim_name="model",
        data_parallel_dim_name="batch",
    ):
        """A `keras.distribution.LayoutMap` for model-parallel training:
        Megatron-style sharding of every layer over the mesh's
        `model_parallel_dim_name` axis, replication along
        `data_parallel_dim_name`. What is sharded how, with an example:
        `keras_fido.models.fido_layout_map.fido_layout_map`."""
        return fido_layout_map(
            device_mesh, model_parallel_dim_name, data_parallel_dim_name
        )

    def vocabulary_logits(self, decoder_sequence_output):
        """T5's output projection: `[B, T, d]` states -> `[B, T, V]`."""
        x = decoder_sequence_output
        if self.tie_embedding_weights:
            # T5 v1.0 rescales before reusing the input embedding.
            x = x * ops.cast(self.decoder_hidden_dim**-0.5, x.dtype)
        return self.token_embedding(x, reverse=True)

    def token_logits(
        self,
        decoder_sequence_output,
        encoder_sequence_output=None,
        encoder_padding_mask=None,
        encoder_token_ids=None,
        decoder_token_ids=None,
    ):
        """Output logits `[B, T, V]` of a whole decoder sequence.

        Without a copy head, the vocabulary logits of the states. With
        `copy_attention`, also give the `encoder_sequence_output` `[B, S,
        d_enc]`, the `encoder_padding_mask` and `encoder_token_ids` `[B,
        P, L]` and the `decoder_token_ids` `[B, T]` that produced the
        states: the result is then the log of the copy head's mixed
        distribution (cached decoding steps it with `copy_head.decode`).
        """
        logits = self.vocabulary_logits(decoder_sequence_output)
        if self.copy_head is None:
            return logits
        copy_inputs = {
            "encoder_sequence_output": encoder_sequence_output,
            "encoder_padding_mask": encoder_padding_mask,
            "encoder_token_ids": encoder_token_ids,
            "decoder_token_ids": decoder_token_ids,
        }
        missing = [k for k, v in copy_inputs.items() if v is None]
        if missing:
            raise ValueError(
                "A backbone with `copy_attention=True` needs "
                f"{', '.join(f'`{k}`' for k in copy_inputs)} to form its "
                f"output distribution. Received: None for {', '.join(missing)}"
            )
        return self.copy_head(
            logits,
            decoder_sequence_output,
            self.copy_head.encoder_keys(encoder_sequence_output),
            encoder_padding_mask,
            encoder_token_ids,
            decoder_token_ids,
        )

    def call(self, inputs, training=None, mask=None):
        check_inputs(inputs, self.vocabulary_size, self.encoder_question_length)
        return super().call(inputs, training=training, mask=mask)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "encoder_num_layers": self.encoder_num_layers,
                "encoder_hidden_dim": self.encoder_hidden_dim,
                "encoder_intermediate_dim": self.encoder_intermediate_dim,
                "encoder_num_heads": self.encoder_num_heads,
                "decoder_num_layers": self.decoder_num_layers,
                "decoder_hidden_dim": self.decoder_hidden_dim,
                "decoder_intermediate_dim": self.decoder_intermediate_dim,
                "decoder_num_heads": self.decoder_num_heads,
                "decoder_num_key_value_heads": self.decoder_num_key_value_heads,
                "key_value_dim": self.key_value_dim,
                "cross_attention_interval": self.cross_attention_interval,
                "relative_attention_num_buckets": (
                    self.relative_attention_num_buckets
                ),
                "relative_attention_max_distance": (
                    self.relative_attention_max_distance
                ),
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "tie_embedding_weights": self.tie_embedding_weights,
                "copy_attention": self.copy_attention,
                "copy_key_offsets": list(self.copy_key_offsets),
                "encoder_live_layers": self.encoder_live_layers,
                "encoder_question_length": self.encoder_question_length,
            }
        )
        return config

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Builds a named architecture, or loads a saved preset directory.

        A directory is loaded in Keras safe mode (no lambdas, no Python
        code), even after `keras.config.enable_unsafe_deserialization()`;
        see `check_preset_directory` for what is checked first.

        Args:
            preset: a name from `FiDOBackbone.presets` (builds that
                architecture with random weights: no FiDO weights are
                published) or a directory written by `save_to_preset`.
            load_weights: bool. For a directory, whether to load its weights.
            **kwargs: overrides of the config (e.g. `dtype`, `dropout`).
        """
        if isinstance(preset, str) and preset in backbone_presets:
            config = {**backbone_presets[preset]["config"], **kwargs}
            return cls(**config)
        check_preset_directory(preset, load_weights, FiDOBackbone)
        with default_safe_mode():
            return super().from_preset(
                preset, load_weights=load_weights, **kwargs
            )
