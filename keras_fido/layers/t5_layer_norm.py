"""T5's root-mean-square layer norm."""

import keras
from keras import ops

from keras_fido.utils.checks import check_keyword_arguments


@keras.saving.register_keras_serializable(package="keras_fido")
class T5LayerNorm(keras.layers.Layer):
    """Scale-only RMS normalization, as used throughout T5.

    T5 normalizes by the root mean square of the features (no mean is
    subtracted and there is no bias). The statistic is computed in float32
    whatever the compute dtype, so the layer is safe under mixed precision.

    Args:
        epsilon: float. Added to the mean square before the reciprocal
            square root. Defaults to `1e-6`, T5's value.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: a float tensor `[..., hidden_dim]`.

    Examples:
    ```python
    norm = keras_fido.layers.T5LayerNorm()
    norm(np.random.rand(2, 5, 16).astype("float32")).shape  # (2, 5, 16)
    ```
    """

    def __init__(self, epsilon=1e-6, **kwargs):
        check_keyword_arguments(self, kwargs)
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        self.scale = self.add_weight(
            name="scale",
            shape=(input_shape[-1],),
            initializer="ones",
        )
        self.built = True

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        mean_square = ops.mean(ops.square(x), axis=-1, keepdims=True)
        x = x * ops.rsqrt(mean_square + self.epsilon)
        return ops.cast(x, self.compute_dtype) * ops.cast(
            self.scale, self.compute_dtype
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon})
        return config
