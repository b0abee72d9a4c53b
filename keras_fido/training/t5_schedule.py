"""T5's inverse square root learning-rate schedule."""

import keras
from keras import ops

from keras_fido.utils.checks import check_positive_int


@keras.saving.register_keras_serializable(package="keras_fido")
class InverseSquareRootSchedule(
    keras.optimizers.schedules.LearningRateSchedule
):
    """T5's pretraining schedule: constant, then `1 / sqrt(step)` decay.

    `learning_rate(step) = base_learning_rate / sqrt(max(step,
    warmup_steps))`. With T5's values (`base_learning_rate=1.0`,
    `warmup_steps=10000`) the rate is `0.01` for the first 10k steps, then
    decays as the inverse square root of the step (`0.005` at 40k, `0.001`
    at 1M). Despite its name T5 calls the first phase "warm-up": the rate
    is flat there, not rising, which the update clipping and parameter
    scaling of Adafactor (`keras_fido.training.AdafactorAdam`) make safe.

    T5 fine-tunes at a constant `1e-3` instead: pass a float as the
    optimizer's `learning_rate` (`keras_fido.training.fine_tuning_optimizer`
    does).

    Args:
        base_learning_rate: float. The numerator. Defaults to `1.0`.
        warmup_steps: int. Steps at the constant rate
            `base_learning_rate / sqrt(warmup_steps)`. Defaults to `10000`.
        name: str. Name of the schedule. Defaults to
            `"inverse_square_root"`.

    Examples:
    ```python
    schedule = keras_fido.training.InverseSquareRootSchedule()
    float(schedule(0)), float(schedule(40_000))  # (0.01, 0.005)
    optimizer = keras_fido.training.AdafactorAdam(learning_rate=schedule)
    ```
    """

    def __init__(
        self,
        base_learning_rate=1.0,
        warmup_steps=10000,
        name="inverse_square_root",
    ):
        if (
            isinstance(base_learning_rate, bool)
            or not isinstance(base_learning_rate, (int, float))
            or base_learning_rate <= 0
        ):
            raise ValueError(
                "`base_learning_rate` must be a positive float. "
                f"Received: base_learning_rate={base_learning_rate!r}"
            )
        self.base_learning_rate = float(base_learning_rate)
        self.warmup_steps = check_positive_int("warmup_steps", warmup_steps)
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        return self.base_learning_rate * ops.rsqrt(
            ops.maximum(step, float(self.warmup_steps))
        )

    def get_config(self):
        return {
            "base_learning_rate": self.base_learning_rate,
            "warmup_steps": self.warmup_steps,
            "name": self.name,
        }
