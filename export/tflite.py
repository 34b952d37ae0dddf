"""TFLite for devices: the dense model or the whole pipeline, float or quantized.

Both kinds run on the stock LiteRT interpreter with builtin ops only (no
Flex / Select TF ops).

`convert` writes the single-scale dense model, for apps that choose their
own scales by resizing the input (`run_tflite` does, before allocating:
XNNPack cannot reshape after):

- input `pixels`: float32 [1, H, W, 3], RGB in [0, 255] (normalization
  is inside), any H, W >= the window;
- outputs `class_probabilities`: float32 [1, h, w, C], the softmax at every
  cell of the map at `stride`; and `boxes`: [1, h, w, 4 or 4C], the
  regressor's window codes (`boxes.decode_windows`), when the model has one.

`convert_pipeline` writes a runner's whole graph (scales, flips, dense
pass, box decoding, greedy merge, ranking) for one image size:

- input `pixels`: float32 [1, H, W, 3], RGB in [0, 255], H and W fixed;
- outputs as the SavedModel's signature of the task, without
  `class_names` (strings; the labels file sits beside): classify
  `classes`, `scores` [1, k]; localize and detect `boxes` [1, M, 4]
  (pixels of the input), `classes`, `scores` [1, M], `num_detections` [1].

Two parts needed a form that builtins can express. The merge runs in
fixed-size buffers (`Localizer(max_candidates=N, jit_compile=False)`:
the N best windows). And the file only enlarges: shrinking is antialiased
(ScaleAndTranslate, not a builtin), so the shorter side of H x W must be at
most the smallest scale; apps shrink camera frames to H x W themselves.

Quantization (`quantize`): `none` (float32), `float16` (weights),
`dynamic` (int8 weights, float activations) or `int8` (weights and
activations, calibrated on `representative` images; inputs and outputs
stay float32, and in the pipeline the merge stays float).
"""

from __future__ import annotations

import tempfile
from typing import Iterable

import keras
import numpy as np
import tensorflow as tf

from overfeat_tf.boxes import iou
from overfeat_tf.derived import dense, fold_normalization
from overfeat_tf.errors import InvalidValueError
from overfeat_tf.export.postprocess import postprocess
from overfeat_tf.inference import Classifier
from overfeat_tf.models import OverFeat
from overfeat_tf.preprocessing import MEAN_RGB, STDDEV_RGB
from overfeat_tf.serving import task_graph

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")


def app_model(model: OverFeat, stride: str = "fine") -> keras.Model:
    """Pixels [B, H, W, 3] in [0, 255] -> {class_probabilities, boxes}: the
    dense model at `stride` with its input normalization and softmax built
    in, and its normalization layers, if any, folded into its convolutions."""
    pixels = keras.Input((None, None, 3), name="pixels")
    normalized = keras.layers.Normalization(
        mean=MEAN_RGB, variance=np.square(STDDEV_RGB), name="normalize"
    )(pixels)
    outputs = dense(fold_normalization(model), stride)(normalized)
    served = {
        "class_probabilities": keras.layers.Softmax(name="class_probabilities")(
            outputs["class_logits"]
        )
    }
    if "boxes" in outputs:
        served["boxes"] = outputs["boxes"]
    return keras.Model(pixels, served, name=f"{model.name}_app")


def convert(
    model: OverFeat,
    quantize: str = "none",
    *,
    representative: Iterable[np.ndarray] | None = None,
    stride: str = "fine",
) -> bytes:
    """The `.tflite` flatbuffer of `app_model(model, stride)`.

    Args:
        quantize: one of `QUANTIZATIONS`.
        representative: for `int8`, pixel images [H, W, 3] in [0, 255] from
            the training pipeline (a hundred or so) to calibrate on.

    Raises:
        ValueError: an unknown `quantize`, or `int8` without images.
    """
    converter = tf.lite.TFLiteConverter.from_keras_model(app_model(model, stride))
    return _converted(converter, quantize, representative)


def pipeline_function(
    runner: Classifier, image_size: tuple[int, int], merge: bool = True
):
    """The runner's main task (`runner.tasks`) for one image size, as a
    `tf.function` of pixels float32 [1, H, W, 3] (see the module docstring);
    without `merge`, its search's `candidates_graph` (the merge's input).

    Raises:
        ValueError: a box runner without `max_candidates` or with
            `jit_compile`, an image size whose shorter side exceeds the
            smallest scale, or no `merge` for a classifier.
    """
    height, width = (int(v) for v in image_size)
    settings = runner.settings
    if _has_boxes(runner) and (settings.max_candidates is None or settings.jit_compile):
        raise InvalidValueError(
            "A TFLite pipeline merges in fixed-size buffers without XLA: build "
            "the runner with max_candidates=N and jit_compile=False. Received: "
            f"max_candidates={settings.max_candidates}, "
            f"jit_compile={settings.jit_compile}"
        )
    smallest = min(settings.scales)
    if min(height, width) > smallest or min(height, width) < 1:
        raise InvalidValueError(
            f"The pipeline file only enlarges its input: the shorter side of "
            f"image_size must be in [1, {smallest}] (the smallest scale), as "
            "antialiased shrinking (ScaleAndTranslate) is no TFLite builtin; "
            f"shrink images in the app. Received: image_size={height}x{width}"
        )
    if merge:
        graph = task_graph(runner, runner.tasks[0], with_names=False)
    elif _has_boxes(runner):
        graph = runner.search.candidates_graph
    else:
        raise InvalidValueError(
            "merge=False is for localizers and detectors: a classifier has no merge"
        )

    @tf.function(
        input_signature=[
            tf.TensorSpec([1, height, width, 3], tf.float32, name="pixels")
        ]
    )
    def pipeline(pixels):
        return graph(pixels)

    return pipeline


def convert_pipeline(
    runner: Classifier,
    image_size: tuple[int, int],
    quantize: str = "none",
    *,
    representative: Iterable[np.ndarray] | None = None,
    merge: bool = True,
) -> bytes:
    """The `.tflite` flatbuffer of `pipeline_function(runner, image_size, merge)`.

    Args:
        quantize: one of `QUANTIZATIONS`.
        representative: for `int8`, pixel images [H', W', 3] (any size:
            resized to `image_size`) to calibrate on.
        merge: False stops before the merge (`postprocess` finishes).

    Raises:
        ValueError: as `pipeline_function`, and as `convert`; and `int8`
            with the merge (its loops crash TensorFlow's int8 calibrator,
            tensorflow/tensorflow#75140: use merge=False).
    """
    if quantize == "int8" and merge and _has_boxes(runner):
        raise InvalidValueError(
            "Full int8 cannot calibrate the merge's loops (TensorFlow's "
            "calibrator crashes on WHILE ops, tensorflow/tensorflow#75140): "
            "convert with merge=False (--no-merge) and finish with "
            "overfeat_tf.export.postprocess, or quantize 'dynamic'."
        )
    function = pipeline_function(runner, image_size, merge)
    if representative is not None:
        representative = [
            tf.image.resize(np.asarray(image, np.float32), image_size).numpy()
            for image in representative
        ]
    module = tf.Module()
    module.weights = [v.value for v in runner.model.variables]
    with tempfile.TemporaryDirectory() as tmp:
        # Through a SavedModel: the converter then freezes Keras 3 weights.
        signature = function.get_concrete_function()
        tf.saved_model.save(module, tmp, signatures={"pipeline": signature})
        converter = tf.lite.TFLiteConverter.from_saved_model(
            tmp, signature_keys=["pipeline"]
        )
        return _converted(converter, quantize, representative, float_fallback=True)


def _converted(converter, quantize, representative, float_fallback=False) -> bytes:
    """Convert with builtins only, quantized as `quantize` says. With
    `float_fallback`, int8 leaves what has no int8 kernel (the merge) float."""
    if quantize not in QUANTIZATIONS:
        raise InvalidValueError(
            f"quantize must be one of {QUANTIZATIONS}. Received: {quantize!r}"
        )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        if representative is None:
            raise InvalidValueError(
                "quantize='int8' needs representative images to calibrate on."
            )
        images = [np.asarray(image, np.float32) for image in representative]
        if not images:
            raise InvalidValueError(
                "quantize='int8' got an empty set of representative images."
            )
        converter.representative_dataset = lambda: ([image[None]] for image in images)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if float_fallback:
            converter.target_spec.supported_ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
    return converter.convert()


def representative_images(config, count: int = 100) -> list[np.ndarray]:
    """`count` images [H, W, 3] in pixels from the recipe's training pipeline
    (its crops and augmentation), to calibrate `int8` on."""
    from overfeat_tf.training import experiment

    batches = experiment.task_parts(config).train_batches(1, config.seed)
    return [
        images[0].numpy() * np.array(STDDEV_RGB) + np.array(MEAN_RGB)
        for images, _ in batches.take(count)
    ]


def interpreter_for(content: bytes, shape, num_threads: int = 2):
    """A LiteRT interpreter of `content` allocated for input `shape`, and
    its signature's {"inputs", "outputs"} tensor indices by name. XNNPack
    cannot resize after allocating: one interpreter per input size."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content, num_threads=num_threads)
    (signature,) = interpreter._get_full_signature_list().values()
    interpreter.resize_tensor_input(signature["inputs"]["pixels"], shape)
    interpreter.allocate_tensors()
    return interpreter, signature


def run_tflite(content: bytes, images: Iterable[np.ndarray], num_threads: int = 2):
    """Run a converted file on each image [H, W, 3] (pixels) with LiteRT.

    Returns one dict per image, by output name, without the batch axis.
    """
    results = []
    for image in images:
        image = np.asarray(image, np.float32)[None]
        interpreter, signature = interpreter_for(content, image.shape, num_threads)
        interpreter.set_tensor(signature["inputs"]["pixels"], image)
        interpreter.invoke()
        results.append(
            {
                name: interpreter.get_tensor(index)[0]
                for name, index in signature["outputs"].items()
            }
        )
    return results


def top1_classes(outputs) -> np.ndarray:
    """Each image's class: the best class of its maximum over the cells
    (one scale of the paper's aggregation)."""
    classes = []
    for output in outputs:
        probabilities = np.asarray(output["class_probabilities"])
        classes.append(
            probabilities.reshape(-1, probabilities.shape[-1]).max(0).argmax()
        )
    return np.array(classes)


def verify_tflite(
    content: bytes, model: OverFeat, images, stride: str = "fine"
) -> dict:
    """The LiteRT file against Keras on `images` (pixels [H, W, 3]): the
    largest relative difference of the class probabilities (to the largest
    probability), of the box codes, and the top-1 agreement of the images."""
    reference = app_model(model, stride)
    want = [
        {k: v.numpy()[0] for k, v in reference(np.asarray(i, np.float32)[None]).items()}
        for i in images
    ]
    got = run_tflite(content, images)

    def largest(key):
        if key not in want[0]:
            return None
        return max(
            float(np.abs(g[key] - w[key]).max() / max(np.abs(w[key]).max(), 1e-12))
            for g, w in zip(got, want)
        )

    return {
        "images": len(want),
        "top1_agreement": float(np.mean(top1_classes(got) == top1_classes(want))),
        "max_relative_diff": largest("class_probabilities"),
        "max_box_relative_diff": largest("boxes"),
    }


def pipeline_settings(
    runner: Classifier, image_size: tuple[int, int], merge: bool = True
) -> dict:
    """What an app needs beside a pipeline file (written as JSON by the
    CLI): its task, input, labels and, for `postprocess`, the merge's
    settings."""
    names = runner.model.class_names
    settings = {
        "task": runner.tasks[0],
        "merged_in_file": bool(merge),
        "image_size": [int(v) for v in image_size],
        "scales": list(runner.settings.scales),
        "flips": runner.settings.flips,
        "labels": list(names),
    }
    if _has_boxes(runner):
        keys = ("max_candidates", "min_window_score", "merge_threshold")
        settings.update({key: getattr(runner.settings, key) for key in keys})
        settings.update(
            score_threshold=runner.search.min_score,
            max_detections=runner.settings.max_detections,
        )
    return settings


def verify_pipeline(
    content: bytes,
    runner: Classifier,
    images,
    image_size: tuple[int, int],
    merge: bool = True,
) -> dict:
    """A pipeline file on LiteRT against the runner in-process (float32), on
    `images` (pixels [H', W', 3], resized to `image_size` for both). A
    candidates file (`merge=False`) is finished with `postprocess`.

    Returns:
        `images`; `top1_agreement` (the best class, or no detection, equal);
        `max_relative_diff` (scores, to the largest score); and for box
        tasks `box_agreement`'s `boxes`, `matched` and `mean_iou`.
    """
    function = pipeline_function(runner, image_size)
    inputs = [
        tf.image.resize(np.asarray(image, np.float32), image_size).numpy()
        for image in images
    ]
    want = [
        {k: v.numpy()[0] for k, v in function(tf.constant(x[None])).items()}
        for x in inputs
    ]
    got = run_tflite(content, inputs)
    if not merge:
        settings = pipeline_settings(runner, image_size, merge)
        got = [postprocess(candidates, settings) for candidates in got]
    scale = max(float(np.abs(w["scores"]).max()) for w in want) or 1.0
    row = {
        "images": len(want),
        "top1_agreement": float(
            np.mean([g["classes"][0] == w["classes"][0] for g, w in zip(got, want)])
        ),
        "max_relative_diff": max(
            float(np.abs(g["scores"] - w["scores"]).max()) for g, w in zip(got, want)
        )
        / scale,
    }
    if "boxes" in want[0]:
        row.update(box_agreement(got, want))
    return row


def box_agreement(got, want, min_iou: float = 0.5) -> dict:
    """How well predicted boxes `got` reproduce reference boxes `want` (one
    dict per image: `boxes` [M, 4], `classes` [M], `num_detections`).

    Each reference box is matched to the predicted box of its class with
    the highest IoU, if that is at least `min_iou`.

    Returns:
        `boxes` (reference boxes), `matched` (their fraction matched) and
        `mean_iou` (over the matched; None if none).
    """
    ious = []
    total = 0
    for g, w in zip(got, want):
        n, m = int(w["num_detections"]), int(g["num_detections"])
        total += n
        if not n or not m:
            continue
        overlap = iou(w["boxes"][:n, None], g["boxes"][None, :m]).numpy()
        same = w["classes"][:n, None] == g["classes"][None, :m]
        best = np.where(same, overlap, 0.0).max(1)
        ious.extend(best[best >= min_iou])
    return {
        "boxes": total,
        "matched": len(ious) / total if total else 1.0,
        "mean_iou": float(np.mean(ious)) if ious else None,
    }


def _has_boxes(runner) -> bool:
    """A `Localizer` or `Detector`: a runner whose main task gives boxes."""
    return runner.tasks[0] != "classify"
