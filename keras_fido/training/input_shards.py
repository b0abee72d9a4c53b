"""Each process reads its own part of the training examples.

With several processes, every one runs the same input pipeline; this
module makes each keep a disjoint part, so an epoch reads every example
once, and batches them so that the processes' batches together make the
global batch that `--batch-size` names.
"""

import keras


def input_shard(engine):
    """`(count, index)`: this process reads every `count`-th example,
    starting at `index`.

    - JAX, one process, or no engine: `(1, 0)`.
    - JAX, several processes: one shard per data-parallel replica group
      (a process, or the processes that together hold one model replica
      when `--model-parallel` spans processes; those read the same shard).
    - TensorFlow `MultiWorkerMirroredStrategy`: one shard per worker.
    """
    if _is_keras_distribution(engine):
        if engine.num_processes == 1:
            return 1, 0
        count = min(engine.num_processes, engine.num_model_replicas)
        return count, engine.data_shard_id
    resolver = getattr(engine, "cluster_resolver", None)
    if engine is None or resolver is None or resolver.task_type is None:
        return 1, 0
    import tensorflow as tf

    spec = resolver.cluster_spec()
    tasks = [
        (kind, i)
        for kind in ("chief", "worker")
        for i in range(spec.num_tasks(kind) if kind in spec.jobs else 0)
    ]
    del tf
    return len(tasks), tasks.index((resolver.task_type, resolver.task_id))


def shard_batch_size(engine, batch_size):
    """Rows of each batch this process's pipeline makes.

    JAX: the global batch over the shards (Keras assembles the global
    batch from every process's rows). TensorFlow: the global batch
    itself, as `tf.distribute` splits it over the workers.

    Raises:
        ValueError: naming `--batch-size` and the process count when the
            batch does not split evenly over them.
    """
    count, _ = input_shard(engine)
    if batch_size % count:
        raise ValueError(
            f"--batch-size {batch_size} must be divisible by the {count} "
            "processes that each read their own part of every batch. "
            f"Received: --batch-size {batch_size} over {count} processes"
        )
    if _is_keras_distribution(engine):
        return batch_size // count
    return batch_size


def shard_examples(dataset, engine):
    """`dataset` with only this process's examples (unbatched input).

    Call before shuffling and batching. On JAX, each process keeps one
    example of every `count` (its index in each round), and a last round
    short of `count` examples is dropped, so that all make the same number
    of steps. On TensorFlow the dataset is
    marked to be split by element (`AutoShardPolicy.DATA`) when the
    strategy distributes it: `tf.distribute` assembles each global batch
    from the workers' parts itself, and must not try to split a single
    file by file.
    """
    count, index = input_shard(engine)
    if count == 1:
        return dataset
    if _is_keras_distribution(engine):
        return _whole_rounds(dataset, count, index)
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return dataset.with_options(options)


def _whole_rounds(dataset, count, index):
    """Example `index` of each round of `count` examples; a last, partial
    round is dropped.

    Unlike `dataset.shard`, every process gets the same number of
    examples (7 examples over 2 processes: 3 each, not 4 and 3), so every
    process makes the same number of batches: on JAX a process with one
    batch more would wait forever for the others in its training step.
    """
    import tensorflow as tf

    def pick(*round_):  # a tuple dataset's window comes as arguments
        round_ = round_[0] if len(round_) == 1 else round_
        return tf.data.Dataset.zip(round_).skip(index).take(1)

    rounds = dataset.window(count, drop_remainder=True).flat_map(pick)
    size = int(dataset.cardinality())
    if size < 0:  # unknown or infinite: so is each part
        return rounds
    # Keep the size known, as `shard` does (Keras counts the steps).
    return rounds.apply(tf.data.experimental.assert_cardinality(size // count))


def _is_keras_distribution(engine):
    return isinstance(
        engine,
        (keras.distribution.DataParallel, keras.distribution.ModelParallel),
    )


def shuffle_by_epoch(dataset, buffer_size, seed):
    """`dataset` shuffled in an order set by `(seed, epoch)` alone, and the
    callback that tells it the epoch.

    `Dataset.shuffle(seed=...)` reshuffles at each new iterator, counting
    iterators from the start of the process: a job restarted at epoch 2
    would read epoch 0's order again (and Keras may open an extra
    iterator, to build the model). Here each epoch's order is drawn from
    `seed` and the epoch number that `fit` reports, so a resumed epoch
    reads the examples in the order an uninterrupted run does. Pass the
    callback to `fit`.

    Returns:
        `(dataset, callback)`.
    """
    import tensorflow as tf

    # A lookup table, not a tf.Variable: a strategy's scope would mirror
    # a variable made inside it.
    epoch = tf.lookup.experimental.MutableHashTable(
        tf.int64, tf.int64, default_value=0
    )
    key = tf.constant(0, tf.int64)

    def one_epoch(_):
        # The order comes from this seed alone. (A global seed, such as
        # `keras.utils.set_random_seed` sets, would also make TensorFlow
        # test the seed tensor as a Python bool, which a graph refuses.)
        tf.compat.v1.get_default_graph().seed = None
        seed_of_epoch = seed * 1_000_003 + epoch.lookup(key)
        return dataset.shuffle(
            buffer_size, seed=seed_of_epoch, reshuffle_each_iteration=False
        )

    shuffled = tf.data.Dataset.from_tensors(key).flat_map(one_epoch)
    return shuffled.with_options(dataset.options()), _EpochCallback(epoch, key)


class _EpochCallback(keras.callbacks.Callback):
    """Sets the epoch that `shuffle_by_epoch`'s dataset reads."""

    def __init__(self, table, key):
        super().__init__()
        self.table, self.key = table, key

    def on_epoch_begin(self, epoch, logs=None):
        import tensorflow as tf

        self.table.insert(self.key, tf.constant(epoch, tf.int64))
