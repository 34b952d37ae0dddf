"""Experiment configs: frozen dataclasses, loaded strictly from YAML recipes.

An `ExperimentConfig` is a `ModelConfig`, a `DataConfig` and a `TrainConfig`
plus a seed and an output folder. The defaults are the paper's ImageNet
recipe (Sermanet et al. 2014, section 3.1) on the built-in data set. The
recipes in `configs/` (installed as `overfeat_tf.configs`) are YAML files
that `load_config` reads by path or by name; every key and value is checked,
so a typo fails at once, naming the file and the dotted key.

Configs are never mutated: `load_config` applies "dotted.key=value"
overrides by building new ones, and code that needs a variant uses
`dataclasses.replace`.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import math
import os
import re
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import yaml

from overfeat_tf import architectures
from overfeat_tf.errors import InvalidTypeError, InvalidValueError, MissingFileError

__all__ = [
    "DataConfig",
    "DetectConfig",
    "ExperimentConfig",
    "LocalizeConfig",
    "ModelConfig",
    "TrainConfig",
    "bundled_recipes",
    "config_to_dict",
    "load_config",
    "save_config",
]

_SPECS = {"fast": architectures.FAST, "accurate": architectures.ACCURATE}
# Initializers that need no Keras lookup (`models.INITIALIZERS`).
_OWN_INITIALIZERS = ("he_normal", "paper")
# Seeds go to `keras.utils.set_random_seed` (NumPy takes [0, 2**32)) and,
# times 1_000_003 plus the epoch, to tf.data (int64): [0, 2**31) fits both.
_SEED_LIMIT = 2**31


def _finite(value) -> bool:
    """Whether every float in `value` (a scalar or a tuple) is finite."""
    items = value if isinstance(value, tuple) else (value,)
    return all(not isinstance(v, float) or math.isfinite(v) for v in items)


def _require(config, name: str, ok: bool, rule: str) -> None:
    """Raises "Class.name must be rule. Received: name=value" unless `ok`.

    A float that is not finite (inf, nan) never passes: the rule then reads
    "a finite number {rule}".
    """
    value = getattr(config, name)
    if not _finite(value):
        ok = False
        many = isinstance(value, tuple)
        rule = f"finite numbers: {rule}" if many else f"a finite number {rule}"
    if not ok:
        raise InvalidValueError(
            f"{type(config).__name__}.{name} must be {rule}. Received: {name}={value!r}"
        )


def _check_initializer(config, key: str = "initializer") -> None:
    """`config.<key>` is ours or one that `keras.initializers.get` takes.

    Keras is imported only for names other than ours (it is loaded anyway
    by the time a model is built).
    """
    name = getattr(config, key)
    if isinstance(name, str) and name in _OWN_INITIALIZERS:
        return
    import keras

    try:
        ok = type(keras.initializers.get(name)) is not keras.initializers.Initializer
    except Exception:  # Keras raises ValueError, KeyError, TypeError
        ok = False
    rule = (
        f"one of {list(_OWN_INITIALIZERS)} or a name that "
        "keras.initializers.get takes (e.g. 'glorot_uniform', 'lecun_normal')"
    )
    _require(config, key, ok, rule)


def _check_choices(config) -> None:
    """Checks every `Literal[...]` field of `config` against its choices."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        if typing.get_origin(hints[field.name]) is Literal:
            choices = typing.get_args(hints[field.name])
            value = getattr(config, field.name)
            ok = isinstance(value, str) and value in choices
            _require(config, field.name, ok, f"one of {list(choices)}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The network (Tables 1 and 3) and how it is built.

    Attributes:
        network: `"fast"` (Table 1, 231 px window) or `"accurate"` (Table 3,
            221 px window). Default `"accurate"`.
        width: factor on every layer's maps except the class layer (> 0);
            1.0 (default) is the paper's network, smaller values give cheap
            variants with the same geometry.
        initializer: kernel initializer: `"he_normal"` (default), `"paper"`
            (N(0, 0.01), section 3.1) or any name `keras.initializers.get`
            takes (`"glorot_uniform"`, ...), checked when the config is
            made; see `overfeat_tf.OverFeat` for why He-normal is the
            default.
        class_initializer: the class layer's kernel initializer, checked
            the same way; None (default) uses `initializer`, as the paper
            does. The small recipes set `"zeros"`: every class then starts
            at the same score, where He-normal logits start with a
            cross-entropy of ~15 that costs a from-scratch run its first
            epoch (see `overfeat_tf.OverFeat`).
        dropout: dropout rate before the classifier's layers 6 and 7, in
            [0, 1). Default 0.5 (section 3.1).
        normalization: `"none"` (default, the paper's network) or
            `"batch"`: batch normalization between every hidden convolution
            and its ReLU (a departure that the small recipes take; see
            `overfeat_tf.OverFeat`).
    """

    network: Literal["fast", "accurate"] = "accurate"
    width: float = 1.0
    initializer: str = "he_normal"
    class_initializer: str | None = None
    dropout: float = 0.5
    normalization: Literal["none", "batch"] = "none"

    def __post_init__(self):
        _check_choices(self)
        _require(self, "width", self.width > 0, "> 0")
        _require(self, "dropout", 0 <= self.dropout < 1, "in [0, 1)")
        _check_initializer(self)
        if self.class_initializer is not None:
            _check_initializer(self, "class_initializer")

    @property
    def normalization_layer(self) -> str | None:
        """`normalization` as `OverFeat` takes it (None for `"none"`)."""
        return None if self.normalization == "none" else self.normalization

    @property
    def spec(self) -> architectures.OverFeatSpec:
        """The layer table of `network` (`architectures.FAST` or `ACCURATE`)."""
        return _SPECS[self.network]


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how they are cropped (section 3.1).

    Attributes:
        source: a tfds name (`"imagenet2012"`), the built-in data set
            (`"overfeat_shapes/classification"`, the default) or a local
            folder; see `overfeat_tf.data.readers`.
        data_dir: tfds data folder; None (default) for tfds's own.
        train_split: split trained on. Default `"train"`.
        validation_split: split evaluated after every epoch. Default
            `"validation"`.
        test_split: split of the final evaluation. Default `"test"`.
        smallest_side: images are resized so that their smaller side is this
            many pixels before the random window crops; at least the
            network's window. Default 256 (section 3.1).
        scale_range: scale augmentation for classification training: each
            training image is resized to a random smaller side in [low,
            high] pixels (both >= the window) instead of `smallest_side`,
            so that objects are also learnt at the sizes the larger test
            scales show them at. None (default): the paper's fixed
            `smallest_side`. Validation and tests use `smallest_side`.
        crops_per_image: random window crops taken from each decoded image
            (>= 1). Default 1.
        shuffle_buffer: elements in the shuffle buffer (>= 1). Default 1024.
        cache: keep the decoded classification training images in memory
            after the first epoch, so later epochs skip reading and
            decoding them (the same images in the same order). Only for
            data sets that fit in memory (the built-in one: about 1.4 GB).
            Default False.
        on_bad: what a reader does with an undecodable image or record:
            `"error"` (default) raises, `"skip"` logs and drops it.
    """

    source: str = "overfeat_shapes/classification"
    data_dir: str | None = None
    train_split: str = "train"
    validation_split: str = "validation"
    test_split: str = "test"
    smallest_side: int = 256
    scale_range: tuple[int, ...] | None = None
    crops_per_image: int = 1
    shuffle_buffer: int = 1024
    cache: bool = False
    on_bad: Literal["error", "skip"] = "error"

    def __post_init__(self):
        _check_choices(self)
        for name in ("smallest_side", "crops_per_image", "shuffle_buffer"):
            _require(self, name, getattr(self, name) >= 1, ">= 1")
        scales = self.scale_range
        _require(
            self,
            "scale_range",
            scales is None or (len(scales) == 2 and 1 <= scales[0] <= scales[1]),
            "None or two sizes [low, high] in pixels with 1 <= low <= high",
        )


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The optimization (section 3.1) and how it is run and logged.

    SGD with momentum and L2 weight decay, the learning rate multiplied by
    `lr_decay_factor` after each epoch in `lr_decay_epochs`; or, by option,
    Adam with the same schedule and L2 term (`optimizer="adam"`), which the
    small recipes use: without normalization layers a narrow network from
    scratch leaves chance much sooner under Adam than under SGD (README,
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
        _check_choices(self)
        for name in ("batch_size", "epochs", "reference_batch_size"):
            _require(self, name, getattr(self, name) >= 1, ">= 1")
        _require(self, "learning_rate", self.learning_rate > 0, "> 0")
        _require(self, "momentum", 0 <= self.momentum < 1, "in [0, 1)")
        _require(self, "weight_decay", self.weight_decay >= 0, ">= 0")
        epochs = self.lr_decay_epochs
        increasing = all(a < b for a, b in zip(epochs, epochs[1:]))
        _require(
            self,
            "lr_decay_epochs",
            increasing and all(epoch >= 1 for epoch in epochs),
            "strictly increasing epochs, each >= 1",
        )
        _require(self, "lr_decay_factor", 0 < self.lr_decay_factor <= 1, "in (0, 1]")
        _require(self, "warmup_epochs", self.warmup_epochs >= 0, ">= 0")
        _require(self, "worker_timeout", self.worker_timeout > 0, "> 0")
        if self.loop == "fit" and self.strategy == "multi_worker":
            raise InvalidValueError(
                'TrainConfig.loop="fit" cannot run strategy="multi_worker": Keras '
                "3's model.fit fails under MultiWorkerMirroredStrategy "
                '(keras-team/keras#20585). Use loop="auto" or "custom".'
            )
        smoothing = self.label_smoothing
        _require(self, "label_smoothing", 0 <= smoothing < 1, "in [0, 1)")
        for name in ("steps_per_epoch", "validation_steps", "checkpoint_every_steps"):
            value = getattr(self, name)
            _require(self, name, value is None or value >= 1, "None or >= 1")
        for name in ("histogram_freq", "image_summaries"):
            _require(self, name, getattr(self, name) >= 0, ">= 0")
        ema = self.ema_momentum
        _require(self, "ema_momentum", ema is None or 0 <= ema < 1, "None or in [0, 1)")

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


@dataclasses.dataclass(frozen=True)
class LocalizeConfig:
    """Localization (section 4.3): the box regressor's training and merging.

    Attributes:
        backbone: the trained classifier (a `.keras` file, or the run folder
            holding `model.keras`) whose feature extractor is frozen and
            whose classifier scores the merged boxes. Required to train with
            `task: localize`. Default None.
        regressor: `"single"` (default; one box per cell for every class,
            the paper's better choice) or `"per_class"`.
        min_overlap: a cell learns a ground-truth box when its window holds
            at least this fraction of the box, in (0, 1]. Default 0.5.
        image_size: side of the square training crops, in pixels (>= the
            window); None (default) for the window plus two coarse strides
            (a 3 x 3 coarse map per crop).
        scale_range: images are resized so that their shorter side is a
            random factor in this range times `image_size` before the crop:
            the regressor learns at several scales. Default (1.0, 1.6).
        max_boxes: boxes kept per training image (>= 1). Default 5.
        top_k_classes: the k of the greedy merge: classes per scale whose
            boxes are merged (>= 1). Default 5.
        merge_threshold: the greedy merge stops when the best pair's match
            score exceeds this (`merge.match_score`, in [0, 2)). Default 0.6.
    """

    backbone: str | None = None
    regressor: Literal["single", "per_class"] = "single"
    min_overlap: float = 0.5
    image_size: int | None = None
    scale_range: tuple[float, ...] = (1.0, 1.6)
    max_boxes: int = 5
    top_k_classes: int = 5
    merge_threshold: float = 0.6

    def __post_init__(self):
        _check_choices(self)
        _require(self, "min_overlap", 0 < self.min_overlap <= 1, "in (0, 1]")
        _check_scale_range(self)
        for name in ("max_boxes", "top_k_classes"):
            _require(self, name, getattr(self, name) >= 1, ">= 1")
        _check_merge_threshold(self)


@dataclasses.dataclass(frozen=True)
class DetectConfig:
    """Detection training (section 4.4): window labels and negative mining.

    Attributes:
        backbone: a trained classifier (a `.keras` file or its run folder)
            to start from: every layer is copied, and the class layer gets
            a zero-initialized background row. None (default) trains from
            scratch.
        positive_overlap: a window is a positive of an object's class when
            it holds at least this fraction of the object's box ... (0.5),
        min_fill: ... and the box fills at least this fraction of the
            window (0.1).
        negative_overlap: a window is background when it holds less than
            this fraction of every box (0.2); windows in between are
            ignored. `training.detection` has the rule.
        negatives_per_image: background windows per image in the loss
            (>= 0). Default 4.
        mining: `"hard"` (default: the highest-loss background windows) or
            `"random"`.
        image_size: side of the square training crops (>= the window); None
            (default) for the window plus four coarse strides (a 5 x 5 map).
        scale_range: images are resized so that their shorter side is a
            random factor in [low, high] times `data.smallest_side` (the
            scale of the first test scale and of the classifier's training),
            then cropped or padded to `image_size`; 0 < low <= high.
            Default (1.0, 1.5).
        max_boxes: objects kept per training image (>= 1). Default 20.
        merge_threshold: the greedy merge's threshold (`Detector`), a match
            score in [0, 2). Default 0.6.
        min_window_score: a window's box enters the merge for each class it
            scores at least this for (`Detector`); a probability, in [0, 1].
            Default 0.1.
        score_threshold: merged boxes scoring less are dropped (`Detector`);
            >= 0, and at most 1 with `merge_score="mean"` (a sum of
            probabilities can exceed 1, a mean cannot). Default 0.5.
        merge_score: a merged box's score: `"sum"` (default, the paper's:
            the sum of its windows' class scores) or `"mean"` (their mean,
            which does not grow with the number of windows and scales;
            `Localizer`).
        max_detections: detections kept per image (>= 1). Default 100.
    """

    backbone: str | None = None
    positive_overlap: float = 0.5
    min_fill: float = 0.1
    negative_overlap: float = 0.2
    negatives_per_image: int = 4
    mining: Literal["hard", "random"] = "hard"
    image_size: int | None = None
    scale_range: tuple[float, ...] = (1.0, 1.5)
    max_boxes: int = 20
    merge_threshold: float = 0.6
    min_window_score: float = 0.1
    score_threshold: float = 0.5
    merge_score: Literal["sum", "mean"] = "sum"
    max_detections: int = 100

    def __post_init__(self):
        _check_choices(self)
        _require(self, "positive_overlap", 0 < self.positive_overlap <= 1, "in (0, 1]")
        ok = 0 <= self.negative_overlap <= self.positive_overlap
        _require(self, "negative_overlap", ok, "in [0, positive_overlap]")
        _require(self, "min_fill", 0 <= self.min_fill <= 1, "in [0, 1]")
        _require(self, "negatives_per_image", self.negatives_per_image >= 0, ">= 0")
        for name in ("max_boxes", "max_detections"):
            _require(self, name, getattr(self, name) >= 1, ">= 1")
        _check_scale_range(self, lowest=0.0)
        _check_merge_threshold(self)
        score = self.min_window_score
        _require(self, "min_window_score", 0 <= score <= 1, "in [0, 1]")
        score, mean = self.score_threshold, self.merge_score == "mean"
        _require(
            self,
            "score_threshold",
            score >= 0 and (score <= 1 or not mean),
            "in [0, 1] with merge_score='mean'" if mean else ">= 0",
        )


def _check_merge_threshold(config) -> None:
    """A match score (`merge.match_score`) lies in [0, 2)."""
    ok = 0 <= config.merge_threshold < 2
    _require(config, "merge_threshold", ok, "in [0, 2), the range of match scores")


def _check_scale_range(config, lowest: float = 1.0) -> None:
    """[low, high] with lowest <= low <= high (and 0 < low)."""
    low, high = (config.scale_range + (0.0, 0.0))[:2]
    bound = "0 <" if lowest == 0 else f"{lowest:g} <="
    _require(
        config,
        "scale_range",
        len(config.scale_range) == 2 and lowest <= low <= high and low > 0,
        f"two factors [low, high] with {bound} low <= high",
    )


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: model, data, training, seed and output folder.

    The defaults are the paper's recipe (section 3.1) for the accurate
    network, trained on the built-in data set.

    Attributes:
        seed: the one seed that `keras.utils.set_random_seed` gets and that
            shuffles and augmentations derive theirs from, in [0, 2**31).
            Default 0.
        output_dir: folder for checkpoints, logs and the saved config.
            Default `"runs/default"`.
        model: a `ModelConfig`.
        data: a `DataConfig`; `data.smallest_side` must be at least the
            model's window.
        train: a `TrainConfig`.
        task: what is trained: `"classify"` (default; the network),
            `"localize"` (the box regressor on a trained classifier) or
            `"detect"` (the network with a background class and a box
            regressor, on whole images).
        localize: a `LocalizeConfig`.
        detect: a `DetectConfig`.
    """

    seed: int = 0
    output_dir: str = "runs/default"
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    task: Literal["classify", "localize", "detect"] = "classify"
    localize: LocalizeConfig = dataclasses.field(default_factory=LocalizeConfig)
    detect: DetectConfig = dataclasses.field(default_factory=DetectConfig)

    def __post_init__(self):
        _check_choices(self)
        ok = 0 <= self.seed < _SEED_LIMIT
        _require(self, "seed", ok, f"in [0, 2**31) (0 <= seed <= {_SEED_LIMIT - 1})")
        window = self.model.spec.geometry.window
        for section in ("localize", "detect"):
            size = getattr(self, section).image_size
            if size is not None and size < window:
                raise InvalidValueError(
                    f"ExperimentConfig.{section}.image_size must be >= the window "
                    f"of the {self.model.network} network ({window} px). Received: "
                    f"{section}.image_size={size}"
                )
        if self.data.scale_range and self.data.scale_range[0] < window:
            raise InvalidValueError(
                "ExperimentConfig.data.scale_range must start at the window "
                f"of the {self.model.network} network ({window} px) or above. "
                f"Received: data.scale_range={list(self.data.scale_range)}"
            )
        if self.data.smallest_side < window:
            raise InvalidValueError(
                "ExperimentConfig.data.smallest_side must be >= the window of "
                f"the {self.model.network} network ({window} px), or no window "
                "fits in the resized images. Received: "
                f"data.smallest_side={self.data.smallest_side}, "
                f"model.network={self.model.network!r}"
            )


def _type_name(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return f"one of {list(args)}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join("None" if a is type(None) else _type_name(a) for a in args)
    if origin is tuple:
        return f"a list of {_type_name(args[0])}"
    return hint.__name__


def _convert(value, hint, source: str, key: str):
    """`value` checked against the type `hint`; lists become tuples.

    int is accepted for float (as a float), bool is not accepted for int or
    float, None only for `X | None`, and a mapping for a nested dataclass.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _from_dict(hint, value, source, key + ".")
    if origin in (typing.Union, types.UnionType):  # `X | None`
        if value is None:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        try:
            return _convert(value, inner, source, key)
        except TypeError:
            pass  # the message below names the whole union
    elif origin is Literal:
        if isinstance(value, str) and value in args:
            return value
    elif origin is tuple and isinstance(value, (list, tuple)):
        return tuple(
            _convert(item, args[0], source, f"{key}[{i}]")
            for i, item in enumerate(value)
        )
    elif isinstance(value, bool):
        if hint is bool:
            return value
    elif hint is float and isinstance(value, (int, float)):
        return float(value)
    elif origin is None and isinstance(value, hint):
        return value
    raise InvalidTypeError(
        f"{source}: {key} must be {_type_name(hint)}. "
        f"Received: {key}={value!r} of type {type(value).__name__}"
    )


def _from_dict(cls, data, source: str, prefix: str = ""):
    """Builds the dataclass `cls` from a mapping, checking every key and value.

    Missing keys take the field's default. Errors name `source` (the file)
    and the dotted key (`prefix` + field name).
    """
    section = prefix.rstrip(".") or "the top level"
    if data is None and not prefix:
        data = {}
    if not isinstance(data, dict):
        raise InvalidTypeError(
            f"{source}: {section} must be a mapping of keys to values. "
            f"Received: {section}={data!r} of type {type(data).__name__}"
        )
    hints = typing.get_type_hints(cls)
    valid = [field.name for field in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in valid:
            raise InvalidValueError(
                f"{source}: unknown key '{prefix}{key}'. Valid keys at "
                f"{section}: {valid}. Received: {prefix}{key}={value!r}"
            )
        kwargs[key] = _convert(value, hints[key], source, prefix + key)
    try:
        return cls(**kwargs)
    except ValueError as error:
        raise InvalidValueError(f"{source}, at {section}: {error}") from None


# === YAML ===
# PyYAML reads YAML 1.1, which guesses: `1:30` is the int 90, `010` is 8 and
# `1e-5` a string. Recipes are read with YAML 1.2's core schema for numbers
# instead (decimal ints; floats with an optional dot and exponent, `.inf`
# and `.nan`, which the rules then refuse), and a key given twice is an
# error rather than the last one winning.
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_NON_FINITE = re.compile(r"[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")
# YAML 1.2's core schema spellings, for overrides of bool and optional keys.
_BOOLS = {"true": True, "True": True, "TRUE": True}
_BOOLS |= {"false": False, "False": False, "FALSE": False}
_NULLS = ("null", "Null", "NULL", "~", "")


class _Loader(yaml.SafeLoader):
    """`yaml.SafeLoader` with YAML 1.2 numbers (see above)."""


def _scalar_error(node, what: str):
    return yaml.constructor.ConstructorError(
        None, None, f"cannot read {node.value!r} as {what}", node.start_mark
    )


def _construct_int(loader, node):
    text = loader.construct_scalar(node)
    if not _INT.fullmatch(text):
        raise _scalar_error(node, "an int (decimal digits)")
    return int(text)


def _construct_float(loader, node):
    text = loader.construct_scalar(node)
    if _NON_FINITE.fullmatch(text):  # `.inf`, `-.inf`, `.nan`: rules refuse them
        return float(text.replace(".", "", 1))
    if not _FLOAT.fullmatch(text):
        raise _scalar_error(node, "a float")
    return float(text)


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp) for tag, regexp in resolvers if tag not in (_INT_TAG, _FLOAT_TAG)
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# A resolver's pattern is matched at the start only: anchor its end too.
_INT_SCALAR = re.compile(rf"(?:{_INT.pattern})\Z")
_FLOAT_SCALAR = re.compile(rf"(?:{_FLOAT.pattern}|{_NON_FINITE.pattern})\Z")
_Loader.add_implicit_resolver(_INT_TAG, _INT_SCALAR, list("-+0123456789"))
_Loader.add_implicit_resolver(_FLOAT_TAG, _FLOAT_SCALAR, list("-+0123456789."))
_Loader.add_constructor(_INT_TAG, _construct_int)
_Loader.add_constructor(_FLOAT_TAG, _construct_float)


class _Dumper(yaml.SafeDumper):
    """`yaml.SafeDumper` that quotes strings `_Loader` would read as floats."""


_Dumper.add_implicit_resolver(_FLOAT_TAG, _FLOAT_SCALAR, list("-+0123456789."))


def _duplicate_key(node, prefix: str = "", seen=None):
    """The first key given twice in one mapping under `node`, or None.

    Returns `(dotted_key, first_line, second_line)` (lines from 1).
    """
    seen = set() if seen is None else seen
    if id(node) in seen:  # an alias met again
        return None
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            if isinstance(key_node, yaml.ScalarNode):
                dotted = f"{prefix}{key_node.value}"
                line = key_node.start_mark.line + 1
                name = (key_node.tag, key_node.value)
                if name in lines:
                    return dotted, lines[name], line
                lines[name] = line
                found = _duplicate_key(value_node, dotted + ".", seen)
            else:
                found = _duplicate_key(value_node, prefix, seen)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found = _duplicate_key(item, f"{prefix.rstrip('.')}[{i}].", seen)
            if found:
                return found
    return None


def _load_yaml(text: str, source: str, prefix: str = ""):
    """`text` read strictly (see `_Loader`), as plain Python values.

    Raises:
        yaml.YAMLError: for text that is not YAML.
        ValueError: for a key given twice, naming `source`, the dotted key
            (`prefix` + key) and both lines.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        duplicate = node is not None and _duplicate_key(node, prefix)
        if duplicate:
            key, first, second = duplicate
            lines = (
                f"line {first}" if first == second else f"lines {first} and {second}"
            )
            raise InvalidValueError(
                f"{source}: key '{key}' is given twice; each key may appear "
                f"once in its section. Received: '{key}' twice, on {lines}"
            )
        return loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()


def _bundled_dir():
    """The folder of the bundled recipes, installed or in a source checkout."""
    try:
        return importlib.resources.files("overfeat_tf.configs")
    except ModuleNotFoundError:  # a checkout not (re)installed since configs/
        return Path(__file__).resolve().parent.parent / "configs"


def bundled_recipes() -> list[str]:
    """Names of the recipes shipped with the package, e.g. `"shapes_accurate"`."""
    files = _bundled_dir().iterdir()
    return sorted(f.name[: -len(".yaml")] for f in files if f.name.endswith(".yaml"))


def _resolve(path_or_name: str | os.PathLike):
    path = Path(path_or_name)
    if path.is_file():
        return path
    name = str(path_or_name)
    bundled = _bundled_dir() / (name if name.endswith(".yaml") else name + ".yaml")
    if os.sep not in name and "/" not in name and bundled.is_file():
        return bundled
    looks_like_a_path = (
        "/" in name or os.sep in name or name.endswith((".yaml", ".yml"))
    )
    what = f"No config file at {name!r}" if looks_like_a_path else f"No recipe {name!r}"
    raise MissingFileError(
        f"{what}: load_config takes a YAML file or the name of a bundled recipe "
        f"({', '.join(bundled_recipes())})"
    )


_OVERRIDE_FORMS = {
    bool: "true or false",
    int: "a whole number, e.g. 3",
    float: "a number, e.g. 0.5 or 3e-4",
}


def _read_override(text: str, hint, source: str, key: str):
    """The value of an override's `text`, read as the type `hint` of its key.

    A str (or choice) key takes `text` as written; an int, float or bool key
    takes a number or true/false (YAML 1.2 spellings); an optional key also
    takes null (`null`, `~` or nothing). Only list and section keys read
    YAML, with the recipes' rules. `_convert` then checks the value.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    inner = hint
    if origin in (typing.Union, types.UnionType):  # `X | None`
        (inner,) = [a for a in args if a is not type(None)]
    if dataclasses.is_dataclass(inner) or typing.get_origin(inner) is tuple:
        try:
            return _load_yaml(text, source, key + ".")
        except yaml.YAMLError as error:
            raise InvalidValueError(
                f"{source}: the value of a list or section override must be "
                f"valid YAML ({getattr(error, 'problem', None) or error}). "
                f"Received: {key}={text!r}"
            ) from None
    if inner is not hint and text.strip() in _NULLS:
        return None
    if inner is str or typing.get_origin(inner) is Literal:
        return text
    stripped = text.strip()
    if inner is bool and stripped in _BOOLS:
        return _BOOLS[stripped]
    if inner is int and _INT.fullmatch(stripped):
        return int(stripped)
    if inner is float and _FLOAT.fullmatch(stripped):
        return float(stripped)
    if inner is float and re.fullmatch(r"[-+]?\.?(inf|infinity|nan)", stripped, re.I):
        return float(stripped.replace(".", "", 1))  # for the rule's message
    form = f" ({_OVERRIDE_FORMS[inner]})" if inner in _OVERRIDE_FORMS else ""
    raise InvalidTypeError(
        f"{source}: {key} must be {_type_name(hint)}{form}. Received: {key}={text!r}"
    )


def _hint_at(parts: list[str]):
    """The type of the dotted key `parts` in `ExperimentConfig`, or None."""
    cls = ExperimentConfig
    for part in parts[:-1]:
        cls = typing.get_type_hints(cls)[part]
    return typing.get_type_hints(cls).get(parts[-1])


def _apply_override(data: dict, override: str, source: str) -> dict:
    """A copy of the config dict `data` with one "dotted.key=value" applied.

    The value is read by the type of the key (`_read_override`).
    """
    key, sep, text = override.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise InvalidValueError(
            f"{source}: an override must be 'dotted.key=value', e.g. "
            f"'train.epochs=3'. Received: override={override!r}"
        )
    data = dict(data)
    node = data
    for depth, part in enumerate(parts[:-1]):
        if not isinstance(node.get(part), dict):
            sections = [k for k, v in node.items() if isinstance(v, dict)]
            where = ".".join(parts[:depth]) or "the top level"
            raise InvalidValueError(
                f"{source}: an override's key must go through sections; "
                f"'{'.'.join(parts[: depth + 1])}' is not one (sections at "
                f"{where}: {sections}). Received: override={override!r}"
            )
        node[part] = dict(node[part])
        node = node[part]
    hint = _hint_at(parts)
    # An unknown key keeps the text: `_from_dict` names it and the valid keys.
    value = (
        text if hint is None else _read_override(text, hint, source, ".".join(parts))
    )
    old = node.get(parts[-1])
    merge = isinstance(old, dict) and isinstance(value, dict)
    node[parts[-1]] = {**old, **value} if merge else value
    return data


def load_config(
    path_or_name: str | os.PathLike, overrides: Sequence[str] = ()
) -> ExperimentConfig:
    """Reads an `ExperimentConfig` from a YAML recipe, strictly.

    Keys left out take their defaults (the paper's recipe). Every key must be
    a field and every value of the field's type: int is accepted for float,
    bool is not accepted for int or float, a list is read as a tuple, null
    only for optional fields, and a choice must be one of the listed values.
    Numbers are read as in YAML 1.2 (`1e-5` is a float, `1:30` and `010`
    are not the YAML 1.1 ints 90 and 8), floats must be finite, and a key
    given twice in one mapping is an error.

    Args:
        path_or_name: a YAML file, or the name of a recipe in `configs/`
            (e.g. `"shapes_accurate"`; `bundled_recipes()` lists them).
        overrides: `"dotted.key=value"` strings applied in order on top of
            the file, each value read by the type of its key: a str key
            takes the text as written (`"output_dir=runs/exp #2"`), an
            int, float or bool key a number or true/false
            (`"train.epochs=3"`, `"train.learning_rate=3e-4"`), an optional
            key also null (`"data.data_dir=null"`), and list and section
            keys YAML (`"train.lr_decay_epochs=[1, 2]"`,
            `"model={width: 0.5}"`).

    Returns:
        A new, frozen `ExperimentConfig`.

    Raises:
        FileNotFoundError: if `path_or_name` is neither a file nor a bundled
            recipe; the message lists the recipes.
        ValueError: for an unknown key, a key given twice, a value out of
            range (or not finite), a malformed override or invalid YAML; the
            message names the file, the dotted key or the override.
        TypeError: for a value of the wrong type, naming the file, the
            dotted key, the expected type and the value.

    Example:

    ```python
    config = load_config("shapes_accurate", ["train.epochs=3"])
    config.train.epochs  # 3
    ```
    """
    path = _resolve(path_or_name)
    source = str(path)
    try:
        data = _load_yaml(path.read_text(encoding="utf-8"), source)
    except yaml.YAMLError as error:
        raise InvalidValueError(f"{source} is not valid YAML: {error}") from None
    config = _from_dict(ExperimentConfig, data, source)
    for override in overrides:
        where = f"{source} (override {override!r})"
        data = _apply_override(config_to_dict(config), override, where)
        config = _from_dict(ExperimentConfig, data, where)
    return config


def config_to_dict(config) -> dict:
    """The config as nested plain dicts, lists and scalars (YAML-ready).

    Args:
        config: an `ExperimentConfig` or one of its sections.

    Returns:
        A new dict with every field; tuples become lists.
    """

    def plain(value):
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        return value

    return plain(dataclasses.asdict(config))


def save_config(config: ExperimentConfig, path: str | os.PathLike) -> None:
    """Writes `config` as YAML that `load_config` reads back to an equal config.

    Args:
        config: the `ExperimentConfig` to write.
        path: the YAML file; missing parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.dump(config_to_dict(config), Dumper=_Dumper, sort_keys=False)
    path.write_text(text, encoding="utf-8")
