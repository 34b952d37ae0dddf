"""The SavedModel for TF Serving: signatures, fresh-process reload, requests."""

import base64
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from helpers import TINY
from PIL import Image
from test_decoding import HUGE

import overfeat_tf as of
from overfeat_tf import cli
from overfeat_tf.detector import Detector
from overfeat_tf.export import saved_model
from overfeat_tf.export.saved_model import decode, export_saved_model
from overfeat_tf.inference import Classifier
from overfeat_tf.localizer import Localizer

# Minutes: run with --run-slow (see conftest.py).
pytestmark = pytest.mark.slow

NAMES = list("abcdef")
TASKS = ("classify", "localize", "detect")


def _png(image) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def runners():
    localizer_model = of.with_regressor(
        of.overfeat_fast(6, width=TINY, class_names=NAMES)
    )
    detector_model = of.with_background(
        of.overfeat_fast(6, width=TINY, class_names=NAMES)
    )
    return (
        Localizer(localizer_model, scales=(245, 281), flips=True, max_predictions=3),
        Detector(
            detector_model,
            scales=(245,),
            flips=False,
            score_threshold=0.0,
            max_detections=10,
        ),
    )


@pytest.fixture(scope="module")
def exported(runners, tmp_path_factory):
    base = tmp_path_factory.mktemp("serving")
    return export_saved_model(runners, str(base), model_name="shapes")


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (2, 230, 290, 3)).astype(np.uint8)


def _in_process(runners, task, images):
    """The pipeline's own outputs, renamed as the signatures name them."""
    localizer, detector = runners
    if task == "classify":
        classifier = Classifier(localizer.model, localizer.settings)
        out = classifier(images)
        return {
            "classes": out["top_k_ids"],
            "class_names": out["top_k_names"],
            "scores": out["top_k_probabilities"],
        }
    # Localizer and Detector give the schema the SavedModel serves.
    return localizer(images) if task == "localize" else detector(images)


def _assert_equal_outputs(got, want):
    assert set(got) == set(want)
    for name, value in want.items():
        value = np.asarray(value)
        if value.dtype.kind in "OSU":
            np.testing.assert_array_equal(
                np.asarray(got[name]).astype(str), value.astype(str)
            )
        else:
            np.testing.assert_allclose(got[name], value, rtol=1e-4, atol=1e-3)


def test_layout_and_version(exported, runners, tmp_path):
    base, version = os.path.split(exported)
    assert version == "1" and os.path.basename(base) == "shapes"
    assert os.path.exists(os.path.join(exported, "saved_model.pb"))
    labels = open(os.path.join(exported, "assets", "labels.txt")).read().split()
    assert labels == NAMES
    # The next export goes to version 2; an existing version is refused.
    again = export_saved_model(runners[:1], os.path.dirname(base), model_name="shapes")
    assert again.endswith(os.path.join("shapes", "2"))
    with pytest.raises(FileExistsError, match="immutable"):
        export_saved_model(
            runners[:1], os.path.dirname(base), model_name="shapes", version=1
        )
    with pytest.raises(ValueError, match="Two runners serve 'localize'"):
        export_saved_model([runners[0], runners[0]], str(tmp_path))


def test_fresh_process_without_this_package_equals_the_pipeline(
    exported, runners, images, tmp_path
):
    np.save(tmp_path / "images.npy", images)
    (tmp_path / "encoded.json").write_text(json.dumps([_png(i).hex() for i in images]))
    script = os.path.join(os.path.dirname(__file__), "serve_without_package.py")
    files = [str(tmp_path / n) for n in ("images.npy", "encoded.json", "out.npz")]
    subprocess.run(
        [sys.executable, script, exported, *files],
        check=True,
        cwd=tmp_path,  # not the repository: nothing imports overfeat_tf by accident
        capture_output=True,
    )
    out = np.load(tmp_path / "out.npz")
    for task in TASKS:
        want = _in_process(runners, task, images)
        for signature in (task, f"{task}_images"):  # the bytes and the uint8 paths
            got = {
                key.split("/")[1]: out[key]
                for key in out.files
                if key.split("/")[0] == signature
            }
            _assert_equal_outputs(got, want)
    assert (out["detect/num_detections"] > 0).all()


def _saved_model_cli(path):
    """`saved_model_cli show --all`, parsed: {signature: {"inputs"/"outputs":
    {name: (dtype, shape)}}}."""
    shown = subprocess.run(
        ["saved_model_cli", "show", "--dir", path, "--all"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    parsed = {}
    for block in shown.split("signature_def['")[1:]:
        lines = block.splitlines()
        tensors = parsed.setdefault(
            lines[0].split("'")[0], {"inputs": {}, "outputs": {}}
        )
        for i, line in enumerate(lines):
            line = line.strip()
            if line.startswith(("inputs['", "outputs['")):
                kind, name = line.split("['")[0], line.split("'")[1]
                dtype = lines[i + 1].split(": ")[1]
                shape = lines[i + 2].split(": ")[1]
                tensors[kind][name] = (dtype, shape)
    return parsed


def test_saved_model_cli_lists_the_documented_signatures(exported):
    shown = _saved_model_cli(exported)
    assert set(shown) >= {*TASKS, *(f"{t}_images" for t in TASKS), "serving_default"}
    boxes = {
        "boxes": "DT_FLOAT",
        "classes": "DT_INT32",
        "class_names": "DT_STRING",
        "scores": "DT_FLOAT",
        "num_detections": "DT_INT32",
    }
    outputs = {
        "classify": {
            "classes": "DT_INT32",
            "class_names": "DT_STRING",
            "scores": "DT_FLOAT",
        },
        "localize": boxes,
        "detect": boxes,
    }
    for task in TASKS:
        assert shown[task]["inputs"] == {"image_bytes": ("DT_STRING", "(-1)")}
        assert shown[f"{task}_images"]["inputs"] == {
            "images": ("DT_UINT8", "(-1, -1, -1, 3)")
        }
        for signature in (task, f"{task}_images"):
            dtypes = {k: v[0] for k, v in shown[signature]["outputs"].items()}
            assert dtypes == outputs[task]
    assert shown["detect"]["outputs"]["boxes"] == ("DT_FLOAT", "(-1, 10, 4)")
    assert shown["localize"]["outputs"]["boxes"] == ("DT_FLOAT", "(-1, 3, 4)")
    assert shown["classify"]["outputs"]["scores"] == ("DT_FLOAT", "(-1, 5)")
    # serving_default is the first runner's task from bytes: localize.
    assert shown["serving_default"] == shown["localize"]


def test_a_predict_request_proto_gives_the_same_outputs(exported, images):
    from tensorflow_serving.apis import predict_pb2

    model = tf.saved_model.load(exported)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "shapes"
    request.model_spec.signature_name = "detect"
    request.inputs["image_bytes"].CopyFrom(
        tf.make_tensor_proto([_png(image) for image in images], dtype=tf.string)
    )
    # What the server does: the request's TensorProtos become the inputs.
    wire = predict_pb2.PredictRequest.FromString(request.SerializeToString())
    inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in wire.inputs.items()}
    signature = model.signatures[wire.model_spec.signature_name]
    got = signature(**inputs)
    want = model.signatures["detect_images"](images=tf.constant(images))
    for name in want:
        # One image at a time (bytes) against a batch of two: oneDNN may
        # round the floats differently, in the last bit.
        if want[name].dtype.is_floating:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5)
        else:
            np.testing.assert_array_equal(got[name].numpy(), want[name].numpy())
    # The REST form of the same request: {"instances": [{"b64": ...}]}.
    body = json.dumps(
        {"instances": [{"b64": base64.b64encode(_png(i)).decode()} for i in images]}
    )
    decoded = [base64.b64decode(x["b64"]) for x in json.loads(body)["instances"]]
    rest = model.signatures["serving_default"](image_bytes=tf.constant(decoded))
    want = model.signatures["localize_images"](images=tf.constant(images))
    np.testing.assert_allclose(rest["boxes"], want["boxes"], atol=1e-3)


def test_bad_bytes_fail_the_request_not_the_process(exported, images):
    model = tf.saved_model.load(exported)
    classify = model.signatures["classify"]
    huge = bytearray(_png(np.zeros((1, 1, 3), np.uint8)))
    huge[16:24] = (20000).to_bytes(4, "big") * 2  # a 20000 x 20000 header
    for data, message in [
        (b"not an image", "one of PNG, JPEG, GIF, BMP, WebP"),
        (b"", "empty string"),
        (bytes(huge), "more than 67108864 pixels"),
        # Every accepted format's header, not only PNG's and JPEG's.
        *[(data, "more than 67108864 pixels") for data in HUGE.values()],
        # 90 bytes that the scales would resize to 245 x 392000 (issue 18).
        (_png(np.zeros((1, 1600, 3), np.uint8)), "max_aspect_ratio=10 "),
    ]:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            classify(image_bytes=tf.constant([data]))
    # A 1 x 1 image is enlarged to the scales, like any small image.
    tiny = classify(image_bytes=tf.constant([_png(np.full((1, 1, 3), 200, np.uint8))]))
    scores = tiny["scores"].numpy()[0]
    assert np.isfinite(scores).all() and 0 < scores[0] <= 1
    assert (np.diff(scores) <= 0).all() and (tiny["classes"].numpy() >= 0).all()
    # The process goes on serving.
    fine = classify(image_bytes=tf.constant([_png(images[0])]))
    assert fine["classes"].shape == (1, 5)


def test_the_decoder_waits_for_the_checks():
    """In a graph only dependencies order ops: the decoder must come after the
    empty-string and header asserts, or a huge header may reach it first."""
    graph = tf.function(decode).get_concrete_function(tf.TensorSpec([], tf.string))
    operations = graph.graph.get_operations()
    (decoder,) = [op for op in operations if op.type == "DecodeImage"]
    upstream, stack = set(), [decoder]
    while stack:
        op = stack.pop()
        for parent in [t.op for t in op.inputs] + list(op.control_inputs):
            if parent not in upstream:
                upstream.add(parent)
                stack.append(parent)
    # Not empty, an accepted format, at most max_pixels (the last two are
    # asserts guarded by an If).
    checks = [
        op
        for op in operations
        if op.type == "Assert" or op.name.endswith("/AssertGuard")
    ]
    assert len(checks) == 3 and all(check in upstream for check in checks)


def test_cli_export_verifies_and_names_bad_paths(runners, tmp_path, capsys):
    localizer, detector = runners
    localizer.model.save(tmp_path / "localizer.keras")
    detector.model.save(tmp_path / "detector.keras")
    args = [
        "export",
        "--model",
        str(tmp_path / "localizer.keras"),
        "--model",
        str(tmp_path / "detector.keras"),
        "--output",
        str(tmp_path / "exports"),
        "--scales",
        "1",
        "--no-flips",
    ]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "exports/overfeat/1: signatures localize, classify, detect" in out
    # Every signature agrees with the pipeline on the built-in scenes.
    rows = [line for line in out.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 6 and all("| 3 | 100.0% |" in row for row in rows)
    # Without XLA: a second version, the same detections.
    assert cli.main([*args, "--no-xla"]) == 0
    assert "exports/overfeat/2: signatures" in capsys.readouterr().out
    scene = tf.constant(np.stack(saved_model.sample_images(1)))
    with_xla, without = (
        tf.saved_model.load(str(tmp_path / "exports" / "overfeat" / v)) for v in "12"
    )
    a = with_xla.signatures["detect_images"](images=scene)
    b = without.signatures["detect_images"](images=scene)
    for name in a:
        np.testing.assert_array_equal(a[name].numpy(), b[name].numpy())
    assert cli.main([*args, "--version", "1", "--no-verify"]) == 2
    assert "immutable" in capsys.readouterr().err
    assert cli.main(["export", "--model", str(tmp_path / "missing.keras")]) == 2
    assert "missing.keras" in capsys.readouterr().err
