"""Localization and detection latency of the full-size networks here.

For the accurate (and fast) network at width 1 with a single-class box
regressor (random weights; the regressor's output layer drawn small so that
boxes stay near their windows and merge as trained ones do), on one 375x500
image, 6 scales, flips, fine stride: ms per image through the whole graph;
the network alone (both heads' dense passes on pre-resized inputs); the
greedy merge alone on the graph's own candidate boxes; and the share of the
time spent outside the convolutions (total minus network, over total).

- `--task localize` (default): `Localizer`, 1000 classes, top-5 per scale.
- `--task detect`: `Detector`, 200 object classes (ILSVRC detection's) and
  background; the class layer is drawn sharp (std `--sharpness` / sqrt(fan
  in)) so that most windows name a class or two above `min_window_score`:
  a busy image, the merge's hard case. The table gives how many boxes that
  made.

    python benchmarks/localization.py                 # ~3 minutes on 2 cores
    python benchmarks/localization.py --network fast --repeats 2
    python benchmarks/localization.py --task detect --network both
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from inference import BUILDERS, IMAGE  # noqa: E402
from speed import median_seconds  # noqa: E402

import overfeat_tf as of  # noqa: E402
from overfeat_tf.detector import Detector  # noqa: E402
from overfeat_tf.inference import paper_scales  # noqa: E402
from overfeat_tf.localizer import Localizer  # noqa: E402
from overfeat_tf.merge import greedy_merge  # noqa: E402
from overfeat_tf.preprocessing import (  # noqa: E402
    normalize,
    resize,
    smallest_side_shape,
)


def network_alone(model, image, scales):
    """Both heads' dense passes (fine, flips) on pre-resized inputs."""
    net = of.dense(model, "fine")
    inputs = []
    for size in scales:
        x = normalize(resize(image, *smallest_side_shape(*IMAGE, size)))
        inputs.append(tf.concat([x, tf.reverse(x, [2])], 0))

    @tf.function
    def run():
        return [net(x, training=False) for x in inputs]

    return lambda: run()[-1]["boxes"]


def build(network, task, classes, sharpness, rng):
    """The random-weight model and its graph (image -> padded dict)."""
    model = of.with_regressor(BUILDERS[network](classes))
    if task == "detect":
        model = of.with_background(model)
        layer = model.get_layer(model.spec.fc_names[-1])
        kernel, bias = layer.get_weights()
        fan_in = np.prod(kernel.shape[:-1])
        std = sharpness / np.sqrt(fan_in)
        layer.set_weights([std * rng.normal(size=kernel.shape), bias])
    layer = model.get_layer(model.spec.regressor_names[-1])
    layer.set_weights([0.05 * rng.normal(size=w.shape) for w in layer.weights])
    scales = paper_scales(model.geometry)
    runner = (Detector if task == "detect" else Localizer)(model, scales=scales)
    return model, runner


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=("localize", "detect"), default="localize")
    parser.add_argument(
        "--network", choices=("fast", "accurate", "both"), default="accurate"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sharpness", type=float, default=4.0)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    image = tf.constant(rng.integers(0, 256, (1, *IMAGE, 3)), tf.float32)
    classes = 200 if args.task == "detect" else 1000
    print(f"{os.cpu_count()} cores; {args.task}; one {IMAGE[0]}x{IMAGE[1]} image, ")
    print(f"width 1, {classes} classes, 6 scales, flips, fine stride, fp32\n")
    print("| network | boxes merged | total ms | network ms | merge ms | outside |")
    print("|---|---|---|---|---|---|")
    networks = ("fast", "accurate") if args.network == "both" else (args.network,)
    for network in networks:
        model, runner = build(network, args.task, classes, args.sharpness, rng)
        total = median_seconds(
            lambda: runner.serve(image)["boxes"], repeats=args.repeats
        )
        alone = median_seconds(
            network_alone(model, image, runner.settings.scales), repeats=args.repeats
        )
        # The merge's input: every window scoring >= the runner's floor.
        boxes, scores, classes_, keep = (x[0] for x in runner.search.candidates(image))
        boxes, scores, classes_ = (
            tf.boolean_mask(x, keep) for x in (boxes, scores, classes_)
        )
        threshold = runner.settings.merge_threshold
        merge = tf.function(lambda b, s, c: greedy_merge(b, s, c, threshold))
        merge_time = median_seconds(
            lambda: merge(boxes, scores, classes_)["boxes"], repeats=args.repeats
        )
        share = max(0.0, 1 - alone / total)
        print(
            f"| {network} | {len(scores)} | {1000 * total:.0f} | {1000 * alone:.0f} "
            f"| {1000 * merge_time:.0f} | {share:.1%} |"
        )


if __name__ == "__main__":
    main()
