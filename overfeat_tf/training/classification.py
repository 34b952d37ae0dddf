"""Training the classifier (section 3.1): the network from scratch on random
windows of rescaled images, with the paper's loss and top-k errors."""

from __future__ import annotations

from overfeat_tf.config import ExperimentConfig
from overfeat_tf.data import pipelines
from overfeat_tf.training import recipe
from overfeat_tf.training.task import (
    Task,
    build_model,
    load_train_and_validation,
    xla_can_run,
)


def classification_parts(config: ExperimentConfig) -> Task:
    """The network from scratch on random windows (section 3.1)."""
    train_data, validation_data = load_train_and_validation(config)
    train_cfg = config.train
    window = config.model.spec.geometry.window
    # One cache for every epoch's pipeline: filled by the first, read after.
    images = train_data.dataset.cache() if config.data.cache else train_data.dataset

    def build(steps_per_epoch, strategy):
        model = build_model(config, train_data.class_names)
        model.compile(
            optimizer=recipe.make_optimizer(train_cfg, steps_per_epoch),
            loss={
                "class_logits": recipe.ClassMapCrossentropy(train_cfg.label_smoothing)
            },
            metrics={
                "class_logits": [
                    recipe.TopKError(1),
                    recipe.TopKError(min(5, len(train_data.class_names))),
                ]
            },
            jit_compile=train_cfg.jit_compile and xla_can_run(strategy),
        )
        return model, model

    def train_batches(batch_size, seed):
        return pipelines.classification_train(
            images,
            window,
            batch_size=batch_size,
            smallest_side=config.data.smallest_side,
            scale_range=config.data.scale_range,
            crops_per_image=config.data.crops_per_image,
            shuffle_buffer=config.data.shuffle_buffer,
            seed=seed,
        )

    def validation_batches(batch_size, drop_remainder):
        return pipelines.classification_eval(
            validation_data.dataset,
            window,
            batch_size=batch_size,
            smallest_side=config.data.smallest_side,
            drop_remainder=drop_remainder,
        )

    return Task(train_data, validation_data, build, train_batches, validation_batches)
