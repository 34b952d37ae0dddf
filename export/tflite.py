"""TFLite for devices: the single-scale dense model, float or quantized.

`convert` turns a trained model into a `.tflite` file that runs on the
stock LiteRT interpreter with builtin ops only (no Flex / Select TF ops).
The file holds one scale of the dense pass, so an app picks its scales by
resizing the input (`run_tflite` does, before allocating: XNNPack cannot
reshape after):

- input `pixels`: float32 [1, H, W, 3], RGB in [0, 255] (normalization
  is inside), any H, W >= the window;
- outputs `class_probabilities`: float32 [1, h, w, C], the softmax at every
  cell of the map at `stride`; and `boxes`: [1, h, w, 4 or 4C], the
  regressor's window codes (`boxes.decode_windows`), when the model has one.

Quantization (`quantize`): `none` (float32), `float16` (weights),
`dynamic` (int8 weights, float activations) or `int8` (weights and
activations, calibrated on `representative` images; inputs and outputs
stay float32).
"""

from __future__ import annotations

from typing import Iterable

import keras
import numpy as np
import tensorflow as tf

from overfeat_tf.data.pipelines import MEAN_RGB, STDDEV_RGB
from overfeat_tf.models import OverFeat, dense

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")


def app_model(model: OverFeat, stride: str = "fine") -> keras.Model:
    """Pixels [B, H, W, 3] in [0, 255] -> {class_probabilities, boxes}: the
    dense model at `stride` with its normalization and softmax built in."""
    pixels = keras.Input((None, None, 3), name="pixels")
    normalized = keras.layers.Normalization(
        mean=MEAN_RGB, variance=np.square(STDDEV_RGB), name="normalize"
    )(pixels)
    outputs = dense(model, stride)(normalized)
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
    if quantize not in QUANTIZATIONS:
        raise ValueError(
            f"quantize must be one of {QUANTIZATIONS}. Received: {quantize!r}"
        )
    converter = tf.lite.TFLiteConverter.from_keras_model(app_model(model, stride))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        if representative is None:
            raise ValueError(
                "quantize='int8' needs representative images to calibrate on."
            )
        images = [np.asarray(image, np.float32) for image in representative]
        if not images:
            raise ValueError(
                "quantize='int8' got an empty set of representative images."
            )
        converter.representative_dataset = lambda: ([image[None]] for image in images)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
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
