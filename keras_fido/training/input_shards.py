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

    Call before shuffling and batching. On TensorFlow the dataset is
    marked to be split by element (`AutoShardPolicy.DATA`) when the
    strategy distributes it: `tf.distribute` assembles each global batch
    from the workers' parts itself, and must not try to split a single
    file by file.
    """
    count, index = input_shard(engine)
    if count == 1:
        return dataset
    if _is_keras_distribution(engine):
        return dataset.shard(count, index)
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return dataset.with_options(options)


def _is_keras_distribution(engine):
    return isinstance(
        engine,
        (keras.distribution.DataParallel, keras.distribution.ModelParallel),
    )
