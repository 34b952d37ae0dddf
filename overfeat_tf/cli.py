"""The `overfeat` command.

Subcommands:
    describe: a network's layer table with each layer's output size at an
        input size, its parameters and multiply-adds, and the geometry.
    train: train a classifier from a recipe in configs/ (resumes a run
        that was interrupted when run again with the same output folder).

Example:
    overfeat describe --network accurate --image-size 461x569 --stride fine
    overfeat train --config shapes_accurate train.epochs=3
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXAMPLES = """examples:
  overfeat describe --network fast
  overfeat describe --network accurate --image-size 461x569 --stride fine
  overfeat describe --network accurate --width 0.125 --num-classes 10
  overfeat train --config shapes_accurate
  overfeat train --config configs/paper_fast.yaml --strategy mirrored train.epochs=2
  overfeat train --config shapes_fast --output-dir runs/try1 model.width=0.5
"""


def _image_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected HEIGHTxWIDTH in pixels, e.g. 461x569; got {text!r}"
        ) from None
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive; got {text!r}")
    return height, width


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0; got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1; got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="overfeat",
        description="OverFeat (Sermanet et al., ICLR 2014) for Keras 3 / TensorFlow.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    describe = commands.add_parser(
        "describe",
        help="print a network's layer table, sizes, parameters and multiply-adds",
        description=(
            "Print the paper's layer table for a network with each layer's "
            "output size at an input size (default: the window), its "
            "parameters and multiply-adds, and the derived geometry."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    describe.add_argument("--network", choices=("fast", "accurate"), default="accurate")
    describe.add_argument(
        "--image-size", type=_image_size, metavar="HxW", help="input size in pixels"
    )
    describe.add_argument("--stride", choices=("coarse", "fine"), default="coarse")
    describe.add_argument("--width", type=_positive_float, default=1.0)
    describe.add_argument("--num-classes", type=_positive_int, default=1000)

    train = commands.add_parser(
        "train",
        help="train from a recipe (config file or bundled name), resuming if stopped",
        description=(
            "Train the classifier of a recipe with model.fit. Checkpoints go to "
            "OUTPUT_DIR/checkpoints every epoch; running the same command again "
            "resumes from the last one. TensorBoard logs: OUTPUT_DIR/tensorboard."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "--config",
        required=True,
        help="a YAML recipe path, or a bundled recipe name (e.g. shapes_accurate)",
    )
    train.add_argument(
        "--task", choices=("classify",), default="classify", help="what to train"
    )
    train.add_argument(
        "--strategy",
        choices=("default", "one_device", "mirrored", "multi_worker", "tpu"),
        help="tf.distribute strategy (overrides train.strategy)",
    )
    train.add_argument("--output-dir", help="run folder (overrides output_dir)")
    train.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides"
    )
    return parser


def _train(args) -> str:
    from overfeat_tf.config import load_config
    from overfeat_tf.training import train

    overrides = list(args.overrides)
    if args.strategy:
        overrides.append(f"train.strategy={args.strategy}")
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    config = load_config(args.config, overrides)
    history = train(config)
    if not history.history:
        return (
            f"{config.output_dir} already finished its {config.train.epochs} epochs; "
            f"model: {config.output_dir}/model.keras"
        )
    last = {name: values[-1] for name, values in history.history.items()}
    figures = ", ".join(f"{name} {value:.4g}" for name, value in sorted(last.items()))
    return f"trained {config.output_dir}/model.keras: {figures}"


def _describe(args) -> str:
    import keras

    import overfeat_tf as of

    builder = of.overfeat_fast if args.network == "fast" else of.overfeat_accurate
    model = builder(args.num_classes, width=args.width, stride=args.stride)
    spec, g = model.spec, model.geometry
    height, width = args.image_size or (g.window, g.window)
    if min(height, width) < g.min_input_size:
        raise ValueError(
            f"--image-size must be at least {g.min_input_size}x{g.min_input_size} "
            f"for the {args.network} model. Received: {height}x{width}"
        )
    shapes = g.layer_shapes(height, width, args.stride)
    table = "Table 1" if spec.name == "fast" else "Table 3"
    lines = [
        f"OverFeat {spec.name} ({table}), width {args.width:g}, "
        f"{args.num_classes} classes, {args.stride} stride",
        f"window {g.window} px, coarse stride {g.coarse_stride} px, "
        f"fine stride {g.fine_stride} px",
        "",
        f"{'layer':<8}{'kind':<16}{'maps':>6}{'filter':>8}{'stride':>8}"
        f"{'params':>14}  output at {height}x{width}",
    ]
    for layer in model.layers[1:-1]:
        name = layer.name
        if name.startswith("dropout"):
            continue
        conv = getattr(layer, "conv", layer)
        if isinstance(conv, keras.layers.Conv2D):
            k = conv.kernel_size[0]
            kind = "conv" if name.startswith("conv") else "full (conv)"
            if getattr(layer, "dilation", 1) > 1:
                kind = f"full (dil. {layer.dilation})"
            row = (kind, conv.filters, f"{k}x{k}", conv.strides[0], conv.count_params())
        else:
            kind = f"max {layer.pool_size[0]}/{layer.strides[0]}"
            row = (kind, "", "", layer.strides[0], 0)
        h, w = shapes[name]
        lines.append(
            f"{name:<8}{row[0]:<16}{row[1]!s:>6}{row[2]:>8}{row[3]:>8}"
            f"{row[4]:>14,}  {h}x{w}"
        )
    macs = of.multiply_adds(
        spec,
        height,
        width,
        num_classes=args.num_classes,
        width_multiplier=args.width,
        stride=args.stride,
    )
    cells = shapes[spec.fc_names[-1]]
    lines += [
        "",
        f"parameters {model.count_params():,}; multiply-adds {macs / 1e9:.2f} G; "
        f"class map {cells[0]}x{cells[1]} = {cells[0] * cells[1]} windows",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    command = {"describe": _describe, "train": _train}[args.command]
    try:
        print(command(args))
    except (
        ValueError,
        TypeError,
        FileNotFoundError,
        FloatingPointError,
        NotImplementedError,
    ) as error:
        print(f"overfeat {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
