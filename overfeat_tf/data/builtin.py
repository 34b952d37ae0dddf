"""The built-in data set as a tensorflow-datasets builder: `overfeat_shapes`.

Generated locally and deterministically from `shapes.render` (no download),
cached like any tfds data set. Three configurations:

- `overfeat_shapes/classification`: one prominent object per image (no
  clutter) and its `label`; 6,000 / 300 / 300 train / validation / test;
- `overfeat_shapes/localization`: the same scenes, with the box in
  `objects`; 1,500 / 300 / 300;
- `overfeat_shapes/detection`: 0 to 5 objects of any size among clutter, in
  `objects`; 6,000 / 300 / 300.

Images have a shorter side of 256 px and a longer one up to 1.25 times
that; splits come from disjoint seed streams (`SCENES` holds each task's
settings). `shapes.py` says what makes it hard. Example:

    import overfeat_tf.data  # registers the builder
    ds = tfds.load("overfeat_shapes/detection", split="train")

Other sizes or seeds: `tfds.load("overfeat_shapes", split="train",
builder_kwargs={"config": shapes_config("detection", num_train=100)})`.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np
import tensorflow_datasets as tfds

from overfeat_tf import boxes
from overfeat_tf.data import shapes
from overfeat_tf.errors import InvalidValueError

TASKS = ("classification", "localization", "detection")
MAX_OBJECTS = 5
# Training images per task. Classification and detection get more: a
# from-scratch network memorizes 1,500 of them within minutes
# (docs/results.md, "Classification: learning on the built-in data",
# "Detection on the built-in data").
NUM_TRAIN = {"classification": 6000, "localization": 1500, "detection": 6000}
# What a scene of each task holds (`shapes.render` arguments). Classification
# and localization images show one prominent object (1/3 to 3/4 of the
# shorter side) on a textured background, as ImageNet's mostly do: clutter
# halves how fast a network learns from scratch, and with objects down to
# 1/8 it does not generalize within minutes (docs/results.md,
# "Classification: learning on the built-in data"). Detection scenes have both.
SCENES = {
    "classification": {
        "num_objects": 1,
        "object_size": (1 / 3, 3 / 4),
        "clutter": False,
    },
    "localization": {"num_objects": 1, "object_size": (1 / 3, 3 / 4), "clutter": False},
    "detection": {"num_objects": (0, MAX_OBJECTS), "object_size": (1 / 8, 3 / 4)},
}


@dataclasses.dataclass
class ShapesConfig(tfds.core.BuilderConfig):
    """A configuration of the built-in data set.

    Attributes:
        task: "classification", "localization" or "detection".
        image_size: the shorter side of every image, in pixels (>= 64).
        max_aspect: the longer side is up to this times the shorter one.
        num_train, num_validation, num_test: images per split (training:
            `NUM_TRAIN[task]` by default).
        seed: the data set's seed; the same seed gives the same images.
        textured_objects: paint objects with the background's textures
            (camouflaged, as in version 1.1) instead of contrasting colours.
    """

    task: Literal["classification", "localization", "detection"] = "classification"
    image_size: int = 256
    max_aspect: float = 1.25
    num_train: int | None = None
    num_validation: int = 300
    num_test: int = 300
    seed: int = 0
    textured_objects: bool = False

    def __post_init__(self):
        if self.task not in TASKS:
            raise InvalidValueError(
                f"task must be one of {TASKS}. Received: task={self.task!r}"
            )
        if self.num_train is None:
            self.num_train = NUM_TRAIN[self.task]
        if self.image_size < 64 or self.max_aspect < 1:
            raise InvalidValueError(
                "image_size must be >= 64 and max_aspect >= 1. Received: "
                f"image_size={self.image_size}, max_aspect={self.max_aspect}"
            )
        for split in shapes.SPLITS:
            if getattr(self, f"num_{split}") < 0:
                raise InvalidValueError(
                    f"num_{split} must be >= 0. "
                    f"Received: num_{split}={getattr(self, f'num_{split}')}"
                )


def shapes_config(task: str, **kwargs) -> ShapesConfig:
    """A `ShapesConfig` named after its settings, so each caches apart.

    With no keyword arguments it is the registered configuration `task`.
    """
    config = ShapesConfig(name=task, task=task, **kwargs)
    default = ShapesConfig(name=task, task=task)
    changed = [
        f"{field.name}={getattr(config, field.name)}"
        for field in dataclasses.fields(ShapesConfig)
        if getattr(config, field.name) != getattr(default, field.name)
    ]
    if changed:
        config = dataclasses.replace(config, name="-".join([task, *changed]))
    return config


class OverfeatShapes(tfds.core.GeneratorBasedBuilder):
    """Textured shapes of 10 classes among clutter, for the three tasks."""

    VERSION = tfds.core.Version("1.2.0")
    RELEASE_NOTES = {
        "1.0.0": "First release.",
        "1.1.0": "Classification and localization: objects span 1/3 to 3/4 of "
        "the shorter side (was 1/8 to 3/4), no clutter, 6,000 training images.",
        "1.2.0": "Objects and distractors painted in a flat colour that stands "
        "out from the background under them (was one of the background's own "
        "textures, which camouflaged many); `textured_objects=True` keeps the "
        "old look. Detection: 6,000 training images (was 1,500).",
    }
    BUILDER_CONFIGS = [ShapesConfig(name=task, task=task) for task in TASKS]

    def _info(self) -> tfds.core.DatasetInfo:
        names = list(shapes.CLASS_NAMES)
        features = {
            "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
            "image_id": tfds.features.Text(),
            "objects": tfds.features.Sequence(
                {
                    "bbox": tfds.features.BBoxFeature(),
                    "label": tfds.features.ClassLabel(names=names),
                }
            ),
        }
        if self.builder_config.task != "detection":
            features["label"] = tfds.features.ClassLabel(names=names)
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(features),
            supervised_keys=None,
            description=__doc__,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        config = self.builder_config
        return {
            split: self._generate_examples(split, getattr(config, f"num_{split}"))
            for split in shapes.SPLITS
        }

    def _generate_examples(self, split, count):
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            for index, example in enumerate(
                pool.map(lambda i: self._example(split, i), range(count))
            ):
                yield index, example

    def _example(self, split: str, index: int) -> dict:
        config = self.builder_config
        rng = np.random.default_rng([config.seed, shapes.SPLITS.index(split), index, 1])
        short = config.image_size
        long = int(rng.uniform(1, config.max_aspect) * short)
        height, width = (short, long) if rng.random() < 0.5 else (long, short)
        scene = shapes.render(
            config.seed,
            split,
            index,
            height=height,
            width=width,
            textured_objects=config.textured_objects,
            **SCENES[config.task],
        )
        bbox = boxes.to_normalized_yxyx(scene.boxes, height, width)
        example = {
            "image": scene.image,
            "image_id": f"{split}_{index:06d}",
            "objects": {
                "bbox": np.asarray(bbox, np.float32).reshape(-1, 4),
                "label": scene.labels,
            },
        }
        if config.task != "detection":
            example["label"] = int(scene.labels[0])
        return example
