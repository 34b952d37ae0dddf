"""Localization: box coding, regressor targets and loss, the Localizer graph
against an independent composition, the ILSVRC metric, and bad input."""

import json

import numpy as np
import pytest
import tensorflow as tf
from helpers import TINY, with_random_boxes
from PIL import Image
from reference import localize_reference, resized, softmax, standardized

import overfeat_tf as of
from overfeat_tf import boxes as box_ops
from overfeat_tf import cli, serving
from overfeat_tf.box_search import cell_windows
from overfeat_tf.config import load_config
from overfeat_tf.data import shapes
from overfeat_tf.inference import paper_scales
from overfeat_tf.localizer import Localizer
from overfeat_tf.metrics import iou, localization_error
from overfeat_tf.training import prepare, train
from overfeat_tf.training.localization import (
    BoxIoU,
    box_regression_loss,
    regression_targets,
)

NAMES = [f"class{i}" for i in range(6)]


@pytest.fixture(scope="module")
def localizer_model():
    base = of.overfeat_fast(len(NAMES), width=TINY, class_names=NAMES)
    return with_random_boxes(of.with_regressor(base), np.random.default_rng(1))


# === Box coding and targets ===


def _coverage(windows, box):
    """Fraction of `box` inside each window, by hand (float64)."""
    w = windows.reshape(-1, 4).astype(np.float64)
    iw = np.clip(np.minimum(w[:, 2], box[2]) - np.maximum(w[:, 0], box[0]), 0, None)
    ih = np.clip(np.minimum(w[:, 3], box[3]) - np.maximum(w[:, 1], box[1]), 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    return (iw * ih / area).reshape(windows.shape[:2])


@pytest.mark.parametrize("stride", ["coarse", "fine"])
def test_targets_decode_to_the_box_at_every_scale(stride):
    geometry = of.FAST.geometry
    height, width = 300, 375  # original image
    truth = np.array([70.0, 40.0, 250.0, 200.0])
    learnt_at = []
    for size in paper_scales(geometry):
        factor = size / min(height, width)
        scaled_h, scaled_w = round(height * factor), round(width * factor)
        windows = geometry.cell_windows(scaled_h, scaled_w, stride)
        targets = regression_targets(
            (truth * factor)[None], [3], windows, geometry.window
        ).numpy()
        learn = targets[..., 4] == 1
        np.testing.assert_array_equal(learn, _coverage(windows, truth * factor) >= 0.5)
        learnt_at += [size] if learn.any() else []
        assert (targets[learn, 5] == 3).all()
        assert (targets[~learn, :4] == 0).all()
        decoded = box_ops.decode_windows(targets[..., :4], windows, geometry.window)
        decoded = decoded.numpy()[learn] / factor
        np.testing.assert_allclose(
            decoded, np.broadcast_to(truth, decoded.shape), atol=1e-3
        )


def test_in_graph_cell_windows_equal_the_geometry():
    geometry = of.ACCURATE.geometry
    for stride in ("coarse", "fine"):
        want = geometry.cell_windows(317, 389, stride)
        got = cell_windows(*want.shape[:2], geometry.stride(stride), geometry.window)
        np.testing.assert_array_equal(got, want)


def test_a_cell_learns_the_box_filling_most_of_it_and_ignores_padding():
    geometry = of.FAST.geometry
    windows = geometry.cell_windows(295, 295, "coarse")  # 3 x 3 cells
    # Whole in several windows: a small box (1), a larger one (4); padding.
    boxes = np.array([[70, 70, 120, 120], [130, 130, 230, 220], [0, 0, 295, 295]])
    targets = regression_targets(boxes, [1, 4, -1], windows, geometry.window).numpy()
    cover = np.stack([_coverage(windows, b) for b in boxes[:2]], -1)
    learn = cover.max(-1) >= 0.5
    np.testing.assert_array_equal(targets[..., 4] == 1, learn)
    area = (boxes[:2, 2] - boxes[:2, 0]) * (boxes[:2, 3] - boxes[:2, 1])
    filled = np.where(cover >= 0.5, cover * area, -1)  # the area inside each window
    want_class = np.array([1, 4])[filled.argmax(-1)]
    np.testing.assert_array_equal(targets[..., 5][learn], want_class[learn])
    both = (cover >= 0.5).all(-1)
    assert both.any() and (targets[..., 5][both] == 4).all()  # the larger wins
    empty = regression_targets(np.zeros([0, 4]), np.zeros([0], int), windows, 231)
    assert float(tf.reduce_sum(empty)) == 0.0
    with pytest.raises(ValueError, match="min_overlap"):
        regression_targets(boxes, [1, 4, -1], windows, 231, min_overlap=0.0)


def test_loss_and_iou_metric_by_hand(rng):
    targets = np.zeros((2, 2, 3, 6), np.float32)
    targets[..., :4] = rng.normal(size=(2, 2, 3, 4)) * 0.1
    targets[..., 4] = rng.integers(0, 2, (2, 2, 3))
    targets[..., 5] = rng.integers(0, 3, (2, 2, 3))
    single = rng.normal(size=(2, 2, 3, 4)).astype(np.float32) * 0.1
    per_class = rng.normal(size=(2, 2, 3, 12)).astype(np.float32) * 0.1
    weights = targets[..., 4]
    want = (((single - targets[..., :4]) ** 2).sum(-1) * weights).sum() / weights.sum()
    np.testing.assert_allclose(box_regression_loss(targets, single), want, rtol=1e-5)
    chosen = np.take_along_axis(
        per_class.reshape(2, 2, 3, 3, 4),
        targets[..., 5].astype(int)[..., None, None],
        3,
    )[..., 0, :]
    want = (((chosen - targets[..., :4]) ** 2).sum(-1) * weights).sum() / weights.sum()
    np.testing.assert_allclose(box_regression_loss(targets, per_class), want, rtol=1e-5)
    assert (
        float(box_regression_loss(np.zeros((1, 1, 1, 6)), np.ones((1, 1, 1, 4)))) == 0
    )
    metric = BoxIoU()
    metric.update_state(targets, targets[..., :4])
    assert float(metric.result()) == pytest.approx(1.0)
    shifted = targets[..., :4] + np.array([0.5, 0, 0.5, 0], np.float32)  # half out
    metric.reset_state()
    metric.update_state(targets, shifted)
    unit = np.array([0, 0, 1, 1])
    ious = [
        iou(t[None] + unit, p[None] + unit)[0, 0]
        for t, p in zip(targets[..., :4].reshape(-1, 4), shifted.reshape(-1, 4))
    ]
    want = (np.array(ious) * weights.reshape(-1)).sum() / weights.sum()
    assert float(metric.result()) == pytest.approx(want, rel=1e-5)


# === The localizer graph ===


@pytest.mark.parametrize(
    "scales, flips, k, threshold",
    [((256,), False, 1, 0.6), ((256, 294), True, 2, 0.8), ((300,), True, 3, -1.0)],
)
def test_localizer_equals_an_independent_composition(
    localizer_model, rng, scales, flips, k, threshold
):
    image = rng.integers(0, 256, (250, 310, 3)).astype(np.uint8)
    localizer = Localizer(
        localizer_model,
        scales=scales,
        flips=flips,
        top_k_classes=k,
        merge_threshold=threshold,
        jit_compile=False,
    )
    got = {name: value.numpy() for name, value in localizer(image).items()}
    boxes, scores, classes = localize_reference(
        localizer_model, image, scales, flips, k, threshold, 5
    )
    n = len(scores)
    assert int(got["num_detections"]) == n
    np.testing.assert_array_equal(got["classes"][:n], classes)
    np.testing.assert_allclose(got["scores"][:n], scores, rtol=1e-4)
    np.testing.assert_allclose(got["boxes"][:n], boxes, atol=0.05)
    assert (got["classes"][n:] == -1).all()
    assert [s.decode() for s in got["class_names"][:n]] == [NAMES[c] for c in classes]


def test_batch_equals_single_images_and_center_crop_by_hand(localizer_model, rng):
    localizer = Localizer(localizer_model, scales=(256,), merge_threshold=0.8)
    images = rng.integers(0, 256, (2, 260, 300, 3)).astype(np.uint8)
    batch = localizer(images)
    for i in range(2):
        single = localizer(images[i])
        np.testing.assert_allclose(batch["boxes"][i], single["boxes"], atol=1e-3)
        np.testing.assert_array_equal(batch["classes"][i], single["classes"])
    got = localizer.localize_center_crop(images[0])
    x = resized(images[0], 256)  # 256 x 295
    top, left = (256 - 231) // 2, (295 - 231) // 2
    out = localizer_model(standardized(x[top : top + 231, left : left + 231])[None])
    probs = softmax(np.asarray(out["class_logits"])[0, 0, 0])
    want = np.argsort(-probs)[:5]
    np.testing.assert_array_equal(got["classes"], want)
    np.testing.assert_allclose(got["scores"], probs[want], rtol=1e-4)
    box = [left, top, left + 231, top + 231] + np.asarray(out["boxes"])[0, 0, 0] * 231
    box = box * np.tile([300 / 295, 260 / 256], 2)
    box = np.concatenate([np.minimum(box[:2], box[2:]), np.maximum(box[:2], box[2:])])
    np.testing.assert_allclose(
        got["boxes"][0], np.clip(box, 0, [300, 260] * 2), atol=0.05
    )


def test_a_localizer_serves_localize_and_classify(localizer_model, rng):
    localizer = Localizer(localizer_model, scales=(256,), flips=False)
    images = tf.constant(rng.integers(0, 256, (2, 256, 300, 3)), tf.float32)
    classes = serving.task_graph(localizer, "classify")(images)
    want = localizer.classifier(images)
    np.testing.assert_array_equal(classes["classes"], want["top_k_ids"])
    # (a graph traced for one shape may round differently from the dynamic one)
    np.testing.assert_allclose(classes["scores"], want["top_k_probabilities"], 1e-4)
    boxes = serving.task_graph(localizer, "localize", with_names=False)(images)
    assert set(boxes) == {"boxes", "classes", "scores", "num_detections"}
    want = localizer(images)
    for key in ("classes", "num_detections"):
        np.testing.assert_array_equal(boxes[key], want[key])
    np.testing.assert_allclose(boxes["scores"], want["scores"], 1e-4)
    np.testing.assert_allclose(boxes["boxes"], want["boxes"], atol=0.01)
    with pytest.raises(ValueError, match="serves"):
        serving.task_graph(localizer, "detect")


def test_localizer_bad_input(rng):
    classifier = of.overfeat_fast(6, width=TINY)
    with pytest.raises(ValueError, match="no box regressor"):
        Localizer(classifier)
    localizer = Localizer(of.with_regressor(classifier), scales=(256,))
    with pytest.raises(ValueError, match="Empty image"):
        localizer(np.zeros((0, 300, 300, 3), np.uint8))
    with pytest.raises(ValueError, match="top_k_classes"):
        Localizer(of.with_regressor(classifier), top_k_classes=7)


# === Regressor checkpoints ===


def test_a_regressor_from_another_backbone_is_refused(tmp_path):
    base = of.overfeat_fast(6, width=TINY)
    trained = of.with_regressor(base)
    trained.save(tmp_path / "localizer.keras")
    again = of.with_regressor(base, weights=str(tmp_path / "localizer.keras"))
    for name in base.spec.regressor_names:
        for a, b in zip(
            again.get_layer(name).get_weights(), trained.get_layer(name).get_weights()
        ):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="other feature-extractor weights"):
        of.with_regressor(
            of.overfeat_fast(6, width=TINY), weights=str(tmp_path / "localizer.keras")
        )
    with pytest.raises(ValueError, match="does not fit this backbone"):
        of.with_regressor(
            of.overfeat_fast(6, width=0.25), weights=str(tmp_path / "localizer.keras")
        )
    with pytest.raises(ValueError, match="holds no 'per_class'"):
        of.with_regressor(base, "per_class", weights=str(tmp_path / "localizer.keras"))
    with pytest.raises(ValueError, match="has a 'single' regressor already"):
        of.with_regressor(trained)


# === The ILSVRC metric ===


def test_localization_error_by_hand():
    truth = [
        (np.array([2]), np.array([[0, 0, 10, 10]])),
        (np.array([1, 1]), np.array([[0, 0, 10, 10], [20, 20, 30, 30]])),
        (np.array([0]), np.array([[0, 0, 10, 10]])),
    ]
    predictions = [
        # right class, IoU 0.5 exactly (0..10 vs 0..5 x 0..10 twice the area): right
        (np.array([2, -1]), np.array([[0, 0, 10, 5], [0, 0, 0, 0]])),
        # the second guess matches the second box of class 1
        (np.array([1, 1]), np.array([[50, 50, 60, 60], [21, 21, 31, 31]])),
        # right box, wrong class; then right class, wrong box
        (np.array([3, 0]), np.array([[0, 0, 10, 10], [40, 40, 50, 50]])),
    ]
    assert localization_error(predictions, truth, k=5) == pytest.approx(100 / 3)
    assert localization_error(predictions, truth, k=1) == pytest.approx(200 / 3)
    with pytest.raises(ValueError, match="x2 < x1"):
        localization_error(
            predictions[:1], [(np.array([0]), np.array([[10, 0, 0, 10]]))]
        )
    with pytest.raises(ValueError, match="one prediction per ground-truth image"):
        localization_error([], [])


# === Training the regressor, and the CLI ===


def _localize_overrides(data_dir, backbone, out):
    return [
        "task=localize",
        "data.source=overfeat_shapes/localization",
        f"data.data_dir={data_dir}",
        f"localize.backbone={backbone}",
        f"output_dir={out}",
        "train.histogram_freq=0",
        "train.epochs=1",
        "train.steps_per_epoch=2",
        "train.validation_steps=1",
    ]


def _saved_backbone(path, **kwargs):
    model = of.overfeat_fast(10, width=TINY, class_names=shapes.CLASS_NAMES, **kwargs)
    model.save(path)
    return model


@pytest.mark.slow
def test_regressor_training_freezes_the_backbone_and_resumes(
    localization_data_dir, tmp_path
):
    backbone = _saved_backbone(tmp_path / "backbone.keras")
    overrides = _localize_overrides(
        localization_data_dir, tmp_path / "backbone.keras", tmp_path / "run"
    )
    history = train(load_config("tiny", overrides))
    assert np.isfinite(history.history["loss"]).all()
    assert 0 <= history.history["val_box_iou"][-1] <= 1
    trained = of.load_model(tmp_path / "run")
    assert trained.regressor == "single"
    for name in (*backbone.spec.conv_names, *backbone.spec.fc_names):
        for a, b in zip(
            trained.get_layer(name).get_weights(),
            backbone.get_layer(name).get_weights(),
        ):
            np.testing.assert_array_equal(a, b)
    kernel = trained.get_layer(trained.spec.regressor_names[-1]).get_weights()[0]
    assert np.abs(kernel).max() > 0  # learnt from its zero start

    resumed = prepare(load_config("tiny", [*overrides, "train.epochs=2"]))
    assert resumed.initial_epoch == 1

    _saved_backbone(tmp_path / "other.keras")
    other = [*overrides, f"localize.backbone={tmp_path / 'other.keras'}"]
    with pytest.raises(ValueError, match="trained on another backbone"):
        prepare(load_config("tiny", other))
    with pytest.raises(ValueError, match="needs a trained classifier"):
        prepare(load_config("tiny", [*overrides, "localize.backbone=null"]))
    renamed = tmp_path / "renamed.keras"
    of.overfeat_fast(10, width=TINY, class_names=[f"c{i}" for i in range(10)]).save(
        renamed
    )
    with pytest.raises(ValueError, match="one label map"):
        prepare(load_config("tiny", [*overrides, f"localize.backbone={renamed}"]))


@pytest.mark.slow
def test_cli_predict_and_evaluate_localize(
    localization_data_dir, tmp_path, rng, capsys
):
    model = with_random_boxes(
        of.with_regressor(_saved_backbone(tmp_path / "backbone.keras")), rng
    )
    model.save(tmp_path / "localizer.keras")
    pixels = rng.integers(0, 256, (240, 280, 3), np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    output, drawn = tmp_path / "boxes.json", tmp_path / "drawn"
    args = [
        "predict",
        "--task",
        "localize",
        "--model",
        str(tmp_path / "localizer.keras"),
    ]
    args += [str(tmp_path / "a.png"), "--scales", "1", "--output", str(output)]
    assert cli.main([*args, "--draw", str(drawn)]) == 0
    rows = json.loads(output.read_text())[str(tmp_path / "a.png")]
    want = Localizer(model, scales=(256,))(pixels)
    count = int(want["num_detections"])
    assert [r[0] for r in rows] == want["classes"].numpy()[:count].tolist()
    np.testing.assert_allclose([r[1] for r in rows], want["scores"][:count], rtol=1e-4)
    np.testing.assert_allclose([r[2:] for r in rows], want["boxes"][:count], atol=0.06)
    assert np.asarray(Image.open(drawn / "a.png")).shape == (240, 280, 3)
    capsys.readouterr()

    classifier = ["--model", str(tmp_path / "backbone.keras"), str(tmp_path / "a.png")]
    assert cli.main(["predict", "--task", "localize", *classifier]) == 2
    assert "needs a model with a box regressor" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    localizer = ["--model", str(tmp_path / "localizer.keras")]
    assert (
        cli.main(["predict", "--task", "localize", *localizer, str(tmp_path / "empty")])
        == 2
    )
    assert "No image files" in capsys.readouterr().err

    results = tmp_path / "results.json"
    args = ["evaluate", "--task", "localize", "--config", "shapes_fast_localize"]
    args += ["--model", str(tmp_path / "localizer.keras"), "--limit", "2"]
    args += ["--scales", "1,2", "--output", str(results)]
    # The same two scales given in pixels: the extra row must match Table 5's.
    args += ["--scale-sizes", "256,294", f"data.data_dir={localization_data_dir}"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    rows = json.loads(results.read_text())["results"]
    assert [r["configuration"][:8] for r in rows] == [
        "whole im",
        "1 center",
        "1 scale ",
        "2 scales",
        "2 scales",
    ]
    assert rows[-1]["configuration"] == rows[3]["configuration"]
    assert rows[3]["configuration"] == "2 scales (256,294 px), fine"
    for key in ("top1_error", "top5_error"):
        assert rows[-1][key] == rows[3][key]
    for r in rows:
        assert 0 <= r["top5_error"] <= r["top1_error"] <= 100
        assert f"| {r['configuration']} | {r['top1_error']:.2f} |" in out
