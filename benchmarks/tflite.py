"""TFLite files on this machine: size, LiteRT latency, agreement.

1. The full-size fast network (random weights, 1000 classes) at 231 px,
   one window: file size of each quantization and its LiteRT latency (2
   threads, median of `--repeats`), beside Keras fp32 at batch 1 in the
   same run (a plain `tf.function`, and XLA).
2. With `--model RUN --config NAME`: the trained model's files against
   Keras float32 on the recipe's test split at one scale (smallest side
   = `data.smallest_side`, the whole image): the share of images whose
   top-1 class agrees.

    python benchmarks/tflite.py                      # ~6 minutes on 2 cores
    python benchmarks/tflite.py --skip-speed \
        --model runs/shapes_fast --config shapes_fast  # 1 minute
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from overfeat_tf.export import tflite  # noqa: E402

import overfeat_tf as of  # noqa: E402
from overfeat_tf.config import load_config  # noqa: E402
from overfeat_tf.data import readers  # noqa: E402
from overfeat_tf.data.pipelines import resize_smallest_side  # noqa: E402
from overfeat_tf.data.shapes import render  # noqa: E402


def median_ms(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def speed(repeats):
    model = of.overfeat_fast(1000)
    window = model.geometry.window
    image = np.random.default_rng(0).uniform(0, 255, (1, window, window, 3))
    image = image.astype(np.float32)
    app = tflite.app_model(model)
    rows = []
    for jit in (False, True):
        keras_run = tf.function(
            lambda x: app(x)["class_probabilities"], jit_compile=jit
        )
        name = "Keras fp32, XLA" if jit else "Keras fp32"
        rows.append((name, None, median_ms(lambda: keras_run(image).numpy(), repeats)))
    representative = [
        render(0, "train", i, height=window, width=window).image for i in range(20)
    ]
    for quantize in tflite.QUANTIZATIONS:
        content = tflite.convert(model, quantize, representative=representative)
        interpreter, signature = tflite.interpreter_for(content, image.shape)
        pixels = signature["inputs"]["pixels"]

        def invoke():
            interpreter.set_tensor(pixels, image)
            interpreter.invoke()

        rows.append((f"LiteRT {quantize}", len(content), median_ms(invoke, repeats)))
    keras_ms = rows[0][2]
    float_size = rows[2][1]
    print(
        f"fast network, width 1, 1000 classes, one {window} px window, batch 1, "
        f"{os.cpu_count()} cores, LiteRT 2 threads, median of {repeats}\n"
    )
    print("| runtime | file (MiB) | size / float32 | ms | Keras fp32 / this |")
    print("|---|---|---|---|---|")
    for name, size, ms in rows:
        mib = "" if size is None else f"{size / 2**20:.1f}"
        share = "" if size is None else f"{size / float_size:.1%}"
        print(f"| {name} | {mib} | {share} | {ms:.1f} | {keras_ms / ms:.2f}x |")


def agreement(run, config_name, limit):
    config = load_config(config_name)
    model = of.load_model(run)
    data = readers.load_classification(
        config.data.source, config.data.test_split, data_dir=config.data.data_dir
    )
    images = [
        resize_smallest_side(e["image"], config.data.smallest_side).numpy()
        for e in data.dataset.take(limit)
    ]
    batches = tflite.representative_images(config)
    want = tflite.top1_classes(
        [
            {k: v.numpy()[0] for k, v in tflite.app_model(model)(i[None]).items()}
            for i in images
        ]
    )
    print(
        f"\n{run} on {len(images)} test images of {config.data.source} "
        f"(one scale, whole image, fine stride): top-1 agreement with Keras float32\n"
    )
    print("| quantization | file (MiB) | agreement |\n|---|---|---|")
    for quantize in tflite.QUANTIZATIONS:
        content = tflite.convert(model, quantize, representative=batches)
        got = tflite.top1_classes(tflite.run_tflite(content, images))
        same = int(np.sum(got == want))
        print(
            f"| {quantize} | {len(content) / 2**20:.1f} | {same}/{len(images)} "
            f"= {same / len(images):.1%} |"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--model", help="a trained run for the agreement table")
    parser.add_argument("--config", help="its recipe (data, calibration)")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    if not args.skip_speed:
        speed(args.repeats)
    if args.model:
        agreement(args.model, args.config, args.limit)


if __name__ == "__main__":
    main()
