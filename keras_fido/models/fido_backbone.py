"""The FiD / FiDO encoder-decoder backbone."""

import json
import os

import keras
from keras import ops
from keras_hub.layers import ReversibleEmbedding
from keras_hub.models import Backbone

from keras_fido._compat import SafeModeScope
from keras_fido._compat import classproperty
from keras_fido._compat import get_preset_file
from keras_fido.layers.copy_attention_head import CopyAttentionHead
from keras_fido.layers.fido_decoder import FiDODecoder
from keras_fido.layers.fido_encoder import FiDOEncoder
from keras_fido.models.fido_presets import backbone_presets
from keras_fido.utils.atomic_write import atomic_directory
from keras_fido.utils.atomic_write import restore_interrupted
from keras_fido.utils.checks import check_keyword_arguments
from keras_fido.utils.checks import check_token_ids
from keras_fido.utils.checks import check_weights_file

INPUT_RANKS = {
    "encoder_token_ids": 3,
    "encoder_padding_mask": 3,
    "decoder_token_ids": 2,
    "decoder_padding_mask": 2,
}


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
        dtype=None,
        **kwargs,
    ):
        check_keyword_arguments(self, kwargs)
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
        """A `keras.distribution.LayoutMap` for model-parallel training.

        Shards the weights over the mesh's model axis Megatron-style, so
        that each device holds a slice of every layer: the encoder's
        query/key/value kernels and the decoder's query kernels by head,
        every attention output kernel by head (its input), feed-forward
        input/gate kernels by intermediate unit and the output kernel by
        its input, token embeddings and the untied output projection by
        vocabulary entry. The decoder's key/value kernels are replicated
        (a multi-query decoder has one K/V head; see the comment in the
        code), as are the relative position biases and the norm scales.
        Weights are replicated along the data axis, over which the batch
        is split.

        The model axis size must divide the encoder and decoder head
        counts, the feed-forward widths and the vocabulary size (JAX only
        shards evenly): up to 4 for the tiny and base presets, 2 for those
        with 6 heads (`fid_small`, `fido_small_large`), 16 or more for the
        large ones.

        Args:
            device_mesh: a `keras.distribution.DeviceMesh`.
            model_parallel_dim_name: str. The mesh axis the weights are
                sharded over. Defaults to `"model"`.
            data_parallel_dim_name: str. The mesh axis the batch is split
                over. Defaults to `"batch"`.

        Returns:
            A `keras.distribution.LayoutMap` for `FiDOBackbone` weights
            (also inside a `FiDOSeq2SeqLM`).

        Examples:
        ```python
        mesh = keras.distribution.DeviceMesh(
            shape=(2, 4),
            axis_names=("batch", "model"),
            devices=keras.distribution.list_devices(),
        )
        layout_map = keras_fido.models.FiDOBackbone.get_layout_map(mesh)
        distribution = keras.distribution.ModelParallel(
            layout_map=layout_map, batch_dim_name="batch"
        )
        with distribution.scope():
            backbone = keras_fido.models.FiDOBackbone.from_preset(
                "fido_tiny"
            )
        ```
        """
        if not isinstance(device_mesh, keras.distribution.DeviceMesh):
            raise ValueError(
                "`device_mesh` must be a `keras.distribution.DeviceMesh`. "
                f"Received: device_mesh of type {type(device_mesh).__name__}"
            )
        for arg, name in (
            ("model_parallel_dim_name", model_parallel_dim_name),
            ("data_parallel_dim_name", data_parallel_dim_name),
        ):
            if name not in device_mesh.axis_names:
                raise ValueError(
                    f"`{arg}` must be an axis of the device mesh, one of "
                    f"{list(device_mesh.axis_names)}. Received: {arg}={name!r}"
                )
        m = model_parallel_dim_name
        layer = r"(encoder|decoder)/layer_\d+"
        attention = layer + "/(self|cross)_attention"
        rules = [
            # [V, d] and the untied output projection [d, V]: by vocabulary.
            (r"(encoder_)?token_embedding/embeddings", (m, None)),
            ("token_embedding/reverse_embeddings", (None, m)),
            # [d, heads, d_kv]: by head. The encoder is always multi-head.
            (
                r"encoder/layer_\d+/self_attention/(query|key|value)/kernel",
                (None, m, None),
            ),
            (
                r"decoder/layer_\d+/(self|cross)_attention/query/kernel",
                (None, m, None),
            ),
            # The decoder's K/V kernels [d, kv_heads, d_kv] have kv_heads=1
            # in FiDO (multi-query), which no model axis divides, so they
            # are replicated rather than split along d or d_kv: every
            # shard of query heads reads the one shared K/V head in full,
            # so a replicated projection needs no communication, whereas a
            # split one would all-reduce K/V (along d) or the attention
            # logits (along d_kv) in every layer. The kernel is 1/heads of
            # the query kernel, so replicating it costs little memory. A
            # multi-head (vanilla FiD) decoder's K/V are replicated as
            # well: a weight's path does not tell the two apart.
            (
                r"decoder/layer_\d+/(self|cross)_attention/(key|value)/kernel",
                (None, None, None),
            ),
            # [heads, d_kv, d]: by head, the input of the projection.
            (attention + "/output/kernel", (m, None, None)),
            # [d, f] by intermediate unit, [f, d] by its input.
            (layer + "/feed_forward/(input|gate)_dense/kernel", (None, m)),
            (layer + "/feed_forward/output_dense/kernel", (m, None)),
            # [buckets, heads]: a few hundred numbers, replicated.
            (
                r"(encoder|decoder)/relative_position_bias/embeddings",
                (None, None),
            ),
        ]
        layout_map = keras.distribution.LayoutMap(device_mesh)
        for pattern, axes in rules:
            layout_map[pattern] = axes
        return layout_map

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
        check_inputs(inputs, self.vocabulary_size)
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
        check_preset_directory(preset, load_weights)
        with default_safe_mode():
            return super().from_preset(
                preset, load_weights=load_weights, **kwargs
            )


def default_safe_mode():
    """A scope that undoes `keras.config.enable_unsafe_deserialization()`.

    Inside it every `deserialize_keras_object` call is in safe mode (its
    default), so no lambda is rebuilt. Not `SafeModeScope(True)`: that
    would also stop keras-hub reading the tokenizer's vocabulary, a file
    path, from the preset's assets after deserialization.
    """
    return SafeModeScope(None)


def check_preset_directory(preset, load_weights):
    """Raises a clear error for a preset that is neither a name nor a
    complete, safe preset, local or remote.

    A remote handle (`hf://`, `kaggle://`, `gs://`, ...) is first resolved
    to local files by keras-hub's own download (`_compat.get_preset_file`,
    cached where keras-hub caches), then checked as a directory is.

    Before anything in the preset is deserialized: its `config.json`
    must name a registered `FiDOBackbone` class (not a function, a lambda
    or another class, which keras-hub would otherwise build as the
    backbone of a task), and with `load_weights` its `model.weights.h5`
    must be a readable HDF5 file (`check_weights_file`; never unpickled).
    """
    if not isinstance(preset, (str, os.PathLike)):
        raise ValueError(
            "`preset` must be a preset name or a directory path. "
            f"Received: preset={preset!r}"
        )
    preset = os.fspath(preset)
    required = ["config.json"] + (["model.weights.h5"] if load_weights else [])
    if "://" in preset:
        paths = _fetch_preset_files(preset, required)
    else:
        paths = _local_preset_files(preset, required)
    check_preset_config(paths["config.json"])
    if load_weights:
        check_weights_file(paths["model.weights.h5"])


def _local_preset_files(preset, required):
    restore_interrupted(preset)
    if not os.path.isdir(preset):
        raise ValueError(
            f"Unknown preset {preset!r}: it is neither a known preset name "
            f"nor a directory. Known presets: {sorted(backbone_presets)}."
        )
    for name in required:
        if not os.path.exists(os.path.join(preset, name)):
            raise ValueError(
                f"Preset directory {preset!r} has no `{name}`; a preset "
                "written by `save_to_preset` holds config.json and "
                f"model.weights.h5. Found: {sorted(os.listdir(preset))}"
            )
    return {name: os.path.join(preset, name) for name in required}


def _fetch_preset_files(preset, required):
    """Local paths of a remote preset's files, downloaded by keras-hub."""
    paths = {}
    for name in required:
        try:
            paths[name] = get_preset_file(preset, name)
        except FileNotFoundError:
            raise ValueError(
                f"Preset {preset!r} has no `{name}`; a preset written by "
                "`save_to_preset` holds config.json and model.weights.h5."
            ) from None
    return paths


def check_preset_config(config_path):
    """Raises a `ValueError` unless the JSON file `config_path` describes
    a registered `FiDOBackbone` subclass."""
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(
            f"{config_path!r} must be a JSON object. Received a file that "
            f"does not parse as JSON: {error}"
        ) from None
    name = config.get("registered_name") if isinstance(config, dict) else None
    backbone_cls = (
        keras.saving.get_registered_object(name)
        if isinstance(name, str)
        else None
    )
    if not (
        isinstance(backbone_cls, type)
        and issubclass(backbone_cls, FiDOBackbone)
    ):
        described = (
            {
                k: config.get(k)
                for k in ("module", "class_name", "registered_name")
            }
            if isinstance(config, dict)
            else type(config).__name__
        )
        raise ValueError(
            f"{config_path!r} must describe a registered `FiDOBackbone` "
            "(`registered_name` 'keras_fido>FiDOBackbone'); nothing else is "
            f"loaded from a preset. Received: {described}"
        )


def check_inputs(inputs, vocabulary_size=None):
    """Validates the backbone's input dict: names, ranks, matching masks
    and batch sizes, integer ids; and, for numpy inputs (host values, so
    never inside a compiled step), ids within `[0, vocabulary_size)`."""
    if not isinstance(inputs, dict):
        raise ValueError(
            "FiDOBackbone expects a dict with keys "
            f"{sorted(INPUT_RANKS)}. Received: {type(inputs).__name__}"
        )
    missing = sorted(set(INPUT_RANKS) - set(inputs))
    if missing:
        raise ValueError(
            f"FiDOBackbone inputs are missing {missing}. "
            f"Received keys: {sorted(inputs)}"
        )
    for name, rank in INPUT_RANKS.items():
        shape = tuple(ops.shape(inputs[name]))
        if len(shape) != rank:
            layout = (
                "[batch, passages, length]" if rank == 3 else "[batch, length]"
            )
            raise ValueError(
                f"`{name}` must have rank {rank} {layout}. "
                f"Received shape {shape} (rank {len(shape)})."
            )
    for ids, padding in (
        ("encoder_token_ids", "encoder_padding_mask"),
        ("decoder_token_ids", "decoder_padding_mask"),
    ):
        ids_shape = tuple(ops.shape(inputs[ids]))
        mask_shape = tuple(ops.shape(inputs[padding]))
        if (
            _static(ids_shape)
            and _static(mask_shape)
            and ids_shape != mask_shape
        ):
            raise ValueError(
                f"`{padding}` must have the shape of `{ids}` {ids_shape}. "
                f"Received shape {mask_shape}."
            )
        check_token_ids(ids, inputs[ids], vocabulary_size)
    batches = [ops.shape(inputs[name])[0] for name in INPUT_RANKS]
    if len(set(b for b in batches if isinstance(b, int))) > 1:
        raise ValueError(
            "All FiDOBackbone inputs must have the same batch size. "
            f"Received batch sizes {dict(zip(INPUT_RANKS, batches))}."
        )


def _static(shape):
    return all(isinstance(dim, int) for dim in shape)
