"""oneDNN and threading settings, measured: which the package should use.

Each setting runs in its own process, one after another, as TensorFlow reads
`TF_ENABLE_ONEDNN_OPTS` at import and its thread pools at the first op. Each
process measures, with random weights at width 1 on one 375x500 image:

- the fp32 matmul ceiling (4096^3) under that setting;
- the fast network's 6 scales x 2 flips at fine stride (`Classifier.serve`);
- the fast network on one 231 px window, batch 1 (what `predict` and the
  `classify` signature run for one small image at one scale);
- the accurate network at its first scale, fine stride, no flips;

and prints ms per image, each case's share of the ceiling measured in the
same process, and its time against the package's default setting (first
row). The machine's AMX flags are printed: they decide what oneDNN can do.

    python benchmarks/threads.py                  # ~6 minutes on 2 cores
    python benchmarks/threads.py --repeats 2
"""

import argparse
import json
import os
import subprocess
import sys

CORES = os.cpu_count() or 1
# (label, TF_ENABLE_ONEDNN_OPTS, intra-op threads, inter-op threads); 0
# threads is TensorFlow's own choice. The package's default first.
SETTINGS = [
    ("TensorFlow's default (oneDNN on, threads chosen by TF)", "1", 0, 0),
    (f"oneDNN on, intra {CORES}, inter 1", "1", CORES, 1),
    (f"oneDNN on, intra {CORES}, inter 2", "1", CORES, 2),
    ("oneDNN on, intra 1, inter 1", "1", 1, 1),
    ("oneDNN off (Eigen), threads chosen by TF", "0", 0, 0),
    (f"oneDNN off (Eigen), intra {CORES}, inter 1", "0", CORES, 1),
]
CASES = ["fast 6 scales x 2 flips fine", "fast 231 px batch 1", "accurate 1 scale fine"]


def measure(repeats: int) -> dict:
    """This process's figures (run in a child with the setting applied)."""
    import numpy as np
    import tensorflow as tf
    from speed import matmul_ceiling, median_seconds

    import overfeat_tf as of
    from overfeat_tf.inference import Classifier, paper_scales
    from overfeat_tf.preprocessing import smallest_side_shape

    rng = np.random.default_rng(0)
    image = tf.constant(rng.integers(0, 256, (1, 375, 500, 3)), tf.float32)
    window = tf.constant(rng.integers(0, 256, (1, 231, 231, 3)), tf.float32)
    fast, accurate = of.overfeat_fast(1000), of.overfeat_accurate(1000)
    accurate_first = paper_scales(accurate.geometry, [1])
    runners = {
        CASES[0]: (Classifier(fast), image),
        CASES[1]: (Classifier(fast, scales=(231,), flips=False), window),
        CASES[2]: (Classifier(accurate, scales=accurate_first, flips=False), image),
    }
    ceiling = matmul_ceiling(tf.float32, repeats)
    figures = {"ceiling_gflops": ceiling}
    for case, (runner, pixels) in runners.items():
        seconds = median_seconds(
            lambda: runner.serve(pixels)["probabilities"], repeats=repeats
        )
        model, settings = runner.model, runner.settings
        height, width = pixels.shape[1:3]
        madds = sum(
            of.multiply_adds(
                model.spec,
                *smallest_side_shape(height, width, size),
                num_classes=model.num_classes,
                stride=settings.stride,
            )
            for size in settings.scales
        ) * (2 if settings.flips else 1)
        figures[case] = {"ms": 1000 * seconds, "gflops": 2 * madds / seconds / 1e9}
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("ONEDNN", "INTRA", "INTER"))
    args = parser.parse_args()
    if args.child:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(int(args.child[1]))
        tf.config.threading.set_inter_op_parallelism_threads(int(args.child[2]))
        print(json.dumps(measure(args.repeats)))
        return
    from speed import cpu_flags

    amx = sorted(flag for flag in cpu_flags() if flag.startswith("amx"))
    print(f"{CORES} cores; AMX: {', '.join(amx) or 'none'}; random weights, fp32\n")
    rows, default = [], None
    for label, onednn, intra, inter in SETTINGS:
        env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn, TF_CPP_MIN_LOG_LEVEL="2")
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--repeats",
                str(args.repeats),
                "--child",
                onednn,
                str(intra),
                str(inter),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        default = default or figures
        ceiling = figures["ceiling_gflops"]
        cells = [label, f"{ceiling:.0f}"]
        for case in CASES:
            ms, gflops = figures[case]["ms"], figures[case]["gflops"]
            ratio = default[case]["ms"] / ms
            cells.append(f"{ms:.0f} ms, {100 * gflops / ceiling:.0f} %, {ratio:.2f}x")
        rows.append(cells)
        print(f"done: {label}", file=sys.stderr)
    from overfeat_tf.tables import markdown_table

    header = ["setting", "fp32 ceiling (GFLOP/s)"]
    header += [f"{case} (ms, share of ceiling, speed vs row 1)" for case in CASES]
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
