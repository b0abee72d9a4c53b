"""How `FiDOBackbone`'s weights are laid out for model-parallel training.

`FiDOBackbone.get_layout_map` returns `fido_layout_map`; the sharding of
each weight, and why, is in `sharding_rules`.
"""

import keras


def fido_layout_map(
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
    _check_mesh_axes(
        device_mesh, model_parallel_dim_name, data_parallel_dim_name
    )
    layout_map = keras.distribution.LayoutMap(device_mesh)
    for pattern, axes in sharding_rules(model_parallel_dim_name):
        layout_map[pattern] = axes
    return layout_map


def sharding_rules(model_parallel_dim_name):
    """`(weight path pattern, axes)` pairs, one per kind of weight; a
    weight that no pattern matches is replicated."""
    m = model_parallel_dim_name
    layer = r"(encoder|decoder)/layer_\d+"
    attention = layer + "/(self|cross)_attention"
    return [
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


def _check_mesh_axes(
    device_mesh, model_parallel_dim_name, data_parallel_dim_name
):
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
