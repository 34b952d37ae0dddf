"""TFLite files on this machine: size, LiteRT latency, agreement.

1. The full-size fast network (random weights, 1000 classes) at 231 px,
   one window: file size of each quantization and its LiteRT latency (2
   threads, median of `--repeats`), beside Keras fp32 at batch 1 in the
   same run (a plain `tf.function`, and XLA).
2. The same network's whole 6-scale classification pipeline (scales 256 to
   482, flips) in one file, input 256 x 256: sizes and latencies beside
   the Keras pipeline (`Classifier`) in the same run.
3. With `--model RUN --config NAME`: the trained model's files against
   the float32 model on the recipe's test split: the dense file at one
   scale (smallest side = `data.smallest_side`, the whole image; a
   classifier), and the pipeline file at `--pipeline-scales` (images
   resized to the smallest scale, square): top-1 agreement and, for
   localizers and detectors, how many boxes match (IoU >= 0.5, same
   class) and their mean IoU. int8 pipelines of box models end before the
   merge (`postprocess` finishes them).

    python benchmarks/tflite.py                      # ~12 minutes on 2 cores
    python benchmarks/tflite.py --skip-speed \
        --model runs/shapes_fast --config shapes_fast  # ~8 minutes
    python benchmarks/tflite.py --skip-speed \
        --model runs/shapes_fast_detect --config shapes_fast_detect
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import overfeat_tf as of  # noqa: E402
from overfeat_tf.config import load_config  # noqa: E402
from overfeat_tf.data import readers  # noqa: E402
from overfeat_tf.data.shapes import render  # noqa: E402
from overfeat_tf.export import tflite  # noqa: E402
from overfeat_tf.inference import Classifier, paper_scales  # noqa: E402
from overfeat_tf.preprocessing import resize_smallest_side  # noqa: E402
from overfeat_tf.serving import runner_for  # noqa: E402


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
    rows += _litert_rows(
        lambda q: tflite.convert(model, q, representative=representative),
        image,
        repeats,
    )
    print(
        f"fast network, width 1, 1000 classes, one {window} px window, batch 1, "
        f"{os.cpu_count()} cores, LiteRT 2 threads, median of {repeats}\n"
    )
    _table(rows, float_row=2)


def pipeline_speed(repeats):
    model = of.overfeat_fast(1000)
    runner = Classifier(model, flips=True)  # the six paper scales
    scales = runner.settings.scales
    size = (min(scales),) * 2
    image = np.random.default_rng(0).uniform(0, 255, (1, *size, 3)).astype(np.float32)
    rows = [
        (
            "Keras fp32 (Classifier)",
            None,
            median_ms(lambda: runner.serve(image)["probabilities"].numpy(), repeats),
        )
    ]
    representative = [
        render(0, "train", i, height=size[0], width=size[1]).image for i in range(8)
    ]
    rows += _litert_rows(
        lambda q: tflite.convert_pipeline(
            runner, size, q, representative=representative
        ),
        image,
        repeats,
    )
    print(
        f"\nfast network, whole classification pipeline in one file: scales "
        f"{', '.join(map(str, scales))}, flips, input {size[0]}x{size[1]}, "
        f"batch 1, LiteRT 2 threads, median of {repeats}\n"
    )
    _table(rows, float_row=1)


def _litert_rows(convert, image, repeats):
    """(name, file size, median ms) of `convert(quantize)` for each
    quantization, on LiteRT with 2 threads."""
    rows = []
    for quantize in tflite.QUANTIZATIONS:
        content = convert(quantize)
        interpreter, signature = tflite.interpreter_for(content, image.shape)
        pixels = signature["inputs"]["pixels"]

        def invoke():
            interpreter.set_tensor(pixels, image)
            interpreter.invoke()

        rows.append((f"LiteRT {quantize}", len(content), median_ms(invoke, repeats)))
    return rows


def _table(rows, float_row):
    keras_ms = rows[0][2]
    float_size = rows[float_row][1]
    print("| runtime | file (MiB) | size / float32 | ms | Keras fp32 / this |")
    print("|---|---|---|---|---|")
    for name, size, ms in rows:
        mib = "" if size is None else f"{size / 2**20:.1f}"
        share = "" if size is None else f"{size / float_size:.1%}"
        print(f"| {name} | {mib} | {share} | {ms:.1f} | {keras_ms / ms:.2f}x |")


def pipeline_agreement(run, config_name, limit, scales):
    config = load_config(config_name)
    model = of.load_model(run)
    task = model.task
    options = dict(scales=paper_scales(model.geometry, scales), flips=True)
    if task != "classify":
        options.update(jit_compile=False, max_candidates=1024)
    runner = runner_for(model, task, config, **options)
    sizes = runner.settings.scales
    size = (min(sizes),) * 2
    read = readers.load_classification if task == "classify" else readers.load_detection
    data = read(
        config.data.source, config.data.test_split, data_dir=config.data.data_dir
    )
    images = [e["image"].numpy() for e in data.dataset.take(limit)]
    representative = tflite.representative_images(config)
    print(
        f"\n{run} ({task}), whole pipeline at scales "
        f"{', '.join(map(str, sizes))} with flips, input {size[0]}x{size[1]}, "
        f"on {len(images)} test images of {config.data.source}, against float32 "
        "in-process\n"
    )
    print(
        "| quantization | merge in file | file (MiB) | top-1 agreement "
        "| boxes matched | mean IoU of matched |\n|---|---|---|---|---|---|"
    )
    for quantize in tflite.QUANTIZATIONS:
        merge = not (quantize == "int8" and task != "classify")
        content = tflite.convert_pipeline(
            runner, size, quantize, representative=representative, merge=merge
        )
        row = tflite.verify_pipeline(content, runner, images, size, merge)
        boxes = (
            f"{row['matched']:.1%} of {row['boxes']} | {row['mean_iou']:.3f}"
            if "boxes" in row
            else "| "
        )
        print(
            f"| {quantize} | {'yes' if merge else 'no (postprocess)'} "
            f"| {len(content) / 2**20:.1f} | {row['top1_agreement']:.1%} | {boxes} |"
        )


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
    parser.add_argument(
        "--pipeline-limit", type=int, default=100, help="test images for pipelines"
    )
    parser.add_argument(
        "--pipeline-scales",
        default="1,2,3,4,5,6",
        help="Table 5 scale numbers of the pipeline files (default all six)",
    )
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    if not args.skip_speed:
        speed(args.repeats)
        pipeline_speed(max(3, args.repeats // 3))
    if args.model:
        scales = [int(v) for v in args.pipeline_scales.split(",")]
        if of.load_model(args.model).task == "classify":
            agreement(args.model, args.config, args.limit)
        pipeline_agreement(args.model, args.config, args.pipeline_limit, scales)


if __name__ == "__main__":
    main()
