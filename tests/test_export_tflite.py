"""TFLite: every quantization runs on the stock LiteRT interpreter with
builtin ops only, and agrees with Keras."""

import collections

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from helpers import TINY, normalized, sharpened

import overfeat_tf as of
from overfeat_tf import cli
from overfeat_tf.data import shapes
from overfeat_tf.export import tflite
from overfeat_tf.inference import Classifier
from overfeat_tf.preprocessing import normalize

# Minutes: run with --run-slow (see conftest.py).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    """A tiny localizer with sharpened class and box layers (seeded: the
    quantization bounds below hold for these weights)."""
    keras.utils.set_random_seed(0)
    return sharpened(
        of.with_regressor(of.overfeat_fast(6, width=TINY, class_names=list("abcdef")))
    )


@pytest.fixture(scope="module")
def scenes():
    """Built-in test scenes of two sizes (the input is resizable)."""
    return [
        shapes.render(1, "test", i, height=231, width=231 + 36 * (i % 2)).image
        for i in range(30)
    ]


@pytest.fixture(scope="module")
def converted(model, scenes):
    representative = [
        shapes.render(1, "train", i, height=231, width=231).image for i in range(20)
    ]
    return {
        q: tflite.convert(model, q, representative=representative)
        for q in tflite.QUANTIZATIONS
    }


def test_only_builtin_ops(converted):
    for quantize, content in converted.items():
        interpreter = Interpreter(model_content=content)
        ops = {op["op_name"] for op in interpreter._get_ops_details()}
        assert ops and not any("Flex" in op or op == "CUSTOM" for op in ops), quantize
        assert "CONV_2D" in ops and "SOFTMAX" in ops


def test_float32_equals_keras(converted, model, scenes):
    row = tflite.verify_tflite(converted["none"], model, scenes[:4])
    assert row["max_relative_diff"] < 1e-4 and row["max_box_relative_diff"] < 1e-4
    assert row["top1_agreement"] == 1.0


def test_batch_norm_is_folded_and_equals_keras(converted, scenes):
    # Random statistics; the file holds the same ops as the paper's network
    # (the norms folded into the convolutions) and the same outputs as Keras.
    bn = sharpened(of.with_regressor(normalized(of.overfeat_fast, 6, width=TINY)))
    content = tflite.convert(bn, "none")
    fine = of.dense(bn, "fine")  # the unfolded network, as Keras runs it
    for image, got in zip(scenes[:4], tflite.run_tflite(content, scenes[:4])):
        want = fine(normalize(np.asarray(image, np.float32)[None]))
        probabilities = keras.ops.softmax(want["class_logits"])[0].numpy()
        for key, expected in [
            ("class_probabilities", probabilities),
            ("boxes", want["boxes"][0].numpy()),
        ]:
            scale = np.abs(expected).max()
            np.testing.assert_allclose(got[key], expected, atol=1e-4 * scale)

    def ops(content):
        interpreter = Interpreter(model_content=content)
        return collections.Counter(
            op["op_name"] for op in interpreter._get_ops_details()
        )

    # Unfolded, each of the 7 norms would add a multiply and an add; folded,
    # the file has as many ops as the paper's network (a nonzero bias where
    # the plain file's zero one was optimized away may swap a fused ReLU for
    # an ADD and a RELU).
    folded, plain = ops(content), ops(converted["none"])
    assert sum(folded.values()) == sum(plain.values())
    assert (folded["CONV_2D"], folded["MUL"]) == (plain["CONV_2D"], plain["MUL"])


def test_quantized_files_stay_close_to_the_float_model(converted, model, scenes):
    want = _keras_probabilities(model, scenes)
    sizes = {q: len(c) for q, c in converted.items()}
    assert sizes["float16"] < 0.55 * sizes["none"]
    assert (
        sizes["dynamic"] < 0.3 * sizes["none"] and sizes["int8"] < 0.3 * sizes["none"]
    )
    # Mean probability error per quantization, over every cell and class.
    for quantize, bound in [("float16", 1e-3), ("dynamic", 0.03), ("int8", 0.03)]:
        got = tflite.run_tflite(converted[quantize], scenes)
        error = np.mean(
            [np.abs(g["class_probabilities"] - w).mean() for g, w in zip(got, want)]
        )
        assert 0 < error < bound, quantize
        assert (
            np.mean(
                tflite.top1_classes(got)
                == tflite.top1_classes([{"class_probabilities": w} for w in want])
            )
            >= 0.9
        )


def test_app_model_is_the_classifier_at_one_scale(converted, model, scenes):
    # At the image's own scale (no resize) and without flips, the Classifier
    # is each class's maximum over the app model's probability map, divided
    # by their sum: the app's file and the pipeline see the same pixels.
    app = tflite.app_model(model)
    files = tflite.run_tflite(converted["none"], scenes[:4])
    for image, from_file in zip(scenes[:4], files):
        classifier = Classifier(model, scales=(min(image.shape[:2]),), flips=False)
        want = classifier(image)["probabilities"].numpy()
        from_keras = app(np.float32(image)[None])["class_probabilities"][0]
        for probabilities in (from_file["class_probabilities"], from_keras):
            maxima = np.max(probabilities, axis=(0, 1))
            np.testing.assert_allclose(maxima / maxima.sum(), want, rtol=1e-4)


def _keras_probabilities(model, images):
    app = tflite.app_model(model)
    return [
        app(np.asarray(i, np.float32)[None])["class_probabilities"][0].numpy()
        for i in images
    ]


def test_bad_arguments(model):
    with pytest.raises(ValueError, match="quantize must be one of"):
        tflite.convert(model, "int4")
    with pytest.raises(ValueError, match="needs representative images"):
        tflite.convert(model, "int8")


def test_cli_export_tflite(model, tmp_path, capsys):
    model.save(tmp_path / "m.keras")
    args = ["export", "--format", "tflite", "--model", str(tmp_path / "m.keras")]
    assert cli.main([*args, "--output", str(tmp_path), "--quantize", "float16"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "overfeat_float16.tflite").exists()
    assert "LiteRT vs Keras on 3 built-in scenes: top-1 agreement" in out
    assert cli.main([*args, "--quantize", "int8"]) == 2
    assert "give --config" in capsys.readouterr().err
    assert cli.main([*args, "--scales", "1,2"]) == 2
    assert "drop --scales" in capsys.readouterr().err
