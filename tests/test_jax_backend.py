"""The same model and weights give the same maps on JAX as on TensorFlow."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY, make_images, normalized

import overfeat_tf as of

# Minutes: run with --run-slow (see conftest.py).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

JAX_SCRIPT = textwrap.dedent(
    """
    import sys
    import keras
    import numpy as np
    import overfeat_tf as of

    assert keras.backend.backend() == "jax", keras.backend.backend()
    builder, folder = getattr(of, sys.argv[1]), sys.argv[2]
    normalization = None if sys.argv[4] == "none" else sys.argv[4]
    model = builder(5, width=float(sys.argv[3]), normalization=normalization)
    model.load_weights(folder + "/model.weights.h5")
    images = np.load(folder + "/images.npy")
    for stride in ("coarse", "fine"):
        out = of.dense(model, stride)(images)["class_logits"]
        np.save(f"{folder}/{stride}.npy", np.asarray(out))
    """
)


@pytest.mark.parametrize(
    "builder, normalization",
    [
        ("overfeat_fast", "none"),
        ("overfeat_accurate", "none"),
        ("overfeat_fast", "batch"),
    ],
)
def test_jax_forward_equals_tensorflow(builder, normalization, rng, tmp_path):
    if normalization == "none":
        model = getattr(of, builder)(5, width=TINY)
    else:  # random statistics: a skipped or misplaced norm would show
        model = normalized(getattr(of, builder), 5, width=TINY)
    images = make_images(rng, 2, 270, 301)
    model.save_weights(tmp_path / "model.weights.h5")
    np.save(tmp_path / "images.npy", images)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    subprocess.run(
        [
            sys.executable,
            "-c",
            JAX_SCRIPT,
            builder,
            str(tmp_path),
            str(TINY),
            normalization,
        ],
        env=env,
        check=True,
        timeout=300,
    )
    for stride in ("coarse", "fine"):
        expected = np.asarray(of.dense(model, stride)(images)["class_logits"])
        got = np.load(tmp_path / f"{stride}.npy")
        assert got.shape == expected.shape
        scale = np.abs(expected).max()
        assert np.abs(got - expected).max() / scale < 1e-4
