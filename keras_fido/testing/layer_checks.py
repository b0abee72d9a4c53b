"""Reusable checks every keras_fido layer should pass.

Tests call these so that each layer's test file says only what is special
about that layer. Each check takes a built-or-unbuilt layer and the
arguments of one call, and raises an `AssertionError` that says what
differed.
"""

import keras
import numpy as np
from keras import ops


def _call(layer, args, kwargs, method):
    function = layer if method is None else getattr(layer, method)
    return function(*args, **(kwargs or {}))


def _numpy_leaves(outputs):
    return [ops.convert_to_numpy(x) for x in keras.tree.flatten(outputs)]


def _rebuild(layer, config):
    """A layer of `layer`'s class from `config`, built as `layer` was and
    holding a copy of its weights, the way `.keras` loading restores one."""
    restored = layer.__class__.from_config(config)
    build_config = layer.get_build_config()
    if build_config is not None:
        restored.build_from_config(build_config)
    restored.set_weights(layer.get_weights())
    return restored


def run_layer_serialization_check(
    layer, args=(), kwargs=None, method=None, atol=1e-6, rtol=1e-6
):
    """Checks that `layer` survives a config round trip unchanged.

    Serializes `layer` with `keras.saving.serialize_keras_object` (so the
    class must be registered), deserializes it, builds the copy from
    `layer`'s build config, copies the weights over and compares:

    - the config of the copy equals the original's;
    - the copy holds the same weights, by path and shape;
    - the copy's outputs equal the original's on the same inputs.

    Args:
        layer: a `keras.layers.Layer`. It is called first (which builds
            it), unless `method` names a method that needs a built layer:
            then build it before.
        args: tuple of positional call arguments.
        kwargs: dict of keyword call arguments.
        method: str, name of the method to call instead of `__call__`
            (e.g. `"compute_bias"`).
        atol, rtol: tolerances of the output comparison.

    Returns:
        The restored layer.
    """
    expected = _numpy_leaves(_call(layer, args, kwargs, method))
    serialized = keras.saving.serialize_keras_object(layer)
    copy = keras.saving.deserialize_keras_object(serialized)
    assert type(copy) is type(layer), (
        f"Deserialized a {type(copy).__name__}, expected "
        f"{type(layer).__name__}; is the class registered?"
    )
    assert copy.get_config() == layer.get_config(), (
        "The config changed in the round trip:\n"
        f"{layer.get_config()}\n!=\n{copy.get_config()}"
    )
    restored = _rebuild(layer, copy.get_config())
    original_weights = [(w.path, tuple(w.shape)) for w in layer.weights]
    restored_weights = [(w.path, tuple(w.shape)) for w in restored.weights]
    assert restored_weights == original_weights, (
        f"The restored layer holds different weights:\n{restored_weights}"
        f"\n!=\n{original_weights}"
    )
    actual = _numpy_leaves(_call(restored, args, kwargs, method))
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, atol=atol, rtol=rtol)
    return restored


def run_mixed_precision_check(
    layer,
    policy,
    args=(),
    kwargs=None,
    method=None,
    float32_outputs=(),
    tolerance=0.05,
):
    """Runs a float32 `layer` again under a mixed `policy` and checks it.

    A copy of `layer` is made from its config with `dtype=policy`, built
    and given the same (float32) weights. On the same inputs its outputs
    must be:

    - finite;
    - of the policy's compute dtype, except the flattened outputs whose
      positions are in `float32_outputs` (e.g. attention probabilities,
      which are computed in float32), which must be float32;
    - close to the float32 layer's outputs: the largest absolute error is
      at most `tolerance` times the largest absolute float32 value.

    and its weights must stay float32 (the policy's variable dtype).

    Args:
        layer: a built float32 `keras.layers.Layer` (call it first).
        policy: str or `keras.DTypePolicy`, e.g. `"mixed_bfloat16"`.
        args, kwargs, method: the call, as in
            `run_layer_serialization_check`.
        float32_outputs: positions, in `keras.tree.flatten` order, of the
            outputs that must be float32 whatever the policy.
        tolerance: float. Allowed error relative to the output scale.

    Returns:
        The mixed-precision layer.
    """
    policy = keras.dtype_policies.get(policy)
    expected = _numpy_leaves(_call(layer, args, kwargs, method))
    config = layer.get_config()
    config["dtype"] = keras.dtype_policies.serialize(policy)
    mixed = _rebuild(layer, config)
    assert mixed.compute_dtype == policy.compute_dtype
    for weight in mixed.weights:
        assert weight.dtype == policy.variable_dtype, (
            f"{weight.path} is {weight.dtype}, expected the policy's "
            f"variable dtype {policy.variable_dtype}"
        )
    outputs = keras.tree.flatten(_call(mixed, args, kwargs, method))
    assert len(outputs) == len(expected)
    for i, (output, reference) in enumerate(zip(outputs, expected)):
        want = "float32" if i in float32_outputs else policy.compute_dtype
        got = keras.backend.standardize_dtype(output.dtype)
        assert got == want, f"Output {i} is {got}, expected {want}"
        value = ops.convert_to_numpy(ops.cast(output, "float32"))
        assert np.isfinite(value).all(), f"Output {i} is not finite"
        error = np.max(np.abs(value - reference))
        scale = np.max(np.abs(reference))
        assert error <= tolerance * scale, (
            f"Output {i} under {policy.name} is off by {error:.3g}, more "
            f"than {tolerance} of its scale {scale:.3g}"
        )
    return mixed
