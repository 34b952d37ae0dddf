"""The script examples of docs/usage.md (once README's) run as written, on a
folder of built-in images (the paths and step counts swapped for small ones)."""

import os
import re

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

import overfeat_tf as of
from overfeat_tf.data import shapes

# Minutes: run with --run-slow (see conftest.py).
pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(__file__))
USAGE = os.path.join(ROOT, "docs", "usage.md")
README = os.path.join(ROOT, "README.md")
MARKER = "<!-- tests/test_readme.py runs this block"


def _blocks(path=USAGE):
    """The Python blocks a page marks as run by this file, in order."""
    text = open(path, encoding="utf-8").read()
    pattern = re.escape(MARKER) + r"[^\n]*-->\n```python\n(.*?)```"
    return re.findall(pattern, text, re.DOTALL)


def _swap(code, replacements):
    for old, new in replacements.items():
        assert old in code, f"docs/usage.md's example no longer holds {old!r}"
        code = code.replace(old, new)
    return code


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory, data_dir):
    """root/{train,validation}/<class>/<n>.png from the built-in data, and a
    second root of 5 other classes."""
    root = tmp_path_factory.mktemp("images")
    examples = tfds.as_numpy(
        tfds.load(
            "overfeat_shapes/classification", split="train[:60]", data_dir=data_dir
        )
    )
    for n, example in enumerate(examples):
        name = shapes.CLASS_NAMES[example["label"]]
        for split in ("train", "validation"):
            for folder in ("flowers", "other"):
                if folder == "other" and example["label"] >= 5:
                    continue
                path = root / folder / split / name
                path.mkdir(parents=True, exist_ok=True)
                Image.fromarray(example["image"]).save(path / f"{n}.png")
    return root


def test_readme_examples_run(image_folder, tmp_path, monkeypatch):
    own_data, recipe, features = _blocks()
    monkeypatch.chdir(tmp_path)
    flowers, other = str(image_folder / "flowers"), str(image_folder / "other")

    scope = {}
    exec(
        _swap(
            own_data,
            {
                '"/data/flowers"': repr(flowers),
                "steps_per_epoch=200": "steps_per_epoch=2",
                "epochs=10": "epochs=1",
            },
        ),
        scope,
    )
    trained = of.load_model("runs/flowers")
    classes = sorted(os.listdir(os.path.join(flowers, "train")))
    assert list(trained.class_names) == classes == list(scope["train"].class_names)
    np.testing.assert_array_equal(
        trained.get_layer("fc8").kernel.numpy(),
        scope["model"].get_layer("fc8").kernel.numpy(),
    )
    assert os.listdir("runs/flowers/tensorboard")

    scope = {}
    exec(
        _swap(
            recipe,
            {
                '"shapes_fast"': '"tiny"',
                "/data/flowers": flowers,
                "runs/flowers": "runs/recipe",
            },
        ),
        scope,
    )
    assert scope["run"].class_names == tuple(classes)
    assert os.path.exists("runs/recipe/model.keras")
    assert os.listdir("runs/recipe/checkpoints")

    before = of.load_model("runs/flowers").get_layer("conv1").kernel.numpy()
    scope = {}
    exec(
        _swap(
            features,
            {
                '"/data/other_classes"': repr(other),
                "steps_per_epoch=100": "steps_per_epoch=2",
                "epochs=3": "epochs=1",
            },
        ),
        scope,
    )
    window = scope["features"](np.zeros((1, 231, 231, 3), "float32"))
    image_map = scope["features"](np.zeros((1, 256, 320, 3), "float32"))
    assert window.shape == (1, 6, 6, 256) and image_map.shape == (1, 6, 8, 256)
    # The head trained; the frozen features did not move.
    assert len(scope["head"].trainable_weights) == 2
    assert np.isfinite(scope["head"].history.history["loss"]).all()
    np.testing.assert_array_equal(
        scope["backbone"].get_layer("conv1").kernel.numpy(), before
    )


def test_readme_script_runs(data_dir, tmp_path, monkeypatch):
    """README's own example, on the tiny recipe and the session's data."""
    (script,) = _blocks(README)
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(
        _swap(
            script,
            {
                'load_config("shapes_fast")': (
                    f'load_config("tiny", ["data.data_dir={data_dir}", '
                    '"output_dir=runs/shapes_fast"])'
                ),
                '"test")': f'"test", data_dir={data_dir!r})',
            },
        ),
        scope,
    )
    out, test = scope["out"], scope["test"]
    assert os.path.exists("runs/shapes_fast/model.keras")
    assert scope["classifier"].settings.scales == of.inference.paper_scales(
        scope["classifier"].model.geometry
    )
    names = [name.decode() for name in out["top_k_names"].numpy()]
    assert len(names) == 5 and set(names) <= set(test.class_names)
    assert abs(float(np.sum(out["probabilities"])) - 1) < 1e-5
