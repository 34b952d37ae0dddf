"""Localization latency of the full-size networks on this machine.

For the accurate (and fast) network at width 1 with a single-class box
regressor (random weights, 1000 classes; the regressor's output layer drawn
small so that boxes stay near their windows and merge as trained ones do),
on one 375x500 image, 6 scales, flips, fine stride, top-5 classes per
scale: ms per image through the whole `Localizer` graph; the network alone
(both heads' dense passes on pre-resized inputs); the greedy merge alone on
the graph's own candidate boxes; and the share of the time spent outside
the convolutions (total minus network, over total).

    python benchmarks/localization.py                 # ~3 minutes on 2 cores
    python benchmarks/localization.py --network fast --repeats 2
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
from overfeat_tf.data.pipelines import (  # noqa: E402
    normalize,
    resize,
    smallest_side_shape,
)
from overfeat_tf.inference import paper_scales  # noqa: E402
from overfeat_tf.localizer import Localizer  # noqa: E402
from overfeat_tf.merge import greedy_merge  # noqa: E402


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--network", choices=("fast", "accurate", "both"), default="accurate"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.6)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    image = tf.constant(rng.integers(0, 256, (1, *IMAGE, 3)), tf.float32)
    print(f"{os.cpu_count()} cores; one {IMAGE[0]}x{IMAGE[1]} image, width 1, ")
    print("1000 classes, 6 scales, flips, fine stride, top-5 classes, fp32\n")
    print("| network | boxes merged | total ms | network ms | merge ms | outside |")
    print("|---|---|---|---|---|---|")
    networks = ("fast", "accurate") if args.network == "both" else (args.network,)
    for network in networks:
        model = of.with_regressor(BUILDERS[network](1000))
        layer = model.get_layer(model.spec.regressor_names[-1])
        layer.set_weights([0.05 * rng.normal(size=w.shape) for w in layer.weights])
        scales = paper_scales(model.geometry)
        localizer = Localizer(model, scales=scales, merge_threshold=args.threshold)
        total = median_seconds(
            lambda: localizer.localize_graph(image)["boxes"], repeats=args.repeats
        )
        alone = median_seconds(
            network_alone(model, image, scales), repeats=args.repeats
        )
        candidates = [localizer._candidates(s) for s in localizer._dense_pass(image)]
        boxes, scores, classes = (tf.concat(c, 1)[0] for c in zip(*candidates))
        merge = tf.function(lambda b, s, c: greedy_merge(b, s, c, args.threshold))
        merge_time = median_seconds(
            lambda: merge(boxes, scores, classes)["boxes"], repeats=args.repeats
        )
        share = max(0.0, 1 - alone / total)
        print(
            f"| {network} | {len(scores)} | {1000 * total:.0f} | {1000 * alone:.0f} "
            f"| {1000 * merge_time:.0f} | {share:.1%} |"
        )


if __name__ == "__main__":
    main()
