"""Training learns: the small-photo recipe takes a tiny network on a small
generated set of a user's kind (class folders of 96 px photos, smaller than
the window) well under chance in a fixed number of steps, and a broken run
of the same recipe (labels shuffled) does not get there."""

import numpy as np
import pytest
from PIL import Image

from overfeat_tf.config import load_config
from overfeat_tf.data import shapes
from overfeat_tf.training import prepare

# Minutes: run with --run-slow (see conftest.py).
pytestmark = pytest.mark.slow

CLASSES = ("circle", "cross")
SIZE = 96  # photos smaller than the 231 px window: the recipe enlarges them
STEPS, EPOCHS, BATCH = 25, 8, 16
# Chance is 50 % top-1 error; with 100 validation images one standard error
# of a chance-level run is 5 points. The recipe ends near 23 %.
THRESHOLD = 35.0


def write_split(root, split, count, shuffle_rng=None, folder=None):
    """`count` scenes of CLASSES as root/split/<class>/<i>.png (flat
    backgrounds, random colours, sizes and rotations); with `shuffle_rng`
    the class folders are a random permutation of the true classes.
    `folder` names the split's folder (default: `split`)."""
    labels, images = [], []
    index = 0
    while len(images) < count:
        scene = shapes.render(
            7,
            split,
            index,
            height=SIZE,
            width=SIZE,
            object_size=(0.4, 0.8),
            clutter=False,
            textured=False,
        )
        index += 1
        name = shapes.CLASS_NAMES[scene.labels[0]]
        if name in CLASSES:
            labels.append(CLASSES.index(name))
            images.append(scene.image)
    if shuffle_rng is not None:
        labels = shuffle_rng.permutation(labels)
    for i, (label, image) in enumerate(zip(labels, images)):
        path = root / (folder or split) / CLASSES[label]
        path.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path / f"{i}.png")


def validation_errors(root, tmp_path):
    config = load_config(
        "own_data",
        [
            f"data.source={root}",
            f"output_dir={tmp_path / 'run'}",
            "model.width=0.125",
            f"train.batch_size={BATCH}",
            f"train.steps_per_epoch={STEPS}",
            f"train.epochs={EPOCHS}",
            "train.histogram_freq=0",
            "train.image_summaries=0",
        ],
    )
    run = prepare(config)
    history = run.model.fit(**{**run.fit_kwargs(), "callbacks": [], "verbose": 0})
    return history.history["val_top1_error"]


@pytest.mark.parametrize("broken", [False, True], ids=["recipe", "labels_shuffled"])
def test_the_recipe_learns_and_a_broken_run_does_not(tmp_path, broken):
    root = tmp_path / "photos"
    rng = np.random.default_rng(0) if broken else None
    write_split(root, "train", 400, rng)
    write_split(root, "validation", 100, folder="val")  # a common name for it
    errors = validation_errors(root, tmp_path)
    if broken:
        assert errors[-1] > THRESHOLD, errors
    else:
        assert errors[-1] < THRESHOLD, errors
