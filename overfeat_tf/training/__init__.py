"""Training: the paper's recipe on `model.fit`, with tf.distribute,
TensorBoard and resumable runs."""

from overfeat_tf.training.callbacks import NaNLossError
from overfeat_tf.training.experiment import Run, prepare, train
from overfeat_tf.training.recipe import (
    L2SGD,
    ClassMapCrossentropy,
    L2Adam,
    TopKError,
    class_map_crossentropy,
    learning_rate_schedule,
    make_optimizer,
)
from overfeat_tf.training.strategy import make_strategy

__all__ = [
    "ClassMapCrossentropy",
    "L2Adam",
    "L2SGD",
    "NaNLossError",
    "Run",
    "TopKError",
    "class_map_crossentropy",
    "learning_rate_schedule",
    "make_optimizer",
    "make_strategy",
    "prepare",
    "train",
]
