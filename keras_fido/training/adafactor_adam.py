"""Adafactor without factoring or a decay schedule: the FiDO optimizer."""

import keras
from keras import ops


def _rms(x):
    return ops.sqrt(ops.mean(ops.square(x)))


def _check_fraction(name, value, allow_none=False, allow_zero=False):
    if value is None and allow_none:
        return None
    low_ok = value >= 0.0 if allow_zero else value > 0.0
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (low_ok and value < 1.0)
    ):
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ValueError(
            f"`{name}` must be a float in {interval}"
            + (" or None" if allow_none else "")
            + f". Received: {name}={value!r}"
        )
    return float(value)


def _check_non_negative(name, value, allow_none=False):
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value < 0.0
    ):
        raise ValueError(
            f"`{name}` must be a non-negative float"
            + (" or None" if allow_none else "")
            + f". Received: {name}={value!r}"
        )
    return float(value)


@keras.saving.register_keras_serializable(package="keras_fido")
class AdafactorAdam(keras.optimizers.Optimizer):
    """Adafactor with an unfactored, constant-decay second moment.

    The optimizer FiDO is trained with (de Jong et al., 2023, Appendix A,
    https://arxiv.org/abs/2212.08153): T5X's Adafactor (Shazeer and Stern,
    2018, https://arxiv.org/abs/1804.04235) with two of its features turned
    off, which makes it a cross between Adafactor and Adam. Every other
    default is T5X's: update clipping at `d = 1`, step sizes relative to
    the parameter scale, no momentum.

    For a variable `x` with gradient `g` at step `t = 1, 2, ...`:

    ```
    v_t   = beta_2 * v_{t-1} + (1 - beta_2) * (g**2 + epsilon_1)
    v_hat = v_t / (1 - beta_2**t)              # if bias_correction
    u     = g / sqrt(v_hat)
    u     = u / max(1, rms(u) / clip_threshold)   # update clipping
    lr_t  = min(learning_rate, 1 / sqrt(t))    # if relative_step
    step  = lr_t * max(epsilon_2, rms(x)) * u  # if multiply_by_parameter_scale
    m_t   = beta_1 * m_{t-1} + (1 - beta_1) * step; step = m_t  # if beta_1
    x     = x - step
    ```

    where `rms` is the root mean square over the whole variable.

    Differences from `keras.optimizers.Adafactor`:

    - No factoring. Keras' Adafactor keeps, for a matrix, only row and
      column means of the squared gradient and rebuilds `v` as their outer
      product. Here `v` is a full per-element estimate, as in Adam (the
      memory cost of Adam's second moment; there is no first moment unless
      `beta_1` is set). Factoring is what Appendix A reports as unstable,
      especially for an encoder and a decoder of unequal sizes.
    - No second-moment decay schedule. Keras' Adafactor mixes with
      `beta_2_t = 1 - t**-0.8`, which starts at 0 (the first `v` is the
      first squared gradient) and rises towards 1. Here `beta_2` is a
      constant, with Adam's bias correction instead of the schedule's
      implicit one.
    - The relative step `min(learning_rate, 1 / sqrt(t))` applies only
      when `relative_step=True` (Keras' Adafactor always takes the
      minimum), and scaling by the parameter's RMS can be turned off.

    The clipping, parameter scaling and `epsilon_1` / `epsilon_2` are
    Adafactor's. T5 drives the step size with a schedule rather than a
    relative step: `keras_fido.training.InverseSquareRootSchedule` for
    pretraining, a constant `1e-3` for fine-tuning (see
    `keras_fido.training.pretraining_optimizer` and
    `fine_tuning_optimizer`).

    Args:
        learning_rate: A float, a
            `keras.optimizers.schedules.LearningRateSchedule`, or a callable
            without arguments. With parameter scaling, a relative step: the
            update moves a variable by about this fraction of its RMS.
            Defaults to `0.001`.
        beta_1: float in `[0, 1)` or `None`. Momentum on the (scaled,
            clipped) update, as T5X's `beta1`; `None` keeps no first moment.
            Defaults to `None`.
        beta_2: float in `(0, 1)`. The constant decay of the second-moment
            estimate. Defaults to `0.999`.
        epsilon_1: float. Added to the squared gradient. Defaults to
            `1e-30`.
        epsilon_2: float. Smallest parameter scale, so variables that start
            at zero still move. Defaults to `1e-3`.
        clip_threshold: float or `None`. Update clipping threshold `d`: the
            update's RMS is capped at this value. `None` disables it.
            Defaults to `1.0`.
        multiply_by_parameter_scale: bool. Scale each step by
            `max(epsilon_2, rms(variable))`. Defaults to `True`.
        relative_step: bool. Cap the learning rate at `1 / sqrt(t)`.
            Defaults to `False`.
        bias_correction: bool. Divide the second moment by
            `1 - beta_2**t`, as Adam does. Defaults to `True`.
        **kwargs: Passed on to `keras.optimizers.Optimizer` (`name`,
            `weight_decay`, `clipnorm`, `global_clipnorm`, `use_ema`,
            `gradient_accumulation_steps`, ...).

    Examples:
    ```python
    model = keras.Sequential([keras.layers.Dense(1)])
    model.compile(
        optimizer=keras_fido.training.AdafactorAdam(learning_rate=1e-2),
        loss="mse",
    )
    model.fit(np.ones((8, 4)), np.zeros((8, 1)), verbose=0)

    # T5's pretraining schedule: 0.01 for 10k steps, then 1 / sqrt(step).
    optimizer = keras_fido.training.AdafactorAdam(
        learning_rate=keras_fido.training.InverseSquareRootSchedule()
    )
    ```
    """

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=None,
        beta_2=0.999,
        epsilon_1=1e-30,
        epsilon_2=1e-3,
        clip_threshold=1.0,
        multiply_by_parameter_scale=True,
        relative_step=False,
        bias_correction=True,
        name="adafactor_adam",
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = _check_fraction(
            "beta_1", beta_1, allow_none=True, allow_zero=True
        )
        self.beta_2 = _check_fraction("beta_2", beta_2)
        self.epsilon_1 = _check_non_negative("epsilon_1", epsilon_1)
        self.epsilon_2 = _check_non_negative("epsilon_2", epsilon_2)
        self.clip_threshold = _check_non_negative(
            "clip_threshold", clip_threshold, allow_none=True
        )
        if self.clip_threshold == 0.0:
            raise ValueError(
                "`clip_threshold` must be positive or None. "
                f"Received: clip_threshold={clip_threshold!r}"
            )
        self.multiply_by_parameter_scale = bool(multiply_by_parameter_scale)
        self.relative_step = bool(relative_step)
        self.bias_correction = bool(bias_correction)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._velocities = self.add_optimizer_variables(var_list, "velocity")
        if self.beta_1 is not None:
            self._momentums = self.add_optimizer_variables(var_list, "momentum")

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        gradient = ops.cast(gradient, dtype)
        lr = ops.cast(learning_rate, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        beta_2 = ops.cast(self.beta_2, dtype)

        # Second moment: a constant decay, no factoring.
        v = self._velocities[index]
        squared = ops.square(gradient) + ops.cast(self.epsilon_1, dtype)
        self.assign(v, beta_2 * v + (1.0 - beta_2) * squared)
        v_hat = v
        if self.bias_correction:
            v_hat = v / (1.0 - ops.power(beta_2, step))
        update = gradient * ops.rsqrt(v_hat)

        # Update clipping: cap the update's RMS at `clip_threshold`.
        if self.clip_threshold is not None:
            update = update / ops.maximum(
                1.0, _rms(update) / ops.cast(self.clip_threshold, dtype)
            )

        if self.relative_step:
            lr = ops.minimum(lr, ops.rsqrt(step))
        if self.multiply_by_parameter_scale:
            # The scale of the variable before this step, as T5X does.
            lr = lr * ops.maximum(
                ops.cast(self.epsilon_2, dtype), _rms(variable)
            )
        update = lr * update

        if self.beta_1 is not None:
            m = self._momentums[index]
            beta_1 = ops.cast(self.beta_1, dtype)
            self.assign(m, beta_1 * m + (1.0 - beta_1) * update)
            update = m
        self.assign_sub(variable, update)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon_1": self.epsilon_1,
                "epsilon_2": self.epsilon_2,
                "clip_threshold": self.clip_threshold,
                "multiply_by_parameter_scale": (
                    self.multiply_by_parameter_scale
                ),
                "relative_step": self.relative_step,
                "bias_correction": self.bias_correction,
            }
        )
        return config
