"""The whole pipeline in one TFLite file: builtins only, equal to the served
pipeline, quantized files close to it, and the NumPy post-processing of a
candidates file equal to the in-graph merge."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from helpers import TINY, sharpened

import overfeat_tf as of
from overfeat_tf import cli, merge
from overfeat_tf.data import shapes
from overfeat_tf.detector import Detector
from overfeat_tf.export import postprocess, tflite
from overfeat_tf.inference import Classifier
from overfeat_tf.localizer import Localizer

# Minutes: run with --run-slow (see conftest.py).
pytestmark = pytest.mark.slow

SIZE = (240, 300)  # the file's input: shorter side below the smallest scale
SCALES = (245, 281)
FILE_OPTIONS = dict(jit_compile=False, max_candidates=1024)


@pytest.fixture(scope="module")
def models():
    """Seeded: the quantized-agreement test needs the detector to find boxes
    (unseeded, their number depends on which tests ran before)."""
    keras.utils.set_random_seed(11)
    names = list("abcdef")
    localizer = sharpened(
        of.with_regressor(of.overfeat_fast(6, width=TINY, class_names=names))
    )
    detector = sharpened(
        of.with_background(of.overfeat_fast(6, width=TINY, class_names=names))
    )
    return localizer, detector


def _runners(models, **options):
    """Classifier, Localizer and Detector, as served (XLA merge, every
    window) by default, or with `options`."""
    localizer, detector = models
    box_options = dict(scales=SCALES, flips=True, **options)
    return {
        "classify": Classifier(localizer, scales=SCALES, flips=True),
        "localize": Localizer(localizer, max_predictions=5, **box_options),
        "detect": Detector(
            detector, score_threshold=0.2, max_detections=20, **box_options
        ),
    }


@pytest.fixture(scope="module")
def scenes():
    """Built-in test scenes, resized to the file's input size."""
    return [
        tf.image.resize(
            shapes.render(2, "test", i, height=256, width=320).image.astype(np.float32),
            SIZE,
        ).numpy()
        for i in range(8)
    ]


@pytest.fixture(scope="module")
def files(models):
    """Float32 pipeline files of each task, and the detector's candidates file."""
    runners = _runners(models, **FILE_OPTIONS)
    runners["classify"] = _runners(models)["classify"]
    converted = {
        task: tflite.convert_pipeline(runner, SIZE) for task, runner in runners.items()
    }
    converted["candidates"] = tflite.convert_pipeline(
        runners["detect"], SIZE, merge=False
    )
    return converted


def _served(runner, images):
    """The runner's own outputs, named as the file names them."""
    out = runner(np.stack(images))
    if not isinstance(runner, Classifier):  # Localizer, Detector: one schema
        return out["boxes"], out["classes"], out["scores"], out["num_detections"]
    return None, out["top_k_ids"], out["top_k_probabilities"], None


def _file(content, images, settings=None):
    got = tflite.run_tflite(content, images)
    if settings is not None:
        got = [postprocess.postprocess(g, settings) for g in got]
    return got


def _assert_same(got, want, relative=1e-4):
    boxes, classes, scores, count = (
        np.asarray(w) if w is not None else None for w in want
    )
    for i, g in enumerate(got):
        np.testing.assert_array_equal(g["classes"], classes[i])
        np.testing.assert_allclose(g["scores"], scores[i], atol=relative * scores.max())
        if boxes is not None:
            assert int(g["num_detections"]) == count[i]
            np.testing.assert_allclose(g["boxes"], boxes[i], atol=1e-2)


def _assert_builtin_only(content, name):
    details = Interpreter(model_content=content)._get_ops_details()
    ops = {op["op_name"] for op in details}
    assert not any("Flex" in op or op == "CUSTOM" for op in ops), name
    return ops


def test_every_file_holds_builtin_ops_only(files):
    for name, content in files.items():
        ops = _assert_builtin_only(content, name)
        assert {"CONV_2D", "RESIZE_BILINEAR", "REVERSE_V2"} <= ops, name
        if name in ("localize", "detect"):
            assert "WHILE" in ops  # the merge is inside


@pytest.mark.parametrize("task", ["classify", "localize", "detect"])
def test_float32_file_equals_the_served_pipeline(files, models, scenes, task):
    """Against the runner as the SavedModel serves it: every window, the
    merge under XLA per class, images of any size."""
    runner = _runners(models)[task]
    want = _served(runner, scenes[:3])
    _assert_same(_file(files[task], scenes[:3]), want)
    if task == "detect":
        assert np.asarray(want[3]).min() > 0  # the comparison saw detections


def test_candidates_file_and_postprocess_equal_the_pipeline(files, models, scenes):
    runner = _runners(models, **FILE_OPTIONS)["detect"]
    settings = tflite.pipeline_settings(runner, SIZE, merge=False)
    assert (
        settings["merged_in_file"] is False and settings["labels"][-1] == "background"
    )
    got = _file(files["candidates"], scenes[:3], settings)
    _assert_same(got, _served(_runners(models)["detect"], scenes[:3]))


def test_postprocess_merge_equals_the_graph_merge(rng):
    """NumPy alone, O(N^2), with ties, empty input and one class."""
    for n, classes in [(0, 2), (1, 1), (40, 1), (200, 3), (600, 4)]:
        xy = rng.uniform(0, 100, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(4, 40, (n, 2))], 1)
        boxes = (np.round(boxes / 4) * 4).astype(np.float32)  # exact ties
        scores = rng.choice([0.25, 0.5, 0.75], n).astype(np.float32)
        labels = rng.integers(0, classes, n).astype(np.int32)
        want = merge.greedy_merge(boxes, scores, labels, 0.6)
        got = postprocess.greedy_merge(boxes, scores, labels, 0.6)
        for value, key in zip(got, ("boxes", "scores", "classes", "counts")):
            np.testing.assert_array_equal(
                value, want[key].numpy(), err_msg=f"{n} {key}"
            )


def test_greedy_merge_fixed_equals_greedy_merge(rng):
    for n in (0, 3, 64, 150):
        xy = rng.uniform(0, 100, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(4, 40, (n, 2))], 1)
        boxes = (np.round(boxes / 4) * 4).astype(np.float32)
        scores = rng.choice([0.25, 0.5], n).astype(np.float32)
        labels = rng.integers(0, 3, n).astype(np.int32)
        valid = rng.uniform(size=n) < 0.7
        want = merge.greedy_merge(boxes[valid], scores[valid], labels[valid], 0.6)
        for jit in (False, True):
            got = merge.greedy_merge_fixed(
                boxes, scores, labels, valid, 0.6, jit_compile=jit
            )
            count = int(got["count"])
            assert count == len(want["scores"])
            for key in ("boxes", "scores", "classes", "counts"):
                np.testing.assert_array_equal(got[key][:count], want[key])
            assert (got["classes"][count:].numpy() == -1).all()


def test_quantized_pipelines_agree_with_the_float_pipeline(models, scenes):
    """float16 and dynamic with the merge inside, int8 as a candidates file
    (the only int8 form): the best class and the boxes of the detector."""
    runner = _runners(models, **FILE_OPTIONS)["detect"]
    representative = [
        shapes.render(2, "train", i, height=240, width=300).image for i in range(10)
    ]
    for quantize, merged in [("float16", True), ("dynamic", True), ("int8", False)]:
        content = tflite.convert_pipeline(
            runner, SIZE, quantize, representative=representative, merge=merged
        )
        _assert_builtin_only(content, quantize)
        row = tflite.verify_pipeline(content, runner, scenes, SIZE, merge=merged)
        assert row["boxes"] > 8, quantize
        assert row["top1_agreement"] >= 0.75, (quantize, row)
        assert row["matched"] >= 0.8 and row["mean_iou"] >= 0.9, (quantize, row)
        if quantize == "float16":
            assert row["max_relative_diff"] < 1e-2 and row["mean_iou"] > 0.99


def test_box_agreement_counts_matches():
    want = [
        {
            "boxes": np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32),
            "classes": np.array([1, 2]),
            "num_detections": 2,
        }
    ]
    got = [
        {
            "boxes": np.array([[0, 0, 10, 12], [20, 20, 30, 30]], np.float32),
            "classes": np.array([1, 0]),
            "num_detections": 2,
        }
    ]
    row = tflite.box_agreement(got, want)
    # The second box has no box of its class; the first has IoU 100/120.
    assert row == {"boxes": 2, "matched": 0.5, "mean_iou": pytest.approx(100 / 120)}


def test_pipeline_errors_name_the_problem(models):
    runners = _runners(models)
    with pytest.raises(ValueError, match="max_candidates=N and jit_compile=False"):
        tflite.pipeline_function(runners["localize"], SIZE)
    with pytest.raises(ValueError, match=r"in \[1, 245\].*ScaleAndTranslate"):
        tflite.pipeline_function(runners["classify"], (246, 300))
    with pytest.raises(ValueError, match="a classifier has no merge"):
        tflite.pipeline_function(runners["classify"], SIZE, merge=False)
    # The runner's bound on the aspect ratio holds for the file's input size.
    with pytest.raises(ValueError, match="max_aspect_ratio=10 .*20 x 300"):
        tflite.pipeline_function(runners["classify"], (20, 300)).get_concrete_function()
    box_runner = _runners(models, **FILE_OPTIONS)["detect"]
    with pytest.raises(ValueError, match="#75140.*merge=False"):
        tflite.convert_pipeline(
            box_runner, SIZE, "int8", representative=[np.zeros((9, 9, 3))]
        )
    with pytest.raises(ValueError, match="max_candidates must be >= 1"):
        Localizer(models[0], max_candidates=0)


def test_cli_export_pipeline(models, tmp_path, capsys):
    models[1].save(tmp_path / "detector.keras")
    args = [
        "export",
        "--format",
        "tflite",
        "--model",
        str(tmp_path / "detector.keras"),
        "--output",
        str(tmp_path),
        "--kind",
        "pipeline",
        "--scale-sizes",
        "245,281",
    ]
    assert cli.main([*args, "--image-size", "240x300", "--max-candidates", "300"]) == 0
    out = capsys.readouterr().out
    assert "detect, 240x300 input, scales 245, 281, flips" in out
    assert (
        "LiteRT vs the in-process pipeline on 3 built-in scenes: top-1 agreement 100%"
        in out
    )
    settings = json.loads((tmp_path / "overfeat_pipeline_none.json").read_text())
    assert settings["max_candidates"] == 300 and settings["image_size"] == [240, 300]
    assert (tmp_path / "overfeat_pipeline_none.tflite").stat().st_size > 0
    assert cli.main([*args, "--image-size", "300x300"]) == 2
    assert "ScaleAndTranslate" in capsys.readouterr().err
    dense = [
        "export",
        "--format",
        "tflite",
        "--model",
        str(tmp_path / "detector.keras"),
    ]
    assert cli.main([*dense, "--no-merge"]) == 2
    assert "for --kind pipeline" in capsys.readouterr().err
