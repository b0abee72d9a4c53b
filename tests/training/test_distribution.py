"""Training on 8 virtual CPU devices with Keras' own engines matches one
device, and the layout map covers every weight that should be sharded."""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_fido.models import FiDOBackbone
from keras_fido.testing.fido_models import tiny_backbone
from keras_fido.training.distribution import distribution_context

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
TOLERANCE = dict(rtol=1e-5, atol=1e-5)


def run_distribution_checks(backend, output_dir, *distributions):
    """Runs `keras_fido.testing.distribution_checks` in a fresh process."""
    env = dict(os.environ, KERAS_BACKEND=backend)
    if backend == "jax":
        env["XLA_FLAGS"] = " ".join(
            [
                env.get("XLA_FLAGS", ""),
                "--xla_force_host_platform_device_count=8",
            ]
        ).strip()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_fido.testing.distribution_checks",
            str(output_dir),
            *distributions,
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    with open(output_dir / "figures.json") as f:
        return json.load(f)


def assert_same_step(output_dir, figures, distribution):
    """Loss and every updated weight equal the one-device step's."""
    np.testing.assert_allclose(
        figures[distribution]["loss"], figures["single"]["loss"], **TOLERANCE
    )
    initial = np.load(output_dir / "initial.npz")
    expected = np.load(output_dir / "single.npz")
    received = np.load(output_dir / f"{distribution}.npz")
    assert sorted(received.files) == sorted(expected.files)
    moved = 0.0
    for path in expected.files:
        np.testing.assert_allclose(
            received[path], expected[path], err_msg=path, **TOLERANCE
        )
        moved = max(moved, np.abs(expected[path] - initial[path]).max())
    assert moved > 1e-3  # the step did change the weights


@pytest.fixture(scope="module")
def jax_checks(tmp_path_factory):
    if keras.backend.backend() != "jax":
        pytest.skip("keras.distribution runs on the JAX backend")
    output_dir = tmp_path_factory.mktemp("jax_distribution")
    return output_dir, run_distribution_checks(
        "jax", output_dir, "data", "model"
    )


def test_jax_data_parallel_step_matches_one_device(jax_checks):
    output_dir, figures = jax_checks
    assert figures["data"]["engine"] == "DataParallel"
    assert figures["data"]["devices"] == 8
    assert_same_step(output_dir, figures, "data")


def test_jax_model_parallel_step_matches_one_device(jax_checks):
    output_dir, figures = jax_checks
    assert figures["model"]["engine"] == "ModelParallel"
    layouts = figures["model"]["layouts"]
    # Sharded over the 4-way model axis, replicated over the batch axis.
    assert layouts["token_embedding/embeddings"]["spec"] == ["model", "None"]
    query = layouts["decoder/layer_1/self_attention/query/kernel"]
    assert query["spec"] == ["None", "model", "None"]
    key = layouts["decoder/layer_1/self_attention/key/kernel"]
    assert key["spec"] == ["None", "None", "None"]  # one shared K/V head
    assert_same_step(output_dir, figures, "model")


def test_tensorflow_mirrored_strategy_step_matches_one_device(tmp_path):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute runs on the TensorFlow backend")
    figures = run_distribution_checks("tensorflow", tmp_path, "data")
    assert figures["data"]["engine"] == "MirroredStrategy"
    assert figures["data"]["devices"] == 8
    for placed in figures["data"]["layouts"].values():
        assert placed["devices"] == 8
        assert placed["max_replica_difference"] == 0.0
    assert_same_step(tmp_path, figures, "data")


def fake_mesh(shape=(2, 4)):
    # A mesh only names devices until a variable is placed on it.
    return keras.distribution.DeviceMesh(
        shape=shape,
        axis_names=("batch", "model"),
        devices=[f"cpu:{i}" for i in range(int(np.prod(shape)))],
    )


@pytest.mark.parametrize(
    "kind, overrides",
    [
        ("fido", {"encoder_num_heads": 4}),  # 4 divides every head count
        ("fid", {}),
        ("fid", {"tie_embedding_weights": True}),
    ],
)
def test_layout_map_shards_every_kernel_and_embedding(kind, overrides):
    backbone = tiny_backbone(kind, **overrides)
    layout_map = FiDOBackbone.get_layout_map(fake_mesh())
    sharded = set()
    for variable in backbone.weights:
        layout = layout_map[variable.path]
        if re.search(r"(kernel|embeddings)$", variable.path):
            assert layout is not None, f"no rule for {variable.path}"
        else:
            assert variable.path.endswith("/scale"), variable.path
            assert layout is None  # norm scales: replicated by default
            continue
        assert len(layout.axes) == len(variable.shape), variable.path
        for axis, size in zip(layout.axes, variable.shape):
            if axis == "model":
                assert size % 4 == 0, (variable.path, variable.shape)
                sharded.add(re.sub(r"layer_\d+", "layer_N", variable.path))
    expected = {
        "token_embedding/embeddings",
        "encoder/layer_N/self_attention/query/kernel",
        "encoder/layer_N/self_attention/key/kernel",
        "encoder/layer_N/self_attention/value/kernel",
        "encoder/layer_N/self_attention/output/kernel",
        "decoder/layer_N/self_attention/query/kernel",
        "decoder/layer_N/self_attention/output/kernel",
        "decoder/layer_N/cross_attention/query/kernel",
        "decoder/layer_N/cross_attention/output/kernel",
    } | {
        f"{stack}/layer_N/feed_forward/{name}_dense/kernel"
        for stack in ("encoder", "decoder")
        for name in ("input", "gate", "output")
    }
    if kind == "fido":  # a narrower encoder has its own embedding
        expected.add("encoder_token_embedding/embeddings")
    if not overrides.get("tie_embedding_weights"):
        expected.add("token_embedding/reverse_embeddings")
    assert sharded == expected


def test_layout_map_names_missing_mesh_axes():
    with pytest.raises(ValueError, match="model_parallel_dim_name.*'heads'"):
        FiDOBackbone.get_layout_map(
            fake_mesh(), model_parallel_dim_name="heads"
        )
    with pytest.raises(ValueError, match="DeviceMesh"):
        FiDOBackbone.get_layout_map((2, 4))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(distribution="pipeline"), "--distribution must be one of"),
        (dict(distribution="data", model_parallel=2), "--model-parallel 2"),
        (dict(distribution="none", tpu="local"), "--tpu 'local'"),
        (dict(distribution="model", model_parallel=0), "positive int"),
    ],
)
def test_distribution_context_names_the_bad_flag(kwargs, message):
    with pytest.raises(ValueError, match=message):
        distribution_context(**kwargs)


def test_distribution_context_explains_each_backends_limits():
    backend = keras.backend.backend()
    if backend == "jax":
        # One CPU device in this process: 3 cannot divide it.
        with pytest.raises(ValueError, match="--model-parallel 3 must divide"):
            distribution_context("model", model_parallel=3)
        with pytest.raises(ValueError, match="--tpu .* TensorFlow flag"):
            distribution_context("data", tpu="local")
    elif backend == "tensorflow":
        with pytest.raises(ValueError, match="needs the JAX backend"):
            distribution_context("model", model_parallel=2)
    else:
        with pytest.raises(ValueError, match=f"{backend} backend"):
            distribution_context("data")


def test_distribution_context_none_changes_nothing():
    with distribution_context("none", batch_size=3) as engine:
        assert engine is None
        assert keras.distribution.distribution() is None
