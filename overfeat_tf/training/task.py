"""What a task trains, as parts `prepare` puts together: the data splits, a
model builder and the batch streams; and the helpers the task modules share
(`training.classification`, `training.localization`, `training.detection`).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import keras
import tensorflow as tf

import overfeat_tf as of
from overfeat_tf.config import ExperimentConfig
from overfeat_tf.data import pipelines, readers
from overfeat_tf.errors import InvalidValueError, MissingFileError

BUILDERS = {"fast": of.overfeat_fast, "accurate": of.overfeat_accurate}


@dataclasses.dataclass
class Task:
    """What one task trains: its data, model and batches."""

    train_data: readers.LabeledData
    validation_data: readers.LabeledData
    # (steps per epoch, strategy) -> (the compiled model fit trains, the
    # OverFeat it trains)
    build: Callable[[int, tf.distribute.Strategy], tuple[keras.Model, of.OverFeat]]
    # (per-replica batch size, seed) -> endless batches
    train_batches: Callable[[int, int], tf.data.Dataset]
    # (batch size, drop_remainder) -> one pass of validation batches
    validation_batches: Callable[[int, bool], tf.data.Dataset]


def load_split(config: ExperimentConfig, split: str) -> readers.LabeledData:
    load = readers.load_classification
    if config.task != "classify":
        load = readers.load_detection
    return load(
        config.data.source,
        split,
        data_dir=config.data.data_dir,
        on_bad=config.data.on_bad,
    )


def load_train_and_validation(config: ExperimentConfig):
    """The training and validation splits, on the training split's label map.

    Labels index the training split's class names (the model's). A
    validation split with other class names (a COCO validation file whose
    categories differ) would be scored against the wrong classes: refused.
    """
    data = config.data
    train_data = load_split(config, data.train_split)
    validation_data = load_split(config, data.validation_split)
    if tuple(validation_data.class_names) != tuple(train_data.class_names):
        raise InvalidValueError(
            "Expected the validation split to have the class names of the "
            "training split (labels are indices into them). Received: "
            f"source={data.source!r}, {data.train_split!r} has "
            f"{train_data.class_names}, {data.validation_split!r} has "
            f"{validation_data.class_names}"
        )
    return train_data, validation_data


def build_model(config: ExperimentConfig, class_names, **kwargs) -> of.OverFeat:
    """The config's network for `class_names`, in its mixed-precision policy
    (keyword arguments go to `OverFeat`, e.g. `regressor`)."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(config.train.mixed_precision)
    try:
        return BUILDERS[config.model.network](
            len(class_names),
            class_names=class_names,
            width=config.model.width,
            initializer=config.model.initializer,
            class_initializer=config.model.class_initializer,
            dropout=config.model.dropout,
            normalization=config.model.normalization_layer,
            **kwargs,
        )
    finally:
        keras.mixed_precision.set_global_policy(previous)


def xla_can_run(strategy: tf.distribute.Strategy) -> bool:
    """XLA cannot compile one step over several replicas on (logical) CPUs."""
    if strategy.num_replicas_in_sync == 1:
        return True
    return not any("CPU" in device for device in strategy.extended.worker_devices)


def load_backbone(key: str, path: str) -> of.OverFeat:
    """The classifier a run starts from; a missing one names the config key."""
    try:
        return of.load_model(path)
    except FileNotFoundError as error:
        raise MissingFileError(
            f"{key}: {error}. Train that classifier first, or set {key} to a "
            "model.keras file or a run folder."
        ) from None


def box_task(
    config, train_data, validation_data, build, size, settings, targets, base_side=None
):
    """A task trained on square crops with boxes: `targets(boxes, labels)`
    gives one image's targets, a dict by output name; `base_side` is the
    side `settings.scale_range` multiplies (default the crop's)."""

    def batches(dataset, batch_size, seed):
        crops = pipelines.detection_train(
            dataset,
            size,
            batch_size=batch_size,
            max_boxes=settings.max_boxes,
            scale_range=tuple(settings.scale_range),
            base_side=base_side,
            shuffle_buffer=config.data.shuffle_buffer,
            seed=seed,
        )
        example = targets(tf.zeros([0, 4]), tf.zeros([0], tf.int32))
        signature = {name: tf.TensorSpec(None, t.dtype) for name, t in example.items()}

        def with_targets(images, objects):
            return images, tf.map_fn(
                lambda o: targets(*o),
                (objects["boxes"], objects["labels"]),
                fn_output_signature=signature,
            )

        return crops.map(with_targets, num_parallel_calls=tf.data.AUTOTUNE)

    def validation_batches(batch_size, drop_remainder):
        # Random crops with a fixed seed, whole batches only.
        count = (validation_data.num_examples or 0) // batch_size
        return batches(validation_data.dataset, batch_size, config.seed).take(
            max(count, 1)
        )

    return Task(
        train_data,
        validation_data,
        build,
        lambda batch_size, seed: batches(train_data.dataset, batch_size, seed),
        validation_batches,
    )
