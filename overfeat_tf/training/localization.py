"""Training the box regressor (section 4.3): targets, loss and a metric.

The feature extractor is frozen and the regressor learns, at every cell of
a training image's class map, the ground-truth box relative to that cell's
window (`boxes.encode_windows`). A cell learns a box only where its window
holds at least `min_overlap` of the box (the paper's 50 %); every other
cell is ignored. Where several boxes qualify, a cell learns the one that
fills most of its window (`assign_boxes`): a window often holds several
whole objects, and "the most prominent one" is a label it can learn.

Targets travel as one float32 tensor [B, h, w, 6] per batch: the 4 coded
edges, a weight (1 = learn, 0 = ignore) and the box's class (for the
per-class regressor, which learns only its class's 4 outputs).
"""

from __future__ import annotations

import keras
import tensorflow as tf

import overfeat_tf as of
from overfeat_tf import boxes as box_ops
from overfeat_tf import derived
from overfeat_tf.config import ExperimentConfig
from overfeat_tf.errors import InvalidValueError
from overfeat_tf.training import recipe
from overfeat_tf.training.task import (
    Task,
    box_task,
    load_backbone,
    load_train_and_validation,
    xla_can_run,
)

TARGET_CHANNELS = 6


def assign_boxes(boxes, labels, windows, min_held: float, min_fill: float = 0.0):
    """The box each window learns, shared by the regressor and the detector.

    A box qualifies for a window when the window holds at least `min_held`
    of the box and the box fills at least `min_fill` of the window; of the
    qualifying boxes, the window takes the one filling most of it (the
    first on a tie). Negative labels are padding and never qualify.

    Args:
        boxes: [K, 4] xyxy pixels; labels: [K]; windows: [h, w, 4].

    Returns:
        (index [h, w] int32 into the K boxes, qualified [h, w] bool, held
        [h, w, K] the fraction of each box inside each window, 0 for
        padding).
    """
    boxes = tf.cast(boxes, tf.float32)[None, None]
    windows = tf.cast(windows, tf.float32)[:, :, None, :]
    real = tf.cast(labels, tf.int32)[None, None] >= 0
    held = tf.where(real, box_ops.coverage(windows, boxes), 0.0)
    fill = tf.math.divide_no_nan(
        box_ops.intersection(windows, boxes), box_ops.area(windows)
    )
    qualifies = real & (held >= min_held) & (fill >= min_fill)
    index = tf.argmax(tf.where(qualifies, fill, -1.0), -1, output_type=tf.int32)
    return index, tf.reduce_any(qualifies, -1), held


def regression_targets(boxes, labels, windows, window: int, min_overlap: float = 0.5):
    """Targets [h, w, 6] for one image's boxes [K, 4] and labels [K] (-1 = pad).

    Args:
        boxes: ground-truth boxes, xyxy pixels of the training image.
        labels: their classes; negative labels are padding and never learnt.
        windows: [h, w, 4] the window of every cell of the image's map
            (`Geometry.cell_windows`).
        window: the window's side in pixels.
        min_overlap: the fraction of a box a window must hold (in (0, 1]).
    """
    if not 0 < min_overlap <= 1:
        raise InvalidValueError(
            f"min_overlap must be in (0, 1]. Received: min_overlap={min_overlap}"
        )
    # A padding box at the end: every cell has a candidate, even for K = 0.
    boxes = tf.concat([tf.cast(boxes, tf.float32), tf.zeros([1, 4])], 0)
    labels = tf.concat([tf.cast(labels, tf.int32), [-1]], 0)
    windows = tf.cast(windows, tf.float32)
    best, learn, _ = assign_boxes(boxes, labels, windows, min_overlap)
    codes = box_ops.encode_windows(tf.gather(boxes, best), windows, window)
    codes = tf.where(learn[..., None], codes, 0.0)
    weights = tf.cast(learn, tf.float32)[..., None]
    classes = tf.cast(tf.where(learn, tf.gather(labels, best), 0), tf.float32)
    return tf.concat([codes, weights, classes[..., None]], -1)


def _predicted_codes(targets, predictions):
    """The 4 outputs that each cell's target is for: [B, h, w, 4]."""
    predictions = keras.ops.cast(predictions, "float32")
    if predictions.shape[-1] == 4:
        return predictions
    shape = keras.ops.shape(predictions)
    per_class = keras.ops.reshape(predictions, (*shape[:-1], shape[-1] // 4, 4))
    classes = keras.ops.cast(targets[..., 5], "int32")[..., None, None]
    return keras.ops.take_along_axis(per_class, classes, axis=-2)[..., 0, :]


@keras.saving.register_keras_serializable(package="overfeat_tf")
def box_regression_loss(targets, predictions):
    """The L2 loss of section 4.3 over the cells that learn a box.

    The squared distance between the predicted and target codes (summed
    over the 4 edges), averaged over the batch's learning cells; ignored
    cells contribute nothing, and a batch without any gives 0.

    Args:
        targets: [B, h, w, 6] from `regression_targets`.
        predictions: the `"boxes"` output, [B, h, w, 4] or [B, h, w, 4C].
    """
    targets = keras.ops.cast(targets, "float32")
    errors = keras.ops.sum(
        keras.ops.square(_predicted_codes(targets, predictions) - targets[..., :4]),
        axis=-1,
    )
    weights = targets[..., 4]
    return keras.ops.sum(errors * weights) / keras.ops.maximum(
        keras.ops.sum(weights), 1.0
    )


@keras.saving.register_keras_serializable(package="overfeat_tf")
class BoxIoU(keras.metrics.Metric):
    """Mean IoU between predicted and true boxes over the learning cells.

    Codes are decoded against one common window (IoU does not depend on
    where the window is), so the metric reads in the units users judge
    boxes by: 1 is perfect, 0.5 the ILSVRC bar.
    """

    def __init__(self, name: str = "box_iou", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable((), "zeros", name="total")
        self.count = self.add_variable((), "zeros", name="count")

    def update_state(self, targets, predictions, sample_weight=None):
        targets = tf.cast(targets, tf.float32)
        unit = tf.constant([0.0, 0.0, 1.0, 1.0])
        iou = box_ops.iou(
            targets[..., :4] + unit, _predicted_codes(targets, predictions) + unit
        )
        weights = targets[..., 4]
        self.total.assign_add(tf.reduce_sum(iou * weights))
        self.count.assign_add(tf.reduce_sum(weights))

    def result(self):
        return self.total / keras.ops.maximum(self.count, 1.0)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)


def localization_parts(config: ExperimentConfig) -> Task:
    """The box regressor on a trained classifier's frozen features (4.3).

    Training images are rescaled at random (`localize.scale_range`), flipped
    and cropped square (`localize.image_size`), and every cell of the
    crop's coarse map learns the box its window holds enough of
    (`regression_targets`). Validation uses the same
    augmentation with a fixed seed, over the validation split.
    """
    settings = config.localize
    if settings.backbone is None:
        raise InvalidValueError(
            "Training the box regressor needs a trained classifier: set "
            "localize.backbone to its model.keras or run folder (e.g. "
            "localize.backbone=runs/shapes_fast)."
        )
    backbone = load_backbone("localize.backbone", settings.backbone)
    train_data, validation_data = load_train_and_validation(config)
    if backbone.class_names != tuple(train_data.class_names):
        raise InvalidValueError(
            f"The backbone {settings.backbone} was trained on the classes "
            f"{backbone.class_names}, but {config.data.source} has "
            f"{train_data.class_names}: the merge scores boxes with the "
            "classifier, so both must use one label map."
        )
    geometry = backbone.geometry
    size = settings.image_size or geometry.input_size(3, "coarse")
    windows = geometry.cell_windows(size, size, "coarse")
    train_cfg = config.train

    def build(steps_per_epoch, strategy):
        network = of.with_regressor(backbone, settings.regressor)
        regressor = set(derived.regressor_layer_names(network))
        for layer in network.layers:
            layer.trainable = getattr(layer, "conv", layer).name in regressor
        # Keras's metrics want a target for every output: train the boxes alone.
        model = keras.Model(network.input, {"boxes": network.output["boxes"]})
        model.compile(
            optimizer=recipe.make_optimizer(train_cfg, steps_per_epoch),
            loss={"boxes": box_regression_loss},
            metrics={"boxes": [BoxIoU()]},
            jit_compile=train_cfg.jit_compile and xla_can_run(strategy),
        )
        return model, network

    def targets(boxes, labels):
        return {
            "boxes": regression_targets(
                boxes, labels, windows, geometry.window, settings.min_overlap
            )
        }

    return box_task(config, train_data, validation_data, build, size, settings, targets)
