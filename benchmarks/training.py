"""Training throughput of a recipe's model on this machine, fp32 vs bf16.

Runs the compiled training step of the recipe's model (its optimizer, loss,
metrics and XLA setting) on one fixed batch of random window-sized images,
in float32 and in mixed bfloat16, side by side in one run, and prints
images/s and the ratio. The input pipeline is measured separately
(`benchmarks/input_pipeline.py`).

    python benchmarks/training.py                       # shapes_accurate, ~2 minutes
    python benchmarks/training.py --config shapes_fast --steps 10
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from overfeat_tf.config import load_config  # noqa: E402
from overfeat_tf.training import experiment, recipe  # noqa: E402


def images_per_second(config, precision, steps):
    config = load_config(config, [f"train.mixed_precision={precision}"])
    keras.utils.set_random_seed(config.seed)
    model = experiment.build_model(config, class_names=[str(i) for i in range(10)])
    model.compile(
        optimizer=recipe.make_optimizer(config.train, steps_per_epoch=100),
        loss={"class_logits": recipe.class_map_crossentropy},
        metrics={"class_logits": [recipe.TopKError(1), recipe.TopKError(5)]},
        jit_compile=config.train.jit_compile,
    )
    batch, window = config.train.batch_size, model.geometry.window
    rng = np.random.default_rng(0)
    images = rng.normal(size=(batch, window, window, 3)).astype(np.float32)
    labels = rng.integers(0, 10, batch)
    for _ in range(2):  # compile
        model.train_on_batch(images, labels)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, labels)
    return steps * batch / (time.perf_counter() - start), config


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="shapes_accurate")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    fp32, config = images_per_second(args.config, "float32", args.steps)
    bf16, _ = images_per_second(args.config, "mixed_bfloat16", args.steps)
    print(
        f"{args.config}: {config.model.network} width {config.model.width}, "
        f"batch {config.train.batch_size}, XLA {config.train.jit_compile}, "
        f"{os.cpu_count()} cores"
    )
    print("| precision | images/s |\n|---|---|")
    print(f"| float32 | {fp32:.1f} |\n| mixed_bfloat16 | {bf16:.1f} |")
    print(f"mixed_bfloat16 / float32: {bf16 / fp32:.2f}x")


if __name__ == "__main__":
    main()
