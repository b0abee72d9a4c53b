"""One-line optimizers for T5-style pretraining and fine-tuning."""

from keras_fido.training.adafactor_adam import AdafactorAdam
from keras_fido.training.t5_schedule import InverseSquareRootSchedule


def pretraining_optimizer(base_learning_rate=1.0, warmup_steps=10000, **kwargs):
    """FiDO's pretraining optimizer: `AdafactorAdam` on T5's schedule.

    The learning rate is `base_learning_rate / sqrt(max(step,
    warmup_steps))`: `0.01` for 10k steps, then inverse square root decay,
    with the step size relative to each variable's scale and the update
    clipped at RMS 1 (T5X's defaults).

    Args:
        base_learning_rate: float. Numerator of the schedule. Defaults to
            `1.0`.
        warmup_steps: int. Steps at the constant rate. Defaults to
            `10000`; shorter runs may lower it.
        **kwargs: Passed on to `keras_fido.training.AdafactorAdam`.

    Returns:
        A `keras_fido.training.AdafactorAdam`.

    Examples:
    ```python
    model.compile(optimizer=keras_fido.training.pretraining_optimizer())
    ```
    """
    schedule = InverseSquareRootSchedule(
        base_learning_rate=base_learning_rate, warmup_steps=warmup_steps
    )
    return AdafactorAdam(learning_rate=schedule, **kwargs)


def fine_tuning_optimizer(learning_rate=1e-3, **kwargs):
    """FiDO's fine-tuning optimizer: `AdafactorAdam` at a constant rate.

    T5 and FiDO fine-tune at a constant `1e-3`. To continue from a
    pretrained model's second-moment estimates, as FiDO does, load the
    optimizer variables along with the weights: a whole-model `.keras`
    file holds them, `*.weights.h5` files and presets do not.

    Args:
        learning_rate: float or schedule. Defaults to `1e-3`.
        **kwargs: Passed on to `keras_fido.training.AdafactorAdam`.

    Returns:
        A `keras_fido.training.AdafactorAdam`.

    Examples:
    ```python
    reader.compile(optimizer=keras_fido.training.fine_tuning_optimizer())
    ```
    """
    return AdafactorAdam(learning_rate=learning_rate, **kwargs)
