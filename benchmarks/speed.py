"""Forward speed of the OverFeat networks against this machine's ceilings.

Prints, from one run: the fp32 and bf16 matmul ceilings (4096^3, GFLOP/s);
for fast (231 px, batch 1 and 8), accurate (221 px, batch 1) and the
accurate fine-stride dense pass at 461x569, the ms per image, GFLOP/s from
exact multiply-add counts (`overfeat_tf.multiply_adds`) and the fraction of
the ceiling, in fp32 and Keras mixed_bfloat16; then the speed-up of the
dense fine-stride pass over running its 630 windows one by one, beside the
multiply-add ratio. Random weights, width 1, XLA (`jit_compile=True`).

    python benchmarks/speed.py            # ~5 minutes on 2 cores
    python benchmarks/speed.py --repeats 3 --skip-windows
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import overfeat_tf as of  # noqa: E402

CASES = [  # (label, builder, batch, (height, width), stride)
    ("fast 231 px, batch 1", of.overfeat_fast, 1, (231, 231), "coarse"),
    ("fast 231 px, batch 8", of.overfeat_fast, 8, (231, 231), "coarse"),
    ("accurate 221 px, batch 1", of.overfeat_accurate, 1, (221, 221), "coarse"),
    ("accurate 461x569 fine, batch 1", of.overfeat_accurate, 1, (461, 569), "fine"),
]


def median_seconds(fn, *args, repeats):
    fn(*args)  # trace / compile
    fn(*args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(fn(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def matmul_ceiling(dtype, repeats):
    """The best 4096^3 matmul rate, with or without XLA (GFLOP/s)."""
    a = tf.cast(tf.random.stateless_normal((4096, 4096), (1, 2)), dtype)
    best = 0.0
    for jit in (False, True):
        matmul = tf.function(tf.linalg.matmul, jit_compile=jit)
        seconds = median_seconds(matmul, a, a, repeats=repeats)
        best = max(best, 2 * 4096**3 / seconds / 1e9)
    return best


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            line = next(line for line in f if line.startswith("flags"))
    except (OSError, StopIteration):
        return set()
    return set(line.split(":", 1)[1].split())


def build(builder, policy, stride, weights=None):
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = of.dense(builder(1000), stride)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    if weights is not None:
        model.set_weights(weights)
    return model


def forward(model):
    return tf.function(
        lambda x: model(x, training=False)["class_logits"], jit_compile=True
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-windows", action="store_true")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)

    flags = cpu_flags()
    print(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"{os.cpu_count()} cores; AMX: {'amx_bf16' in flags}, "
        f"AVX512-BF16: {'avx512_bf16' in flags}"
    )
    ceilings = {
        "fp32": matmul_ceiling(tf.float32, args.repeats),
        "bf16": matmul_ceiling(tf.bfloat16, args.repeats),
    }
    print(
        f"matmul 4096^3 ceilings: fp32 {ceilings['fp32']:.0f} GFLOP/s, "
        f"bf16 {ceilings['bf16']:.0f} GFLOP/s "
        f"(bf16/fp32 = {ceilings['bf16'] / ceilings['fp32']:.2f})\n"
    )

    print(f"| case | precision | ms/img | GFLOP/s | of ceiling |\n|{'---|' * 5}")
    results = {}
    weights = {}
    for label, builder, batch, (h, w), stride in CASES:
        images = tf.constant(rng.normal(size=(batch, h, w, 3)).astype(np.float32))
        for precision, policy in (("fp32", "float32"), ("bf16", "mixed_bfloat16")):
            key = (builder.__name__, stride)
            model = build(builder, policy, stride, weights.get(key))
            weights.setdefault(key, model.get_weights())
            flops = 2 * of.multiply_adds(model.spec, h, w, stride=stride)
            seconds = median_seconds(forward(model), images, repeats=args.repeats)
            gflops = flops * batch / seconds / 1e9
            results[label, precision] = seconds / batch
            print(
                f"| {label} | {precision} | {1000 * seconds / batch:.1f} | "
                f"{gflops:.0f} | {gflops / ceilings[precision]:.0%} |",
                flush=True,
            )
            del model

    fp32_b8 = results["fast 231 px, batch 8", "fp32"]
    bf16_b8 = results["fast 231 px, batch 8", "bf16"]
    fraction = (
        2 * of.multiply_adds(of.FAST, 231, 231) / fp32_b8 / 1e9 / ceilings["fp32"]
    )
    print("\ntargets:")
    print(
        f"  fast batch 8 fp32 at >= 50% of the fp32 ceiling: {fraction:.0%} "
        f"[{'met' if fraction >= 0.5 else 'NOT met'}]"
    )
    speedup = fp32_b8 / bf16_b8
    print(
        f"  mixed bf16 >= 2x faster than fp32 at batch 8: {speedup:.2f}x "
        f"[{'met' if speedup >= 2 else 'NOT met'}]; the bf16 ceiling here is "
        f"{ceilings['bf16'] / ceilings['fp32']:.2f}x the fp32 one"
    )
    if not args.skip_windows:
        dense_vs_windows(weights[("overfeat_accurate", "fine")], args.repeats, rng)


def dense_vs_windows(weights, repeats, rng):
    """The fine dense pass at 461x569 against its 630 windows run one by one."""
    fine = build(of.overfeat_accurate, "float32", "fine", weights)
    coarse = of.dense(fine, "coarse")
    g = fine.geometry
    h, w = 461, 569
    image = rng.normal(size=(1, h, w, 3)).astype(np.float32)
    windows = g.cell_windows(h, w, "fine").astype(int).reshape(-1, 4)
    crops = np.stack([image[0, y1:y2, x1:x2] for x1, y1, x2, y2 in windows])
    rows = g.output_shape(h, w, "fine")[1]  # one batch per map row
    batches = [tf.constant(crops[i : i + rows]) for i in range(0, len(crops), rows)]
    run_dense, run_windows = forward(fine), forward(coarse)

    dense_s = median_seconds(run_dense, tf.constant(image), repeats=repeats)
    run_windows(batches[0])  # compile once for the batch shape
    start = time.perf_counter()
    outputs = [np.asarray(run_windows(b)) for b in batches]
    windows_s = time.perf_counter() - start

    windowed = np.concatenate(outputs)[:, 0, 0]
    dense = np.asarray(run_dense(tf.constant(image)))[0].reshape(-1, 1000)
    per_cell = np.linalg.norm(dense - windowed, axis=1) / np.linalg.norm(dense, axis=1)
    difference = float(np.median(per_cell))
    theory = (
        len(crops)
        * of.multiply_adds(of.ACCURATE, 221, 221)
        / of.multiply_adds(of.ACCURATE, h, w, stride="fine")
    )
    measured = windows_s / dense_s
    print(
        f"\ndense fine pass at {h}x{w} ({len(crops)} windows): "
        f"{dense_s:.2f} s; the windows one by one: {windows_s:.1f} s"
    )
    print(
        f"  speed-up {measured:.1f}x; multiply-add ratio {theory:.1f}x; "
        f"measured/theory {measured / theory:.2f} "
        f"[{'met' if measured >= 2 / 3 * theory else 'NOT met'}: >= 0.67]"
    )
    print(
        f"  dense vs cropped-window logits (zero padding at crop borders): "
        f"median per-cell relative L2 difference {difference:.1%}"
    )


if __name__ == "__main__":
    main()
