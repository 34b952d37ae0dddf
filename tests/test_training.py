"""Training: the paper's recipe, distribution, resumption, TensorBoard, NaN."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from overfeat_tf.config import TrainConfig, load_config
from overfeat_tf.training import (
    L2SGD,
    ClassMapCrossentropy,
    L2Adam,
    NaNLossError,
    TopKError,
    class_map_crossentropy,
    learning_rate_schedule,
    make_optimizer,
    prepare,
)
from overfeat_tf.training.strategy import check_global_batch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "scripts" / "train_and_save.py"
# Tiny runs: no dropout (replicas draw different masks), a gentle rate.
TINY = ["model.dropout=0.0", "train.learning_rate=0.002", "train.momentum=0.6"]


def train_in_subprocess(out, data_dir, *overrides, logical_cpus=0, env=None, wait=True):
    command = [sys.executable, str(SCRIPT), str(out), f"--logical-cpus={logical_cpus}"]
    command += [f"data.data_dir={data_dir}", f"output_dir={out}/run", *TINY, *overrides]
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    if not wait:
        return process
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output.decode()[-3000:]
    return json.loads((Path(out) / "state.json").read_text())


def weights(out):
    """Every array in a run's final .weights.h5, by path."""
    values = {}

    def visit(name, item):
        if isinstance(item, h5py.Dataset):
            values[name] = item[()]

    with h5py.File(Path(out) / "final.weights.h5") as f:
        f.visititems(visit)
    return values


def assert_same_weights(a, b, rtol=1e-4, optimizer_rtol=None):
    """Every array equal within `rtol` of its scale; the optimizer's slots
    (momentum: recent gradients) within `optimizer_rtol` if given."""
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys() and len(wa) > 10
    for name in wa:
        scale = max(np.abs(wa[name]).max(), 1e-3)
        tolerance = rtol
        if optimizer_rtol is not None and name.startswith("optimizer/"):
            tolerance = optimizer_rtol
        assert np.abs(wa[name] - wb[name]).max() <= tolerance * scale, name


def test_paper_schedule_optimizer_and_decay():
    config = TrainConfig()  # the paper's values are the defaults
    optimizer = make_optimizer(config, steps_per_epoch=100)
    schedule = learning_rate_schedule(config, steps_per_epoch=100)
    rates = {
        epoch: float(schedule(epoch * 100)) for epoch in (0, 29, 30, 50, 60, 70, 80, 89)
    }
    assert rates[0] == rates[29] == pytest.approx(0.05)
    assert rates[30] == pytest.approx(0.025)
    assert rates[50] == pytest.approx(0.0125)
    assert rates[60] == pytest.approx(0.00625)
    assert rates[70] == pytest.approx(0.003125)
    assert rates[80] == rates[89] == pytest.approx(0.0015625)
    assert float(schedule(30 * 100 - 1)) == pytest.approx(0.05)
    # The optimizer follows the schedule through its step counter.
    optimizer.iterations.assign(50 * 100)
    assert float(optimizer.learning_rate) == pytest.approx(0.0125)
    assert optimizer.momentum == pytest.approx(0.6)
    assert optimizer.l2 == pytest.approx(1e-5)
    assert config.batch_size == 128


def test_linear_lr_scaling():
    config = TrainConfig(batch_size=512, lr_scaling="linear")
    assert config.effective_learning_rate == pytest.approx(0.2)
    assert float(learning_rate_schedule(config, 10)(0)) == pytest.approx(0.2)


def test_warmup_rises_linearly_then_follows_the_schedule():
    config = TrainConfig(learning_rate=0.01, warmup_epochs=2, lr_decay_epochs=(5,))
    schedule = learning_rate_schedule(config, steps_per_epoch=10)
    rates = [float(schedule(step)) for step in range(60)]
    np.testing.assert_allclose(rates[:20], 0.01 * np.arange(1, 21) / 20, rtol=1e-5)
    np.testing.assert_allclose(rates[20:50], 0.01, rtol=1e-6)
    np.testing.assert_allclose(rates[50:], 0.005, rtol=1e-6)


def test_cosine_schedule_after_warmup():
    config = TrainConfig(
        learning_rate=0.01, warmup_epochs=1, lr_schedule="cosine", epochs=4
    )
    schedule = learning_rate_schedule(config, steps_per_epoch=10)
    steps = np.arange(10, 40)
    rates = np.array([float(schedule(step)) for step in steps])
    # Half a cosine from the rate to 0 over all 40 steps.
    np.testing.assert_allclose(
        rates, 0.005 * (1 + np.cos(np.pi * steps / 40)), rtol=1e-5, atol=1e-9
    )
    ramp = 0.5  # step 4 of a 10-step warmup: (4 + 1) / 10
    expected = ramp * 0.005 * (1 + np.cos(np.pi * 4 / 40))
    assert float(schedule(4)) == pytest.approx(expected)


def test_l2sgd_is_the_torch_update():
    # v = m * v - lr * (g + l2 * w); w += v, computed by hand.
    w0, lr, m, l2 = np.array([1.0, -2.0, 3.0]), 0.1, 0.6, 0.01
    variable = keras.Variable(w0.astype(np.float32))
    optimizer = L2SGD(learning_rate=lr, momentum=m, l2=l2)
    w, v = w0.copy(), np.zeros(3)
    for g in (np.array([0.5, 0.1, -0.2]), np.array([-0.3, 0.2, 0.4])):
        optimizer.apply([g.astype(np.float32)], [variable])
        v = m * v - lr * (g + l2 * w)
        w = w + v
        np.testing.assert_allclose(np.asarray(variable), w, rtol=1e-6)


def test_l2adam_is_adam_on_the_l2_gradient():
    # Adam (Kingma & Ba, with Keras's epsilon placement) on g + l2 * w, by hand.
    w0, lr, l2, b1, b2, eps = np.array([1.0, -2.0, 3.0]), 0.1, 0.01, 0.9, 0.999, 1e-7
    variable = keras.Variable(w0.astype(np.float32))
    optimizer = L2Adam(learning_rate=lr, l2=l2)
    w, m, v = w0.copy(), np.zeros(3), np.zeros(3)
    for t, g in enumerate((np.array([0.5, 0.1, -0.2]), np.array([-0.3, 0.2, 0.4])), 1):
        optimizer.apply([g.astype(np.float32)], [variable])
        g = g + l2 * w
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g**2
        step = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        w = w - step * m / (np.sqrt(v) + eps)
        np.testing.assert_allclose(np.asarray(variable), w, rtol=1e-5)


def test_make_optimizer_follows_the_config():
    sgd = make_optimizer(TrainConfig(momentum=0.6, weight_decay=1e-5), 10)
    adam = make_optimizer(TrainConfig(optimizer="adam", weight_decay=1e-4), 10)
    assert (type(sgd), sgd.momentum, sgd.l2) == (L2SGD, 0.6, 1e-5)
    assert (type(adam), adam.l2) == (L2Adam, 1e-4)


def test_loss_and_top_k_error_values():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 2, 3, 7)).astype(np.float32)
    labels = np.array([0, 3, 6, 2, 2, 5])
    loss = np.asarray(class_map_crossentropy(labels, logits))
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.mean(log_probs[np.arange(6), :, :, labels], axis=(1, 2))
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    # Label smoothing 0.2: the target is 0.8 on the label + 0.2 / 7 on each class.
    smooth = np.asarray(ClassMapCrossentropy(0.2)(labels, logits))
    uniform = -np.mean(log_probs, axis=(1, 2, 3))
    expected_smooth = np.mean(0.8 * expected + 0.2 * uniform)
    assert smooth == pytest.approx(expected_smooth, rel=1e-5)
    scores = logits.max(axis=(1, 2))
    ranks = (scores > scores[np.arange(6), labels][:, None]).sum(1)
    for k in (1, 5):
        metric = TopKError(k)
        metric.update_state(labels, logits)
        assert float(metric.result()) == pytest.approx(100 * np.mean(ranks >= k))


def test_global_batch_must_split_over_replicas():
    class TwoReplicas:
        num_replicas_in_sync = 2

    assert check_global_batch(8, TwoReplicas()) == 4
    with pytest.raises(ValueError, match="divisible by the 2 replicas.*batch_size=7"):
        check_global_batch(7, TwoReplicas())


@pytest.mark.slow
def test_training_learns_and_mirrored_equals_one_device(data_dir, tmp_path):
    # XLA cannot run over CPU replicas, so compare both without it. A random
    # class layer starts far above chance loss, so 6 steps surely lower it (a
    # zero one starts at log C, where 6 steps of a tiny model may not).
    common = [
        "train.epochs=2",
        "train.steps_per_epoch=3",
        "train.jit_compile=false",
        "model.class_initializer=he_normal",
    ]
    one = train_in_subprocess(tmp_path / "one", data_dir, *common, logical_cpus=2)
    two = train_in_subprocess(
        tmp_path / "two", data_dir, *common, "train.strategy=mirrored", logical_cpus=2
    )
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert one["iterations"] == two["iterations"] == 6
    assert one["loss_after"] < one["loss_before"]
    # Two half-batch gradients summed by the all-reduce round differently
    # from one full batch, and training grows that with every step. The
    # momentum slots hold the last gradients, small sums with cancellation,
    # where that rounding is relatively larger (up to 0.75 % here); a wrong
    # all-reduce (a gradient doubled or halved) would be off by 50-100 %.
    assert_same_weights(
        tmp_path / "one", tmp_path / "two", rtol=2e-3, optimizer_rtol=2e-2
    )


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(data_dir, tmp_path):
    # Checkpoints every 3 steps of 4-step epochs: the kill lands mid-epoch.
    common = [
        "train.epochs=3",
        "train.steps_per_epoch=4",
        "train.checkpoint_every_steps=3",
    ]
    reference = train_in_subprocess(tmp_path / "reference", data_dir, *common)

    out = tmp_path / "killed"
    process = train_in_subprocess(out, data_dir, *common, wait=False)
    marker = out / "run" / "checkpoints" / "ckpt-6.index"
    deadline = time.time() + 300
    while not marker.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL, "the run ended before it was killed"

    resumed = train_in_subprocess(out, data_dir, *common)
    assert resumed["initial_epoch"] >= 1 and resumed["iterations"] == 12
    assert reference["epochs_run"] == 3 and reference["iterations"] == 12
    assert_same_weights(tmp_path / "reference", out, rtol=1e-4)

    # TensorBoard: scalars, histograms and captioned validation images.
    tags = set()
    for event_file in (tmp_path / "reference" / "run" / "tensorboard").rglob(
        "events.out.*"
    ):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            tags.update(value.tag for value in event.summary.value)
    for tag in (
        "epoch_loss",
        "epoch_top1_error",
        "epoch_top5_error",
        "epoch_learning_rate",
    ):
        assert tag in tags, sorted(tags)
    assert any(tag.startswith("conv1/") for tag in tags), sorted(tags)  # histograms
    assert "predictions" in tags


# The callbacks behave the same under model.fit and the distributed loop.
LOOPS = pytest.mark.parametrize("loop", ["fit", "custom"])


@pytest.mark.slow
@LOOPS
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(data_dir, tmp_path, loop):
    overrides = [
        f"data.data_dir={data_dir}",
        f"output_dir={tmp_path}",
        "train.learning_rate=1.0e+4",
        "train.checkpoint_every_steps=1",
        "train.image_summaries=0",
        f"train.loop={loop}",
    ]
    run = prepare(load_config("tiny", overrides))
    with pytest.raises(NaNLossError, match="last good checkpoint is .*ckpt-"):
        run.fit(verbose=0)
    latest = run.checkpoint_manager.latest_checkpoint
    reader = tf.train.load_checkpoint(latest)
    for name in reader.get_variable_to_shape_map():
        value = reader.get_tensor(name)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            assert np.isfinite(value).all(), name


def test_validation_split_on_another_label_map_is_refused(tmp_path):
    # A COCO validation file without the training file's "ant": "zebra"
    # would be label 0 in validation and label 1 in training.
    from overfeat_tf.config import DataConfig, ExperimentConfig
    from overfeat_tf.training import task

    for split, categories in [("train", ["ant", "zebra"]), ("val", ["zebra"])]:
        (tmp_path / "images" / split).mkdir(parents=True)
        entries = [{"id": i + 1, "name": name} for i, name in enumerate(categories)]
        (tmp_path / f"instances_{split}.json").write_text(
            json.dumps({"images": [], "categories": entries})
        )
    config = ExperimentConfig(
        task="detect",
        data=DataConfig(source=str(tmp_path), train_split="train"),
    )
    with pytest.raises(ValueError, match=r"'train' has \('ant', 'zebra'\)"):
        task.load_train_and_validation(config)


@pytest.mark.slow
@LOOPS
def test_weight_average_is_what_validation_and_the_end_of_fit_use(
    data_dir, tmp_path, loop
):
    # train.ema_momentum: after fit the model holds the average of the raw
    # weights after each step (a_1 = w_1, a_k = m a_(k-1) + (1 - m) w_k, by
    # hand from a callback), and validation scores the average too.
    momentum = 0.5
    config = load_config(
        "tiny",
        [
            f"data.data_dir={data_dir}",
            f"output_dir={tmp_path}",
            *TINY,
            "train.epochs=1",
            "train.steps_per_epoch=3",
            "train.validation_steps=1",
            f"train.ema_momentum={momentum}",
            f"train.loop={loop}",
        ],
    )
    run = prepare(config)
    assert run.model.optimizer.use_ema
    raw, validated = [], []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raw.append([np.array(w) for w in run.model.trainable_weights])

        def on_test_begin(self, logs=None):
            validated.append([np.array(w) for w in run.model.trainable_weights])

    run.callbacks.append(Record())
    run.fit(verbose=0)
    average = raw[0]
    for step in raw[1:]:
        average = [momentum * a + (1 - momentum) * w for a, w in zip(average, step)]
    final = [np.array(w) for w in run.model.trainable_weights]
    assert len(raw) == 3 and len(validated) == 1
    for got, seen, expected, last in zip(final, validated[0], average, raw[-1]):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(seen, expected, rtol=1e-5, atol=1e-7)
    assert any(not np.allclose(a, w) for a, w in zip(average, raw[-1]))


@pytest.mark.slow
def test_a_run_with_batch_normalization_resumes(data_dir, tmp_path):
    # Its moving statistics are non-trainable and move in training: resuming
    # must not take them for a frozen backbone that changed.
    def config(epochs):
        return load_config(
            "tiny",
            [
                f"data.data_dir={data_dir}",
                f"output_dir={tmp_path}",
                *TINY,
                "model.normalization=batch",
                "train.steps_per_epoch=2",
                "train.image_summaries=0",
                f"train.epochs={epochs}",
            ],
        )

    first = prepare(config(1))
    first.fit(verbose=0)
    statistics = first.model.get_layer("conv1_bn").moving_mean.numpy()
    assert np.abs(statistics).max() > 0  # training moved them
    resumed = prepare(config(2))
    assert resumed.initial_epoch == 1
    np.testing.assert_array_equal(
        resumed.model.get_layer("conv1_bn").moving_mean.numpy(), statistics
    )
