"""The batches a run trains and validates on: each epoch's seeded stream,
cut per replica and spread over the workers, so that a step sees the same
images on any number of replicas and workers as on one device."""

from __future__ import annotations

import functools

import tensorflow as tf

from overfeat_tf.errors import InvalidValueError


def validation_steps(config, validation_data) -> int:
    """Whole global batches of one validation pass (every worker must take
    as many); at most `train.validation_steps`."""
    steps = (validation_data.num_examples or 0) // config.train.batch_size
    if config.train.validation_steps:
        steps = min(steps, config.train.validation_steps)
    if steps < 1:
        raise InvalidValueError(
            f"The validation split {config.data.source}:"
            f"{config.data.validation_split} has {validation_data.num_examples} "
            f"examples, fewer than one batch of {config.train.batch_size}, "
            'which train.loop="custom" needs; lower train.batch_size.'
        )
    return steps


def training_batches(
    config, strategy, epoch_batches, steps_per_epoch, initial_epoch, skip
):
    """Epochs `initial_epoch`.. as batches; epoch e is seeded by (seed, e).

    `epoch_batches(batch_size, seed)` gives one seeded stream of batches.
    The batches are built per replica (the global batch split evenly), and
    each worker keeps every n-th of them, so a step sees the same images
    on any number of replicas and workers as on one device.
    """
    replicas = strategy.num_replicas_in_sync

    def batches(batch_size):
        def epoch(e):
            seed = config.seed * 1_000_003 + e
            return epoch_batches(batch_size, seed).take(steps_per_epoch * replicas)

        # A finished run still gets a (never read) epoch: fit runs none.
        epochs = range(initial_epoch, config.train.epochs) or [initial_epoch]
        return functools.reduce(
            tf.data.Dataset.concatenate, (epoch(e) for e in epochs)
        ).skip(skip * replicas)

    return distribute(strategy, config.train.batch_size, batches)


def distribute(strategy, global_batch: int, batches):
    """`batches(per_replica_batch)`, the stream of one device cut in
    per-replica batches, spread over the replicas: each worker keeps every
    n-th batch, so that the replicas of a step together see the images of
    one global batch."""

    def per_replica(context: tf.distribute.InputContext) -> tf.data.Dataset:
        stream = batches(context.get_per_replica_batch_size(global_batch))
        stream = stream.shard(context.num_input_pipelines, context.input_pipeline_id)
        return stream.prefetch(tf.data.AUTOTUNE)

    if strategy.num_replicas_in_sync == 1:
        return per_replica(tf.distribute.InputContext())
    return strategy.distribute_datasets_from_function(per_replica)


def first_examples(dataset, count):
    images, labels = [], []
    for batch_images, batch_labels in dataset:
        images.append(batch_images[:count])
        labels.append(batch_labels[:count])
        count -= len(batch_labels)
        if count <= 0:
            break
    return tf.concat(images, 0), tf.concat(labels, 0)
