"""Training the detector (section 4.4): labels per window and negative mining.

Detection trains the classifier "spatially": every cell of a training
crop's class map is a window with a label, and one step learns from many
windows of each image. The rule (`cell_labels`), with `held` the fraction
of an object's box inside the cell's window and `fill` the fraction of the
window the box covers:

- positive for class c: the window holds >= `positive_overlap` of a box of
  class c and that box fills >= `min_fill` of the window (a window that
  barely shows a small object is not asked to name it); if several boxes
  qualify, the one filling most of the window
  (`localization.assign_boxes`, which also picks the box it learns);
- background: the window holds < `negative_overlap` of every box;
- ignored: anything between.

The background is an extra class, the last (index C). Every positive cell
counts in the loss, and only `negatives_per_image` background cells per
image, chosen on the fly by the loss (`DetectionLoss`): at random, or the
most offending ones (hard negatives: the highest cross-entropy, i.e. the
background windows the network most believes hold an object), instead of
the paper's bootstrapping passes.
"""

from __future__ import annotations

from typing import Literal

import keras
import tensorflow as tf

import overfeat_tf as of
from overfeat_tf.config import ExperimentConfig
from overfeat_tf.errors import InvalidValueError
from overfeat_tf.training import localization, recipe
from overfeat_tf.training.localization import assign_boxes
from overfeat_tf.training.task import (
    Task,
    box_task,
    build_model,
    load_backbone,
    load_train_and_validation,
    xla_can_run,
)

IGNORE = -1


def cell_labels(
    boxes,
    labels,
    windows,
    num_classes: int,
    *,
    positive_overlap: float = 0.5,
    negative_overlap: float = 0.2,
    min_fill: float = 0.1,
):
    """Labels [h, w] int32 of one image's cells: class, `num_classes`
    (background) or -1 (ignored); see the module docstring for the rule.

    Args:
        boxes: [K, 4] xyxy pixels of the training image.
        labels: [K] classes; negative labels are padding (never objects).
        windows: [h, w, 4] the windows of the cells (`Geometry.cell_windows`).
        num_classes: C, the number of object classes.
    """
    if not 0 <= negative_overlap <= positive_overlap <= 1:
        raise InvalidValueError(
            "Expected 0 <= negative_overlap <= positive_overlap <= 1. Received: "
            f"negative_overlap={negative_overlap}, positive_overlap={positive_overlap}"
        )
    boxes = tf.concat([tf.cast(boxes, tf.float32), tf.zeros([1, 4])], 0)
    labels = tf.concat([tf.cast(labels, tf.int32), [IGNORE]], 0)
    best, positive, held = assign_boxes(
        boxes, labels, windows, positive_overlap, min_fill
    )
    background = tf.reduce_max(held, -1) < negative_overlap
    return tf.where(
        positive,
        tf.gather(labels, best),
        tf.where(background, num_classes, IGNORE),
    )


def select_negatives(losses, labels, background: int, count: int, keys=None):
    """A mask [B, h, w] of up to `count` background cells per image.

    Picks the cells with the highest `keys` [B, h, w] among the background
    cells of each image: the per-cell losses for hard negatives (the default,
    `keys=None`), random numbers for random negatives.
    """
    keys = losses if keys is None else keys
    shape = tf.shape(labels)
    flat_keys = tf.reshape(tf.cast(keys, tf.float32), [shape[0], -1])
    is_background = tf.reshape(labels, [shape[0], -1]) == background
    ranked = tf.where(is_background, flat_keys, -float("inf"))
    # Each cell's rank by key, descending, ties by position.
    rank = tf.argsort(tf.argsort(-ranked, axis=1, stable=True), axis=1)
    chosen = is_background & (rank < count)
    return tf.reshape(chosen, shape)


@keras.saving.register_keras_serializable(package="overfeat_tf")
class DetectionLoss(keras.losses.Loss):
    """Softmax cross-entropy over the positive cells and a few negatives.

    Args:
        negatives_per_image: background cells per image that count (>= 0).
        mining: `"hard"` (the highest-loss background cells) or `"random"`.
        seed: seeds the random choice.

    Call with labels [B, h, w] from `cell_labels` and logits [B, h, w, C + 1].
    Returns the mean loss over the counted cells (0 if there are none).
    """

    def __init__(
        self,
        negatives_per_image: int = 4,
        mining: Literal["hard", "random"] = "hard",
        seed: int | None = None,
        name: str = "detection_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if mining not in ("hard", "random"):
            raise InvalidValueError(
                f"mining must be 'hard' or 'random'. Received: {mining!r}"
            )
        self.negatives_per_image = negatives_per_image
        self.mining = mining
        self.seed = seed
        self._seeds = keras.random.SeedGenerator(seed)

    def call(self, labels, logits):
        logits = tf.cast(logits, tf.float32)
        labels = tf.cast(labels, tf.int32)
        background = tf.shape(logits)[-1] - 1
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
            tf.maximum(labels, 0), logits
        )
        keys = None
        if self.mining == "random":
            keys = keras.random.uniform(tf.shape(losses), seed=self._seeds)
        negatives = select_negatives(
            tf.stop_gradient(losses), labels, background, self.negatives_per_image, keys
        )
        counted = tf.cast(
            ((labels >= 0) & (labels != background)) | negatives, tf.float32
        )
        return tf.reduce_sum(losses * counted) / tf.maximum(tf.reduce_sum(counted), 1.0)

    def get_config(self):
        return {
            **super().get_config(),
            "negatives_per_image": self.negatives_per_image,
            "mining": self.mining,
            "seed": self.seed,
        }


def detection_parts(config: ExperimentConfig) -> Task:
    """The detector (section 4.4): the network with a background class and a
    box regressor, trained on many windows of each image at once.

    Images are rescaled, flipped and cropped as for localization, but by
    factors of `data.smallest_side` (`detect.scale_range`), so that objects
    keep the size the classifier learnt them at and the first test scales
    show them at; every cell of the crop's coarse map gets a label by
    `cell_labels` (object class, background or ignored) and,
    where it holds enough of a box, a box target. The loss counts the
    positive cells and `negatives_per_image` background cells per image,
    hard or random (`DetectionLoss`).
    With `detect.backbone` the network starts from that classifier
    (`with_background`, with `model.dropout`); otherwise from scratch.
    """
    settings = config.detect
    train_data, validation_data = load_train_and_validation(config)
    names = tuple(train_data.class_names)
    backbone = None
    if settings.backbone is not None:
        backbone = load_backbone("detect.backbone", settings.backbone)
        if backbone.class_names != names:
            raise InvalidValueError(
                f"The backbone {settings.backbone} was trained on the classes "
                f"{backbone.class_names}, but {config.data.source} has {names}."
            )
    geometry = (config.model if backbone is None else backbone).spec.geometry
    size = settings.image_size or geometry.input_size(5, "coarse")
    windows = geometry.cell_windows(size, size, "coarse")
    train_cfg = config.train

    def build(steps_per_epoch, strategy):
        if backbone is not None:
            model = of.with_background(backbone, dropout=config.model.dropout)
        else:
            model = build_model(config, (*names, "background"), regressor="single")
        model.compile(
            optimizer=recipe.make_optimizer(train_cfg, steps_per_epoch),
            loss={
                "class_logits": DetectionLoss(
                    settings.negatives_per_image, settings.mining, seed=config.seed
                ),
                "boxes": localization.box_regression_loss,
            },
            metrics={"boxes": [localization.BoxIoU()]},
            jit_compile=train_cfg.jit_compile and xla_can_run(strategy),
        )
        return model, model

    def targets(boxes, labels):
        return {
            "class_logits": cell_labels(
                boxes,
                labels,
                windows,
                len(names),
                positive_overlap=settings.positive_overlap,
                negative_overlap=settings.negative_overlap,
                min_fill=settings.min_fill,
            ),
            "boxes": localization.regression_targets(
                boxes, labels, windows, geometry.window, settings.positive_overlap
            ),
        }

    return box_task(
        config,
        train_data,
        validation_data,
        build,
        size,
        settings,
        targets,
        base_side=config.data.smallest_side,
    )
