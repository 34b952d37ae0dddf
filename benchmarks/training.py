"""Training throughput of a recipe on this machine: fp32 vs bf16, with and
without XLA, and the cost of batch normalization.

Runs the compiled training step of the recipe's task (its model, optimizer,
loss and metrics) on one fixed batch from the recipe's own training
pipeline, in float32 and in mixed bfloat16, each with and without XLA
(`train.jit_compile`), then with batch normalization (`model.normalization`,
under the recipe's XLA setting), side by side in one run, and prints
images/s, the ratios and the machine's AMX flags (bf16 is fast only with
AMX); then the input pipeline alone
(augmentation and, for detection, the window labels), in images/s, which
bounds `model.fit` from the other side.

    python benchmarks/training.py                       # shapes_accurate, ~2 minutes
    python benchmarks/training.py --config shapes_fast --steps 10
    python benchmarks/training.py --config shapes_fast_detect detect.backbone=null

`key=value` overrides apply to the recipe (`detect.backbone=null`: the same
network from scratch, so that no trained classifier is needed).
"""

import argparse
import itertools
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from overfeat_tf.config import load_config  # noqa: E402
from overfeat_tf.training import experiment  # noqa: E402

PRECISIONS = ("float32", "mixed_bfloat16")


def images_per_second(name, overrides, precision, steps):
    config = load_config(name, [*overrides, f"train.mixed_precision={precision}"])
    keras.utils.set_random_seed(config.seed)
    parts = experiment.task_parts(config)
    model, _ = parts.build(100, tf.distribute.get_strategy())
    batch_size = config.train.batch_size
    images, targets = next(iter(parts.train_batches(batch_size, config.seed)))
    for _ in range(2):  # compile
        model.train_on_batch(images, targets)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, targets)
    return steps * batch_size / (time.perf_counter() - start), config, parts


def pipeline_images_per_second(parts, batch_size, steps):
    batches = iter(parts.train_batches(batch_size, 0))
    next(batches)
    start = time.perf_counter()
    pulled = sum(1 for _ in itertools.islice(batches, steps))
    return pulled * batch_size / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="shapes_accurate")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("overrides", nargs="*", help="key=value recipe overrides")
    args = parser.parse_args()
    recipe = load_config(args.config, args.overrides).train.jit_compile
    rows = [
        (xla, precision, "none") for xla in (True, False) for precision in PRECISIONS
    ]
    rows += [(recipe, precision, "batch") for precision in PRECISIONS]
    rates = {}
    for xla, precision, normalization in rows:
        overrides = [
            *args.overrides,
            f"model.normalization={normalization}",
            f"train.jit_compile={str(xla).lower()}",
        ]
        rates[xla, precision, normalization], config, parts = images_per_second(
            args.config, overrides, precision, args.steps
        )
    pipeline = pipeline_images_per_second(parts, config.train.batch_size, args.steps)
    cpuinfo = Path("/proc/cpuinfo")
    flags = set(cpuinfo.read_text().split()) if cpuinfo.exists() else set()
    amx = ", ".join(sorted(f for f in flags if f.startswith("amx"))) or "none"
    print(
        f"{args.config} ({config.task}): {config.model.network} width "
        f"{config.model.width}, batch {config.train.batch_size}, recipe's XLA "
        f"{recipe}, {os.cpu_count()} cores, AMX: {amx}"
    )
    print("| XLA | precision | normalization | images/s |\n|---|---|---|---|")
    for (xla, precision, normalization), rate in rates.items():
        print(f"| {xla} | {precision} | {normalization} | {rate:.1f} |")
    for precision in PRECISIONS:
        ratio = rates[True, precision, "none"] / rates[False, precision, "none"]
        print(f"XLA / no XLA ({precision}): {ratio:.2f}x")
    for xla in (True, False):
        ratio = rates[xla, PRECISIONS[1], "none"] / rates[xla, PRECISIONS[0], "none"]
        print(f"mixed_bfloat16 / float32 (XLA {xla}): {ratio:.2f}x")
    for precision in PRECISIONS:
        ratio = rates[recipe, precision, "batch"] / rates[recipe, precision, "none"]
        print(f"batch / no normalization ({precision}): {ratio:.2f}x")
    print(f"input pipeline alone: {pipeline:.1f} images/s")


if __name__ == "__main__":
    main()
