"""T5's inverse square root schedule and the one-line optimizers."""

import keras
import numpy as np
import pytest

from keras_fido.training import AdafactorAdam
from keras_fido.training import InverseSquareRootSchedule
from keras_fido.training import fine_tuning_optimizer
from keras_fido.training import pretraining_optimizer


def rate(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_t5_defaults_are_flat_at_0_01_then_decay_as_rsqrt():
    schedule = InverseSquareRootSchedule()
    for step in (0, 1, 5000, 10000):
        assert rate(schedule, step) == pytest.approx(0.01)
    assert rate(schedule, 40000) == pytest.approx(0.005)
    assert rate(schedule, 1_000_000) == pytest.approx(0.001)


def test_schedule_matches_its_formula():
    schedule = InverseSquareRootSchedule(base_learning_rate=0.5, warmup_steps=4)
    for step in range(12):
        expected = 0.5 / np.sqrt(max(step, 4))
        assert rate(schedule, step) == pytest.approx(expected, rel=1e-6)


def test_schedule_config_round_trip():
    schedule = InverseSquareRootSchedule(base_learning_rate=2.0, warmup_steps=7)
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule)
    )
    assert isinstance(restored, InverseSquareRootSchedule)
    assert restored.get_config() == schedule.get_config()
    assert rate(restored, 28) == pytest.approx(2.0 / np.sqrt(28))


@pytest.mark.parametrize(
    "argument, value",
    [
        ("base_learning_rate", 0.0),
        ("base_learning_rate", "1"),
        ("warmup_steps", 0),
        ("warmup_steps", 2.5),
    ],
)
def test_schedule_rejects_invalid_arguments(argument, value):
    with pytest.raises(ValueError, match=f"`{argument}`.*{value!r}"):
        InverseSquareRootSchedule(**{argument: value})


def test_pretraining_optimizer_uses_the_t5_schedule():
    optimizer = pretraining_optimizer(warmup_steps=100, beta_2=0.99)
    assert isinstance(optimizer, AdafactorAdam)
    assert isinstance(optimizer._learning_rate, InverseSquareRootSchedule)
    assert optimizer._learning_rate.warmup_steps == 100
    assert optimizer.beta_2 == 0.99
    assert float(optimizer.learning_rate) == pytest.approx(0.1)


def test_fine_tuning_optimizer_is_constant_at_1e_3():
    optimizer = fine_tuning_optimizer()
    assert isinstance(optimizer, AdafactorAdam)
    assert float(optimizer.learning_rate) == pytest.approx(1e-3)
    assert optimizer.clip_threshold == 1.0
    assert optimizer.multiply_by_parameter_scale
