"""`gathered_weights` swaps whole values in for a save and puts the
sharded ones back. Across processes: `test_multi_process.py`."""

import keras
import numpy as np
import pytest

from keras_fido.training import gathered_weights as module
from keras_fido.training.gathered_weights import gathered_weights


def dense_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(momentum=0.5), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def test_one_process_changes_nothing():
    model = dense_model()
    values = [v.value for v in model.variables]

    def unchanged():
        return all(v.value is x for v, x in zip(model.variables, values))

    with gathered_weights(model) as same:
        assert same is model and unchanged()
    assert unchanged()


@pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="weights split between processes exist on JAX only",
)
def test_whole_values_during_the_block_sharded_ones_after(monkeypatch):
    model = dense_model()
    kernel, bias = model.layers[0].kernel, model.layers[0].bias
    sharded = {id(v): v.value for v in (kernel, bias)}
    # As if both were split between processes: `_whole` gathers them.
    monkeypatch.setattr(
        module, "_split_over_processes", lambda m: [kernel, bias]
    )
    monkeypatch.setattr(module, "_whole", lambda value: np.asarray(value) + 1)
    with gathered_weights(model):
        assert isinstance(kernel.value, np.ndarray)
        np.testing.assert_array_equal(kernel.value, sharded[id(kernel)] + 1)
        bias.assign(np.full((2,), 7.0))  # assigned in the block: kept
    assert kernel.value is sharded[id(kernel)]
    np.testing.assert_array_equal(bias.numpy(), [7.0, 7.0])
