"""Speed of the greedy merge (`overfeat_tf.merge`) against the number of boxes.

Boxes look like a localizer's output: for each N, the same generator draws
jittered boxes around four objects (10 % of their size), 15 % random boxes,
uniform scores, and one class (the worst case: every pair can merge) or
three (`--classes`; the merge runs each class alone). For each N, prints
the median ms of the merge inside a `tf.function` with an unknown N (after
a warm-up call), with the XLA loop (the default) and in plain graph mode,
and the merges done; then each mode's growth exponent (least-squares slope
of log time against log N; the merge is O(N^2)) and whether 2000 boxes
merge in under 100 ms.

    python benchmarks/merge.py                # ~3 minutes on 2 cores
    python benchmarks/merge.py --sizes 500,2000 --repeats 3 --classes 1
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from speed import median_seconds  # noqa: E402

from overfeat_tf.merge import greedy_merge  # noqa: E402

TARGET_N, TARGET_MS = 2000, 100.0


def localizer_boxes(n, objects=4, classes=3, seed=0):
    """Boxes [n, 4] xyxy, scores [n] and classes [n] in a 400x400 image."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(100, 300, (objects, 2))
    sizes = rng.uniform(50, 200, (objects, 2))
    which = rng.integers(0, objects, n)
    center = centers[which] + rng.normal(0, 0.1, (n, 2)) * sizes[which]
    size = sizes[which] * (1 + rng.normal(0, 0.1, (n, 2)))
    boxes = np.concatenate([center - size / 2, center + size / 2], axis=1)
    loose = rng.random(n) < 0.15
    corners = np.sort(rng.uniform(0, 400, (n, 2, 2)), axis=1)
    boxes[loose] = corners[loose].reshape(-1, 4)  # (x1, y1), (x2, y2)
    scores = rng.uniform(0, 1, n).astype(np.float32)
    return boxes.astype(np.float32), scores, rng.integers(0, classes, n)


def merge_graph(threshold, jit_compile):
    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 4], tf.float32, name="boxes"),
            tf.TensorSpec([None], tf.float32, name="scores"),
            tf.TensorSpec([None], tf.int32, name="classes"),
        ]
    )
    def merge(boxes, scores, classes):
        merged = greedy_merge(
            boxes, scores, classes, threshold, jit_compile=jit_compile
        )
        return merged["counts"]

    return merge


def growth(sizes, seconds):
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,500,1000,2000,5000")
    parser.add_argument("--classes", default="1,3", help="class counts to run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threshold", type=float, default=0.6)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    merges = {True: merge_graph(args.threshold, True)}
    merges[False] = merge_graph(args.threshold, False)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} cores (load average {load}); threshold {args.threshold}")
    for classes in (int(c) for c in args.classes.split(",")):
        print(f"\n{classes} class{'es' if classes > 1 else ''}\n")
        print("| N | ms (XLA) | ms (graph) | merges done |\n|---|---|---|---|")
        times = {True: [], False: []}
        for n in sizes:
            inputs = [tf.constant(a) for a in localizer_boxes(n, classes=classes)]
            inputs[2] = tf.cast(inputs[2], tf.int32)
            for jit_compile, merge in merges.items():
                seconds = median_seconds(merge, *inputs, repeats=args.repeats)
                times[jit_compile].append(seconds)
            done = n - len(merges[True](*inputs))
            print(
                f"| {n} | {1000 * times[True][-1]:.1f} "
                f"| {1000 * times[False][-1]:.1f} | {done} |",
                flush=True,
            )
        if len(sizes) > 1:
            print(
                f"\ngrowth exponent: XLA {growth(sizes, times[True]):.2f}, "
                f"graph {growth(sizes, times[False]):.2f}"
            )
        if TARGET_N in sizes:
            ms = 1000 * times[True][sizes.index(TARGET_N)]
            met = "met" if ms < TARGET_MS else "NOT met"
            print(f"{TARGET_N} boxes: {ms:.1f} ms (target < {TARGET_MS:.0f} ms): {met}")


if __name__ == "__main__":
    main()
