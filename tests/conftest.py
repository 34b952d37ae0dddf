"""Test setup: the TensorFlow backend, quiet logs, seeded generators."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _built_in(tmp_path_factory, task):
    """A tfds data folder holding the registered built-in `task` data."""
    import tensorflow_datasets as tfds

    import overfeat_tf.data  # noqa: F401  (registers the builder)

    path = tmp_path_factory.mktemp(f"tfds_{task}")
    tfds.builder(f"overfeat_shapes/{task}", data_dir=str(path)).download_and_prepare()
    return str(path)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """The built-in classification data, generated once per test session."""
    return _built_in(tmp_path_factory, "classification")


@pytest.fixture(scope="session")
def localization_data_dir(tmp_path_factory):
    """The built-in localization data, generated once per test session."""
    return _built_in(tmp_path_factory, "localization")


@pytest.fixture(scope="session")
def detection_data_dir(tmp_path_factory):
    """The built-in detection data, generated once per test session."""
    return _built_in(tmp_path_factory, "detection")


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory, data_dir, localization_data_dir, detection_data_dir):
    """One tfds folder holding the three built-in data sets of the session."""
    root = tmp_path_factory.mktemp("tfds_all")
    (root / "overfeat_shapes").mkdir()
    for task, path in [
        ("classification", data_dir),
        ("localization", localization_data_dir),
        ("detection", detection_data_dir),
    ]:
        target = os.path.join(path, "overfeat_shapes", task)
        os.symlink(target, root / "overfeat_shapes" / task)
    return str(root)


def pytest_addoption(parser):
    parser.addoption(
        "--run-slow",
        action="store_true",
        help="also run the tests marked slow (installs, the quickstart, training "
        "runs, exports, fuzzing: minutes); with -m slow, only them",
    )
    parser.addoption(
        "--long-fuzz",
        action="store_true",
        help="the fuzz tests draw 20x their examples (many minutes)",
    )


def pytest_collection_modifyitems(config, items):
    """Without --run-slow, the tests marked slow are deselected: the default
    tier runs in minutes on 2 cores."""
    if config.getoption("--run-slow"):
        return
    slow = [item for item in items if "slow" in item.keywords]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if "slow" not in item.keywords]
