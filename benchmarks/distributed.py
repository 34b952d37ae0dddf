"""Training throughput of the distributed loop against `model.fit`.

Trains a recipe for two epochs of `--steps` steps in fresh processes, one
after another, and times the second epoch's training steps (the first
traces and fills the caches; validation is not counted):

- one process, `model.fit` (the recipe as `overfeat train` runs it);
- one process, the distributed loop (`train.loop=custom`): the cost of the
  loop itself, which should stay within 10 % of fit;
- one process pinned to one core, then two workers on 127.0.0.1, each
  pinned to its own core (`taskset`), the global batch split between them:
  the scaling efficiency is their images/s over twice the one-core figure.
  Both without XLA, which a step over CPU workers cannot use.

    python benchmarks/distributed.py                      # shapes_fast, ~5 minutes
    python benchmarks/distributed.py --steps 10 data.data_dir=/data/tfds

`key=value` overrides apply to the recipe. Linux only (`taskset`).
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from overfeat_tf.config import load_config
from overfeat_tf.training.cluster import tf_config_for

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
import keras
from overfeat_tf.config import load_config
from overfeat_tf.training.cluster import tf_config_for
from overfeat_tf.training import prepare

class Clock(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()
    def on_train_batch_end(self, batch, logs=None):
        self.end = time.perf_counter()

name, overrides = sys.argv[1], sys.argv[2:]
run = prepare(load_config(name, overrides))
clock = Clock()
run.callbacks.append(clock)
run.fit(verbose=0)
steps, batch = run.steps_per_epoch, run.config.train.batch_size
print("RESULT", json.dumps({"images_per_s": steps * batch / (clock.end - clock.start),
      "replicas": run.strategy.num_replicas_in_sync}))
"""


def measure(config, overrides, cores=None, workers=1):
    """images/s of the second epoch (the chief's clock for several workers)."""
    out = tempfile.mkdtemp(prefix="overfeat-bench-")
    ports = [_free_port() for _ in range(workers)]
    processes = []
    for index in range(workers):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-c", CHILD, config, f"output_dir={out}"]
        command += overrides
        if workers > 1:
            hosts = ",".join(f"127.0.0.1:{port}" for port in ports)
            env["TF_CONFIG"] = tf_config_for(hosts, index)
            command.append("train.strategy=multi_worker")
        if cores is not None:
            command = ["taskset", "-c", str(cores[index]), *command]
        processes.append(
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        )
    outputs = [process.communicate()[0] for process in processes]
    shutil.rmtree(out, ignore_errors=True)
    for process, output in zip(processes, outputs):
        if process.returncode:
            raise SystemExit(f"a run failed:\n{output[-3000:]}")
    line = next(x for x in outputs[0].splitlines() if x.startswith("RESULT"))
    return json.loads(line.split(" ", 1)[1])["images_per_s"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="shapes_fast")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("overrides", nargs="*", help="key=value recipe overrides")
    args = parser.parse_args()
    common = [
        *args.overrides,
        "train.epochs=2",
        f"train.steps_per_epoch={args.steps}",
        "train.validation_steps=1",
        "train.histogram_freq=0",
        "train.image_summaries=0",
    ]
    xla_off = [*common, "train.jit_compile=false"]
    config = load_config(args.config, common)
    xla = "on" if config.train.jit_compile else "off"
    rows = [
        ("1 process, model.fit", xla, None, 1, common),
        ("1 process, distributed loop", xla, None, 1, [*common, "train.loop=custom"]),
        ("1 process on 1 core, model.fit", "off", [0], 1, xla_off),
        ("2 workers, 1 core each", "off", [0, 1], 2, xla_off),
    ]
    rates = []
    started = time.perf_counter()
    for name, jit, cores, workers, overrides in rows:
        rates.append(measure(args.config, overrides, cores, workers))
        print(f"  {name} (XLA {jit}): {rates[-1]:.1f} images/s", flush=True)
    print(
        f"\n{args.config} (batch {config.train.batch_size}, "
        f"{config.train.mixed_precision}), {args.steps} steps timed, "
        f"{os.cpu_count()} cores, {time.perf_counter() - started:.0f} s in all\n"
    )
    print("| run | XLA | images/s | ratio |\n|---|---|---|---|")
    ratios = ["", f"{rates[1] / rates[0]:.2f} of fit", "", ""]
    ratios[3] = f"{rates[3] / (2 * rates[2]):.2f} of 2 x one core"
    for (name, jit, *_), rate, ratio in zip(rows, rates, ratios):
        print(f"| {name} | {jit} | {rate:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
