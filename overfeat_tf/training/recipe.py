"""The paper's training recipe (section 3.1): optimizer, schedule, loss, metrics.

SGD with momentum 0.6 and L2 weight decay 1e-5, learning rate 5e-2 halved
after epochs 30, 50, 60, 70 and 80; the numbers live in `TrainConfig`. Adam
with the same L2 term and schedule is an option for small recipes.
"""

from __future__ import annotations

import keras

from overfeat_tf.config import TrainConfig
from overfeat_tf.errors import InvalidValueError


class _L2InGradient:
    """Adds `l2 * w` to every gradient before the optimizer's own update.

    The paper's Torch SGD adds `l2 * w` to every gradient before momentum
    (`v = momentum * v - lr * (g + l2 * w)`, `w += v`), which is what its
    1e-5 means; Keras's own `weight_decay` is decoupled (applied outside
    momentum, Loshchilov & Hutter), a different and weaker decay.
    """

    def __init__(self, l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if l2 < 0:
            raise InvalidValueError(f"l2 must be >= 0. Received: l2={l2}")
        self.l2 = l2

    def update_step(self, gradient, variable, learning_rate):
        if self.l2:
            gradient = gradient + keras.ops.cast(self.l2, gradient.dtype) * variable
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "l2": self.l2}


@keras.saving.register_keras_serializable(package="overfeat_tf")
class L2SGD(_L2InGradient, keras.optimizers.SGD):
    """SGD with momentum whose weight decay is an L2 term in the gradient.

    Args:
        l2: the L2 coefficient added times each variable to its gradient.
        **kwargs: `keras.optimizers.SGD` arguments (learning_rate, momentum).
    """


@keras.saving.register_keras_serializable(package="overfeat_tf")
class L2Adam(_L2InGradient, keras.optimizers.Adam):
    """Adam whose weight decay is the same L2 term in the gradient.

    Args:
        l2: the L2 coefficient added times each variable to its gradient.
        **kwargs: `keras.optimizers.Adam` arguments (learning_rate, ...).
    """


def learning_rate_schedule(
    config: TrainConfig, steps_per_epoch: int
) -> keras.optimizers.schedules.LearningRateSchedule:
    """The learning rate, multiplied by `lr_decay_factor` after each decay epoch
    (`lr_schedule="step"`, the paper's), or following a half cosine from the
    rate to 0 over all `epochs` (`"cosine"`, Loshchilov & Hutter 2017).

    With `warmup_epochs`, the rate first rises linearly from 0.

    Boundaries are in optimizer steps: "after epoch e" means from the first
    step of epoch e, step `e * steps_per_epoch` (counted from 0), on. The
    rate is `config.effective_learning_rate` (scaled with the global batch
    if `lr_scaling="linear"`).
    """
    rate = config.effective_learning_rate
    warmup_steps = round(config.warmup_epochs * steps_per_epoch)
    if config.lr_schedule == "cosine":
        schedule = keras.optimizers.schedules.CosineDecay(
            rate, max(config.epochs * steps_per_epoch, 1)
        )
        return LinearWarmup(schedule, warmup_steps) if warmup_steps else schedule
    # PiecewiseConstantDecay switches at steps > boundary.
    boundaries = [epoch * steps_per_epoch - 1 for epoch in config.lr_decay_epochs]
    values = [rate * config.lr_decay_factor**i for i in range(len(boundaries) + 1)]
    if not boundaries:  # PiecewiseConstantDecay needs one boundary
        boundaries, values = [2**62], [rate, rate]
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    return LinearWarmup(schedule, warmup_steps) if warmup_steps else schedule


@keras.saving.register_keras_serializable(package="overfeat_tf")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """`schedule`, scaled by (step + 1) / warmup_steps until warmup_steps."""

    def __init__(self, schedule, warmup_steps: int):
        self.schedule = schedule
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        ramp = keras.ops.minimum(1.0, (step + 1.0) / self.warmup_steps)
        return self.schedule(step) * ramp

    def get_config(self):
        return {
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "warmup_steps": self.warmup_steps,
        }

    @classmethod
    def from_config(cls, config):
        schedule = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(schedule, config["warmup_steps"])


def make_optimizer(
    config: TrainConfig, steps_per_epoch: int
) -> keras.optimizers.Optimizer:
    """The config's optimizer (`L2SGD`, the paper's, or `L2Adam`), schedule
    and weight average (`ema_momentum`)."""
    kwargs = {
        "learning_rate": learning_rate_schedule(config, steps_per_epoch),
        "l2": config.weight_decay,
    }
    if config.ema_momentum is not None:
        kwargs.update(use_ema=True, ema_momentum=config.ema_momentum)
    if config.optimizer == "adam":
        return L2Adam(**kwargs)
    return L2SGD(momentum=config.momentum, **kwargs)


@keras.saving.register_keras_serializable(package="overfeat_tf")
def class_map_crossentropy(labels, logits, label_smoothing: float = 0.0):
    """Softmax cross-entropy of every cell of a class map with the image label.

    Args:
        labels: int [B], one class per image.
        logits: float [B, h, w, C]; on training windows h = w = 1.
        label_smoothing: the target puts this much probability spread
            evenly over all C classes, 1 - label_smoothing on the label
            (Szegedy et al. 2016). Default 0, the paper's loss.

    Returns:
        float32 [B]: the mean over the map's cells.
    """
    logits = keras.ops.cast(logits, "float32")
    labels = keras.ops.cast(keras.ops.reshape(labels, (-1, 1, 1)), "int32")
    log_probs = keras.ops.log_softmax(logits, axis=-1)  # [B, h, w, C]
    targets = keras.ops.one_hot(labels, keras.ops.shape(logits)[-1])  # [B, 1, 1, C]
    if label_smoothing:
        targets = (1.0 - label_smoothing) * targets + label_smoothing / keras.ops.cast(
            keras.ops.shape(logits)[-1], "float32"
        )
    losses = -keras.ops.sum(targets * log_probs, axis=-1)  # [B, h, w]
    return keras.ops.mean(losses, axis=(1, 2))


@keras.saving.register_keras_serializable(package="overfeat_tf")
class ClassMapCrossentropy(keras.losses.Loss):
    """`class_map_crossentropy` as a Keras loss, with its label smoothing."""

    def __init__(
        self, label_smoothing: float = 0.0, name="class_map_crossentropy", **kwargs
    ):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, labels, logits):
        return class_map_crossentropy(labels, logits, self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="overfeat_tf")
class TopKError(keras.metrics.MeanMetricWrapper):
    """Top-k error (%): how often the label is not among the k best scores.

    Scores are the spatial maximum of each class over the map (the paper's
    dense evaluation; on a training window, the single cell).
    """

    def __init__(self, k: int = 1, name: str | None = None, **kwargs):
        super().__init__(fn=_top_k_error, name=name or f"top{k}_error", k=k, **kwargs)
        self.k = k

    def get_config(self):
        return {"k": self.k, "name": self.name, "dtype": self.dtype}


def _top_k_error(labels, logits, k):
    scores = keras.ops.max(keras.ops.cast(logits, "float32"), axis=(1, 2))  # [B, C]
    labels = keras.ops.cast(keras.ops.reshape(labels, (-1,)), "int32")
    hit = keras.ops.in_top_k(labels, scores, k)
    return 100.0 * (1.0 - keras.ops.cast(hit, "float32"))
