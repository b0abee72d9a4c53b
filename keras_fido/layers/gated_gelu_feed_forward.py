"""T5.1.1's gated-GELU feed-forward block."""

import keras

from keras_fido.layers.float16_range import clip_to_float16
from keras_fido.utils.checks import check_keyword_arguments


@keras.saving.register_keras_serializable(package="keras_fido")
class GatedGeluFeedForward(keras.layers.Layer):
    """The T5.1.1 feed-forward: `wo(gelu(wi_0 x) * wi_1 x)`, no biases.

    T5.1.1 replaced T5's ReLU MLP with a GELU-gated linear unit (Shazeer,
    "GLU Variants Improve Transformer", https://arxiv.org/abs/2002.05202).
    The GELU is the tanh approximation, as in the reference checkpoints.

    Under a float16 compute dtype (`"mixed_float16"`, `"float16"`) the
    output projection runs in float32 and its output is clipped to
    float16's range (`keras_fido.layers.float16_range`) before the cast
    back: T5.1.1's feed-forward output is where float16 overflows. The
    kernel is then float32 whatever the variable dtype. Every other dtype
    policy computes the layer in one dtype, unchanged.

    Args:
        hidden_dim: int. Width of the input and output.
        intermediate_dim: int. Width of the gated hidden layer.
        dropout: float. Dropout on the gated hidden activations.
        kernel_initializer: initializer for the three kernels. Defaults to
            `None`, T5's scheme: normal with standard deviation
            `hidden_dim ** -0.5` into the hidden layer and
            `intermediate_dim ** -0.5` out of it.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: a float tensor `[..., hidden_dim]`.
        training: bool, whether dropout is active.

    Examples:
    ```python
    ff = keras_fido.layers.GatedGeluFeedForward(hidden_dim=16,
                                                intermediate_dim=32)
    ff(np.random.rand(2, 5, 16).astype("float32")).shape  # (2, 5, 16)
    ```
    """

    def __init__(
        self,
        hidden_dim,
        intermediate_dim,
        dropout=0.0,
        kernel_initializer=None,
        **kwargs,
    ):
        check_keyword_arguments(self, kwargs)
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

        # Per-layer (DTypePolicyMap) and quantized policies are kept as
        # given: their weights are stored in those dtypes.
        self._float32_output = (
            self.compute_dtype == "float16"
            and type(self.dtype_policy) is keras.DTypePolicy
        )

        def dense(units, name, fan_in, dtype):
            initializer = self.kernel_initializer
            if initializer is None:
                initializer = keras.initializers.RandomNormal(
                    stddev=fan_in**-0.5
                )
            return keras.layers.Dense(
                units,
                use_bias=False,
                kernel_initializer=initializer,
                dtype=dtype,
                name=name,
            )

        policy = self.dtype_policy
        self.gate_dense = dense(
            intermediate_dim, "gate_dense", hidden_dim, policy
        )
        self.input_dense = dense(
            intermediate_dim, "input_dense", hidden_dim, policy
        )
        self.output_dense = dense(
            hidden_dim,
            "output_dense",
            intermediate_dim,
            "float32" if self._float32_output else policy,
        )
        self.dropout_layer = keras.layers.Dropout(
            dropout, dtype=self.dtype_policy, name="dropout"
        )

    def build(self, input_shape):
        self.gate_dense.build(input_shape)
        self.input_dense.build(input_shape)
        hidden_shape = tuple(input_shape[:-1]) + (self.intermediate_dim,)
        self.dropout_layer.build(hidden_shape)
        self.output_dense.build(hidden_shape)
        self.built = True

    def call(self, inputs, training=False):
        gate = keras.activations.gelu(self.gate_dense(inputs), approximate=True)
        hidden = gate * self.input_dense(inputs)
        hidden = self.dropout_layer(hidden, training=training)
        if self.compute_dtype == "float16":
            # The float32 projection (or its float16 overflow) clipped back.
            return clip_to_float16(self.output_dense(hidden))
        return self.output_dense(hidden)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.hidden_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "kernel_initializer": (
                    None
                    if self.kernel_initializer is None
                    else keras.initializers.serialize(self.kernel_initializer)
                ),
            }
        )
        return config
