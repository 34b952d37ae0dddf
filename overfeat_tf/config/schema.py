"""The experiment config schema: frozen dataclasses, one per section.

An `ExperimentConfig` is a `ModelConfig`, a `DataConfig` and a `TrainConfig`
(`overfeat_tf.config.training`) plus a seed and an output folder. The
defaults are the paper's ImageNet recipe (Sermanet et al. 2014, section 3.1)
on the built-in data set. Every field is checked when a config is built, so
a wrong value fails at once, naming the class and the key.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from overfeat_tf import architectures
from overfeat_tf.config.checks import (
    SEED_LIMIT,
    SPECS,
    check_choices,
    check_initializer,
    check_merge_threshold,
    check_scale_range,
    require,
)
from overfeat_tf.config.training import TrainConfig
from overfeat_tf.errors import InvalidValueError


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
        check_choices(self)
        require(self, "width", self.width > 0, "> 0")
        require(self, "dropout", 0 <= self.dropout < 1, "in [0, 1)")
        check_initializer(self)
        if self.class_initializer is not None:
            check_initializer(self, "class_initializer")

    @property
    def normalization_layer(self) -> str | None:
        """`normalization` as `OverFeat` takes it (None for `"none"`)."""
        return None if self.normalization == "none" else self.normalization

    @property
    def spec(self) -> architectures.OverFeatSpec:
        """The layer table of `network` (`architectures.FAST` or `ACCURATE`)."""
        return SPECS[self.network]


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
        check_choices(self)
        for name in ("smallest_side", "crops_per_image", "shuffle_buffer"):
            require(self, name, getattr(self, name) >= 1, ">= 1")
        scales = self.scale_range
        require(
            self,
            "scale_range",
            scales is None or (len(scales) == 2 and 1 <= scales[0] <= scales[1]),
            "None or two sizes [low, high] in pixels with 1 <= low <= high",
        )


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
        check_choices(self)
        require(self, "min_overlap", 0 < self.min_overlap <= 1, "in (0, 1]")
        check_scale_range(self)
        for name in ("max_boxes", "top_k_classes"):
            require(self, name, getattr(self, name) >= 1, ">= 1")
        check_merge_threshold(self)


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
        check_choices(self)
        require(self, "positive_overlap", 0 < self.positive_overlap <= 1, "in (0, 1]")
        ok = 0 <= self.negative_overlap <= self.positive_overlap
        require(self, "negative_overlap", ok, "in [0, positive_overlap]")
        require(self, "min_fill", 0 <= self.min_fill <= 1, "in [0, 1]")
        require(self, "negatives_per_image", self.negatives_per_image >= 0, ">= 0")
        for name in ("max_boxes", "max_detections"):
            require(self, name, getattr(self, name) >= 1, ">= 1")
        check_scale_range(self, lowest=0.0)
        check_merge_threshold(self)
        score = self.min_window_score
        require(self, "min_window_score", 0 <= score <= 1, "in [0, 1]")
        score, mean = self.score_threshold, self.merge_score == "mean"
        require(
            self,
            "score_threshold",
            score >= 0 and (score <= 1 or not mean),
            "in [0, 1] with merge_score='mean'" if mean else ">= 0",
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
        check_choices(self)
        ok = 0 <= self.seed < SEED_LIMIT
        require(self, "seed", ok, f"in [0, 2**31) (0 <= seed <= {SEED_LIMIT - 1})")
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
