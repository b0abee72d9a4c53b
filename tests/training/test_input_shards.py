"""Each process's part of the examples: equal parts, and an order set by
the seed and the epoch alone."""

import keras
import numpy as np
import tensorflow as tf

from keras_fido.training.input_shards import shard_examples
from keras_fido.training.input_shards import shuffle_by_epoch


def process_of_two(index):
    class TwoProcesses(keras.distribution.DataParallel):
        num_processes = 2
        num_model_replicas = 2
        data_shard_id = index

    return TwoProcesses(devices=["cpu:0"])


def test_processes_get_equal_disjoint_parts():
    examples = tf.data.Dataset.from_tensor_slices(
        {
            "id": np.arange(7),
            "ragged": tf.ragged.constant([[i] * (i % 3 + 1) for i in range(7)]),
        }
    )
    parts = [
        [
            int(example["id"])
            for example in shard_examples(examples, process_of_two(i))
        ]
        for i in range(2)
    ]
    # The 7th example would give process 0 a step more than process 1.
    assert parts == [[0, 2, 4], [1, 3, 5]]
    assert int(shard_examples(examples, process_of_two(1)).cardinality()) == 3


def test_shuffle_order_depends_on_seed_and_epoch_only():
    keras.utils.set_random_seed(1)  # as the recipes do: not used here
    dataset, callback = shuffle_by_epoch(tf.data.Dataset.range(32), 64, 3)

    def order(epoch):
        callback.on_epoch_begin(epoch)
        return [int(x) for x in dataset]

    first_run = [order(epoch) for epoch in range(3)]
    assert first_run[0] != first_run[1] != first_run[2]
    assert all(sorted(o) == list(range(32)) for o in first_run)
    # A new process resumed at epoch 2 reads epoch 2's order.
    keras.utils.set_random_seed(2)
    resumed, callback = shuffle_by_epoch(tf.data.Dataset.range(32), 64, 3)
    callback.on_epoch_begin(2)
    assert [int(x) for x in resumed] == first_run[2]
    other_seed, callback = shuffle_by_epoch(tf.data.Dataset.range(32), 64, 4)
    callback.on_epoch_begin(2)
    assert [int(x) for x in other_seed] != first_run[2]
