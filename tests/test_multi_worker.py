"""Multi-worker training: two worker processes on 127.0.0.1.

The reference for every comparison is one process training the same
recipe with `model.fit` on the same global batch and data; each worker
has one CPU replica (half of each batch), so the two-worker run must end
where `model.fit` does, and the workers must hold the same weights.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from overfeat_tf.training import cluster
from tests.test_training import ROOT, SCRIPT, TINY, weights

# Minutes: run with --run-slow (see conftest.py).
pytestmark = pytest.mark.slow

# 3 epochs of 3 steps of 8 images (4 per worker), a checkpoint every 2 steps
# (so that one lands mid-epoch), one validation batch, batch normalization
# (its moments are the global batch's on any number of replicas). No XLA: it
# cannot compile a step over CPU replicas, and fit must run the same program.
RECIPE = [
    *TINY,
    "model.normalization=batch",
    "train.epochs=3",
    "train.steps_per_epoch=3",
    "train.checkpoint_every_steps=2",
    "train.jit_compile=false",
]
TIMEOUT = 300  # seconds for one run of a test's processes


def assert_weights_match(a, b):
    """The model's weights within 1e-5 of their layer's scale (a BN offset
    near 0 is measured against its layer's scale of 1); the optimizer's
    momentum (the last gradients: small sums that cancel, where rounding
    weighs more) within 10 % of its own. The two runs round differently:
    half-batch gradients summed over workers, and synchronized BN moments
    as E[x^2] - E[x]^2 over the replicas. A gradient counted twice or
    halved would be off by 50-100 %."""
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys() and len(wa) > 10
    layers = {name.rsplit("/vars/", 1)[0] for name in wa if name.startswith("layers/")}
    for layer in layers:
        names = [name for name in wa if name.startswith(layer + "/vars/")]
        scale = max(np.abs(wa[name]).max() for name in names)
        difference = max(np.abs(wa[name] - wb[name]).max() for name in names)
        assert difference <= 1e-5 * scale, (layer, difference, scale)
    for name in wa:
        if name.startswith("optimizer/"):
            scale = max(np.abs(wa[name]).max(), 1e-12)
            assert np.abs(wa[name] - wb[name]).max() <= 0.1 * scale, name


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tf_config(ports, index):
    return cluster.tf_config_for(",".join(f"127.0.0.1:{p}" for p in ports), index)


def start(command, env=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def script(out, data_dir, *overrides):
    return [
        sys.executable,
        str(SCRIPT),
        str(out),
        f"data.data_dir={data_dir}",
        *RECIPE,
        *overrides,
    ]


def workers(out, data_dir, ports, *overrides, per_worker=None):
    """Starts one `train_and_save.py` process per port; `out/w{i}` gets its
    final state, `out/run` is the run folder (shared, as on NFS)."""
    processes = []
    for i in range(len(ports)):
        extra = (per_worker or {}).get(i, [])
        command = script(
            Path(out) / f"w{i}",
            data_dir,
            f"output_dir={out}/run",
            "train.strategy=multi_worker",
            *overrides,
            *extra,
        )
        processes.append(start(command, {"TF_CONFIG": tf_config(ports, i)}))
    return processes


def finish(processes, ok=True):
    """The processes' outputs; a process still running after TIMEOUT (a hung
    collective) fails the test, and none is left behind."""
    try:
        outputs = [p.communicate(timeout=TIMEOUT)[0] for p in processes]
    except subprocess.TimeoutExpired:
        for p in processes:
            p.kill()
        pytest.fail(f"a worker was still running after {TIMEOUT} s")
    if ok:
        for p, output in zip(processes, outputs):
            assert p.returncode == 0, output[-3000:]
    return outputs


def state(out):
    return json.loads((Path(out) / "state.json").read_text())


def history_epochs(run):
    lines = (Path(run) / "history.csv").read_text().splitlines()[1:]
    return [int(line.split(",")[0]) for line in lines]


@pytest.fixture(scope="module")
def reference(data_dir, tmp_path_factory):
    """One process, model.fit, the default strategy."""
    out = tmp_path_factory.mktemp("one_process")
    process = start(script(out, data_dir, f"output_dir={out}/run"))
    finish([process])
    return out


@pytest.fixture(scope="module")
def two_workers(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("two_workers")
    finish(workers(out, data_dir, free_ports(2)))
    return out


def test_two_workers_end_where_model_fit_ends(reference, two_workers):
    a, b = weights(two_workers / "w0"), weights(two_workers / "w1")
    assert all(np.array_equal(a[name], b[name]) for name in a)  # exactly
    assert_weights_match(reference, two_workers / "w0")
    one, chief = state(reference), state(two_workers / "w0")
    assert one["iterations"] == chief["iterations"] == 9
    assert (chief["is_chief"], state(two_workers / "w1")["is_chief"]) == (True, False)


def test_the_chief_logs_what_model_fit_logs(reference, two_workers):
    one, chief = state(reference)["history"], state(two_workers / "w0")["history"]
    assert one.keys() == chief.keys() and "val_loss" in one and "top1_error" in one
    for name in one:
        np.testing.assert_allclose(chief[name], one[name], rtol=1e-5, err_msg=name)
    # The run's files come from the chief alone, as under fit.
    run = two_workers / "run"
    assert history_epochs(run) == history_epochs(reference / "run") == [0, 1, 2]
    assert sorted(p.name for p in run.iterdir()) == sorted(
        p.name for p in (reference / "run").iterdir()
    )


def test_the_chiefs_model_file_predicts_what_it_trained(two_workers):
    # This process is not the one that trained: the file alone must do.
    from overfeat_tf.saving import load_model

    model = load_model(two_workers / "run" / "model.keras")
    probe = np.sin(np.arange(2 * 231 * 231 * 3, dtype=np.float32) / 997.0)
    logits = model(probe.reshape(2, 231, 231, 3), training=False)["class_logits"]
    expected = state(two_workers / "w0")["probe_logits"]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(logits).ravel(), expected, rtol=1e-5, atol=1e-6
    )


def test_a_killed_worker_resumes_to_the_uninterrupted_weights(
    reference, data_dir, tmp_path
):
    ports = free_ports(2)
    processes = workers(tmp_path, data_dir, ports)
    marker = tmp_path / "run" / "checkpoints" / "ckpt-4.index"  # mid-epoch 2
    deadline = time.time() + TIMEOUT
    while not marker.exists() and processes[1].poll() is None:
        assert time.time() < deadline
        time.sleep(0.02)
    processes[1].send_signal(signal.SIGKILL)
    # The survivor stops with one line saying what to do, and does not hang.
    survivor = finish(processes, ok=False)[0]
    assert processes[1].returncode == -signal.SIGKILL, "it ended before the kill"
    assert processes[0].returncode != 0
    assert "Another worker stopped answering" in survivor, survivor[-2000:]

    finish(workers(tmp_path, data_dir, ports))
    resumed = state(tmp_path / "w0")
    assert resumed["initial_epoch"] >= 1 and resumed["iterations"] == 9
    assert_weights_match(reference, tmp_path / "w0")
    assert history_epochs(tmp_path / "run") == [0, 1, 2]


def test_a_worker_with_another_config_is_refused_before_training(data_dir, tmp_path):
    processes = workers(
        tmp_path,
        data_dir,
        free_ports(2),
        per_worker={1: ["train.learning_rate=0.003"]},
    )
    outputs = finish(processes, ok=False)
    for process, output in zip(processes, outputs):
        assert process.returncode != 0
        assert (
            "differs from this worker's" in output and "train.learning_rate" in output
        )
        assert "Epoch 1" not in output
    assert not (tmp_path / "run" / "checkpoints").exists()


def overfeat_train(output_dir, data_dir, ports, index, *overrides):
    """`overfeat train --worker-hosts ... --task-index index`, started."""
    hosts = ",".join(f"127.0.0.1:{port}" for port in ports)
    command = [sys.executable, "-m", "overfeat_cli", "train", "--config", "tiny"]
    command += ["--output-dir", str(output_dir), "--worker-hosts", hosts]
    command += ["--task-index", str(index), f"data.data_dir={data_dir}", *overrides]
    return start(command, {"TF_CONFIG": ""})


def test_overfeat_train_with_worker_hosts_on_loopback(data_dir, tmp_path):
    ports = free_ports(2)
    overrides = ["train.epochs=1", "train.jit_compile=false", "train.image_summaries=2"]
    processes = [
        overfeat_train(tmp_path / "run", data_dir, ports, i, *overrides)
        for i in range(2)
    ]
    outputs = finish(processes)
    assert f"trained {tmp_path / 'run'}/model.keras" in outputs[0]
    assert history_epochs(tmp_path / "run") == [0]
    assert (tmp_path / "run" / "model.keras").exists()
    assert list((tmp_path / "run" / "tensorboard").rglob("events.out.*"))


def test_a_worker_alone_names_the_missing_address(data_dir, tmp_path):
    ports = free_ports(2)
    process = overfeat_train(tmp_path, data_dir, ports, 0, "train.worker_timeout=2")
    output = finish([process], ok=False)[0]
    assert process.returncode == 2
    error = [line for line in output.splitlines() if "error:" in line]
    assert error == [
        f"overfeat train: error: worker 1 at 127.0.0.1:{ports[1]} did not answer "
        "within 2 s (train.worker_timeout): start it with the same TF_CONFIG, "
        f"check that 127.0.0.1:{ports[1]} is reachable from worker 0 "
        f"(127.0.0.1:{ports[0]})."
    ]


# The meeting itself, in threads of this process (no TensorFlow).


def meet_all(settings, timeout=20):
    ports = free_ports(len(settings))
    errors = [None] * len(settings)

    def meet(i):
        config = cluster.read_tf_config({"TF_CONFIG": tf_config(ports, i)})
        try:
            cluster.meet(config, settings[i], timeout)
        except cluster.WorkerError as error:
            errors[i] = str(error)

    threads = [threading.Thread(target=meet, args=(i,)) for i in range(len(settings))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_workers_meet_and_name_the_keys_that_differ():
    same = {"train": {"batch_size": 8, "epochs": [1, 2]}, "seed": 0}
    assert meet_all([same, same, same]) == [None, None, None]
    other = {"train": {"batch_size": 8, "epochs": [1, 3]}, "seed": 1}
    errors = meet_all([same, other])
    assert all("at seed, train.epochs:" in error for error in errors), errors


def test_tf_config_errors_name_the_key():
    with pytest.raises(ValueError, match="needs the TF_CONFIG"):
        cluster.read_tf_config({})
    with pytest.raises(ValueError, match="must be JSON"):
        cluster.read_tf_config({"TF_CONFIG": '{"cluster": {}}'})
    with pytest.raises(ValueError, match="only 'chief' and 'worker'"):
        cluster.read_tf_config(
            {"TF_CONFIG": '{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps"}}'}
        )
    spec = {"chief": ["a:1"], "worker": ["b:2", "c:3"]}
    task = {"type": "worker", "index": 1}
    config = json.dumps({"cluster": spec, "task": task})
    found = cluster.read_tf_config({"TF_CONFIG": config})
    assert found.tasks[0] == ("chief", 0, "a:1") and found.address == "c:3"
    assert not found.is_chief and found.name == "worker 1 (c:3)"
