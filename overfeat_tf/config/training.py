"""The training section of a config: `TrainConfig` (section 3.1's recipe)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from overfeat_tf.config.checks import check_choices, require
from overfeat_tf.errors import InvalidValueError


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The optimization (section 3.1) and how it is run and logged.

    SGD with momentum and L2 weight decay, the learning rate multiplied by
    `lr_decay_factor` after each epoch in `lr_decay_epochs`; or, by option,
    Adam with the same schedule and L2 term (`optimizer="adam"`), which the
    small recipes use: without normalization layers a narrow network from
    scratch leaves chance much sooner under Adam than under SGD (docs/results.md,
    "Classification: learning on the built-in data").

    Learning rate and replicas: `batch_size` is global, split over all
    replicas, and `learning_rate` is the rate for a batch of
    `reference_batch_size` images (the paper's 128). With
    `lr_scaling="none"` it is used as is; with `"linear"` the rate is
    `learning_rate * batch_size / reference_batch_size` (the linear scaling
    rule, Goyal et al. 2017), so a recipe keeps its meaning when the batch
    grows with the number of replicas. `effective_learning_rate` gives the
    rate actually used.

    Attributes:
        optimizer: `"sgd"` (default, the paper's: momentum and L2 in the
            gradient) or `"adam"` (Kingma & Ba; the L2 term is added to the
            gradient the same way, `momentum` is unused).
        batch_size: global batch size, over all replicas (>= 1). Default 128.
        epochs: passes over the training split (>= 1). Default 90.
        learning_rate: initial learning rate for `reference_batch_size`
            images (> 0). Default 0.05.
        momentum: SGD momentum, in [0, 1). Default 0.6.
        weight_decay: L2 weight decay (>= 0). Default 1e-5.
        lr_decay_epochs: epochs after which the rate is multiplied by
            `lr_decay_factor`; strictly increasing, each >= 1. Default
            (30, 50, 60, 70, 80).
        lr_decay_factor: the factor, in (0, 1]. Default 0.5.
        lr_schedule: `"step"` (default, the paper's: `lr_decay_epochs` and
            `lr_decay_factor`) or `"cosine"` (a half cosine from the rate to
            0 over `epochs`; the decay keys are then unused).
        label_smoothing: probability of the target spread over all classes
            (Szegedy et al. 2016), in [0, 1). Default 0 (the paper's loss).
        warmup_epochs: epochs over which the rate rises linearly from 0
            (Goyal et al. 2017); >= 0. Default 0 (the paper has none). A
            network without normalization layers can lose most of its
            ReLUs to the first full-rate steps; the small recipes warm up.
        lr_scaling: `"none"` (default) or `"linear"`; see above.
        reference_batch_size: batch size that `learning_rate` is for (>= 1).
            Default 128.
        steps_per_epoch: training batches per epoch; None (default) for one
            pass over the split.
        validation_steps: validation batches per epoch; None (default) for
            the whole split.
        strategy: `tf.distribute` strategy: `"default"` (default; no
            distribution), `"one_device"`, `"mirrored"` (all local GPUs),
            `"multi_worker"` (machines listed in `TF_CONFIG`) or `"tpu"`.
        loop: what runs the steps: `"fit"` (Keras's `model.fit`),
            `"custom"` (the package's distributed loop, `training.loop`:
            the same model, loss, metrics, optimizer, data and callbacks)
            or `"auto"` (default: `"custom"` for `"multi_worker"`, whose
            `model.fit` Keras 3 cannot run, else `"fit"`).
        worker_timeout: seconds a worker waits for every other worker of
            `TF_CONFIG` to answer at start (> 0). Default 300.
        mixed_precision: Keras dtype policy: `"float32"` (default),
            `"mixed_bfloat16"` or `"mixed_float16"`.
        checkpoint_every_steps: also checkpoint every this many steps; None
            (default) for once per epoch only.
        histogram_freq: TensorBoard weight histograms every this many epochs;
            0 for none. Default 1.
        image_summaries: validation images written to TensorBoard every
            epoch (classification: captioned with the prediction;
            detection: predicted and true boxes drawn); 0 for none.
            Default 8.
        jit_compile: compile the train step with XLA. Default True.
        ema_momentum: keep an exponential moving average of the weights
            with this momentum, in [0, 1) (e.g. 0.99: about the last 100
            steps); validation and the saved model then use the average
            (`keras.optimizers.Optimizer(use_ema=True)`). None (default,
            the paper's) for none.
    """

    optimizer: Literal["sgd", "adam"] = "sgd"
    batch_size: int = 128
    epochs: int = 90
    learning_rate: float = 0.05
    momentum: float = 0.6
    weight_decay: float = 1e-5
    lr_decay_epochs: tuple[int, ...] = (30, 50, 60, 70, 80)
    lr_decay_factor: float = 0.5
    lr_schedule: Literal["step", "cosine"] = "step"
    label_smoothing: float = 0.0
    warmup_epochs: float = 0.0
    lr_scaling: Literal["none", "linear"] = "none"
    reference_batch_size: int = 128
    steps_per_epoch: int | None = None
    validation_steps: int | None = None
    strategy: Literal["default", "one_device", "mirrored", "multi_worker", "tpu"] = (
        "default"
    )
    loop: Literal["auto", "fit", "custom"] = "auto"
    worker_timeout: float = 300.0
    mixed_precision: Literal["float32", "mixed_bfloat16", "mixed_float16"] = "float32"
    checkpoint_every_steps: int | None = None
    histogram_freq: int = 1
    image_summaries: int = 8
    jit_compile: bool = True
    ema_momentum: float | None = None

    def __post_init__(self):
        check_choices(self)
        for name in ("batch_size", "epochs", "reference_batch_size"):
            require(self, name, getattr(self, name) >= 1, ">= 1")
        require(self, "learning_rate", self.learning_rate > 0, "> 0")
        require(self, "momentum", 0 <= self.momentum < 1, "in [0, 1)")
        require(self, "weight_decay", self.weight_decay >= 0, ">= 0")
        epochs = self.lr_decay_epochs
        increasing = all(a < b for a, b in zip(epochs, epochs[1:]))
        require(
            self,
            "lr_decay_epochs",
            increasing and all(epoch >= 1 for epoch in epochs),
            "strictly increasing epochs, each >= 1",
        )
        require(self, "lr_decay_factor", 0 < self.lr_decay_factor <= 1, "in (0, 1]")
        require(self, "warmup_epochs", self.warmup_epochs >= 0, ">= 0")
        require(self, "worker_timeout", self.worker_timeout > 0, "> 0")
        if self.loop == "fit" and self.strategy == "multi_worker":
            raise InvalidValueError(
                'TrainConfig.loop="fit" cannot run strategy="multi_worker": Keras '
                "3's model.fit fails under MultiWorkerMirroredStrategy "
                '(keras-team/keras#20585). Use loop="auto" or "custom".'
            )
        smoothing = self.label_smoothing
        require(self, "label_smoothing", 0 <= smoothing < 1, "in [0, 1)")
        for name in ("steps_per_epoch", "validation_steps", "checkpoint_every_steps"):
            value = getattr(self, name)
            require(self, name, value is None or value >= 1, "None or >= 1")
        for name in ("histogram_freq", "image_summaries"):
            require(self, name, getattr(self, name) >= 0, ">= 0")
        ema = self.ema_momentum
        require(self, "ema_momentum", ema is None or 0 <= ema < 1, "None or in [0, 1)")

    @property
    def custom_loop(self) -> bool:
        """Whether the steps run in `training.loop` rather than `model.fit`."""
        if self.loop == "auto":
            return self.strategy == "multi_worker"
        return self.loop == "custom"

    @property
    def effective_learning_rate(self) -> float:
        """The initial learning rate used for `batch_size` (see the class)."""
        if self.lr_scaling == "linear":
            return self.learning_rate * self.batch_size / self.reference_batch_size
        return self.learning_rate
