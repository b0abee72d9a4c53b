"""AdafactorAdam against a NumPy reference, serialization and training."""

import keras
import numpy as np
import pytest

from keras_fido.training import AdafactorAdam
from keras_fido.training import InverseSquareRootSchedule


def reference_steps(
    x,
    gradients,
    learning_rate,
    beta_1=None,
    beta_2=0.999,
    epsilon_1=1e-30,
    epsilon_2=1e-3,
    clip_threshold=1.0,
    multiply_by_parameter_scale=True,
    relative_step=False,
    bias_correction=True,
):
    """The update rule in float64 NumPy, one gradient per step."""
    x = np.array(x, np.float64)
    v = np.zeros_like(x)
    m = np.zeros_like(x)
    for t, g in enumerate(gradients, start=1):
        g = np.asarray(g, np.float64)
        v = beta_2 * v + (1 - beta_2) * (g * g + epsilon_1)
        v_hat = v / (1 - beta_2**t) if bias_correction else v
        u = g / np.sqrt(v_hat)
        if clip_threshold is not None:
            u = u / max(1.0, np.sqrt(np.mean(u * u)) / clip_threshold)
        lr = learning_rate(t - 1) if callable(learning_rate) else learning_rate
        if relative_step:
            lr = min(lr, 1 / np.sqrt(t))
        if multiply_by_parameter_scale:
            lr = lr * max(epsilon_2, np.sqrt(np.mean(x * x)))
        step = lr * u
        if beta_1 is not None:
            m = beta_1 * m + (1 - beta_1) * step
            step = m
        x = x - step
    return x


def run_optimizer(optimizer, x, gradients):
    variable = keras.Variable(np.asarray(x, np.float32))
    for g in gradients:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(g), variable)])
    return keras.ops.convert_to_numpy(variable)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"beta_1": 0.9},
        {"relative_step": True, "learning_rate": 0.5},
        {"multiply_by_parameter_scale": False, "clip_threshold": None},
        {"bias_correction": False, "beta_2": 0.99},
        {"clip_threshold": 0.5, "epsilon_2": 0.3},
    ],
    ids=[
        "defaults",
        "momentum",
        "relative_step",
        "no_scaling_no_clipping",
        "no_bias_correction",
        "tight_clipping_large_epsilon_2",
    ],
)
def test_steps_match_numpy_reference(options):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4)).astype(np.float32)
    # Gradients of very different sizes, so that clipping engages.
    gradients = [
        (rng.normal(size=(3, 4)) * scale).astype(np.float32)
        for scale in (1.0, 10.0, 0.01, 1.0, 3.0)
    ]
    options = dict(options)
    learning_rate = options.pop("learning_rate", 0.01)
    expected = reference_steps(x, gradients, learning_rate, **options)
    optimizer = AdafactorAdam(learning_rate=learning_rate, **options)
    actual = run_optimizer(optimizer, x, gradients)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_steps_follow_a_schedule_and_move_zero_variables():
    # A zero variable moves by epsilon_2-relative steps.
    x = np.zeros((5,), np.float32)
    gradients = [np.linspace(-1, 1, 5).astype(np.float32) + 0.1] * 3
    schedule = InverseSquareRootSchedule(base_learning_rate=0.1, warmup_steps=2)
    expected = reference_steps(
        x, gradients, lambda step: 0.1 / np.sqrt(max(step, 2))
    )
    actual = run_optimizer(AdafactorAdam(learning_rate=schedule), x, gradients)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-9)
    assert np.all(actual != 0.0)


def test_first_step_is_clipped_to_unit_rms_times_parameter_scale():
    # With bias correction, the first update is g / |g| (RMS 1): the step is
    # learning_rate * rms(x) in RMS, whatever the gradient's size.
    x = np.full((4, 4), 2.0, np.float32)
    g = np.full((4, 4), 1e4, np.float32)
    actual = run_optimizer(AdafactorAdam(learning_rate=0.1), x, [g])
    np.testing.assert_allclose(actual, x - 0.1 * 2.0, rtol=1e-6)


def test_config_round_trip():
    optimizer = AdafactorAdam(
        learning_rate=InverseSquareRootSchedule(warmup_steps=100),
        beta_1=0.9,
        beta_2=0.98,
        clip_threshold=None,
        multiply_by_parameter_scale=False,
        relative_step=True,
        bias_correction=False,
        weight_decay=0.01,
    )
    restored = keras.optimizers.deserialize(
        keras.optimizers.serialize(optimizer)
    )
    assert isinstance(restored, AdafactorAdam)
    config = restored.get_config()
    assert config == optimizer.get_config()
    assert config["beta_2"] == 0.98 and config["clip_threshold"] is None
    assert isinstance(restored._learning_rate, InverseSquareRootSchedule)
    assert restored._learning_rate.warmup_steps == 100


def test_saved_model_keeps_optimizer_state(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=AdafactorAdam(beta_1=0.9), loss="mse")
    x = np.ones((4, 3), np.float32)
    model.fit(x, np.zeros((4, 2)), epochs=2, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored.optimizer, AdafactorAdam)
    assert int(restored.optimizer.iterations) == 2
    for a, b in zip(restored.optimizer.variables, model.optimizer.variables):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
        )


def test_training_a_tiny_model_decreases_the_loss():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    y = (x @ rng.normal(size=(8, 1))).astype(np.float32)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=AdafactorAdam(learning_rate=0.05), loss="mse")
    history = model.fit(x, y, batch_size=16, epochs=10, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize(
    "argument, value",
    [
        ("beta_2", 1.0),
        ("beta_2", 0.0),
        ("beta_1", 1.0),
        ("beta_1", True),
        ("epsilon_2", -1.0),
        ("clip_threshold", 0.0),
    ],
)
def test_invalid_arguments_are_named(argument, value):
    with pytest.raises(ValueError, match=f"`{argument}`.*{value!r}"):
        AdafactorAdam(**{argument: value})
