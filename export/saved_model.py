"""SavedModel for TF Serving: the inference graphs behind named signatures.

`export_saved_model` writes TF Serving's layout, `<base>/<name>/<version>/`,
with one pair of signatures per task the runners can do (a `Classifier`:
classify; a `Localizer`: classify and localize; a `Detector`: detect):

- `<task>`: input `image_bytes`, string [B], encoded PNG / JPEG / GIF / BMP /
  WebP images of any sizes (what TF Serving's REST API makes of
  `{"instances": [{"b64": "..."}]}`);
- `<task>_images`: input `images`, uint8 [B, H, W, 3], one size per batch;
- `serving_default`: the first runner's task, from bytes.

Outputs, the same for both inputs of a task:

- classify: `classes` int32 [B, k], `class_names` string [B, k], `scores`
  float32 [B, k] (the top k, best first);
- localize and detect: `boxes` float32 [B, M, 4] (x1, y1, x2, y2 in the
  input image's pixels), `classes` int32 [B, M] (-1 pads), `class_names`
  string [B, M] ("" pads), `scores` float32 [B, M] (0 pads) and
  `num_detections` int32 [B].

The label map is a constant of the graph and the asset `labels.txt`; the
SavedModel needs TensorFlow only, not this package. Bad bytes fail the
request with an `InvalidArgumentError` that says why (empty, not one of
the accepted formats, more than `max_pixels` by its header, an aspect
ratio over the runner's `max_aspect_ratio`), never the process.
"""

from __future__ import annotations

import io
import os
import tempfile
from typing import Sequence

import numpy as np
import tensorflow as tf
from PIL import Image

from overfeat_tf.data import decoding, shapes
from overfeat_tf.data.decoding import MAX_PIXELS
from overfeat_tf.errors import ExistingFileError, InvalidValueError
from overfeat_tf.inference import Classifier
from overfeat_tf.serving import task_graph
from overfeat_tf.tables import markdown_table


class ServingModule(tf.Module):
    """The runners' graphs as signatures (see the module docstring)."""

    def __init__(self, runners: Sequence[Classifier], max_pixels: int = MAX_PIXELS):
        super().__init__(name="overfeat_serving")
        if not runners:
            raise InvalidValueError(
                "export needs at least one Classifier, Localizer or Detector."
            )
        self.runners = list(runners)
        self.max_pixels = int(max_pixels)
        self.graphs = {}
        for runner in self.runners:
            for task in runner.tasks:
                if task in self.graphs:
                    raise InvalidValueError(
                        f"Two runners serve {task!r}; give one runner per task."
                    )
                self.graphs[task] = task_graph(runner, task)
        self.main_task = self.runners[0].tasks[0]
        self.functions = {}
        for task, graph in self.graphs.items():
            self.functions[task] = _from_bytes(graph, self.max_pixels)
            self.functions[f"{task}_images"] = _from_images(graph)

    def signatures(self) -> dict:
        signatures = {
            name: function.get_concrete_function()
            for name, function in self.functions.items()
        }
        signatures["serving_default"] = signatures[self.main_task]
        return signatures


def _from_images(graph):
    @tf.function(
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")]
    )
    def from_images(images):
        return graph(tf.cast(images, tf.float32))

    return from_images


def _from_bytes(graph, max_pixels):
    example = tf.TensorSpec([1, None, None, 3], tf.float32)
    specs = tf.nest.map_structure(
        lambda t: tf.TensorSpec(t.shape[1:], t.dtype),
        tf.function(graph).get_concrete_function(example).structured_outputs,
    )

    def one(data):
        outputs = graph(decode(data, max_pixels)[None])
        return {name: value[0] for name, value in outputs.items()}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def from_bytes(image_bytes):
        return tf.map_fn(one, image_bytes, fn_output_signature=specs)

    return from_bytes


def decode(data, max_pixels: int = MAX_PIXELS):
    """Encoded image bytes -> float32 [H, W, 3], after `decoding.decode`'s
    checks (not empty, one of `decoding.FORMATS`, at most `max_pixels` by
    the header)."""
    return tf.cast(decoding.decode(data, max_pixels), tf.float32)


def next_version(base: str) -> int:
    """One more than the highest numbered version under `base` (1 if none)."""
    if not tf.io.gfile.isdir(base):
        return 1
    names = (name.strip("/") for name in tf.io.gfile.listdir(base))
    return max((int(n) for n in names if n.isdigit()), default=0) + 1


def export_saved_model(
    runners: Sequence[Classifier],
    base_dir: str,
    *,
    model_name: str = "overfeat",
    version: int | None = None,
    max_pixels: int = MAX_PIXELS,
) -> str:
    """Write `runners` as `<base_dir>/<model_name>/<version>/`; return the path.

    Args:
        runners: `Classifier`, `Localizer` or `Detector` objects, configured
            as they should serve (scales, flips, thresholds); one per task.
        version: TF Serving's version folder; default one more than the
            highest already there.
        max_pixels: larger images (by their header) are refused.

    Raises:
        FileExistsError: the version folder exists already.
        ValueError: no runner, or two serving one task.
    """
    base = os.path.join(base_dir, model_name)
    version = next_version(base) if version is None else int(version)
    path = os.path.join(base, str(version))
    if tf.io.gfile.exists(path):
        raise ExistingFileError(
            f"{path} exists; TF Serving versions are immutable: pick another "
            "version or remove it."
        )
    module = ServingModule(runners, max_pixels)
    names = runners[0].model.class_names
    with tempfile.TemporaryDirectory() as tmp:
        labels = os.path.join(tmp, "labels.txt")
        with open(labels, "w", encoding="utf-8") as f:
            f.write("".join(f"{name}\n" for name in names))
        module.labels = tf.saved_model.Asset(labels)
        tf.saved_model.save(module, path, signatures=module.signatures())
    return path


def sample_images(count: int = 3) -> list[np.ndarray]:
    """Built-in test scenes (uint8 [H, W, 3], two sizes) to verify with."""
    return [
        shapes.render(
            0, "test", i, height=256, width=256 + 64 * (i % 2), num_objects=(0, 3)
        ).image
        for i in range(count)
    ]


def verify_saved_model(path: str, runners: Sequence[Classifier], images) -> list[dict]:
    """Load `path` as a deployment would and compare every signature with
    the in-process runners on `images` (uint8 [H, W, 3] each, sent one at a
    time, as PNG bytes to the bytes signatures).

    Returns:
        One row per signature: `signature`, `images`, `classes_equal` (the
        fraction of output class slots equal), `max_score_diff` and
        `max_box_diff` (pixels; None without boxes).
    """
    loaded = tf.saved_model.load(path)
    rows = []
    for runner in runners:
        for task in runner.tasks:
            graph = task_graph(runner, task)
            want = [graph(tf.constant(image[None], tf.float32)) for image in images]
            for name in (task, f"{task}_images"):
                signature = loaded.signatures[name]
                got = [
                    signature(images=tf.constant(image[None]))
                    if name.endswith("_images")
                    else signature(image_bytes=tf.constant([_png(image)]))
                    for image in images
                ]
                rows.append(_agreement(name, got, want))
    return rows


def _agreement(name, got, want) -> dict:
    def stacked(outputs, key):
        return np.concatenate([np.asarray(o[key]).reshape(-1) for o in outputs])

    has_boxes = "boxes" in want[0]
    return {
        "signature": name,
        "images": len(want),
        "classes_equal": float(
            np.mean(stacked(got, "classes") == stacked(want, "classes"))
        ),
        "max_score_diff": float(
            np.max(np.abs(stacked(got, "scores") - stacked(want, "scores")))
        ),
        "max_box_diff": float(
            np.max(np.abs(stacked(got, "boxes") - stacked(want, "boxes")))
        )
        if has_boxes
        else None,
    }


def format_agreement(rows: list[dict]) -> str:
    """The verification as a markdown table."""
    header = ["signature", "images", "classes equal", "max score diff"]
    return markdown_table(
        [*header, "max box diff (px)"],
        (
            [row["signature"], str(row["images"]), f"{row['classes_equal']:.1%}"]
            + [f"{row['max_score_diff']:.2g}"]
            + ["" if row["max_box_diff"] is None else f"{row['max_box_diff']:.2g}"]
            for row in rows
        ),
    )


def _png(image) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()
