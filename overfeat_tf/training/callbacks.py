"""Callbacks of a training run: checkpoints, NaN guard, TensorBoard extras."""

from __future__ import annotations

import logging
import math

import keras
import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw

from overfeat_tf.errors import OverfeatError
from overfeat_tf.preprocessing import MEAN_RGB, STDDEV_RGB
from overfeat_tf.visualize import draw_boxes

logger = logging.getLogger(__name__)


class NaNLossError(OverfeatError, FloatingPointError):
    """The training loss stopped being a finite number."""


class Checkpoints(keras.callbacks.Callback):
    """Saves the training state at every epoch end, and every N steps.

    The state is a `tf.train.Checkpoint` of the model, the optimizer (its
    step counter drives the schedule) and the number of finished epochs;
    `tf.train.CheckpointManager` writes it atomically, so a process killed
    at any moment leaves the previous checkpoint whole. A non-finite loss
    is never saved.

    Args:
        manager: the run's checkpoint manager.
        epoch: int64 variable in the checkpoint counting finished epochs.
        every_n_steps: also save every this many steps (None: epochs only).
    """

    def __init__(self, manager, epoch, every_n_steps=None):
        super().__init__()
        self.manager = manager
        self.epoch = epoch
        self.every_n_steps = every_n_steps

    def _save(self, logs):
        if logs and not math.isfinite(logs.get("loss", 0.0)):
            return
        step = int(self.model.optimizer.iterations.numpy())
        self.manager.save(checkpoint_number=step)

    def on_train_batch_end(self, batch, logs=None):
        if not self.every_n_steps:  # no host sync per step unless asked
            return
        if int(self.model.optimizer.iterations.numpy()) % self.every_n_steps == 0:
            self._save(logs)

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.assign(epoch + 1)
        self._save(logs)


class StopOnNaN(keras.callbacks.Callback):
    """Stops at the first non-finite loss with an error naming what to do."""

    def __init__(self, manager):
        super().__init__()
        self.manager = manager

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            step = int(self.model.optimizer.iterations.numpy())
            raise NaNLossError(
                f"The training loss became {loss} at step {step}. The last good "
                f"checkpoint is {self.manager.latest_checkpoint}: rerunning the "
                "same command resumes from it (with a lower learning rate if "
                "the loss diverges again)."
            )


class LearningRateLogger(keras.callbacks.Callback):
    """Adds `learning_rate` to the epoch logs (for TensorBoard and History)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            optimizer = self.model.optimizer
            logs["learning_rate"] = float(
                keras.ops.convert_to_numpy(optimizer.learning_rate)
            )


class ValidationImages(keras.callbacks.Callback):
    """Writes a few validation images with their predicted labels.

    Each image gets a caption strip: green when the top class is right,
    red when wrong, with the top class, its probability and the truth.

    Args:
        images: float32 [N, h, w, 3] normalized validation images.
        labels: int [N].
        class_names: names of the classes.
        log_dir: the TensorBoard folder (a `validation_images` run is added).
    """

    def __init__(self, images, labels, class_names, log_dir):
        super().__init__()
        self.images = np.asarray(images)
        self.labels = np.asarray(labels)
        self.class_names = class_names
        self.writer = tf.summary.create_file_writer(f"{log_dir}/validation_images")

    def on_epoch_end(self, epoch, logs=None):
        # A plain call, not predict: under a multi-worker strategy, predict
        # would wait for the other workers, which write no pictures.
        logits = self.model(self.images, training=False)["class_logits"]
        probs = keras.ops.convert_to_numpy(
            keras.ops.softmax(keras.ops.max(logits, axis=(1, 2)))
        )
        pixels = self.images * STDDEV_RGB + MEAN_RGB
        pictures = [
            _captioned(image, self.class_names, prob, label)
            for image, prob, label in zip(pixels, probs, self.labels)
        ]
        with self.writer.as_default():
            tf.summary.image(
                "predictions", np.stack(pictures), step=epoch, max_outputs=len(pictures)
            )
        self.writer.flush()


def _captioned(image, class_names, probs, label):
    """uint8 [h + 14, w, 3]: the image under a caption of its prediction."""
    top = int(np.argmax(probs))
    image = np.clip(image, 0, 255).astype(np.uint8)
    canvas = Image.new("RGB", (image.shape[1], image.shape[0] + 14), (0, 0, 0))
    canvas.paste(Image.fromarray(image), (0, 14))
    colour = (60, 200, 60) if top == label else (230, 60, 60)
    text = f"{class_names[top]} {probs[top]:.2f} (true: {class_names[label]})"
    ImageDraw.Draw(canvas).text((2, 1), text, fill=colour)
    return np.asarray(canvas)


class DetectionImages(keras.callbacks.Callback):
    """Writes a few validation images with predicted and true boxes.

    After every epoch the model being trained runs as a `Detector` at one
    scale (the images' own size, no flips) on each image; its boxes are
    drawn in red with class and confidence, the ground truth in green.

    Args:
        examples: a few `{"image", "boxes", "labels"}` elements (uint8
            images of any size, boxes xyxy pixels, labels -1 = padding).
        class_names: names of the object classes.
        log_dir: the TensorBoard folder (a `validation_images` run is added).
        size: the pictures' shorter side, in pixels (>= the window).
    """

    def __init__(self, examples, class_names, log_dir, size=256):
        super().__init__()
        self.examples = list(examples)
        self.class_names = class_names
        self.size = size
        self.writer = tf.summary.create_file_writer(f"{log_dir}/validation_images")

    def on_train_begin(self, logs=None):
        from overfeat_tf.detector import Detector

        # Shares the model's weights: traced once, it sees every update.
        self.detector = Detector(self.model, scales=(self.size,), flips=False)

    def on_epoch_end(self, epoch, logs=None):
        detector = self.detector
        pictures = []
        for example in self.examples:
            image = np.asarray(example["image"])
            out = detector(image)
            n = int(out["num_detections"])
            truth = np.asarray(example["labels"]) >= 0
            pictures.append(
                draw_boxes(
                    image,
                    out["boxes"].numpy()[:n],
                    [
                        f"{self.class_names[c]} {s:.1f}"
                        for c, s in zip(out["classes"].numpy()[:n], out["scores"][:n])
                    ],
                    truth=np.asarray(example["boxes"])[truth],
                    truth_captions=[
                        self.class_names[c]
                        for c in np.asarray(example["labels"])[truth]
                    ],
                )
            )
        with self.writer.as_default():
            for i, picture in enumerate(pictures):
                tf.summary.image(f"detections/{i}", picture[None], step=epoch)
        self.writer.flush()
