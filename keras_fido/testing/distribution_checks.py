"""One training step on 8 devices and on one, for the distribution tests.

Run in a fresh process, as the devices must exist before the backend
starts them:

    XLA_FLAGS=--xla_force_host_platform_device_count=8 KERAS_BACKEND=jax \
        python -m keras_fido.testing.distribution_checks OUT data model

A tiny FiDO reader takes one SGD step of `fit` on one batch of token ids
on one device, then again from the same weights inside
`keras_fido.training.distribution_context` for each name given: `data`
(JAX `DataParallel` over 8 devices; TensorFlow `MirroredStrategy` over 8
logical CPUs, which this module creates) and `model` (JAX `ModelParallel`
on a 2 x 4 batch x model mesh). The weights after each step go to
`OUT/<name>.npz` (`single` for one device), losses and placements to
`OUT/figures.json`; `tests/training/test_distribution.py` compares them.
"""

import json
import os
import sys

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_fido.models.fido_seq_2_seq_lm import FiDOSeq2SeqLM
from keras_fido.testing.fido_models import tiny_backbone
from keras_fido.training.distribution import distribution_context

NUM_DEVICES = 8
MODEL_PARALLEL = 4
BATCH_SIZE = 16  # 2 rows per device: the batch split is tested too.


def tiny_reader():
    """The tiny FiDO reader, smaller still: tracing it for 8 TensorFlow
    replicas takes most of a check's time. It keeps FiDO's knobs: a wider
    multi-query decoder whose second layer alone cross-attends."""
    backbone = tiny_backbone(
        "fido",
        vocabulary_size=128,
        encoder_num_layers=1,
        decoder_num_layers=2,
        # 4 heads (the tiny FiDO encoder has 2) so that the 4-way model
        # axis divides every head count.
        encoder_num_heads=4,
    )
    return FiDOSeq2SeqLM(backbone, preprocessor=None)


def tiny_batch(seed=0, passages=2, length=8, target_length=6):
    """Token ids with padding in passages and targets, and labels."""
    rng = np.random.default_rng(seed)
    shape = (BATCH_SIZE, passages, length)
    encoder_mask = (
        np.arange(length) < rng.integers(3, length + 1, shape[:2])[..., None]
    ).astype("int32")
    encoder_ids = rng.integers(3, 128, shape).astype("int32") * encoder_mask
    target_lengths = rng.integers(2, target_length + 1, (BATCH_SIZE, 1))
    decoder_mask = (np.arange(target_length) < target_lengths).astype("int32")
    labels = rng.integers(3, 128, (BATCH_SIZE, target_length)) * decoder_mask
    decoder_ids = np.concatenate(
        [np.zeros((BATCH_SIZE, 1), "int64"), labels[:, :-1]], axis=1
    )
    x = {
        "encoder_token_ids": encoder_ids,
        "encoder_padding_mask": encoder_mask,
        "decoder_token_ids": decoder_ids.astype("int32"),
        "decoder_padding_mask": decoder_mask,
    }
    return x, labels.astype("int32"), decoder_mask.astype("float32")


def train_one_step(batch, initial_weights=None):
    """Builds the reader, loads `initial_weights`, fits one batch.

    Call inside a distribution context to build and train there. Returns
    `(reader, weights before the step, loss)`.
    """
    reader = tiny_reader()
    if initial_weights is not None:
        reader.set_weights(initial_weights)
    initial_weights = reader.get_weights()
    reader.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5))
    dataset = tf.data.Dataset.from_tensor_slices(batch).batch(BATCH_SIZE)
    history = reader.fit(dataset, epochs=1, verbose=0)
    return reader, initial_weights, float(history.history["loss"][0])


def numpy_weights(reader):
    return {v.path: ops.convert_to_numpy(v.value) for v in reader.weights}


def layouts(reader):
    """How the engine placed a few weights (backend-specific figures)."""
    watched = (
        "token_embedding/embeddings",
        "decoder/layer_1/self_attention/query/kernel",
        "decoder/layer_1/self_attention/key/kernel",
        "encoder/layer_0/feed_forward/output_dense/kernel",
    )
    placed = {}
    for variable in reader.weights:
        if variable.path not in watched:
            continue
        value = variable.value
        if keras.backend.backend() == "jax":
            placed[variable.path] = {
                "spec": [str(axis) for axis in value.sharding.spec],
                "devices": len(value.sharding.device_set),
            }
        else:
            replicas = [np.asarray(v) for v in value.values]
            placed[variable.path] = {
                "devices": len(replicas),
                "max_replica_difference": max(
                    float(np.max(np.abs(r - replicas[0]))) for r in replicas
                ),
            }
    return placed


def run(distributions, output_dir):
    """Trains one step on one device, then under each distribution.

    Writes `<output_dir>/<name>.npz` (the weights after the step, by path)
    for `single` and each distribution, and `<output_dir>/figures.json`:
    per run, its loss, engine and how a few weights were placed.
    """
    keras.utils.set_random_seed(0)
    batch = tiny_batch()
    single, initial, loss = train_one_step(batch)
    figures = {"single": {"loss": loss, "engine": None}}
    np.savez(
        os.path.join(output_dir, "initial.npz"),
        **dict(zip((v.path for v in single.weights), initial)),
    )
    np.savez(os.path.join(output_dir, "single.npz"), **numpy_weights(single))
    for distribution in distributions:
        context = distribution_context(
            distribution,
            model_parallel=MODEL_PARALLEL if distribution == "model" else 1,
            batch_size=BATCH_SIZE,
        )
        with context as engine:
            reader, _, loss = train_one_step(batch, initial)
        np.savez(
            os.path.join(output_dir, f"{distribution}.npz"),
            **numpy_weights(reader),
        )
        figures[distribution] = {
            "loss": loss,
            "engine": type(engine).__name__,
            "devices": _num_devices(engine),
            "layouts": layouts(reader),
        }
    with open(os.path.join(output_dir, "figures.json"), "w") as f:
        json.dump(figures, f, indent=1)
    return figures


def _num_devices(engine):
    if hasattr(engine, "num_replicas_in_sync"):
        return engine.num_replicas_in_sync
    return len(engine.device_mesh.devices.flat)


def make_devices():
    """Checks (JAX) or creates (TensorFlow) the 8 CPU devices."""
    if keras.backend.backend() == "tensorflow":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * NUM_DEVICES
        )
    devices = keras.distribution.list_devices()
    if len(devices) != NUM_DEVICES:
        raise SystemExit(
            f"Expected {NUM_DEVICES} devices, found {devices}: on JAX set "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={NUM_DEVICES}"
            " before the process starts."
        )


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        raise SystemExit(
            "usage: python -m keras_fido.testing.distribution_checks "
            "OUTPUT_DIR {data,model}..."
        )
    make_devices()
    run(argv[1:], argv[0])


if __name__ == "__main__":
    main()
